package cluster

import (
	"time"

	"github.com/followgraph/followgraph/fsm"
	"github.com/followgraph/followgraph/internal/clock"
	"github.com/followgraph/followgraph/shard"
	"github.com/hashicorp/raft"
)

// NodeStatus is a node's account of the replicas it hosts: what followctl
// status shows, what metrics export, and what other nodes ask for when
// they place replicas (Peers.Status).
type NodeStatus struct {
	NodeID    string
	ClusterID string
	Replicas  []ReplicaStatus
}

// ReplicaStatus describes one replica.
type ReplicaStatus struct {
	Shard int
	// Ready: this node leads the shard, has caught up and serves it.
	Ready bool
	// Leader: raft's state is leader (Ready follows once caught up).
	Leader bool
	// LeaderID is the shard's leader as raft knows it ("" if unknown);
	// LeaderAddr its client address, when another node leads and gossip
	// knows it.
	LeaderID, LeaderAddr string
	AppliedIndex         uint64
	// Halted says why the state machine stopped applying, if it did.
	Halted string
	// Recovered describes the unsafe recovery made from this replica, if
	// one was.
	Recovered string
	// Voters and Nonvoters are the shard's raft configuration.
	Voters, Nonvoters []string
	// LogEntries are the entries in the replica's raft log (those
	// snapshots have not compacted yet).
	LogEntries uint64
	// Snapshots are the log applied since the newest snapshot, its size
	// and the totals of snapshot writing (see snapshots.go).
	Snapshots fsm.SnapshotCost
	Store     shard.Stats
	Lag       Lag
	// Quiet: this node leads the shard and it is quiet (no writes or
	// lease renewals for Raft.QuietAfter); QuietAnswers counts the idle
	// RPCs its transport answered from followers' beats (see quiet.go).
	Quiet        bool
	QuietAnswers uint64
	// HookLag is, while this node leads, the most retained change-feed
	// events any webhook has yet to deliver.
	HookLag int
	// Entries counts the log entries this replica's batcher committed
	// (while it led), by what they carry.
	Entries EntryCounts
	// Redelivered counts delivered records this replica skipped as
	// already applied (since the process started).
	Redelivered uint64
	// Removals are the removals of users' graphs running on the shard.
	Removals []RemovalProgress
}

// RemovalProgress is how far the removal of a user's graph is.
type RemovalProgress struct {
	User      string
	Removed   uint64 // edges removed so far
	Remaining int    // entries still in its following and followers lists
}

// Lag describes the relay's backlog.
type Lag struct {
	Records int           // undelivered reverse edges
	Oldest  time.Duration // age of the oldest one
}

// Status describes this node's replicas, in shard order.
func (n *Node) Status() NodeStatus {
	st := NodeStatus{NodeID: n.cfg.NodeID, ClusterID: n.ClusterID()}
	for _, r := range n.localReplicas() {
		st.Replicas = append(st.Replicas, r.Status())
	}
	return st
}

// Status describes the replica.
func (r *Replica) Status() ReplicaStatus {
	// raft's applied index counts a restored snapshot, which the state
	// machine does not see: a replica restored from a snapshot with no
	// entries after it (after a restart or an unsafe recovery) has applied
	// up to the snapshot, not 0, and must not look like a new shard.
	applied := max(r.fsm.Index(), r.raft.AppliedIndex())
	rs := ReplicaStatus{Shard: r.id, Ready: r.Ready(), Leader: r.raft.State() == raft.Leader, AppliedIndex: applied, Lag: r.Lag()}
	_, id := r.raft.LeaderWithID()
	rs.LeaderID = string(id)
	if t, ok := r.trans.(*quietTransport); ok {
		rs.Quiet = rs.Leader && t.quiet()
		rs.QuietAnswers = t.faked.Load()
	}
	if !rs.Leader {
		if m, ok := r.node.Leader(r.id); ok {
			rs.LeaderAddr = m.Meta.ClientAddr
		}
	}
	if err := r.fsm.Failed(); err != nil {
		rs.Halted = err.Error()
	}
	if rs.Ready {
		for _, h := range r.node.cfg.Hooks {
			rs.HookLag = max(rs.HookLag, r.HookLag(h.ID()))
		}
	}
	rs.Recovered = r.recovered
	for _, rm := range r.fsm.Removals() {
		st := r.fsm.RemovalStatus(rm.User)
		rs.Removals = append(rs.Removals, RemovalProgress{User: rm.User, Removed: rm.Removed, Remaining: st.Following + st.Followers})
	}
	if f := r.raft.GetConfiguration(); f.Error() == nil {
		for _, sv := range f.Configuration().Servers {
			if sv.Suffrage == raft.Voter {
				rs.Voters = append(rs.Voters, string(sv.ID))
			} else {
				rs.Nonvoters = append(rs.Nonvoters, string(sv.ID))
			}
		}
	}
	if ls := r.logs.Stats(); ls.LastIndex > 0 {
		rs.LogEntries = ls.LastIndex - ls.FirstIndex + 1
	}
	rs.Snapshots = r.fsm.SnapshotCost()
	rs.Entries = r.Entries()
	rs.Redelivered = r.fsm.Redelivered()
	r.fsm.ReadAny(func(st *shard.Store) { rs.Store = st.Stats() })
	return rs
}

// Lag returns the relay's backlog.
func (r *Replica) Lag() Lag {
	st := r.fsm.Outbox()
	l := Lag{Records: st.Records}
	if st.Oldest > 0 {
		l.Oldest = time.Duration(max(0, clock.Now().UnixMilli()-st.Oldest)) * time.Millisecond
	}
	return l
}

// Healthy returns the local shards that are not healthy: without a leader
// (here or on another node), led here but not caught up, or halted. A
// cluster node that has not joined a cluster yet reports [-1].
func (n *Node) Healthy() (bad []int) {
	if n.members != nil && n.ClusterID() == "" {
		return []int{-1}
	}
	for _, r := range n.localReplicas() {
		if r.fsm.Failed() != nil {
			bad = append(bad, r.id)
			continue
		}
		if r.raft.State() == raft.Leader {
			if !r.Ready() {
				bad = append(bad, r.id)
			}
			continue
		}
		if addr, _ := r.raft.LeaderWithID(); addr == "" {
			bad = append(bad, r.id)
		}
	}
	return bad
}
