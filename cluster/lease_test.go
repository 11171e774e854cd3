package cluster

import (
	"errors"
	"testing"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/shard"
	"github.com/hashicorp/raft"
)

// Leader reads hold a lease: a read renews it with a quorum round when it
// has run out, it lasts half a heartbeat timeout, and no read is served
// while a leadership transfer runs. (End to end, the chaos suite's
// -reads leader runs with paused and isolated leaders found stale leader
// reads before the lease existed; seeds 41 and 42 are linearizable now.)
func TestLeaderReadLease(t *testing.T) {
	n := openNode(t, testConfig(t, t.TempDir()))
	defer n.Close()
	s := n.Replica(0)
	waitFor(t, "shard 0 ready", 10*time.Second, s.Ready)
	read := func() error { return s.Read(func(*shard.Store) error { return nil }) }

	s.leaseUntil.Store(0)
	if err := read(); err != nil {
		t.Fatalf("read on the leader: %v", err)
	}
	until := time.Duration(s.leaseUntil.Load())
	if now := time.Since(leaseBase); until <= now || until > now+s.cfg.Raft.HeartbeatTimeout/2 {
		t.Fatalf("lease ends %v after now, want within (0, %v]", until-now, s.cfg.Raft.HeartbeatTimeout/2)
	}
	// A read within the lease does not renew it.
	if err := read(); err != nil || time.Duration(s.leaseUntil.Load()) != until {
		t.Fatalf("read within the lease: %v, lease moved %v", err, time.Duration(s.leaseUntil.Load())-until)
	}
	// While a transfer runs, reads are refused and the lease is gone.
	inTransfer := make(chan struct{})
	release := make(chan struct{})
	go s.transfer(func() raft.Future {
		close(inTransfer)
		<-release
		return s.raft.VerifyLeader() // stands in for the transfer's future
	})
	<-inTransfer
	if err := read(); !errors.Is(err, codes.ErrNotLeader) {
		t.Fatalf("read during a transfer: %v, want not leader", err)
	}
	if s.leaseUntil.Load() != 0 {
		t.Fatal("a transfer left the lease in place")
	}
	close(release)
	waitFor(t, "the transfer to end", 5*time.Second, func() bool { return s.transferring.Load() == 0 })
	if err := read(); err != nil {
		t.Fatalf("read after the transfer: %v", err)
	}
}
