package fsm

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// snapshotCost tracks what a new snapshot would save and what the last one
// cost, so that snapshots can be taken by cost rather than by entry count:
// the bytes of log applied since the last snapshot (what a restart would
// replay, and what the log holds on disk) against the size of the last
// snapshot (what writing a new one costs).
type snapshotCost struct {
	logBytes atomic.Int64 // command bytes applied, ever (apply goroutine)

	mu        sync.Mutex
	snapLog   int64 // logBytes covered by the newest snapshot
	snapBytes int64 // its size

	// Totals of every snapshot this FSM persisted.
	persists    atomic.Int64
	persistNs   atomic.Int64
	persistSize atomic.Int64
}

// persisted records a snapshot of size bytes covering the log up to
// atLog; an older snapshot finishing late changes nothing.
func (c *snapshotCost) persisted(atLog, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if atLog >= c.snapLog {
		c.snapLog, c.snapBytes = atLog, size
	}
}

func (c *snapshotCost) spent(d time.Duration, size int64) {
	c.persists.Add(1)
	c.persistNs.Add(int64(d))
	c.persistSize.Add(size)
}

// SnapshotCost is what SnapshotCost reports.
type SnapshotCost struct {
	// LogBytes is the size of the commands applied since the newest
	// snapshot (all of them if there is none).
	LogBytes int64
	// SnapshotBytes is the size of the newest snapshot this FSM wrote or
	// restored (0 if none).
	SnapshotBytes int64
	// Persists, PersistTime and PersistBytes add up every snapshot this
	// FSM has written.
	Persists     int64
	PersistTime  time.Duration
	PersistBytes int64
}

// SnapshotCost reports the log applied since the newest snapshot, that
// snapshot's size and the totals of snapshot writing. Safe to call from
// any goroutine.
func (f *FSM) SnapshotCost() SnapshotCost {
	c := &f.cost
	c.mu.Lock()
	snapLog, snapBytes := c.snapLog, c.snapBytes
	c.mu.Unlock()
	return SnapshotCost{
		LogBytes:      c.logBytes.Load() - snapLog,
		SnapshotBytes: snapBytes,
		Persists:      c.persists.Load(),
		PersistTime:   time.Duration(c.persistNs.Load()),
		PersistBytes:  c.persistSize.Load(),
	}
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
