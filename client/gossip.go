package client

import (
	"context"

	"github.com/followgraph/followgraph/wire"
)

// GossipKeys applies action to the gossip keyring of the node at addr (""
// for the first seed) - that node only: keyrings are per node, and a key
// rotation sends each step to every node (followctl gossip-key does). key
// is the raw AES key (16, 24 or 32 bytes), nil for wire.GossipKeysList.
// The result lists the node's keys after the action, by fingerprint, the
// primary first. The server refuses, with codes.InvalidParam, use of a key
// it does not hold, removal of its primary key, and any action on a node
// that does not encrypt its gossip.
func (c *Client) GossipKeys(ctx context.Context, addr string, action wire.GossipKeyAction, key []byte) (wire.GossipKeyring, error) {
	if addr == "" {
		addr = c.cfg.Addrs[0]
	}
	cn, err := c.conn(ctx, addr)
	if err != nil {
		return wire.GossipKeyring{}, err
	}
	body, err := cn.call(ctx, wire.OpGossipKeys, func(b []byte) []byte {
		return wire.AppendGossipKeysRequest(b, wire.GossipKeysRequest{Action: action, Key: key})
	})
	if err != nil {
		return wire.GossipKeyring{}, err
	}
	return wire.ParseGossipKeyring(body)
}
