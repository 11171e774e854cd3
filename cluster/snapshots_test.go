package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// writeMany sends n follows from 8 writers, actor i following two users.
func writeMany(t *testing.T, n *Node, tag string, count int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < count; i += 8 {
				actor := fmt.Sprintf("%s-%d", tag, i)
				if _, err := n.Follow(context.Background(), actor, []string{fmt.Sprintf("%s-%d", tag, i+1), fmt.Sprintf("%s-%d", tag, i*7%count)}, WriteOptions{}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Shards are snapshotted by cost: once the log applied since a shard's
// newest snapshot reaches SnapshotLogRatio times that snapshot (and
// SnapshotMinLogBytes), long before raft's own entry threshold, and the
// log left unsnapshotted stays under that limit. With both settings at 0
// only raft's threshold snapshots.
func TestSnapshotsByCost(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Raft.SnapshotMinLogBytes = 32 << 10
	cfg.Raft.SnapshotLogRatio = 1
	cfg.Raft.SnapshotThreshold = 1 << 20 // raft's own trigger never fires here
	cfg.Raft.TrailingLogs = 1 << 20
	n := openNode(t, cfg)
	defer n.Close()
	writeMany(t, n, "a", 6000)
	waitFor(t, "every shard snapshotted by cost, and its log since under the limit", 20*time.Second, func() bool {
		for _, r := range n.LocalReplicas() {
			c := r.FSM().SnapshotCost()
			limit := max(float64(cfg.Raft.SnapshotMinLogBytes), cfg.Raft.SnapshotLogRatio*float64(c.SnapshotBytes))
			if c.Persists == 0 || float64(c.LogBytes) >= limit {
				return false
			}
		}
		return true
	})
	for _, r := range n.LocalReplicas() {
		c := r.FSM().SnapshotCost()
		last := r.Raft().LastIndex()
		if snap := r.Raft().Stats()["last_snapshot_index"]; snap == "0" || last >= cfg.Raft.SnapshotThreshold {
			t.Fatalf("shard %d: last snapshot at %s of %d entries", r.Shard(), snap, last)
		}
		t.Logf("shard %d: %d snapshots, %d bytes written, newest %d bytes, %d log bytes since, %v spent", r.Shard(), c.Persists, c.PersistBytes, c.SnapshotBytes, c.LogBytes, c.PersistTime)
	}

	cfg = testConfig(t, t.TempDir())
	cfg.Raft.SnapshotMinLogBytes, cfg.Raft.SnapshotLogRatio = 0, 0
	cfg.Raft.SnapshotThreshold, cfg.Raft.TrailingLogs = 1<<20, 1<<20
	off := openNode(t, cfg)
	defer off.Close()
	writeMany(t, off, "b", 6000)
	time.Sleep(2 * snapshotCheck)
	for _, r := range off.LocalReplicas() {
		if c := r.FSM().SnapshotCost(); c.Persists != 0 {
			t.Fatalf("shard %d snapshotted with the cost trigger off: %+v", r.Shard(), c)
		}
	}
}

// A node that closes snapshots every shard with enough log since its
// newest snapshot, so that the next start replays (almost) nothing: only
// what the shards wrote after their snapshot (relay acknowledgements). With
// the setting at 0 the start replays the whole log.
func TestSnapshotOnClose(t *testing.T) {
	replayed := map[bool]int64{}
	for _, on := range []bool{false, true} {
		dir := t.TempDir()
		cfg := testConfig(t, dir)
		cfg.Raft.SnapshotMinLogBytes = 1 << 40 // the snapshotter never fires
		cfg.Raft.SnapshotOnCloseBytes = 0
		if on {
			cfg.Raft.SnapshotOnCloseBytes = 1
		}
		n := openNode(t, cfg)
		writeMany(t, n, "c", 2000)
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		n = openNode(t, cfg)
		for _, r := range n.LocalReplicas() {
			c := r.FSM().SnapshotCost()
			if on == (c.SnapshotBytes == 0) {
				t.Fatalf("shard %d, snapshot on close %v: snapshot of %d bytes", r.Shard(), on, c.SnapshotBytes)
			}
			replayed[on] += c.LogBytes
		}
		info, err := n.Info([]string{"c-1", "c-2"})
		if err != nil || info[0].Following != 2 || info[1].Followers == 0 {
			t.Fatalf("after restart: %+v, %v", info, err)
		}
		n.Close()
	}
	t.Logf("log replayed at start: %d bytes after a close with snapshots, %d without", replayed[true], replayed[false])
	if replayed[true]*20 > replayed[false] {
		t.Fatalf("a close with snapshots left %d bytes of log to replay, against %d without", replayed[true], replayed[false])
	}
}
