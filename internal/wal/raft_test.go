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

// applyRange applies the values from through to on r, in order, and
// waits for all of them.
func applyRange(r *raft.Raft, from, to uint64) error {
	futures := make([]raft.ApplyFuture, 0, to-from+1)
	for v := from; v <= to; v++ {
		futures = append(futures, r.Apply(binary.BigEndian.AppendUint64(nil, v), 10*time.Second))
	}
	for i, f := range futures {
		if err := f.Error(); err != nil {
			return fmt.Errorf("Apply(%d): %w", from+uint64(i), err)
		}
	}
	return nil
}
