package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/fsm"
	"github.com/followgraph/followgraph/internal/testlog"
	"github.com/followgraph/followgraph/shard"
)

// Helpers of this package's tests, which drive a node directly (no router
// in front: package cluster_test has the tests that need one).

// testConfig is a 4-shard single node in dir with quick elections,
// logging into t's log.
func testConfig(t testing.TB, dir string) Config {
	cfg := quickConfig(dir)
	cfg.Logger = testlog.Logger(t, "", "warn")
	return cfg
}

// quickConfig is a 4-shard single node in dir with quick elections and the
// default logger.
func quickConfig(dir string) Config {
	cfg := DefaultConfig()
	cfg.DataDir = dir
	cfg.Shards = 4
	cfg.Raft.HeartbeatTimeout = 100 * time.Millisecond
	cfg.Raft.ElectionTimeout = 100 * time.Millisecond
	cfg.Raft.LeaderLeaseTimeout = 50 * time.Millisecond
	return cfg
}

func openNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// local returns the replica of user's shard, or the error naming where it
// is.
func (n *Node) local(user string) (*Replica, error) {
	i := n.ShardOf(user)
	if r := n.Replica(i); r != nil {
		return r, nil
	}
	return nil, n.NotLeaderError(i)
}

// Follow makes actor follow targets, on actor's shard (which must be
// local).
func (n *Node) Follow(ctx context.Context, actor string, targets []string, opt WriteOptions) ([]shard.Result, error) {
	r, err := n.local(actor)
	if err != nil {
		return nil, err
	}
	return r.Write(ctx, fsm.OpFollow, actor, targets, opt)
}

// Unfollow makes actor stop following targets, on actor's shard.
func (n *Node) Unfollow(ctx context.Context, actor string, targets []string, opt WriteOptions) ([]shard.Result, error) {
	r, err := n.local(actor)
	if err != nil {
		return nil, err
	}
	return r.Write(ctx, fsm.OpUnfollow, actor, targets, opt)
}

// Read runs fn on the Store of user's shard (see Replica.Read).
func (n *Node) Read(user string, fn func(*shard.Store) error) error {
	r, err := n.local(user)
	if err != nil {
		return err
	}
	return r.Read(fn)
}

// Info returns the counts of users, which may live on different shards.
func (n *Node) Info(users []string) ([]shard.Info, error) {
	out := make([]shard.Info, len(users))
	for i, u := range users {
		if !shard.ValidUserID(u) {
			out[i] = shard.Info{UserID: u, Code: codes.InvalidParam}
			continue
		}
		err := n.Read(u, func(s *shard.Store) error {
			r, err := s.Info([]string{u})
			if err == nil {
				out[i] = r[0]
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func followers(t testing.TB, n *Node, user string) []shard.Item {
	t.Helper()
	var items []shard.Item
	err := n.Read(user, func(s *shard.Store) error {
		var err error
		items, _, err = s.List(shard.Followers, user, "", 500)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return items
}
