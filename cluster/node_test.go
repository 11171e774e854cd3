package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: newTestWriter(t)})
	return cfg
}

// testWriter sends logs to the test's log until the test's cleanups run:
// memberlist and raft goroutines may log a line after a node closed, and
// t.Log after the test completed panics.
type testWriter struct {
	t    testing.TB
	mu   *sync.Mutex
	done *bool
}

func newTestWriter(t testing.TB) testWriter {
	w := testWriter{t: t, mu: new(sync.Mutex), done: new(bool)}
	t.Cleanup(func() {
		w.mu.Lock()
		*w.done = true
		w.mu.Unlock()
	})
	return w
}

func (w testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !*w.done {
		w.t.Helper()
		w.t.Log(string(p))
	}
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

// writeStars makes users u<from>..u<to-1> follow star and their successor.
func writeStars(t *testing.T, n *Node, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if _, err := n.Follow(context.Background(), fmt.Sprintf("u%d", i), []string{"star", fmt.Sprintf("u%d", i+1)}, WriteOptions{Sync: true}); err != nil {
			t.Fatal(err)
		}
	}
}

// A new data directory keeps every shard's raft log in the node's shared
// log (wal/), and a restart recovers every shard from it, twice (the
// second time from a log appended to after the first recovery).
func TestRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	n := openNode(t, cfg)
	if m := n.Meta(); m.Version != 2 || m.RaftLog != RaftLogShared {
		t.Fatalf("new data directory: %+v", m)
	}
	writeStars(t, n, 0, 50)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, "wal", "*.swal")); len(segs) == 0 {
		t.Fatal("no shared log segments in wal/")
	}
	if own, _ := filepath.Glob(filepath.Join(dir, "shard-*", "wal")); len(own) != 0 {
		t.Fatalf("shards have their own logs: %v", own)
	}
	for users := 50; users < 70; users += 10 {
		n = openNode(t, cfg)
		if f := followers(t, n, "star"); len(f) != users {
			t.Fatalf("%d followers of star after restart, want %d", len(f), users)
		}
		st, ok := n.RaftLogStats()
		if !ok || st.Streams != cfg.Shards {
			t.Fatalf("shared log after restart: %+v %v", st, ok)
		}
		writeStars(t, n, users, users+10)
		if f := followers(t, n, "star"); len(f) != users+10 {
			t.Fatalf("%d followers of star, want %d", len(f), users+10)
		}
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A data directory of format version 1 (each shard with its own raft log
// in shard-NNN/wal, as builds before the shared log made them) keeps that
// layout: its shards open their own logs, across restarts, and no shared
// log appears.
func TestPerShardLayoutStillOpens(t *testing.T) {
	dir := t.TempDir()
	// What the previous build wrote for a new directory, before opening
	// the shards (which then created shard-NNN/wal).
	v1 := `{"version": 1, "cluster_id": "0123456789abcdef0123456789abcdef", "shards": 4, "node_id": "node1", "created": "2025-01-01T00:00:00Z"}`
	if err := os.WriteFile(filepath.Join(dir, metaFile), []byte(v1), 0o640); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, dir)
	n := openNode(t, cfg)
	if m := n.Meta(); m.Version != 1 || m.RaftLog != RaftLogPerShard {
		t.Fatalf("version 1 directory: %+v", m)
	}
	if _, ok := n.RaftLogStats(); ok {
		t.Fatal("a version 1 directory has a shared log")
	}
	writeStars(t, n, 0, 40)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n = openNode(t, cfg)
	defer n.Close()
	if f := followers(t, n, "star"); len(f) != 40 {
		t.Fatalf("%d followers of star after restart", len(f))
	}
	for i := range 4 {
		if st := n.Shard(i).LogStats(); st.LastIndex == 0 || st.Segments == 0 {
			t.Fatalf("shard %d log: %+v", i, st)
		}
		if _, err := os.Stat(filepath.Join(dir, shardDir(i), "wal")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, sharedLogDir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a shared log directory appeared: %v", err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, metaFile))
	if string(b) != v1 {
		t.Fatalf("metadata rewritten: %s", b)
	}
}

// Metadata of an unknown format, or whose version and raft log layout
// disagree, is refused with a message that names the versions.
func TestMetaFormatChecked(t *testing.T) {
	for _, meta := range []string{
		`{"version": 3, "cluster_id": "x", "shards": 4, "node_id": "node1", "raft_log": "shared"}`,
		`{"version": 2, "cluster_id": "x", "shards": 4, "node_id": "node1"}`,
		`{"version": 1, "cluster_id": "x", "shards": 4, "node_id": "node1", "raft_log": "shared"}`,
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, metaFile), []byte(meta), 0o640); err != nil {
			t.Fatal(err)
		}
		_, err := Open(context.Background(), testConfig(t, dir))
		if err == nil || !strings.Contains(err.Error(), "unsupported format version") {
			t.Fatalf("%s: %v", meta, err)
		}
		t.Log(err)
	}
}

// A shard directory removed by hand (or by a crash between the two steps
// of dropping a replica) leaves the shard's entries in the shared log;
// the node deletes them when it opens, and the shard starts afresh rather
// than from a log with no snapshot and no term under it.
func TestStaleStreamDropped(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.SnapshotThreshold = 16
	cfg.TrailingLogs = 8
	cfg.SnapshotInterval = 50 * time.Millisecond
	cfg.MaxBatch = 1
	n := openNode(t, cfg)
	writeStars(t, n, 0, 200)
	const victim = 2
	// Wait until snapshots compacted the victim's log: its first entries
	// (the bootstrap configuration among them) are gone.
	waitFor(t, "a compacted log", 20*time.Second, func() bool { return n.Shard(victim).LogStats().FirstIndex > 1 })
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, shardDir(victim))); err != nil {
		t.Fatal(err)
	}
	n = openNode(t, cfg)
	defer n.Close()
	if st := n.Shard(victim).LogStats(); st.FirstIndex != 1 {
		t.Fatalf("shard %d restarted with log %+v, not a new one", victim, st)
	}
	// The other shards kept their data, and the victim takes writes.
	var onVictim []string
	for i := range 200 {
		if u := fmt.Sprintf("u%d", i); n.ShardOf(u) == victim {
			onVictim = append(onVictim, u)
		}
	}
	for i := range 200 {
		u := fmt.Sprintf("u%d", i)
		info, err := n.Info([]string{u})
		if err != nil {
			t.Fatal(err)
		}
		want := uint32(2)
		if n.ShardOf(u) == victim {
			want = 0
		}
		if info[0].Following != want {
			t.Fatalf("%s (shard %d) follows %d users, want %d", u, n.ShardOf(u), info[0].Following, want)
		}
	}
	if _, err := n.Follow(context.Background(), onVictim[0], []string{"x"}, WriteOptions{Sync: true}); err != nil {
		t.Fatal(err)
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
	// The shard's stream, and the shared log's files: all of them, as
	// this node has one shard.
	size := func() int64 {
		st, _ := n.RaftLogStats()
		return max(s.logs.Stats().FileBytes, st.FileBytes)
	}
	write(0, 2000)
	mid := size()
	write(2000, 6000)
	// raft checks for a snapshot every 1 to 2 SnapshotIntervals and then
	// takes it, while writes continue: on a loaded machine, and under
	// -race, a thousand entries or more can arrive meanwhile. Once the
	// writes stop, the next snapshot compacts the log to the bound.
	var kept, first, last uint64
	deadline := time.Now().Add(10 * time.Second)
	for {
		first, _ = s.logs.FirstIndex()
		last, _ = s.logs.LastIndex()
		if kept = last - first + 1; kept <= cfg.TrailingLogs+cfg.SnapshotThreshold+200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log keeps %d entries (first %d, last %d)", kept, first, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if end := size(); end > 2*mid {
		t.Fatalf("log files grew from %d to %d bytes", mid, end)
	}
}
