package wal

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// Log is one write-ahead log holding the raft logs of many raft groups,
// one Stream each, so that the appends of all groups share writes and
// fdatasyncs (group commit). It is safe for concurrent use. The package
// documentation describes its files, its guarantees and how it works.
type Log struct {
	cfg    Config
	logger hclog.Logger
	dir    *os.File

	// mu guards the queue, the segment list, the segments' tails, the
	// flags and the streams map.
	mu         sync.Mutex
	cond       *sync.Cond // signals the writer: queue not empty, or closed
	pending    []*request
	next       *group // the group the pending requests will complete with
	closed     bool
	failed     error // sticky, see the package documentation, Raft specifics
	segs       []*segment
	streams    map[uint32]*Stream
	relocating bool

	// The writer's.
	cur     *segment // the active segment, the last of segs
	nextSeq uint64   // of the next segment
	last    *group   // the last group dispatched
	gbuf    []byte   // write buffer

	slots         chan struct{} // one per group in flight (Config.SyncDepth)
	inflight      chan *group   // from the writer to the completer, in order
	writerDone    chan struct{}
	completerDone chan struct{}
	relocCh       chan *Stream
	relocDone     chan struct{}
	noRelocate    bool                 // see options
	relocChunk    int64                // see relocateChunk
	syncHook      func(*segment) error // see options

	syncs          atomic.Uint64
	groups         atomic.Uint64
	requests       atomic.Uint64
	relocations    atomic.Uint64
	relocatedBytes atomic.Uint64
}

// LogStats describes a Log for metrics.
type LogStats struct {
	Segments  int   // segment files
	FileBytes int64 // their total (preallocated) size
	UsedBytes int64 // bytes holding records, live or not
	LiveBytes int64 // bytes of the live entries of all streams
	Streams   int   // streams holding entries

	// Counters since Open.
	Syncs          uint64 // fdatasyncs of segment data (not counting segment creation)
	Groups         uint64 // group commits
	Requests       uint64 // StoreLogs, DeleteRange and relocation writes committed
	Relocations    uint64
	RelocatedBytes uint64
}

// loc is where an entry's record is.
type loc struct {
	seg *segment
	off uint32
	n   uint32
}

// group is one group commit.
type group struct {
	reqs []*request
	seg  *segment // where the group ends: its fdatasync completes the group

	synced  chan struct{} // closed when the fdatasync returned (or failed to start)
	syncErr error

	done chan struct{} // closed when published, or failed
	err  error
}

// request is the records of one call, encoded, waiting for the writer.
type request struct {
	st   *Stream
	buf  []byte
	recs []recInfo // offsets relative to buf
	// Set by the writer when it places the request.
	seg  *segment
	base int64
}

// Open opens the log in dir, creating the directory if needed, and
// recovers every stream's state from the segment files.
func Open(dir string, cfg Config) (*Log, error) {
	return open(dir, cfg, options{})
}

// options are knobs for tests.
type options struct {
	noRelocate    bool                 // no background relocation: every write is one the test made
	relocateChunk int64                // 0 means relocateChunk
	syncHook      func(*segment) error // replaces the fdatasync of segment data
}

func open(dir string, cfg Config, opts options) (*Log, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := mkdir(dir, cfg.NoSync); err != nil {
		return nil, err
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	if err := unix.Flock(int(d.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		d.Close()
		return nil, fmt.Errorf("wal: lock %s (is it open elsewhere?): %w", dir, err)
	}
	s := &Log{
		cfg: cfg, logger: cfg.Logger, dir: d,
		nextSeq:       1,
		streams:       map[uint32]*Stream{},
		slots:         make(chan struct{}, cfg.SyncDepth),
		inflight:      make(chan *group, cfg.SyncDepth),
		writerDone:    make(chan struct{}),
		completerDone: make(chan struct{}),
		relocCh:       make(chan *Stream, 1),
		relocDone:     make(chan struct{}),
		noRelocate:    opts.noRelocate,
		relocChunk:    cmp.Or(opts.relocateChunk, relocateChunk),
		syncHook:      opts.syncHook,
	}
	s.cond = sync.NewCond(&s.mu)
	if err := s.recover(); err != nil {
		s.closeFiles()
		return nil, err
	}
	if n := len(s.segs); n > 0 {
		s.cur = s.segs[n-1]
	}
	go s.writer()
	go s.completer()
	go s.relocator()
	s.logger.Debug("wal: opened log", "dir", dir, "segments", len(s.segs), "streams", len(s.streams))
	return s, nil
}

// recover replays the segment files (see the package documentation,
// Recovery), then reclaims the segments nothing pins any more.
func (s *Log) recover() error {
	files, err := s.listSegments()
	if err != nil {
		return err
	}
	for i, fl := range files {
		if i > 0 && fl.seq != files[i-1].seq+1 {
			// Segments are removed oldest first and created one after the
			// other, so no crash leaves a hole before a torn segment.
			return fmt.Errorf("wal: segment %d missing before %s: refusing to guess the log", files[i-1].seq+1, fl.path)
		}
		seg, torn, err := s.recoverSegment(fl.seq, fl.path)
		if err != nil {
			return err
		}
		s.segs = append(s.segs, seg)
		s.nextSeq = fl.seq + 1
		if torn {
			if err := s.endAt(seg, files[i+1:]); err != nil {
				return err
			}
			break
		}
	}
	for id, st := range s.streams {
		st.copies = nil // copies torn before their kindReplace
		if st.first == 0 {
			delete(s.streams, id)
		}
	}
	return s.reclaim()
}

// segmentFile is a segment file found in the directory.
type segmentFile struct {
	seq  uint64
	path string
}

// listSegments returns the directory's segment files in sequence order.
func (s *Log) listSegments() ([]segmentFile, error) {
	entries, err := os.ReadDir(s.dir.Name())
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	var files []segmentFile
	for _, e := range entries {
		if seq, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			files = append(files, segmentFile{seq, filepath.Join(s.dir.Name(), e.Name())})
		}
	}
	slices.SortFunc(files, func(a, b segmentFile) int { return cmp.Compare(a.seq, b.seq) })
	return files, nil
}

// endAt ends the log after the last valid record of seg, a torn segment:
// it removes the later segments, which can only be empty or hold
// unacknowledged records (each part of a group is synced before the next
// segment is created), and only then zeroes the garbage in seg: the other
// order could let a crash leave a clean-looking segment in front of them.
func (s *Log) endAt(seg *segment, later []segmentFile) error {
	if len(later) > 0 {
		s.logger.Warn("wal: discarding segments after a torn one", "segment", seg.path, "discarded_files", len(later))
		for _, g := range later {
			if err := os.Remove(g.path); err != nil {
				return fmt.Errorf("wal: remove garbage segment: %w", err)
			}
		}
		if err := s.syncDir(); err != nil {
			return err
		}
	}
	end, err := lastNonZero(seg.f, seg.tail, seg.size)
	if err != nil {
		return fmt.Errorf("wal: read %s: %w", seg.path, err)
	}
	s.logger.Warn("wal: erasing bytes after the last valid record", "segment", seg.path, "from", seg.tail, "to", end)
	if err := writeZeros(seg.f, seg.tail, end); err != nil {
		return fmt.Errorf("wal: erase %s: %w", seg.path, err)
	}
	if err := s.datasync(seg); err != nil {
		return err
	}
	if seg.size >= seg.tail+endMarkerSize {
		return nil
	}
	// A file cut short right after its last record: give it back its end
	// marker, or the next recovery would take this segment for torn again
	// and drop the segments written after it.
	if err := seg.f.Truncate(seg.tail + endMarkerSize); err != nil {
		return fmt.Errorf("wal: extend %s: %w", seg.path, err)
	}
	seg.size = seg.tail + endMarkerSize
	if !s.cfg.NoSync {
		if err := seg.f.Sync(); err != nil {
			return fmt.Errorf("wal: sync %s: %w", seg.path, err)
		}
	}
	return nil
}

// recoverSegment opens and replays one segment. torn reports that it does
// not end cleanly: an invalid record, or non-zero bytes after the last
// valid one.
func (s *Log) recoverSegment(seq uint64, path string) (seg *segment, torn bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, false, fmt.Errorf("wal: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("wal: %w", err)
	}
	seg = &segment{seq: seq, path: path, f: f, size: st.Size()}
	tail, stop, clean, err := scanSegment(f, seg.size, func(r recInfo) {
		str := s.streams[r.stream]
		if str == nil {
			str = &Stream{log: s, id: r.stream}
			s.streams[r.stream] = str
		}
		str.replay(r, seg, r.off)
	})
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("wal: scan %s: %w", path, err)
	}
	seg.tail = tail
	if !clean {
		s.logger.Warn("wal: segment ends with an invalid record, probably a write interrupted by a crash", "segment", path, "reason", stop)
		return seg, true, nil
	}
	end, err := lastNonZero(f, tail, seg.size)
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("wal: read %s: %w", path, err)
	}
	if end != tail {
		s.logger.Warn("wal: non-zero bytes after the end marker, probably a write interrupted by a crash", "segment", path, "offset", tail)
		return seg, true, nil
	}
	return seg, false, nil
}

func (s *Log) datasync(seg *segment) error {
	if s.syncHook != nil {
		return s.syncHook(seg)
	}
	if s.cfg.NoSync {
		return nil
	}
	start := time.Now()
	if err := fdatasync(int(seg.f.Fd())); err != nil {
		return fmt.Errorf("wal: fdatasync %s: %w", seg.path, err)
	}
	if s.cfg.OnSync != nil {
		s.cfg.OnSync(time.Since(start))
	}
	s.syncs.Add(1)
	return nil
}

func (s *Log) syncDir() error {
	if s.cfg.NoSync {
		return nil
	}
	return syncDir(s.dir)
}

// fail records a write error that leaves the files in an unknown state: the
// log refuses further changes until it is reopened (see the package documentation, Raft specifics).
func (s *Log) fail(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed == nil {
		s.failed = err
		s.logger.Error("wal: write failed, refusing further changes until reopened", "error", err)
	}
	return err
}

func (s *Log) checkWritable() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return s.failed
}

// Stream returns the log of stream id, empty if it holds nothing yet.
// Every call with the same id returns the same Stream; it must have one
// user (one raft group) at a time.
func (s *Log) Stream(id uint32) (*Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	st := s.streams[id]
	if st == nil {
		st = &Stream{log: s, id: id}
		s.streams[id] = st
	}
	return st, nil
}

// Streams returns the ids of the streams that hold entries, in order: after
// a restart, those that were not empty. Entries of a stream nobody uses
// any more pin their segments until DeleteRange removes them.
func (s *Log) Streams() []uint32 {
	s.mu.Lock()
	all := make([]*Stream, 0, len(s.streams))
	for _, st := range s.streams {
		all = append(all, st)
	}
	s.mu.Unlock()
	var ids []uint32
	for _, st := range all {
		if f, _ := st.FirstIndex(); f != 0 {
			ids = append(ids, st.id)
		}
	}
	slices.Sort(ids)
	return ids
}

// submit queues r for the next group commit and waits for it.
func (s *Log) submit(r *request) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.failed != nil {
		err := s.failed
		s.mu.Unlock()
		return err
	}
	if s.next == nil {
		s.next = &group{done: make(chan struct{})}
	}
	g := s.next
	s.pending = append(s.pending, r)
	s.cond.Signal()
	s.mu.Unlock()
	<-g.done
	return g.err
}

// writer forms the groups, writes them and starts their fdatasyncs, with
// at most Config.SyncDepth in flight, until Close, after which it finishes
// the queue and exits.
func (s *Log) writer() {
	defer close(s.writerDone)
	defer close(s.inflight)
	for {
		// A slot first: while none is free, calls keep joining the group.
		s.slots <- struct{}{}
		s.mu.Lock()
		for len(s.pending) == 0 && !s.closed {
			s.cond.Wait()
		}
		if len(s.pending) == 0 {
			s.mu.Unlock()
			return
		}
		g, failed := s.next, s.failed
		g.reqs, g.synced = s.pending, make(chan struct{})
		s.pending, s.next = nil, nil
		s.mu.Unlock()

		if failed == nil {
			failed = s.write(g)
		}
		if failed != nil {
			g.syncErr = failed
			close(g.synced)
		} else {
			go func() {
				if err := s.datasync(g.seg); err != nil {
					g.syncErr = s.fail(err)
				}
				close(g.synced)
			}()
		}
		s.last = g
		s.inflight <- g
	}
}

// completer publishes the groups in order as their fdatasyncs complete.
// Being the only goroutine that changes the streams' state (and the
// segments' refs), it also reclaims segments and starts relocations.
func (s *Log) completer() {
	defer close(s.completerDone)
	for g := range s.inflight {
		<-g.synced
		err := g.syncErr
		if err == nil {
			// An earlier group failed: this one's bytes may be durable,
			// but nothing is certain after a failed fdatasync.
			s.mu.Lock()
			err = s.failed
			s.mu.Unlock()
		}
		if err == nil {
			for _, r := range g.reqs {
				r.st.apply(r)
			}
			// Before waking the callers, so that a DeleteRange that
			// returns has also released the space it could.
			if err := s.reclaim(); err != nil {
				s.fail(err)
			}
			s.maybeRelocate()
		}
		g.err = err
		close(g.done)
		<-s.slots
	}
}

// write places a group's requests, writes them and leaves the fdatasync of
// the last segment it wrote (g.seg) to the caller. If the group needs a new
// segment, the groups in flight are waited for, and the group's part in the
// old segment is written and synced, first (see the package documentation, Group commit).
func (s *Log) write(g *group) error {
	s.groups.Add(1)
	s.requests.Add(uint64(len(g.reqs)))
	cur := s.cur
	var start, pos int64
	if cur != nil {
		start, pos = cur.tail, cur.tail
	}
	buf := s.gbuf[:0]
	for _, r := range g.reqs {
		n := int64(len(r.buf))
		if cur == nil || pos+n+endMarkerSize > cur.size {
			if s.last != nil {
				<-s.last.done // groups complete in order: all of them
				s.mu.Lock()
				err := s.failed
				s.mu.Unlock()
				if err != nil {
					return err
				}
			}
			if pos > start {
				if err := s.writeAt(cur, buf, start, pos); err != nil {
					return err
				}
				if err := s.datasync(cur); err != nil {
					return s.fail(err)
				}
			}
			seg, err := s.createSegment(min(max(s.cfg.SegmentSize, n+endMarkerSize), maxSegmentSize))
			if err != nil {
				return s.fail(err)
			}
			cur, start, pos, buf = seg, 0, 0, buf[:0]
			s.cur = seg
		}
		r.seg, r.base = cur, pos
		buf = append(buf, r.buf...)
		pos += n
	}
	if err := s.writeAt(cur, buf, start, pos); err != nil {
		return err
	}
	g.seg = cur
	if cap(buf) <= 4<<20 { // don't keep a giant group's buffer forever
		s.gbuf = buf[:0]
	}
	return nil
}

// writeAt writes buf, the records of [start, end) of seg, and an end
// marker.
func (s *Log) writeAt(seg *segment, buf []byte, start, end int64) error {
	buf = append(buf, zeros[:endMarkerSize]...)
	if _, err := seg.f.WriteAt(buf, start); err != nil {
		return s.fail(fmt.Errorf("wal: write %s: %w", seg.path, err))
	}
	s.mu.Lock()
	seg.tail = end
	s.mu.Unlock()
	return nil
}

func (s *Log) createSegment(size int64) (*segment, error) {
	path := filepath.Join(s.dir.Name(), segmentName(s.nextSeq))
	f, err := createPreallocated(s.dir, path, size, s.cfg.NoSync)
	if err != nil {
		return nil, err
	}
	seg := &segment{seq: s.nextSeq, path: path, f: f, size: size}
	s.mu.Lock()
	s.segs = append(s.segs, seg)
	s.nextSeq++
	s.mu.Unlock()
	return seg, nil
}

// reclaim removes the oldest segments while they are sealed and hold no
// live entry, each removal durable before the next (see the package
// documentation, Segment reclamation). Run by the completer, or by recovery. The groups in flight
// have written only to the active segment, which is never removed (a group
// that needed a new segment waited for all earlier ones, and its own
// records count once it is published, before the next reclaim): so the
// segments considered hold only published records.
func (s *Log) reclaim() error {
	for {
		s.mu.Lock()
		if len(s.segs) < 2 || s.segs[0].refs > 0 {
			s.mu.Unlock()
			return nil
		}
		seg := s.segs[0]
		s.segs = s.segs[1:]
		s.mu.Unlock()
		// No reader can be using the file: readers hold their stream's
		// lock while they read an entry's location, and an entry leaves
		// the live set (refs) under the same lock.
		seg.f.Close()
		if err := os.Remove(seg.path); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("wal: remove %s: %w", seg.path, err)
		}
		if err := s.syncDir(); err != nil {
			return err
		}
		s.logger.Debug("wal: removed segment", "segment", seg.path)
	}
}

// Stats returns the log's size and counters for metrics.
func (s *Log) Stats() LogStats {
	s.mu.Lock()
	st := LogStats{Segments: len(s.segs)}
	for _, seg := range s.segs {
		st.FileBytes += seg.size
		st.UsedBytes += seg.tail
	}
	streams := make([]*Stream, 0, len(s.streams))
	for _, str := range s.streams {
		streams = append(streams, str)
	}
	s.mu.Unlock()
	for _, str := range streams {
		str.mu.RLock()
		st.LiveBytes += str.live
		if str.first != 0 {
			st.Streams++
		}
		str.mu.RUnlock()
	}
	st.Syncs = s.syncs.Load()
	st.Groups = s.groups.Load()
	st.Requests = s.requests.Load()
	st.Relocations = s.relocations.Load()
	st.RelocatedBytes = s.relocatedBytes.Load()
	return st
}

// Close finishes the queued writes, stops the background goroutines,
// closes the files and releases the directory lock. Every method of the
// log and its streams returns ErrClosed afterwards.
func (s *Log) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	<-s.writerDone
	<-s.completerDone
	close(s.relocCh)
	<-s.relocDone
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.streams {
		st.mu.Lock()
		st.closed = true
		st.mu.Unlock()
	}
	return s.closeFiles()
}

func (s *Log) closeFiles() error {
	var errs []error
	for _, seg := range s.segs {
		errs = append(errs, seg.f.Close())
	}
	s.segs = nil
	errs = append(errs, s.dir.Close())
	return errors.Join(errs...)
}
