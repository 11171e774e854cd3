package cluster

import (
	"context"
	"errors"
	"fmt"

	"testing"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/shard"
	"github.com/hashicorp/go-hclog"
)

func testConfig(t testing.TB, dir string) Config {
	cfg := DefaultConfig()
	cfg.DataDir = dir
	cfg.Shards = 4
	cfg.HeartbeatTimeout = 100 * time.Millisecond
	cfg.ElectionTimeout = 100 * time.Millisecond
	cfg.LeaderLeaseTimeout = 50 * time.Millisecond
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: testWriter{t}})
	return cfg
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
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

func TestNodeFollowAcrossShards(t *testing.T) {
	n := openNode(t, testConfig(t, t.TempDir()))
	defer n.Close()
	ctx := context.Background()
	targets := []string{"b", "c", "d", "e", "f", "g", "h", "i"}
	res, err := n.Follow(ctx, "a", targets, WriteOptions{Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Code != 0 || !r.Changed {
			t.Fatalf("%+v", r)
		}
	}
	// Sync: the reverse side is visible on return, whatever the shard.
	for _, u := range targets {
		if f := followers(t, n, u); len(f) != 1 || f[0].UserID != "a" || f[0].FollowTime != res[0].Time {
			t.Fatalf("followers of %s: %v", u, f)
		}
	}
	// Mutual across shards.
	if _, err := n.Follow(ctx, "b", []string{"a"}, WriteOptions{Sync: true}); err != nil {
		t.Fatal(err)
	}
	info, err := n.Info([]string{"a", "b", "zz"})
	if err != nil {
		t.Fatal(err)
	}
	if info[0].Following != 8 || info[0].Followers != 1 || info[0].Mutual != 1 || info[1].Mutual != 1 || info[2].Followers != 0 {
		t.Fatalf("info: %+v", info)
	}
	if _, err := n.Unfollow(ctx, "a", targets, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Without sync the reverse side follows shortly.
	waitFor(t, "reverse unfollow", 5*time.Second, func() bool {
		for _, u := range targets {
			if len(followers(t, n, u)) != 0 {
				return false
			}
		}
		return true
	})
	waitFor(t, "outbox drained", 5*time.Second, func() bool {
		for i := range n.Shards() {
			if n.Shard(i).Lag().Records != 0 {
				return false
			}
		}
		return true
	})
}

func TestNodeRequestErrors(t *testing.T) {
	n := openNode(t, testConfig(t, t.TempDir()))
	defer n.Close()
	ctx := context.Background()
	if _, err := n.Follow(ctx, "", []string{"x"}, WriteOptions{}); !errors.Is(err, codes.ErrInvalidParam) {
		t.Fatalf("invalid actor: %v", err)
	}
	if _, err := n.Follow(ctx, "a", make([]string, 21), WriteOptions{}); !errors.Is(err, codes.ErrInvalidParam) {
		t.Fatalf("21 targets: %v", err)
	}
	res, err := n.Follow(ctx, "a", []string{"a", "bad\x00"}, WriteOptions{})
	if err != nil || res[0].Code != codes.InvalidParam || res[1].Code != codes.InvalidParam {
		t.Fatalf("item errors: %+v %v", res, err)
	}
}

func TestShardCountIsFixed(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	n := openNode(t, cfg)
	n.Close()
	cfg.Shards = 8
	_, err := Open(context.Background(), cfg)
	if !errors.Is(err, ErrShardCount) {
		t.Fatalf("reopen with 8 shards: %v", err)
	}
	t.Log(err)
	cfg.Shards = 0 // take it from the data directory
	n = openNode(t, cfg)
	defer n.Close()
	if n.Shards() != 4 {
		t.Fatalf("%d shards", n.Shards())
	}
}

func TestRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	n := openNode(t, cfg)
	ctx := context.Background()
	for i := range 50 {
		if _, err := n.Follow(ctx, fmt.Sprintf("u%d", i), []string{"star", fmt.Sprintf("u%d", i+1)}, WriteOptions{Sync: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n = openNode(t, cfg)
	defer n.Close()
	if f := followers(t, n, "star"); len(f) != 50 {
		t.Fatalf("%d followers of star after restart", len(f))
	}
}

// Under sustained writes, snapshots compact the raft log: the number of
// entries kept stays near TrailingLogs + SnapshotThreshold, and the log
// file stops growing.
func TestLogStaysBounded(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Shards = 1
	cfg.SnapshotThreshold = 200
	cfg.TrailingLogs = 100
	cfg.SnapshotInterval = 50 * time.Millisecond
	cfg.MaxBatch = 1 // one entry per write, to make many entries
	cfg.WALSegmentSize = 256 << 10
	n := openNode(t, cfg)
	defer n.Close()
	s := n.Shard(0)
	ctx := context.Background()
	write := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := n.Follow(ctx, fmt.Sprintf("u%d", i%300), []string{fmt.Sprintf("v%d", i)}, WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			if i%3 == 0 {
				if _, err := n.Unfollow(ctx, fmt.Sprintf("u%d", i%300), []string{fmt.Sprintf("v%d", i)}, WriteOptions{}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	size := func() int64 {
		return s.logs.Stats().FileBytes
	}
	write(0, 2000)
	mid := size()
	write(2000, 6000)
	first, _ := s.logs.FirstIndex()
	last, _ := s.logs.LastIndex()
	if kept := last - first + 1; kept > cfg.TrailingLogs+cfg.SnapshotThreshold+200 {
		t.Fatalf("log keeps %d entries (first %d, last %d)", kept, first, last)
	}
	if end := size(); end > 2*mid {
		t.Fatalf("log files grew from %d to %d bytes", mid, end)
	}
}
