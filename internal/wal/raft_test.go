package wal

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// seqFSM applies commands that carry the sequence numbers 1, 2, 3, ... and
// records an error if one arrives out of order. Its state (count and a hash
// of the sequence) survives snapshots.
type seqFSM struct {
	mu       sync.Mutex
	n        uint64
	hash     uint64
	applied  int // Apply calls since creation, to tell replay from restore
	restores int
	err      error
}

func seqHash(h, v uint64) uint64 { return h*1_000_003 + v }

func (f *seqFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied++
	v := binary.BigEndian.Uint64(l.Data)
	if v != f.n+1 && f.err == nil {
		f.err = fmt.Errorf("applied %d after %d (index %d)", v, f.n, l.Index)
	}
	f.n, f.hash = v, seqHash(f.hash, v)
	return nil
}

func (f *seqFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return seqSnapshot{f.n, f.hash}, nil
}

func (f *seqFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var b [16]byte
	if _, err := io.ReadFull(rc, b[:]); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restores++
	f.n, f.hash = binary.BigEndian.Uint64(b[0:]), binary.BigEndian.Uint64(b[8:])
	return nil
}

func (f *seqFSM) state() (n, hash uint64, applied, restores int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n, f.hash, f.applied, f.restores, f.err
}

type seqSnapshot struct{ n, hash uint64 }

func (s seqSnapshot) Persist(sink raft.SnapshotSink) error {
	var b [16]byte
	binary.BigEndian.PutUint64(b[0:], s.n)
	binary.BigEndian.PutUint64(b[8:], s.hash)
	if _, err := sink.Write(b[:]); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (seqSnapshot) Release() {}

func raftConfig() *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = "n1"
	c.HeartbeatTimeout = 50 * time.Millisecond
	c.ElectionTimeout = 50 * time.Millisecond
	c.LeaderLeaseTimeout = 50 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.SnapshotThreshold = 50
	c.SnapshotInterval = 20 * time.Millisecond
	c.TrailingLogs = 20
	c.Logger = hclog.NewNullLogger()
	return c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func applySeq(t *testing.T, r *raft.Raft, from, to uint64) {
	t.Helper()
	futures := make([]raft.ApplyFuture, 0, to-from+1)
	for v := from; v <= to; v++ {
		futures = append(futures, r.Apply(binary.BigEndian.AppendUint64(nil, v), 10*time.Second))
	}
	for i, f := range futures {
		if err := f.Error(); err != nil {
			t.Fatalf("Apply(%d): %v", from+uint64(i), err)
		}
	}
}

// TestUnderRaft runs a single-node raft on the Log, with frequent snapshots
// and log compaction, restarts it on the same stores and checks that the FSM
// is rebuilt from snapshot plus log replay to the same state.
func TestUnderRaft(t *testing.T) {
	dir := t.TempDir()
	stable := raft.NewInmemStore()
	snaps := raft.NewInmemSnapshotStore()
	const n, tail = 2000, 30
	var wantHash uint64
	for v := uint64(1); v <= n+tail; v++ {
		wantHash = seqHash(wantHash, v)
	}

	start := func(logs *Log, fsm *seqFSM, bootstrap bool) *raft.Raft {
		t.Helper()
		conf := raftConfig()
		addr, trans := raft.NewInmemTransport("n1")
		if bootstrap {
			cfg := raft.Configuration{Servers: []raft.Server{{ID: conf.LocalID, Address: addr}}}
			if err := raft.BootstrapCluster(conf, logs, stable, snaps, trans, cfg); err != nil {
				t.Fatal(err)
			}
		}
		r, err := raft.NewRaft(conf, fsm, logs, stable, snaps, trans)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "leadership", func() bool { return r.State() == raft.Leader })
		return r
	}

	logs := openLog(t, dir, Config{SegmentSize: testSegmentSize})
	fsm := &seqFSM{}
	r := start(logs, fsm, true)
	applySeq(t, r, 1, n)
	if err := r.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	applySeq(t, r, n+1, n+tail) // below SnapshotThreshold: these are replayed from the log
	got, hash, _, _, err := fsm.state()
	if err != nil || got != n+tail || hash != wantHash {
		t.Fatalf("before restart: n=%d hash=%d err=%v; want n=%d hash=%d", got, hash, err, n+tail, wantHash)
	}
	first, last := bounds(t, logs)
	t.Logf("before restart: log [%d, %d], %+v", first, last, logs.Stats())
	if first <= 1 || last < n+tail {
		t.Fatalf("log [%d, %d]: expected compaction and at least %d entries", first, last, n+tail)
	}
	if err := r.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	if err := logs.Close(); err != nil {
		t.Fatal(err)
	}

	logs = openLog(t, dir, Config{SegmentSize: testSegmentSize})
	defer logs.Close()
	if f, l := bounds(t, logs); f != first || l != last {
		t.Fatalf("after reopen: log [%d, %d], was [%d, %d]", f, l, first, last)
	}
	fsm = &seqFSM{}
	r = start(logs, fsm, false)
	defer func() {
		if err := r.Shutdown().Error(); err != nil {
			t.Error(err)
		}
	}()
	waitFor(t, "replay", func() bool { got, _, _, _, _ := fsm.state(); return got >= n+tail })
	got, hash, applied, restores, err := fsm.state()
	if err != nil || got != n+tail || hash != wantHash || restores != 1 || applied < tail {
		t.Fatalf("after restart: n=%d hash=%d applied=%d restores=%d err=%v; want n=%d hash=%d, 1 restore, >= %d replayed",
			got, hash, applied, restores, err, n+tail, wantHash, tail)
	}
	applySeq(t, r, n+tail+1, n+tail+100)
	if got, _, _, _, err := fsm.state(); err != nil || got != n+tail+100 {
		t.Fatalf("after more applies: n=%d err=%v", got, err)
	}
}
