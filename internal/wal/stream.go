package wal

import (
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
)

// Stream is one raft log in a Log: a raft.LogStore and
// raft.MonotonicLogStore, safe for concurrent use.
//
// Two locks: wmu serializes the stream's changes (StoreLogs,
// DeleteRange, relocation) including the wait for their group commit; mu
// guards the state that readers use. Only the completer (and recovery)
// changes that state, under mu, when it publishes a request; and a
// stream's requests are those of the holder of wmu. So the holder of wmu
// may read the state without mu, and the completer too.
type Stream struct {
	log *Log
	id  uint32

	wmu  sync.Mutex
	wbuf []byte    // reused encode buffer (wmu)
	recs []recInfo // reused record list (wmu)
	req  request   // reused request (wmu)

	mu        sync.RWMutex
	closed    bool
	first     uint64 // 0 iff empty, and then last is 0 too
	last      uint64
	locs      []loc  // locs[i] is entry first+i
	lastTerm  uint64 // term of last, unless termStale
	termStale bool   // a suffix deletion left the new last entry's term unread
	live      int64  // bytes of the live entries

	copies []copyRec // kindCopy records replayed but not yet replaced
}

type copyRec struct {
	idx, term uint64
	l         loc
}

var (
	_ raft.LogStore          = (*Stream)(nil)
	_ raft.MonotonicLogStore = (*Stream)(nil)
)

// ID returns the stream's id.
func (st *Stream) ID() uint32 { return st.id }

// IsMonotonic implements raft.MonotonicLogStore: raft deletes the whole
// stream after installing a snapshot instead of leaving a gap.
func (st *Stream) IsMonotonic() bool { return true }

// FirstIndex implements raft.LogStore: the first index, 0 if the stream is
// empty.
func (st *Stream) FirstIndex() (uint64, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.closed {
		return 0, ErrClosed
	}
	return st.first, nil
}

// LastIndex implements raft.LogStore: the last index, 0 if the stream is
// empty.
func (st *Stream) LastIndex() (uint64, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.closed {
		return 0, ErrClosed
	}
	return st.last, nil
}

// GetLog implements raft.LogStore: raft.ErrLogNotFound for an index
// outside [FirstIndex, LastIndex]. The returned Data and Extensions are
// freshly allocated.
func (st *Stream) GetLog(idx uint64, out *raft.Log) error {
	st.mu.RLock()
	if st.closed {
		st.mu.RUnlock()
		return ErrClosed
	}
	if st.first == 0 || idx < st.first || idx > st.last {
		st.mu.RUnlock()
		return raft.ErrLogNotFound
	}
	l := st.locs[idx-st.first]
	buf := make([]byte, l.n)
	_, err := l.seg.f.ReadAt(buf, int64(l.off))
	st.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("wal: read stream %d index %d from %s: %w", st.id, idx, l.seg.path, err)
	}
	if err := decodeEntry(buf, st.id, idx, out); err != nil {
		return fmt.Errorf("wal: stream %d index %d in %s at offset %d: %w", st.id, idx, l.seg.path, l.off, err)
	}
	return nil
}

// termOf returns the term of entry idx, which the stream holds. The caller
// holds wmu.
func (st *Stream) termOf(idx uint64) (uint64, error) {
	var e raft.Log
	if err := st.GetLog(idx, &e); err != nil {
		return 0, err
	}
	return e.Term, nil
}

// StoreLog implements raft.LogStore.
func (st *Stream) StoreLog(e *raft.Log) error {
	return st.StoreLogs([]*raft.Log{e})
}

// StoreLogs implements raft.LogStore as raft expects it: consecutive indexes and non-decreasing terms; a batch starting at or
// below LastIndex first deletes the entries from its first index on, one
// leaving a gap first deletes everything. When it returns nil, the entries
// (and the implied deletion) are durable. The records go out in the next
// group commit.
func (st *Stream) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	start := logs[0].Index
	if start == 0 {
		return errors.New("wal: index 0 is not a valid raft index")
	}
	var total int64
	for i, e := range logs {
		if e.Index != start+uint64(i) {
			return fmt.Errorf("wal: StoreLogs indexes not consecutive: %d at position %d after %d", e.Index, i, start)
		}
		if i > 0 && e.Term < logs[i-1].Term {
			return fmt.Errorf("wal: StoreLogs term decreases from %d to %d at index %d", logs[i-1].Term, e.Term, e.Index)
		}
		total += entrySize(e)
	}
	// A request is never split across segments (see Log).
	if total+endMarkerSize > maxSegmentSize {
		return fmt.Errorf("wal: StoreLogs batch of %d bytes is too large", total)
	}

	st.wmu.Lock()
	defer st.wmu.Unlock()
	if err := st.log.checkWritable(); err != nil {
		return err
	}
	switch {
	case st.first == 0 || start == st.last+1:
		lastTerm := st.lastTerm
		if st.termStale {
			t, err := st.termOf(st.last)
			if err != nil {
				return err
			}
			lastTerm = t
		}
		if logs[0].Term < lastTerm {
			return fmt.Errorf("wal: StoreLogs term %d at index %d is below the last term %d", logs[0].Term, start, lastTerm)
		}
	case start <= st.first:
		// Replaces the whole stream.
	case start <= st.last:
		prev, err := st.termOf(start - 1)
		if err != nil {
			return err
		}
		if logs[0].Term < prev {
			return fmt.Errorf("wal: StoreLogs term %d at index %d is below the previous term %d", logs[0].Term, start, prev)
		}
		st.log.logger.Info("wal: StoreLogs overwrites the log suffix", "stream", st.id, "from", start, "last", st.last)
	default:
		st.log.logger.Warn("wal: StoreLogs leaves a gap, dropping the whole log", "stream", st.id, "first", st.first, "last", st.last, "new", start)
	}

	buf, recs := st.wbuf[:0], st.recs[:0]
	for _, e := range logs {
		off := int64(len(buf))
		buf = appendEntry(buf, kindEntry, st.id, e)
		recs = append(recs, recInfo{kind: kindEntry, stream: st.id, off: off, size: uint32(int64(len(buf)) - off), a: e.Index, b: e.Term})
	}
	err := st.send(buf, recs)
	if cap(buf) <= 4<<20 { // don't keep a giant batch's buffer forever
		st.wbuf, st.recs = buf, recs
	}
	return err
}

// send submits the stream's encoded records and waits for their group
// commit. The caller holds wmu.
func (st *Stream) send(buf []byte, recs []recInfo) error {
	st.req = request{st: st, buf: buf, recs: recs}
	err := st.log.submit(&st.req)
	st.req = request{}
	return err
}

// DeleteRange implements raft.LogStore: it deletes a prefix, a suffix or
// everything; a range that misses
// the stream deletes nothing, and one that would leave a hole is refused.
// The deletion is a marker record, durable when DeleteRange returns nil.
func (st *Stream) DeleteRange(min, max uint64) error {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	if err := st.log.checkWritable(); err != nil {
		return err
	}
	var kind byte
	var val uint64
	switch {
	case st.first == 0 || min > max || max < st.first || min > st.last:
		return nil
	case min <= st.first && max >= st.last:
		kind, val = kindTruncate, 0
	case min <= st.first:
		kind, val = kindCompact, max+1
	case max >= st.last:
		kind, val = kindTruncate, min-1
	default:
		return fmt.Errorf("wal: DeleteRange(%d, %d) would leave a hole in the log [%d, %d]", min, max, st.first, st.last)
	}
	buf := appendMarker(st.wbuf[:0], kind, st.id, val)
	recs := append(st.recs[:0], recInfo{kind: kind, stream: st.id, size: uint32(len(buf)), a: val})
	st.wbuf, st.recs = buf, recs
	return st.send(buf, recs)
}

// apply publishes a committed request: the completer calls it, once the
// request is durable, before waking the caller.
func (st *Stream) apply(r *request) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, rec := range r.recs {
		st.replay(rec, r.seg, r.base+rec.off)
	}
}

// replay applies one record, located at off in seg, to the stream's state.
// It is how records take effect both when they are committed and when the
// log is recovered, so both agree by construction:
//
//   - kindEntry(idx): appended if it continues the stream (or the stream is
//     empty). If idx is in (first, last], the entries from idx on are
//     deleted first; if idx is at or below first or leaves a gap, all of
//     them. That is what StoreLogs promises, so it needs no marker.
//   - kindTruncate(n): the entries after n are deleted.
//   - kindCompact(n): the entries before n are deleted.
//   - kindCopy(idx): held aside (a consecutive run, restarted by a copy
//     that does not continue it, dropped by any other record of the
//     stream).
//   - kindReplace(first, last): if the copies held aside end at last, those
//     from first on become the whole stream, at their new locations. They
//     all are there, except after reclamation removed a segment holding
//     the first ones of a relocation written in several requests: those
//     copies were dead then (else they would have pinned their segment),
//     so the copies left are exactly the live ones.
//
// A stream whose entries are all deleted is empty (first = last = 0).
func (st *Stream) replay(r recInfo, seg *segment, off int64) {
	if r.kind != kindCopy && r.kind != kindReplace {
		st.copies = nil
	}
	switch r.kind {
	case kindEntry:
		st.addEntry(r.a, r.b, loc{seg: seg, off: uint32(off), n: r.size})
	case kindTruncate:
		switch {
		case st.first == 0 || r.a >= st.last:
		case r.a < st.first:
			st.dropFrom(0)
		default:
			st.dropFrom(int(r.a + 1 - st.first))
		}
	case kindCompact:
		switch {
		case st.first == 0 || r.a <= st.first:
		case r.a > st.last:
			st.dropFrom(0)
		default:
			st.dropTo(int(r.a - st.first))
		}
	case kindCopy:
		if n := len(st.copies); n > 0 && st.copies[n-1].idx+1 != r.a {
			st.copies = st.copies[:0]
		}
		st.copies = append(st.copies, copyRec{idx: r.a, term: r.b, l: loc{seg: seg, off: uint32(off), n: r.size}})
	case kindReplace:
		c := st.copies
		st.copies = nil
		if len(c) == 0 || c[len(c)-1].idx != r.b {
			st.log.logger.Warn("wal: replace marker without its copies, ignored", "stream", st.id, "first", r.a, "last", r.b)
			return
		}
		if c[0].idx < r.a {
			c = c[r.a-c[0].idx:]
		}
		st.dropFrom(0)
		for _, cp := range c {
			st.addEntry(cp.idx, cp.term, cp.l)
		}
	}
}

// addEntry applies an entry record (see replay).
func (st *Stream) addEntry(idx, term uint64, l loc) {
	switch {
	case st.first == 0 || idx == st.last+1:
	case idx <= st.first || idx > st.last+1:
		st.dropFrom(0)
	default:
		st.dropFrom(int(idx - st.first))
	}
	if st.first == 0 {
		st.first = idx
	}
	st.locs = append(st.locs, l)
	st.last, st.lastTerm, st.termStale = idx, term, false
	st.live += int64(l.n)
	l.seg.refs++
	l.seg.live += int64(l.n)
}

func unpin(ls []loc) (bytes int64) {
	for _, l := range ls {
		l.seg.refs--
		l.seg.live -= int64(l.n)
		bytes += int64(l.n)
	}
	return bytes
}

// dropFrom deletes the entries from position i on.
func (st *Stream) dropFrom(i int) {
	st.live -= unpin(st.locs[i:])
	clear(st.locs[i:])
	if i == 0 {
		st.locs = nil
		st.first, st.last, st.lastTerm, st.termStale = 0, 0, 0, false
		return
	}
	st.locs = st.locs[:i]
	st.last = st.first + uint64(i) - 1
	st.termStale = true
}

// dropTo deletes the entries before position i, 0 < i < len(locs).
func (st *Stream) dropTo(i int) {
	st.live -= unpin(st.locs[:i])
	clear(st.locs[:i])
	st.locs = st.locs[i:]
	st.first += uint64(i)
}

// StreamStats describes a Stream for metrics.
type StreamStats struct {
	Segments   int    // segment files holding live entries of the stream
	FileBytes  int64  // their total size
	UsedBytes  int64  // bytes of the stream's live entries
	FirstIndex uint64 // 0 if the stream is empty
	LastIndex  uint64 // 0 if the stream is empty
}

// Stats describes the stream: its bounds, the bytes of its live entries
// (UsedBytes), and the segments that hold them (which it pins) and their
// size.
func (st *Stream) Stats() StreamStats {
	st.mu.RLock()
	defer st.mu.RUnlock()
	s := StreamStats{FirstIndex: st.first, LastIndex: st.last, UsedBytes: st.live}
	var prev *segment
	for _, l := range st.locs {
		// Locations grow with the index (see Log), so each segment
		// appears in one run.
		if l.seg != prev {
			prev = l.seg
			s.Segments++
			s.FileBytes += l.seg.size
		}
	}
	return s
}
