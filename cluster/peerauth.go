package cluster

import "github.com/followgraph/followgraph/internal/raftmux"

// Peer authentication on the raft port (internal/raftmux, "Authentication"):
// the node hands its raft mux the configured Auth and a NodeAt built from
// gossip, so that mutual TLS pins each peer's certificate to the node that
// gossip has at its raft address.

// peerAuth sets the authentication fields of the raft mux's config.
func (n *Node) peerAuth(cfg *raftmux.Config) {
	mc := &n.cfg.Membership
	cfg.Auth = mc.PeerAuth
	cfg.OnRefused = mc.OnPeerRefused
	if mc.PeerAuth != nil {
		cfg.NodeAt = n.raftNodeAt
	}
}

// raftNodeAt names the alive node gossip has at raft address addr.
//
// Only alive (or suspect) members count: a node replaced by another with a
// new ID at the same address must not be locked out until the dead one is
// reaped. Before gossip runs (the raft port opens first, and n.members is
// set before n.started), every address is unknown: peers are then
// accepted on a valid node certificate of the CA alone.
func (n *Node) raftNodeAt(addr string) (string, bool) {
	if !n.started.Load() {
		return "", false
	}
	for _, m := range n.members.Alive() {
		if m.Meta.RaftAddr == addr && m.Meta.ID != "" {
			return m.Meta.ID, true
		}
	}
	return "", false
}
