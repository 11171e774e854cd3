package cluster

import (
	"context"
	"net"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/internal/raftmux"
)

// Nodes speak the client protocol to each other (forwarded requests,
// relay deliveries, peer status) over streams of the raft port rather than
// over each other's client ports: the raft port authenticates its peers,
// so a node serves peer-only operations to exactly the connections that
// came through it, and a client port with any token never grants them.

// openPeerStream opens the raft port's stream for peer connections.
func (n *Node) openPeerStream() {
	n.peers = n.mux.Layer(raftmux.PeerStream)
	if n.cfg.PeerDialer != nil {
		n.cfg.PeerDialer.n.Store(n)
	}
}

// PeerListener returns the listener of other nodes' client-protocol
// connections, to serve as peers' (wire.Server.ServePeers); nil on a single
// node. Closing it stops accepting; the streams end with the node.
func (n *Node) PeerListener() net.Listener {
	if n.peers == nil {
		return nil
	}
	return n.peers.Listener()
}

// peerDialTimeout bounds a peer dial whose context has no deadline.
const peerDialTimeout = 3 * time.Second

// DialPeer connects to the node whose client address is clientAddr over
// its raft port, for the client protocol. The address is looked up in
// gossip, alive or not, since a suspect node may still answer.
func (n *Node) DialPeer(ctx context.Context, clientAddr string) (net.Conn, error) {
	if n.peers == nil || n.members == nil {
		return nil, codes.New(codes.ShardUnavailable, "no peer connection to %s: gossip has not started", clientAddr)
	}
	raftAddr := ""
	for _, m := range n.members.Members() {
		if m.Meta.ClientAddr == clientAddr && m.Meta.RaftAddr != "" {
			raftAddr = m.Meta.RaftAddr
			break
		}
	}
	if raftAddr == "" {
		return nil, codes.New(codes.ShardUnavailable, "no node known at %s", clientAddr)
	}
	timeout := peerDialTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return nil, context.DeadlineExceeded
	}
	c, err := n.peers.Dial(raft.ServerAddress(raftAddr), timeout)
	if err != nil {
		return nil, codes.New(codes.ShardUnavailable, "connect to %s at %s: %v", clientAddr, raftAddr, err)
	}
	return c, nil
}

// PeerDialer dials other nodes for Peers created before the node they
// belong to (Config.Peers is needed to open it). Put it in
// Config.PeerDialer; until the node binds it, Dial fails as unavailable.
type PeerDialer struct {
	n atomic.Pointer[Node]
}

// Dial is DialPeer of the bound node.
func (d *PeerDialer) Dial(ctx context.Context, clientAddr string) (net.Conn, error) {
	n := d.n.Load()
	if n == nil {
		return nil, codes.New(codes.ShardUnavailable, "no peer connection to %s: the node is not open", clientAddr)
	}
	return n.DialPeer(ctx, clientAddr)
}
