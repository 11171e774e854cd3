package wal

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"golang.org/x/sys/unix"
)

// Shared is one write-ahead log shared by many raft logs, its streams: a
// node that runs many raft groups keeps all their logs in one Shared, so
// that the appends of all groups share fdatasyncs (group commit). Each
// stream, got from Stream, is a raft.LogStore with exactly the semantics of
// Log (see there, and the package documentation for the raft specifics).
//
// # Group commit
//
// StoreLogs and DeleteRange encode their records in the caller's goroutine,
// queue them and wait. A writer goroutine takes everything queued (a
// group), writes it with one pwrite at the end of the active segment and
// starts its fdatasync; a completer goroutine waits for the fdatasyncs in
// order, publishes each group to the streams and wakes its callers. So a
// lone call costs one pwrite and one fdatasync, as with Log, and N raft
// groups appending at once share one.
//
// Up to Config.SyncDepth groups are in flight: while that many fdatasyncs
// run, new calls queue up and form the next group. Disks, virtual ones
// especially, complete concurrent fdatasyncs of one file in about the time
// of one (measured on the project VM: 850/s one at a time, 3000/s four at a
// time), so a few in flight cut the latency at moderate load, and groups
// still grow with the load once all are busy. A group is published, and
// its callers told, only after every earlier group was: a group's
// fdatasync makes the earlier groups' bytes durable too (they were written
// before it was called), and after a failed one, the later groups fail as
// well (see Log.failed). SyncDepth 1 makes it strictly one group at a time.
//
// A group that does not fit in the rest of the active segment continues in
// a new segment. Before the new segment is created, the groups in flight
// are waited for and the group's part in the old segment is written and
// synced, so that a later segment never holds data while an earlier one
// has a torn write (recovery relies on it).
//
// At most one call per stream is in flight (a per-stream mutex, held while
// waiting), so a group holds at most one request per stream, and a crash
// can tear a stream's request only at its end.
//
// # Files
//
// One directory, locked by flock against a second opener. Segment files are
// named NNNNNNNNNNNNNNNNNNNN.swal, a zero-padded sequence number starting at
// 1, and are preallocated and zero-filled as Log's are (see preallocate).
// A request (the records of one call) is never split across segments; a
// segment is made larger than Config.SegmentSize if one request needs it.
// Every write ends with an end marker. The records are described in
// shared_record.go: every record carries its stream; besides entries there
// are logical deletion markers, because the bytes of a stream cannot be
// erased when other streams' records are interleaved with them:
//
//   - DeleteRange writes kindTruncate(newLast) or kindCompact(newFirst)
//     (a full deletion is kindTruncate(0)), durably before it returns;
//   - StoreLogs writes only entry records. An entry that does not continue
//     its stream implies the deletion that Log.StoreLogs performs (see
//     Stream.replay), so no marker is needed for it;
//   - relocation (below) writes kindCopy records and a kindReplace marker.
//
// # Recovery
//
// OpenShared replays all segments in order, applying every record to its
// stream with Stream.replay, the very function that publishes records
// during normal operation. At the first invalid record (a torn write), the
// log ends: later segments are removed, then the rest of that segment is
// zeroed, restoring the invariant that every byte after the last record of
// a segment is zero (Log's invariant; the shared log never erases records,
// so only torn writes can break it). A crash loses only requests that were
// not acknowledged (those of the groups in flight): each stream recovers
// to its state before its request in flight, if any, plus a prefix of that
// request's records.
//
// # Segment reclamation
//
// Segments are deleted oldest first, each removal made durable (directory
// fsync) before the next, and only while the oldest segment is sealed and
// holds no live entry of any stream (a per-segment count of the live
// entries located there). A stream that is empty, or whose entries are all
// compacted, pins nothing. No checkpoint is needed, because deleting such a
// prefix of the log does not change the outcome of the replay:
//
// Take the state F that replaying the whole log gives, and the state P that
// replaying only the segments after the deleted prefix gives, record by
// record. Within a stream, an entry with a higher index is always located
// further in the log than one with a lower index (appends go to the end,
// deletions keep a contiguous range, and a replacement rewrites the whole
// range in order). So the entries of F located in the deleted prefix form
// the low end of F's range, and P, starting empty, is F without them: an
// entry record that continues F continues P or starts it; one that implies
// a deletion in F implies the same one in P; the markers delete by index
// and do the same in both; a replacement sets both to the same records.
// When the prefix was deleted none of its entries was live, so at the end
// F has none of them and P = F. Any later record keeps P = F: its effect
// depends only on the state, which is the same. The removal order matters:
// replaying a log with a hole, where an old segment survives a deleted
// newer one, could bring back entries that a marker in the deleted segment
// had deleted.
//
// # Relocation
//
// An idle stream that still holds live entries (raft keeps TrailingLogs
// entries after a snapshot, and a quiet group takes no snapshot at all)
// would pin the oldest segment, and with it every later one, forever. So
// when the sealed segments hold more garbage than live entries by two
// segments' worth, the smallest stream (at most 4 SegmentSize of live
// entries) pinning the oldest segment is relocated in the background: its
// live entries are written again at the end of the log as kindCopy records,
// followed by kindReplace(first, last), in requests of at most about 1 MiB
// (so as not to hold up the group commits of the other streams), with no
// other record of the stream in between. On replay, copies are held aside
// and only the kindReplace that follows them makes them the stream's
// entries, all at once; copies that a crash tore before their kindReplace
// are ignored. Before their kindReplace, copies pin nothing, but they are
// newer than the entries they copy, which pin the segments before them, so
// reclamation cannot remove copies whose kindReplace is still to come.
// After it, a segment holding the first copies can be removed once those
// are compacted; the kindReplace then finds only the later copies, which
// are the live ones (see Stream.replay): the argument above, with the
// copies of one relocation counting as entries as soon as they are
// written.
//
// Relocation only starts when the garbage exceeds the live entries, so it
// never runs while the log is mostly live, the usual case of groups that
// compact at similar rates; and a relocated stream moves to the end of the
// log, so it is not relocated again before the rest of the log has been
// written past it. A stream with more live entries than the limit is left
// where it is until raft compacts it.
//
// # Reads and memory
//
// Per live entry, its segment, offset and length (16 bytes). GetLog is one
// pread of the record, checked against its crc, its stream and its index.
// All segment files stay open.
type Shared struct {
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
	failed     error // sticky, see Log.failed
	segs       []*sseg
	streams    map[uint32]*Stream
	relocating bool

	// The writer's.
	cur     *sseg  // the active segment, the last of segs
	nextSeq uint64 // of the next segment
	last    *group // the last group dispatched
	gbuf    []byte // write buffer

	slots         chan struct{} // one per group in flight (Config.SyncDepth)
	inflight      chan *group   // from the writer to the completer, in order
	writerDone    chan struct{}
	completerDone chan struct{}
	relocCh       chan *Stream
	relocDone     chan struct{}
	noRelocate    bool              // see sharedOptions
	relocChunk    int64             // see relocateChunk
	syncHook      func(*sseg) error // see sharedOptions

	syncs          atomic.Uint64
	groups         atomic.Uint64
	requests       atomic.Uint64
	relocations    atomic.Uint64
	relocatedBytes atomic.Uint64
}

// SharedStats describes a Shared log for metrics.
type SharedStats struct {
	Segments  int   // segment files
	FileBytes int64 // their total (preallocated) size
	UsedBytes int64 // bytes holding records, live or not
	LiveBytes int64 // bytes of the live entries of all streams
	Streams   int   // streams holding entries

	// Counters since OpenShared.
	Syncs          uint64 // fdatasyncs of segment data (not counting segment creation)
	Groups         uint64 // group commits
	Requests       uint64 // StoreLogs, DeleteRange and relocation writes committed
	Relocations    uint64
	RelocatedBytes uint64
}

// sseg is one segment file of a Shared log.
type sseg struct {
	seq  uint64
	path string
	f    *os.File
	size int64
	tail int64 // offset of the end marker; changed by the writer under Shared.mu

	// Only the completer (and recovery) use these: the number of live
	// entries located here, and their bytes.
	refs int
	live int64
}

// loc is where an entry's record is.
type loc struct {
	seg *sseg
	off uint32
	n   uint32
}

// group is one group commit.
type group struct {
	reqs []*request
	seg  *sseg // where the group ends: its fdatasync completes the group

	synced  chan struct{} // closed when the fdatasync returned (or failed to start)
	syncErr error

	done chan struct{} // closed when published, or failed
	err  error
}

// request is the records of one call, encoded, waiting for the writer.
type request struct {
	st   *Stream
	buf  []byte
	recs []sharedRec // offsets relative to buf
	// Set by the writer when it places the request.
	seg  *sseg
	base int64
}

const sharedExt = ".swal"

func sharedSegmentName(seq uint64) string {
	return fmt.Sprintf("%0*d%s", segmentDigits, seq, sharedExt)
}

func parseSharedSegmentName(name string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, sharedExt)
	if !ok || len(base) != segmentDigits {
		return 0, false
	}
	n, err := strconv.ParseUint(base, 10, 64)
	if err != nil || n == 0 {
		return 0, false
	}
	return n, true
}

// OpenShared opens the shared log in dir, creating the directory if needed,
// and recovers every stream's state from the segment files. It refuses a
// directory that holds a single-stream Log's segments.
func OpenShared(dir string, cfg Config) (*Shared, error) {
	return openShared(dir, cfg, sharedOptions{})
}

// sharedOptions are knobs for tests.
type sharedOptions struct {
	noRelocate    bool              // no background relocation: every write is one the test made
	relocateChunk int64             // 0 means relocateChunk
	syncHook      func(*sseg) error // replaces the fdatasync of segment data
}

func openShared(dir string, cfg Config, opts sharedOptions) (*Shared, error) {
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
	s := &Shared{
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
	s.logger.Debug("wal: opened shared log", "dir", dir, "segments", len(s.segs), "streams", len(s.streams))
	return s, nil
}

// recover replays the segment files (see Shared, Recovery), then reclaims
// the segments nothing pins any more.
func (s *Shared) recover() error {
	entries, err := os.ReadDir(s.dir.Name())
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	type file struct {
		seq  uint64
		path string
	}
	var files []file
	for _, e := range entries {
		if _, ok := parseSegmentName(e.Name()); ok {
			return fmt.Errorf("wal: %s holds single-stream log segments (%s); open it with Open", s.dir.Name(), e.Name())
		}
		if seq, ok := parseSharedSegmentName(e.Name()); ok && e.Type().IsRegular() {
			files = append(files, file{seq, filepath.Join(s.dir.Name(), e.Name())})
		}
	}
	slices.SortFunc(files, func(a, b file) int { return compareUint64(a.seq, b.seq) })

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
		if !torn {
			continue
		}
		// The log ends here. Later segments can only be empty or hold
		// unacknowledged records (each part of a group is synced before
		// the next segment is created). They go first, and only then is
		// the garbage zeroed: the other order could let a crash leave a
		// clean-looking segment in front of them.
		if later := files[i+1:]; len(later) > 0 {
			s.logger.Warn("wal: discarding segments after a torn one", "segment", fl.path, "discarded_files", len(later))
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
		if seg.size < seg.tail+endMarkerSize {
			// A file cut short right after its last record: give it back
			// its end marker, or the next recovery would take this
			// segment for torn again and drop the segments written after
			// it.
			if err := seg.f.Truncate(seg.tail + endMarkerSize); err != nil {
				return fmt.Errorf("wal: extend %s: %w", seg.path, err)
			}
			seg.size = seg.tail + endMarkerSize
			if !s.cfg.NoSync {
				if err := seg.f.Sync(); err != nil {
					return fmt.Errorf("wal: sync %s: %w", seg.path, err)
				}
			}
		}
		break
	}
	for id, st := range s.streams {
		st.copies = nil // copies torn before their kindReplace
		if st.first == 0 {
			delete(s.streams, id)
		}
	}
	return s.reclaim()
}

// recoverSegment opens and replays one segment. torn reports that it does
// not end cleanly: an invalid record, or non-zero bytes after the last
// valid one.
func (s *Shared) recoverSegment(seq uint64, path string) (seg *sseg, torn bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, false, fmt.Errorf("wal: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("wal: %w", err)
	}
	seg = &sseg{seq: seq, path: path, f: f, size: st.Size()}
	tail, stop, clean, err := scanShared(f, seg.size, func(r sharedRec) {
		str := s.streams[r.stream]
		if str == nil {
			str = &Stream{sh: s, id: r.stream}
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

func compareUint64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *Shared) datasync(seg *sseg) error {
	if s.syncHook != nil {
		return s.syncHook(seg)
	}
	if s.cfg.NoSync {
		return nil
	}
	if err := fdatasync(int(seg.f.Fd())); err != nil {
		return fmt.Errorf("wal: fdatasync %s: %w", seg.path, err)
	}
	s.syncs.Add(1)
	return nil
}

func (s *Shared) syncDir() error {
	if s.cfg.NoSync {
		return nil
	}
	return syncDir(s.dir)
}

// fail records a write error that leaves the files in an unknown state: the
// log refuses further changes until it is reopened (see Log.failed).
func (s *Shared) fail(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed == nil {
		s.failed = err
		s.logger.Error("wal: write failed, refusing further changes until reopened", "error", err)
	}
	return err
}

func (s *Shared) checkWritable() error {
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
func (s *Shared) Stream(id uint32) (*Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	st := s.streams[id]
	if st == nil {
		st = &Stream{sh: s, id: id}
		s.streams[id] = st
	}
	return st, nil
}

// Streams returns the ids of the streams that hold entries, in order: after
// a restart, those that were not empty. Entries of a stream nobody uses
// any more pin their segments until DeleteRange removes them.
func (s *Shared) Streams() []uint32 {
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
func (s *Shared) submit(r *request) error {
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
func (s *Shared) writer() {
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
func (s *Shared) completer() {
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
// old segment is written and synced, first (see Shared, Group commit).
func (s *Shared) write(g *group) error {
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
func (s *Shared) writeAt(seg *sseg, buf []byte, start, end int64) error {
	buf = append(buf, zeros[:endMarkerSize]...)
	if _, err := seg.f.WriteAt(buf, start); err != nil {
		return s.fail(fmt.Errorf("wal: write %s: %w", seg.path, err))
	}
	s.mu.Lock()
	seg.tail = end
	s.mu.Unlock()
	return nil
}

func (s *Shared) createSegment(size int64) (*sseg, error) {
	path := filepath.Join(s.dir.Name(), sharedSegmentName(s.nextSeq))
	f, err := createPreallocated(s.dir, path, size, s.cfg.NoSync)
	if err != nil {
		return nil, err
	}
	seg := &sseg{seq: s.nextSeq, path: path, f: f, size: size}
	s.mu.Lock()
	s.segs = append(s.segs, seg)
	s.nextSeq++
	s.mu.Unlock()
	return seg, nil
}

// reclaim removes the oldest segments while they are sealed and hold no
// live entry, each removal durable before the next (see Shared, Segment
// reclamation). Run by the completer, or by recovery. The groups in flight
// have written only to the active segment, which is never removed (a group
// that needed a new segment waited for all earlier ones, and its own
// records count once it is published, before the next reclaim): so the
// segments considered hold only published records.
func (s *Shared) reclaim() error {
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

// relocateSlack is how much more garbage than live entries, in segments,
// the sealed segments may hold before a relocation starts.
const relocateSlack = 2

// maybeRelocate starts the relocation of a stream that pins the oldest
// segment when the sealed segments hold too much garbage (see Shared,
// Relocation). Run by the completer, which alone changes the streams'
// state, so it reads that state without their locks.
func (s *Shared) maybeRelocate() {
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

func (s *Shared) relocator() {
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
func (s *Shared) relocate(st *Stream, onlyIfOldest bool) error {
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
	var recs []sharedRec
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
		if err := send(sharedEntrySize(&e)); err != nil {
			return err
		}
		off := int64(len(buf))
		buf = appendSharedEntry(buf, kindCopy, st.id, &e)
		recs = append(recs, sharedRec{kind: kindCopy, stream: st.id, off: off, size: uint32(int64(len(buf)) - off), a: idx, b: e.Term})
	}
	if err := send(replaceSize); err != nil {
		return err
	}
	recs = append(recs, sharedRec{kind: kindReplace, stream: st.id, off: int64(len(buf)), size: replaceSize, a: first, b: last})
	buf = appendSharedMarker(buf, kindReplace, st.id, first, last)
	if err := st.send(buf, recs); err != nil {
		return err
	}
	written += len(buf)
	s.relocations.Add(1)
	s.relocatedBytes.Add(uint64(written))
	return nil
}

// Stats returns the log's size and counters for metrics.
func (s *Shared) Stats() SharedStats {
	s.mu.Lock()
	st := SharedStats{Segments: len(s.segs)}
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
func (s *Shared) Close() error {
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

func (s *Shared) closeFiles() error {
	var errs []error
	for _, seg := range s.segs {
		errs = append(errs, seg.f.Close())
	}
	s.segs = nil
	errs = append(errs, s.dir.Close())
	return errors.Join(errs...)
}

const replaceSize = recordHeaderSize + sharedPrefix + 16

// Stream is one raft log in a Shared log: a raft.LogStore and
// raft.MonotonicLogStore with the semantics of Log, safe for concurrent use.
//
// Two locks, as in Log: wmu serializes the stream's changes (StoreLogs,
// DeleteRange, relocation) including the wait for their group commit; mu
// guards the state that readers use. Only the completer (and recovery)
// changes that state, under mu, when it publishes a request; and a
// stream's requests are those of the holder of wmu. So the holder of wmu
// may read the state without mu, and the completer too.
type Stream struct {
	sh *Shared
	id uint32

	wmu  sync.Mutex
	wbuf []byte      // reused encode buffer (wmu)
	recs []sharedRec // reused record list (wmu)
	req  request     // reused request (wmu)

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

// IsMonotonic implements raft.MonotonicLogStore; see Log.IsMonotonic.
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
	if err := decodeSharedEntry(buf, st.id, idx, out); err != nil {
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

// StoreLogs implements raft.LogStore, with the semantics of Log.StoreLogs:
// consecutive indexes and non-decreasing terms; a batch starting at or
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
		total += sharedEntrySize(e)
	}
	// A request is never split across segments (see Shared).
	if total+endMarkerSize > maxSegmentSize {
		return fmt.Errorf("wal: StoreLogs batch of %d bytes is too large", total)
	}

	st.wmu.Lock()
	defer st.wmu.Unlock()
	if err := st.sh.checkWritable(); err != nil {
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
		st.sh.logger.Info("wal: StoreLogs overwrites the log suffix", "stream", st.id, "from", start, "last", st.last)
	default:
		st.sh.logger.Warn("wal: StoreLogs leaves a gap, dropping the whole log", "stream", st.id, "first", st.first, "last", st.last, "new", start)
	}

	buf, recs := st.wbuf[:0], st.recs[:0]
	for _, e := range logs {
		off := int64(len(buf))
		buf = appendSharedEntry(buf, kindEntry, st.id, e)
		recs = append(recs, sharedRec{kind: kindEntry, stream: st.id, off: off, size: uint32(int64(len(buf)) - off), a: e.Index, b: e.Term})
	}
	err := st.send(buf, recs)
	if cap(buf) <= 4<<20 { // don't keep a giant batch's buffer forever
		st.wbuf, st.recs = buf, recs
	}
	return err
}

// send submits the stream's encoded records and waits for their group
// commit. The caller holds wmu.
func (st *Stream) send(buf []byte, recs []sharedRec) error {
	st.req = request{st: st, buf: buf, recs: recs}
	err := st.sh.submit(&st.req)
	st.req = request{}
	return err
}

// DeleteRange implements raft.LogStore with the semantics of
// Log.DeleteRange: a prefix, a suffix or everything; a range that misses
// the stream deletes nothing, and one that would leave a hole is refused.
// The deletion is a marker record, durable when DeleteRange returns nil.
func (st *Stream) DeleteRange(min, max uint64) error {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	if err := st.sh.checkWritable(); err != nil {
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
	buf := appendSharedMarker(st.wbuf[:0], kind, st.id, val)
	recs := append(st.recs[:0], sharedRec{kind: kind, stream: st.id, size: uint32(len(buf)), a: val})
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
//     them. That is what Log.StoreLogs does, so StoreLogs needs no marker.
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
func (st *Stream) replay(r sharedRec, seg *sseg, off int64) {
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
			st.sh.logger.Warn("wal: replace marker without its copies, ignored", "stream", st.id, "first", r.a, "last", r.b)
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

// Stats describes the stream: its bounds, the bytes of its live entries
// (UsedBytes), and the segments that hold them (which it pins) and their
// size.
func (st *Stream) Stats() Stats {
	st.mu.RLock()
	defer st.mu.RUnlock()
	s := Stats{FirstIndex: st.first, LastIndex: st.last, UsedBytes: st.live}
	var prev *sseg
	for _, l := range st.locs {
		// Locations grow with the index (see Shared), so each segment
		// appears in one run.
		if l.seg != prev {
			prev = l.seg
			s.Segments++
			s.FileBytes += l.seg.size
		}
	}
	return s
}
