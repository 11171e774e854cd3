package wal

import (
	"errors"

	"github.com/hashicorp/raft"
)

// relocateSlack is how much more garbage than live entries, in segments,
// the sealed segments may hold before a relocation starts.
const relocateSlack = 2

// maybeRelocate starts the relocation of a stream that pins the oldest
// segment when the sealed segments hold too much garbage (see the package
// documentation, Relocation). Run by the completer, which alone changes the
// streams' state, so it reads that state without their locks.
func (s *Log) maybeRelocate() {
	if s.noRelocate {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.relocating || s.closed || len(s.segs) < 3 {
		return
	}
	var used, live int64
	for _, seg := range s.segs[:len(s.segs)-1] {
		used += seg.tail
		live += seg.live
	}
	if used-live <= live+relocateSlack*s.cfg.SegmentSize {
		return
	}
	limit := 4 * s.cfg.SegmentSize
	var pick *Stream
	for _, st := range s.streams {
		if len(st.locs) > 0 && st.locs[0].seg == s.segs[0] && st.live <= limit && (pick == nil || st.live < pick.live) {
			pick = st
		}
	}
	if pick != nil {
		s.relocating = true
		s.relocCh <- pick // never blocks: one relocation at a time
	}
}

func (s *Log) relocator() {
	defer close(s.relocDone)
	for st := range s.relocCh {
		err := s.relocate(st, true)
		if err != nil && !errors.Is(err, ErrClosed) {
			s.logger.Warn("wal: relocation failed", "stream", st.id, "error", err)
		}
		s.mu.Lock()
		s.relocating = false
		s.mu.Unlock()
	}
}

// relocateChunk bounds the bytes of one relocation request, so that the
// group commits it joins (and the other streams' appends in them) are not
// held up by a large write.
const relocateChunk = 1 << 20

// relocate rewrites all live entries of st at the end of the log, as
// kindCopy records in requests of about relocateChunk bytes, the last one
// ending with the kindReplace. Holding wmu throughout, no other record of
// the stream comes between them, and until the kindReplace is durable the
// copies change nothing (see Stream.replay). With onlyIfOldest it does
// nothing unless st still pins the oldest segment.
func (s *Log) relocate(st *Stream, onlyIfOldest bool) error {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	if err := s.checkWritable(); err != nil {
		return err
	}
	// Holding wmu, the stream's state cannot change (see Stream).
	if st.first == 0 {
		return nil
	}
	if onlyIfOldest {
		s.mu.Lock()
		oldest := s.segs[0]
		s.mu.Unlock()
		if st.locs[0].seg != oldest {
			return nil
		}
	}
	first, last := st.first, st.last
	var buf []byte
	var recs []recInfo
	written := 0
	// send sends what is encoded if adding n bytes would make the request
	// larger than relocateChunk: a request is at most one chunk or one
	// record, which StoreLogs made fit a segment.
	send := func(n int64) error {
		if len(buf) == 0 || int64(len(buf))+n <= s.relocChunk {
			return nil
		}
		if err := st.send(buf, recs); err != nil {
			return err
		}
		written += len(buf)
		buf, recs = buf[:0], recs[:0]
		return nil
	}
	var e raft.Log
	for idx := first; idx <= last; idx++ {
		if err := st.GetLog(idx, &e); err != nil {
			return err
		}
		if err := send(entrySize(&e)); err != nil {
			return err
		}
		off := int64(len(buf))
		buf = appendEntry(buf, kindCopy, st.id, &e)
		recs = append(recs, recInfo{kind: kindCopy, stream: st.id, off: off, size: uint32(int64(len(buf)) - off), a: idx, b: e.Term})
	}
	if err := send(replaceSize); err != nil {
		return err
	}
	recs = append(recs, recInfo{kind: kindReplace, stream: st.id, off: int64(len(buf)), size: replaceSize, a: first, b: last})
	buf = appendMarker(buf, kindReplace, st.id, first, last)
	if err := st.send(buf, recs); err != nil {
		return err
	}
	written += len(buf)
	s.relocations.Add(1)
	s.relocatedBytes.Add(uint64(written))
	return nil
}
