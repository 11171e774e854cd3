package fsm

import (
	"bytes"
	"io"
	"testing"

	"github.com/hashicorp/raft"
)

// memSink is a raft.SnapshotSink into memory.
type memSink struct{ bytes.Buffer }

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { return nil }
func (s *memSink) Close() error  { return nil }

// SnapshotCost counts the command bytes applied since the newest snapshot
// (entries applied while a snapshot is persisted stay counted), that
// snapshot's size, and the totals of snapshot writing; a restored
// snapshot starts the count again.
func TestSnapshotCost(t *testing.T) {
	f := newFSM(t, 0, 3)
	logs := randomLog(5, 400)
	var applied int64
	apply := func(ls []*raft.Log) {
		for _, l := range ls {
			f.Apply(l)
			applied += int64(len(l.Data))
		}
	}
	apply(logs[:200])
	if c := f.SnapshotCost(); c.LogBytes != applied || c.SnapshotBytes != 0 || c.Persists != 0 {
		t.Fatalf("before any snapshot: %+v, applied %d", c, applied)
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	atCapture := applied
	apply(logs[200:300]) // while the snapshot is being written
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	c := f.SnapshotCost()
	if c.LogBytes != applied-atCapture || c.SnapshotBytes != int64(sink.Len()) {
		t.Fatalf("after a snapshot of %d bytes covering %d of %d: %+v", sink.Len(), atCapture, applied, c)
	}
	if c.Persists != 1 || c.PersistBytes != int64(sink.Len()) || c.PersistTime <= 0 {
		t.Fatalf("totals: %+v", c)
	}

	g := newFSM(t, 0, 3)
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if c := g.SnapshotCost(); c.LogBytes != 0 || c.SnapshotBytes != int64(sink.Len()) || c.Persists != 0 {
		t.Fatalf("after restore: %+v", c)
	}
	var more int64
	for _, l := range logs[300:] {
		g.Apply(l)
		more += int64(len(l.Data))
	}
	if c := g.SnapshotCost(); c.LogBytes != more {
		t.Fatalf("after restore and %d bytes more: %+v", more, c)
	}
}
