package cluster

import (
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/shard"
	"github.com/hashicorp/raft"
)

// leaseBase anchors lease times on the monotonic clock (wall-clock jumps
// must not stretch a lease).
var leaseBase = time.Now()

// Read runs fn on the shard's Store if this node leads the shard, has
// caught up and holds a read lease; fn must not keep the Store. Reads do
// not go through raft.
//
// The lease makes leader reads see every acknowledged write, also when
// this node was deposed without noticing (paused, or cut off: the chaos
// suite's -reads leader runs found such stale reads). A VerifyLeader
// round that started at T proves that a quorum heard from this leader
// after T; each of them rejects other candidates until its own heartbeat
// timeout (at least HeartbeatTimeout) passes without news, so no other
// leader exists before T + HeartbeatTimeout. Reads are served until
// T + HeartbeatTimeout/2 (margin for scheduling), on the monotonic clock;
// a read after that renews the lease first (concurrent renewals share one
// raft round). A leadership transfer skips the followers' wait, so reads
// are refused while one runs.
func (r *Replica) Read(fn func(*shard.Store) error) error {
	if !r.isReady.Load() {
		return r.notLeader()
	}
	if err := r.lease(); err != nil {
		return err
	}
	return r.fsm.Read(fn)
}

// View takes a point-in-time View of the shard's Store if this node leads
// the shard, has caught up and holds a read lease (as Read): the View holds
// every write acknowledged before the call. The caller releases it.
func (r *Replica) View() (*shard.View, error) {
	if !r.isReady.Load() {
		return nil, r.notLeader()
	}
	if err := r.lease(); err != nil {
		return nil, err
	}
	return r.fsm.View()
}

// lease checks, and if needed renews, the read lease.
func (r *Replica) lease() error {
	if r.transferring.Load() > 0 {
		return codes.New(codes.NotLeader, "shard %d is handing its leadership over", r.id)
	}
	if int64(time.Since(leaseBase)) < r.leaseUntil.Load() {
		return nil
	}
	// A quiet shard's transport may have answered the heartbeat that
	// confirms the round (one already under way when wake ran) from a
	// follower's beat acknowledgement up to quietStale old: that
	// follower's refusal to vote for others may have started that much
	// before the round, so the lease ends that much earlier.
	margin := r.wake()
	start := time.Since(leaseBase)
	if err := r.raft.VerifyLeader().Error(); err != nil {
		return r.raftErr(err)
	}
	if r.transferring.Load() > 0 {
		return codes.New(codes.NotLeader, "shard %d is handing its leadership over", r.id)
	}
	until := int64(start + r.cfg.Raft.HeartbeatTimeout/2)
	until -= int64(margin)
	for {
		cur := r.leaseUntil.Load()
		if cur >= until || r.leaseUntil.CompareAndSwap(cur, until) {
			return nil
		}
	}
}

// transfer runs a leadership transfer with leader reads blocked, and the
// lease dropped, until it ends.
func (r *Replica) transfer(f func() raft.Future) error {
	r.transferring.Add(1)
	r.leaseUntil.Store(0)
	defer r.transferring.Add(-1)
	return f().Error()
}

// ReadLinearizable is Read after confirming with a quorum that this node
// still leads the shard (one round trip): the read sees every write
// acknowledged before it started, even if this node was just deposed.
func (r *Replica) ReadLinearizable(fn func(*shard.Store) error) error {
	if !r.isReady.Load() {
		return r.notLeader()
	}
	r.wake()
	if err := r.raft.VerifyLeader().Error(); err != nil {
		return r.raftErr(err)
	}
	return r.fsm.Read(fn)
}

// ReadLocal runs fn on this replica's state whatever its role: a follower
// read, possibly behind the leader.
func (r *Replica) ReadLocal(fn func(*shard.Store) error) error {
	return r.fsm.Read(fn)
}

// wake marks the shard active (its raft RPCs go out for real: quiet.go)
// and returns how much earlier than a round's start a follower may have
// last heard from this leader for the round to count (0 unless the shard
// can be quiet).
func (r *Replica) wake() time.Duration {
	if t, ok := r.trans.(*quietTransport); ok {
		t.wake()
		return t.stale
	}
	return 0
}
