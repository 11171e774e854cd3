package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/followgraph/followgraph/codes"
)

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
			if n.Replica(i).Lag().Records != 0 {
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
	if m := n.Meta(); m.Version != 2 || m.RaftLog != "shared" {
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
		if st := n.RaftLogStats(); st.Streams != cfg.Shards {
			t.Fatalf("raft log after restart: %+v", st)
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

// Metadata of another format (an unknown version, or a version 1 directory
// of the per-shard raft log layout builds before the shared log made) is
// refused with a message that names the version this build reads.
func TestMetaFormatChecked(t *testing.T) {
	for _, meta := range []string{
		`{"version": 3, "cluster_id": "x", "shards": 4, "node_id": "node1", "raft_log": "shared"}`,
		`{"version": 2, "cluster_id": "x", "shards": 4, "node_id": "node1"}`,
		`{"version": 1, "cluster_id": "x", "shards": 4, "node_id": "node1", "raft_log": "shared"}`,
		`{"version": 1, "cluster_id": "x", "shards": 4, "node_id": "node1"}`,
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
	cfg.Raft.SnapshotThreshold = 16
	cfg.Raft.TrailingLogs = 8
	cfg.Raft.SnapshotInterval = 50 * time.Millisecond
	cfg.Batch.MaxCommands = 1
	n := openNode(t, cfg)
	writeStars(t, n, 0, 200)
	const victim = 2
	// Wait until snapshots compacted the victim's log: its first entries
	// (the bootstrap configuration among them) are gone.
	waitFor(t, "a compacted log", 20*time.Second, func() bool { return n.Replica(victim).logs.Stats().FirstIndex > 1 })
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, shardDir(victim))); err != nil {
		t.Fatal(err)
	}
	n = openNode(t, cfg)
	defer n.Close()
	if st := n.Replica(victim).logs.Stats(); st.FirstIndex != 1 {
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
	cfg.Raft.SnapshotThreshold = 200
	cfg.Raft.TrailingLogs = 100
	cfg.Raft.SnapshotInterval = 50 * time.Millisecond
	cfg.Batch.MaxCommands = 1 // one entry per write, to make many entries
	cfg.RaftLog.SegmentSize = 256 << 10
	n := openNode(t, cfg)
	defer n.Close()
	s := n.Replica(0)
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
		return max(s.logs.Stats().FileBytes, n.RaftLogStats().FileBytes)
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
		if kept = last - first + 1; kept <= cfg.Raft.TrailingLogs+cfg.Raft.SnapshotThreshold+200 {
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
