package wire

import (
	"context"
	"fmt"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/internal/gossipkey"
)

// GossipKeyAction is what a gossip-keys request does to the node's gossip
// keyring.
type GossipKeyAction uint8

// Gossip-keys actions. The numbers are part of the protocol.
const (
	// GossipKeysList changes nothing: the response lists the keys.
	GossipKeysList GossipKeyAction = 0
	// GossipKeysInstall adds the key as a secondary key (the node accepts
	// gossip encrypted with it); installing a key held already succeeds.
	GossipKeysInstall GossipKeyAction = 1
	// GossipKeysUse makes the key, which the node must hold, the one it
	// encrypts with (the primary).
	GossipKeysUse GossipKeyAction = 2
	// GossipKeysRemove drops the key, unless it is the primary; removing
	// a key the node does not hold succeeds.
	GossipKeysRemove GossipKeyAction = 3
)

var gossipActionNames = [...]string{"list", "install", "use", "remove"}

// String names the action as followctl gossip-key does.
func (a GossipKeyAction) String() string {
	if int(a) < len(gossipActionNames) {
		return gossipActionNames[a]
	}
	return fmt.Sprintf("action%d", uint8(a))
}

// maxGossipKeysListed bounds the keys of a gossip-keys response (a node
// holds at most 8).
const maxGossipKeysListed = 16

// maxFingerprintLen bounds a key fingerprint in a response.
const maxFingerprintLen = 64

// GossipKeysRequest is [action, key]: key is the standard base64 of an
// AES key of 16, 24 or 32 bytes, and the empty string for list. Key holds
// the decoded bytes.
type GossipKeysRequest struct {
	Action GossipKeyAction
	Key    []byte
}

// AppendGossipKeysRequest encodes a gossip-keys request.
func AppendGossipKeysRequest(b []byte, q GossipKeysRequest) []byte {
	b = appendUint(appendArray(b, 2), uint64(q.Action))
	if len(q.Key) == 0 {
		return appendStr(b, "")
	}
	return appendStr(b, gossipkey.Encode(q.Key))
}

// ParseGossipKeysRequest decodes a gossip-keys request: an unknown action,
// a key with list, no key or one that is not base64 of 16, 24 or 32 bytes
// with the others are malformed (codes.InvalidParam).
func ParseGossipKeysRequest(body []byte) (GossipKeysRequest, error) {
	r := reader{b: body}
	r.arrayN(2)
	action := r.upTo(int(GossipKeysRemove))
	r.field = "key"
	s := r.strView(gossipkey.MaxEncodedLen)
	r.field = ""
	if err := r.done(); err != nil {
		return GossipKeysRequest{}, wrap(err, "gossip-keys request")
	}
	q := GossipKeysRequest{Action: GossipKeyAction(action)}
	switch {
	case q.Action == GossipKeysList && s != "":
		return GossipKeysRequest{}, codes.New(codes.InvalidParam, "gossip-keys list takes no key")
	case q.Action == GossipKeysList:
		return q, nil
	}
	k, err := gossipkey.Decode(s)
	if err != nil || s != gossipkey.Encode(k) {
		// Only the canonical form: what decodes re-encodes the same.
		return GossipKeysRequest{}, codes.New(codes.InvalidParam, "gossip-keys %s: the key must be standard base64 of 16, 24 or 32 bytes", q.Action)
	}
	q.Key = k
	return q, nil
}

// GossipKey is a key of a node's gossip keyring as the protocol shows it:
// [fingerprint, primary]. The fingerprint is the hex of the first 8 bytes
// of the key's SHA-256; keys themselves never leave the node.
type GossipKey struct {
	Fingerprint string
	Primary     bool // the key the node encrypts with
}

// GossipKeyring is the answer to a gossip-keys request, after the action:
// [node, [[fingerprint, primary]...]], the primary first.
type GossipKeyring struct {
	Node string
	Keys []GossipKey
}

// AppendGossipKeyring encodes a gossip-keys response.
func AppendGossipKeyring(b []byte, k GossipKeyring) []byte {
	b = appendStr(appendArray(b, 2), k.Node)
	b = appendArray(b, len(k.Keys))
	for _, key := range k.Keys {
		b = appendStr(appendArray(b, 2), key.Fingerprint)
		b = appendBool(b, key.Primary)
	}
	return b
}

// ParseGossipKeyring decodes a gossip-keys response.
func ParseGossipKeyring(body []byte) (GossipKeyring, error) {
	r := reader{b: body}
	r.arrayN(2)
	k := GossipKeyring{Node: r.str(256)}
	n := r.array(maxGossipKeysListed)
	for range n {
		r.arrayN(2)
		key := GossipKey{Fingerprint: r.str(maxFingerprintLen), Primary: r.bool()}
		if r.err != nil {
			break
		}
		k.Keys = append(k.Keys, key)
	}
	return k, wrap(r.done(), "gossip-keys response")
}

func serveGossipKeys(s *Server, ctx context.Context, _ Op, body, b []byte) ([]byte, error) {
	q, err := ParseGossipKeysRequest(body)
	if err != nil {
		return b, err
	}
	ch, err := s.clusterHandler()
	if err != nil {
		return b, err
	}
	k, err := ch.GossipKeys(ctx, q)
	if err != nil {
		return b, err
	}
	return AppendGossipKeyring(b, k), nil
}
