package cluster

import (
	"github.com/followgraph/followgraph/fsm"
	"github.com/followgraph/followgraph/internal/raftmux"
	"github.com/followgraph/followgraph/internal/wal"
	"github.com/hashicorp/raft"
)

// Access for the tests of package cluster_test, which run nodes behind
// the router (package clustertest) and so cannot be tests of this
// package: the router imports it.

func (n *Node) LocalReplicas() []*Replica  { return n.localReplicas() }
func (n *Node) RaftMux() *raftmux.Mux      { return n.mux }
func (n *Node) CursorKey() []byte          { return n.cfg.Store.CursorKey }
func (n *Node) RaftLog() (*wal.Log, error) { return n.openRaftLog() }
func (r *Replica) Raft() *raft.Raft        { return r.raft }
func (r *Replica) FSM() *fsm.FSM           { return r.fsm }
func ShardDir(i int) string                { return shardDir(i) }

// Dropping returns the number of replicas being deleted.
func (n *Node) Dropping() int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return len(n.dropping)
}
