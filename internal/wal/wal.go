// Package wal is a raft.LogStore that keeps a raft log in an append-only,
// segmented write-ahead log, built for write throughput: every StoreLogs
// call is one pwrite and one fdatasync into a preallocated file, with no
// B+tree, no free-list and no file-size change to persist.
//
// # Files
//
// The log lives in one directory, which Open locks (flock) against a second
// opener. It is a sequence of segment files named NNNNNNNNNNNNNNNNNNNN.wal,
// the zero-padded decimal index of the first entry the segment holds. A
// segment is preallocated to Config.SegmentSize when it is created, with
// zeros actually written (see preallocate for why), and the file and the
// directory are synced once at that point. A StoreLogs batch is not split
// across segments: if it does not fit in the rest of the current segment,
// that segment is left as it is (sealed) and the batch goes to a new
// segment, made larger than SegmentSize if the batch needs it. Only a batch
// larger than the 4 GiB limit of a segment is split (see Log.append).
//
// A prefix compaction removes the segments that hold only deleted entries
// and renames the segment holding the new first index to that index; a
// suffix truncation zeroes the deleted records and removes later segments.
//
// # Records
//
// Each entry is one record (see record.go for the byte layout):
//
//	length u32 | crc32c u32 | index u64 | term u64 | type u8 |
//	appendedAt i64 | extLen u32 | extensions | data
//
// all little-endian, where length counts the bytes after the crc and the crc
// covers them. Every write ends with 8 zero bytes, an end marker, so a scan
// stops at the true end of the log.
//
// # Guarantees
//
// When StoreLogs returns nil, its entries are durable (unless
// Config.NoSync). When DeleteRange returns nil, the deletion is durable: a
// crash cannot bring back deleted entries. A crash in the middle of a call
// leaves a valid log: for StoreLogs, the state before the call plus a prefix
// (possibly empty) of the batch; for DeleteRange, a contiguous part of the
// log between the states before and after. Open never fails because of a
// torn or garbled tail: it keeps the longest valid prefix. It does not tell a
// torn write from a corrupted record in the middle of the log either: the
// log ends before the first invalid record, and a warning is logged.
//
// Recovery relies on one invariant: in every segment, every byte after the
// last record is zero. Preallocation makes new segments zero; a suffix
// truncation zeroes the records it removes (not just an end marker in front
// of them) before it returns; and Open zeroes whatever a crashed write left
// after the last valid record. Without it, a later torn write that lost its
// end marker could expose an old record that happens to start exactly where
// the new records end and to continue their index sequence.
//
// # Raft specifics
//
// Log implements raft.MonotonicLogStore, so raft deletes the whole log after
// installing a snapshot rather than leaving a gap before the next entries.
// FirstIndex and LastIndex behave as raft's InmemStore does for the ranges
// raft deletes, including both returning 0 once everything is deleted, after
// which the log may restart at any index. A failed write or sync is sticky:
// the Log refuses further changes until it is reopened, because after a
// failed fsync the state of the file is unknown (raft then steps down).
//
// # In memory
//
// Per segment, the offset of each entry's record (4 bytes per entry); for the
// log, its first and last index and last term. GetLog is one pread and does
// not wait for the fdatasync of a concurrent StoreLogs (see Log). All segment
// files stay open.
//
// # Shared log
//
// Log keeps one raft log and fdatasyncs once per StoreLogs. A node running
// many raft groups can instead keep all their logs in one Shared log
// (OpenShared), one Stream per group, with the same semantics per stream:
// concurrent appends of different groups then share one write and one
// fdatasync (group commit). Its files and records are described at Shared
// and in shared_record.go.
package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"golang.org/x/sys/unix"
)

// ErrClosed is returned by every method of a Log (or of a Shared log and
// its streams) after Close.
var ErrClosed = errors.New("wal: log is closed")

// Config tunes a Log or a Shared log. The zero value means the defaults.
type Config struct {
	// SegmentSize is the preallocated size of a segment file. Default 16 MiB,
	// at least 64 KiB, at most 4 GiB - 1 (record offsets are 32-bit).
	SegmentSize int64

	// NoSync skips every fsync and fdatasync. Only for tests and benchmarks:
	// a crash of the machine may then lose or garble acknowledged entries.
	NoSync bool

	// Logger gets recovery and truncation messages. Nil means none.
	Logger hclog.Logger

	// SyncDepth, for a Shared log only, is how many group commits may be
	// in flight at once (see Shared). Default 4; 1 makes the group commit
	// strictly serial.
	SyncDepth int
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{SegmentSize: 16 << 20}
}

func (c Config) withDefaults() (Config, error) {
	if c.SegmentSize == 0 {
		c.SegmentSize = DefaultConfig().SegmentSize
	}
	if c.SegmentSize < minSegmentSize || c.SegmentSize > maxSegmentSize {
		return c, fmt.Errorf("wal: SegmentSize %d outside [%d, %d]", c.SegmentSize, minSegmentSize, int64(maxSegmentSize))
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.SyncDepth == 0 {
		c.SyncDepth = 4
	}
	if c.SyncDepth < 0 || c.SyncDepth > 64 {
		return c, fmt.Errorf("wal: SyncDepth %d outside [1, 64]", c.SyncDepth)
	}
	return c, nil
}

// Stats describes a Log for metrics.
type Stats struct {
	Segments   int    // segment files
	FileBytes  int64  // their total (preallocated) size
	UsedBytes  int64  // bytes holding records, including compacted ones not yet removed
	FirstIndex uint64 // 0 if the log is empty
	LastIndex  uint64 // 0 if the log is empty
}

// Log is a raft.LogStore backed by segment files in one directory. It is
// safe for concurrent use.
//
// Two locks: wmu serializes the changes (StoreLogs, DeleteRange, Close);
// mu protects the in-memory state that readers (GetLog, FirstIndex,
// LastIndex, Stats) use, and is held for reading by them (GetLog reads with
// pread, which needs no file position, so reads run in parallel). StoreLogs
// holds mu only for the moment it publishes the new entries, not while it
// writes and fdatasyncs them: the new bytes go after the published end of
// the log, where no reader looks, and so the leader's replication goroutines
// reading recent entries do not queue behind every fsync of the next batch.
// The rare deletions hold mu throughout, which keeps them simple. Holding
// wmu, a changer may read the state without mu (nobody else changes it) but
// must hold mu to change it.
type Log struct {
	cfg    Config
	logger hclog.Logger

	wmu      sync.Mutex
	mu       sync.RWMutex
	dir      *os.File // open for fsync and for the flock
	segs     []*segment
	first    uint64 // 0 iff the log is empty, and then last and lastTerm are 0 too
	last     uint64
	lastTerm uint64
	closed   bool
	wbuf     []byte   // reused encode buffer (wmu)
	obuf     []uint32 // reused offsets buffer (wmu)

	// failed (wmu) is set when a write or sync of log data failed. The file's
	// contents (and after a failed fsync, the page cache's) are then
	// unknown, so the log refuses further changes until it is reopened and
	// recovery establishes what is really on disk.
	failed error
}

var (
	_ raft.LogStore          = (*Log)(nil)
	_ raft.MonotonicLogStore = (*Log)(nil)
)

// Open opens the log in dir, creating the directory if needed, and recovers
// its state from the segment files.
func Open(dir string, cfg Config) (*Log, error) {
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
	l := &Log{cfg: cfg, logger: cfg.Logger, dir: d}
	if err := l.recover(); err != nil {
		l.closeFiles()
		return nil, err
	}
	l.logger.Debug("wal: opened", "dir", dir, "segments", len(l.segs), "first", l.first, "last", l.last)
	return l, nil
}

// mkdir creates dir and, if it did not exist, makes its entry durable.
func mkdir(dir string, noSync bool) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	if noSync {
		return nil
	}
	parent, err := os.Open(filepath.Dir(filepath.Clean(dir)))
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	defer parent.Close()
	return syncDir(parent)
}

// recover rebuilds the in-memory state from the segment files:
//
//   - Segments are taken in index order. Each one is scanned from offset 0
//     up to its first invalid record (see scanSegment).
//   - The first segment may begin with records below its name: they were
//     removed by a prefix compaction (which renames the segment) and are
//     skipped. Every later segment must begin exactly with the entry after
//     the previous segment's last one, with a term no lower than its term.
//   - At the first segment that breaks that (or that holds no entry), the
//     log ends: that file and all later ones are garbage left by a crash in
//     the middle of a write or truncation, and are removed. Only a crash can
//     produce such a state, and every state a crash can produce keeps the
//     entries of completed calls before the break (see the comments of
//     StoreLogs and DeleteRange), so nothing acknowledged is lost.
//   - Whatever follows the last record of a kept segment is zeroed, which
//     restores the invariant described in the package documentation.
func (l *Log) recover() error {
	entries, err := os.ReadDir(l.dir.Name())
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	type file struct {
		first uint64
		path  string
	}
	var files []file
	for _, e := range entries {
		if first, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			files = append(files, file{first, filepath.Join(l.dir.Name(), e.Name())})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].first < files[j].first })

	removed := false
	for i, fl := range files {
		seg, lastTerm, reason, err := l.recoverSegment(fl.first, fl.path)
		if err != nil {
			return err
		}
		if seg == nil {
			l.logger.Warn("wal: discarding segment and all later ones", "segment", fl.path, "reason", reason, "discarded_files", len(files)-i)
			for _, g := range files[i:] {
				if err := os.Remove(g.path); err != nil {
					return fmt.Errorf("wal: remove garbage segment: %w", err)
				}
			}
			removed = true
			break
		}
		l.segs = append(l.segs, seg)
		l.last = seg.last()
		l.lastTerm = lastTerm
	}
	if removed && !l.cfg.NoSync {
		if err := syncDir(l.dir); err != nil {
			return err
		}
	}
	if len(l.segs) > 0 {
		l.first = l.segs[0].first
	}
	for _, s := range l.segs {
		if err := l.zeroGarbage(s); err != nil {
			return err
		}
	}
	return nil
}

// recoverSegment opens and scans one segment. It returns the segment and
// the term of its last entry, or a nil segment and the reason if the segment
// does not continue the log recovered so far (l.segs, l.last, l.lastTerm).
func (l *Log) recoverSegment(first uint64, path string) (*segment, uint64, string, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, 0, "", fmt.Errorf("wal: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, "", fmt.Errorf("wal: %w", err)
	}
	res, err := scanSegment(f, st.Size())
	if err != nil {
		f.Close()
		return nil, 0, "", fmt.Errorf("wal: scan %s: %w", path, err)
	}
	reason := ""
	switch {
	case len(res.offsets) == 0:
		reason = "no valid record (" + res.stop + ")"
	case len(l.segs) == 0 && (res.firstIndex > first || res.lastIndex() < first):
		reason = fmt.Sprintf("records %d..%d do not include the first index %d of its name", res.firstIndex, res.lastIndex(), first)
	case len(l.segs) > 0 && (res.firstIndex != first || first != l.last+1):
		reason = fmt.Sprintf("first record %d, expected %d (log ends at %d)", res.firstIndex, first, l.last)
	case len(l.segs) > 0 && res.firstTerm < l.lastTerm:
		reason = fmt.Sprintf("term %d lower than the previous segment's %d", res.firstTerm, l.lastTerm)
	}
	if reason != "" {
		f.Close()
		return nil, 0, reason, nil
	}
	offsets := res.offsets[first-res.firstIndex:]
	if first != res.firstIndex {
		offsets = append([]uint32(nil), offsets...)
	}
	if res.stop != "end marker" {
		l.logger.Warn("wal: log tail ends before an end marker, probably a write interrupted by a crash", "segment", path, "reason", res.stop)
	}
	return &segment{
		first: first, path: path, f: f, fd: int(f.Fd()), size: st.Size(),
		tail: res.tail, offsets: offsets,
	}, res.lastTerm, "", nil
}

// zeroGarbage zeroes any non-zero byte after the segment's last record (a
// torn write's leftovers), and syncs that.
func (l *Log) zeroGarbage(s *segment) error {
	end, err := lastNonZero(s.f, s.tail, s.size)
	if err != nil {
		return fmt.Errorf("wal: read %s: %w", s.path, err)
	}
	if end == s.tail {
		return nil
	}
	l.logger.Warn("wal: erasing bytes after the last valid record", "segment", s.path, "from", s.tail, "to", end)
	if err := writeZeros(s.f, s.tail, end); err != nil {
		return fmt.Errorf("wal: erase %s: %w", s.path, err)
	}
	return l.datasync(s)
}

func (l *Log) datasync(s *segment) error {
	if l.cfg.NoSync {
		return nil
	}
	if err := fdatasync(s.fd); err != nil {
		return fmt.Errorf("wal: fdatasync %s: %w", s.path, err)
	}
	return nil
}

func (l *Log) syncDir() error {
	if l.cfg.NoSync {
		return nil
	}
	return syncDir(l.dir)
}

// fail records a write error that leaves the files in an unknown state.
func (l *Log) fail(err error) error {
	if l.failed == nil {
		l.failed = err
		l.logger.Error("wal: write failed, refusing further changes until reopened", "error", err)
	}
	return err
}

func (l *Log) checkWritable() error {
	if l.closed {
		return ErrClosed
	}
	return l.failed
}

// FirstIndex implements raft.LogStore: the first index, 0 if the log is
// empty.
func (l *Log) FirstIndex() (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return 0, ErrClosed
	}
	return l.first, nil
}

// LastIndex implements raft.LogStore: the last index, 0 if the log is empty.
func (l *Log) LastIndex() (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return 0, ErrClosed
	}
	return l.last, nil
}

// IsMonotonic implements raft.MonotonicLogStore. It tells raft that this
// store wants no gaps between entries, so that after installing or restoring
// a snapshot raft deletes the whole log (one cheap DeleteRange here) instead
// of appending after a gap. StoreLogs still copes with a gap; see there.
func (l *Log) IsMonotonic() bool { return true }

// findSegment returns the segment holding idx, which must be in
// [first, last].
func (l *Log) findSegment(idx uint64) *segment {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].first > idx })
	return l.segs[i-1]
}

// GetLog implements raft.LogStore. It returns raft.ErrLogNotFound for an
// index outside [FirstIndex, LastIndex]. The returned Data and Extensions
// are freshly allocated: raft keeps them.
func (l *Log) GetLog(idx uint64, out *raft.Log) error {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	if l.first == 0 || idx < l.first || idx > l.last {
		l.mu.RUnlock()
		return raft.ErrLogNotFound
	}
	s := l.findSegment(idx)
	off, end := s.bounds(idx)
	// One allocation for the whole record: Data and Extensions point into
	// it, which saves copying them out of a pooled buffer.
	buf := make([]byte, end-off)
	_, err := s.f.ReadAt(buf, off)
	path := s.path
	l.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("wal: read index %d from %s: %w", idx, path, err)
	}
	if err := decodeRecord(buf, out); err != nil {
		return fmt.Errorf("wal: index %d in %s at offset %d: %w", idx, path, off, err)
	}
	if out.Index != idx {
		return fmt.Errorf("wal: %w: index %d found where %d belongs in %s", errCorrupt, out.Index, idx, path)
	}
	return nil
}

// readTerm reads the term of entry idx of segment s.
func (l *Log) readTerm(s *segment, idx uint64) (uint64, error) {
	off, end := s.bounds(idx)
	buf := make([]byte, end-off)
	if _, err := s.f.ReadAt(buf, off); err != nil {
		return 0, fmt.Errorf("wal: read index %d from %s: %w", idx, s.path, err)
	}
	var e raft.Log
	if err := decodeRecord(buf, &e); err != nil {
		return 0, fmt.Errorf("wal: index %d in %s: %w", idx, s.path, err)
	}
	return e.Term, nil
}

// StoreLog implements raft.LogStore.
func (l *Log) StoreLog(e *raft.Log) error {
	return l.StoreLogs([]*raft.Log{e})
}

// StoreLogs implements raft.LogStore. The entries must have consecutive
// indexes and non-decreasing terms (as any raft log has; recovery relies on
// it). Where the batch starts:
//
//   - at LastIndex+1, or anywhere if the log is empty: a plain append;
//   - at or below LastIndex: everything from the batch's first index on is
//     deleted first, durably, as DeleteRange would (raft itself calls
//     DeleteRange before appending after a conflict, so this is only
//     robustness);
//   - above LastIndex+1 (a gap): the whole log is deleted first. Raft only
//     leaves gaps after installing a snapshot that covers everything before
//     the gap, and it does not even do that with a store that, like this
//     one, says IsMonotonic.
//
// The records of the batch and an end marker are written with one pwrite and
// made durable with one fdatasync.
func (l *Log) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	start := logs[0].Index
	if start == 0 {
		return errors.New("wal: index 0 is not a valid raft index")
	}
	for i, e := range logs {
		if e.Index != start+uint64(i) {
			return fmt.Errorf("wal: StoreLogs indexes not consecutive: %d at position %d after %d", e.Index, i, start)
		}
		if i > 0 && e.Term < logs[i-1].Term {
			return fmt.Errorf("wal: StoreLogs term decreases from %d to %d at index %d", logs[i-1].Term, e.Term, e.Index)
		}
		if recordSize(e)+endMarkerSize > maxSegmentSize {
			return fmt.Errorf("wal: entry %d of %d bytes is too large", e.Index, recordSize(e))
		}
	}

	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.checkWritable(); err != nil {
		return err
	}
	if l.first == 0 || start == l.last+1 {
		if logs[0].Term < l.lastTerm {
			return fmt.Errorf("wal: StoreLogs term %d at index %d is below the last term %d", logs[0].Term, start, l.lastTerm)
		}
		return l.append(logs, false)
	}
	l.mu.Lock()
	defer l.mu.Unlock() // held during append too: rare, and simpler
	switch {
	case start <= l.first:
		if err := l.reset(); err != nil {
			return err
		}
	case start <= l.last:
		// Check the term before deleting anything, so that a refused
		// batch leaves the log as it was.
		prev, err := l.readTerm(l.findSegment(start-1), start-1)
		if err != nil {
			return err
		}
		if logs[0].Term < prev {
			return fmt.Errorf("wal: StoreLogs term %d at index %d is below the previous term %d", logs[0].Term, start, prev)
		}
		l.logger.Info("wal: StoreLogs overwrites the log suffix", "from", start, "last", l.last)
		if err := l.truncateSuffix(start); err != nil {
			return err
		}
	default: // start > l.last+1
		l.logger.Warn("wal: StoreLogs leaves a gap, dropping the whole log", "first", l.first, "last", l.last, "new", start)
		if err := l.reset(); err != nil {
			return err
		}
	}
	return l.append(logs, true)
}

// append writes logs, which start at last+1 (or anywhere if the log is
// empty), and publishes them under mu once they are durable. The caller
// holds wmu, and maybe mu.
//
// The batch goes entirely into the current segment if it fits there with its
// end marker; otherwise into a new segment of max(SegmentSize, batch) bytes.
// Keeping a batch in one file is what makes it one pwrite and one fdatasync,
// and it means a crash can only tear the batch at its end. The cost is that a
// segment may be left with up to one batch of unused space. Only batches
// beyond maxSegmentSize are split, over several new segments; a crash can
// then leave a later segment complete behind a torn earlier one, which
// recovery treats as the gap it is and discards.
func (l *Log) append(logs []*raft.Log, holdingMu bool) error {
	var sizesBuf [64]int64
	sizes := sizesBuf[:0]
	var total int64
	for _, e := range logs {
		n := recordSize(e)
		sizes = append(sizes, n)
		total += n
	}

	// A chunk is the part of the batch written to one segment.
	type chunk struct {
		s        *segment
		created  bool
		from, to int   // the chunk's offsets in l.obuf
		tail     int64 // the segment's tail after the chunk
	}
	var chunksBuf [1]chunk
	chunks := chunksBuf[:0]
	// abandon removes the segments created for a batch that failed: they
	// were never published. (If removing fails, recovery sees an
	// unacknowledged prefix of the batch, or garbage.)
	abandon := func() {
		for _, c := range chunks {
			if c.created {
				c.s.f.Close()
				os.Remove(c.s.path)
			}
		}
	}
	l.obuf = l.obuf[:0]
	for i := 0; i < len(logs); {
		c := chunk{}
		if n := len(l.segs); n > 0 && len(chunks) == 0 {
			c.s, c.tail = l.segs[n-1], l.segs[n-1].tail
		}
		if c.s == nil || c.tail+total+endMarkerSize > c.s.size {
			size := min(max(l.cfg.SegmentSize, total+endMarkerSize), maxSegmentSize)
			s, err := createSegment(l.dir, logs[i].Index, size, l.cfg.NoSync)
			if err != nil {
				abandon()
				return err
			}
			c = chunk{s: s, created: true}
		}
		start := c.tail
		c.from = len(l.obuf)
		buf := l.wbuf[:0]
		j := i
		for ; j < len(logs) && c.tail+sizes[j]+endMarkerSize <= c.s.size; j++ {
			l.obuf = append(l.obuf, uint32(c.tail))
			c.tail += sizes[j]
			buf = appendRecord(buf, logs[j])
		}
		c.to = len(l.obuf)
		buf = append(buf, zeros[:endMarkerSize]...)
		chunks = append(chunks, c)
		_, err := c.s.f.WriteAt(buf, start)
		if cap(buf) <= 4<<20 { // don't keep a giant batch's buffer forever
			l.wbuf = buf
		}
		if err != nil {
			abandon()
			return l.fail(fmt.Errorf("wal: write %s: %w", c.s.path, err))
		}
		total -= c.tail - start
		i = j
	}
	for _, c := range chunks {
		if err := l.datasync(c.s); err != nil {
			abandon()
			return l.fail(err)
		}
	}

	if !holdingMu {
		l.mu.Lock()
		defer l.mu.Unlock()
	}
	for _, c := range chunks {
		if c.created {
			l.segs = append(l.segs, c.s)
		}
		c.s.offsets = append(c.s.offsets, l.obuf[c.from:c.to]...)
		c.s.tail = c.tail
	}
	if l.first == 0 {
		l.first = logs[0].Index
	}
	l.last = logs[len(logs)-1].Index
	l.lastTerm = logs[len(logs)-1].Term
	return nil
}

// DeleteRange implements raft.LogStore for the ranges raft deletes:
//
//   - a prefix [FirstIndex, max] (compaction after a snapshot), also with
//     min below FirstIndex;
//   - a suffix [min, LastIndex] (a follower's conflicting entries), also with
//     max above LastIndex;
//   - both at once, which empties the log.
//
// The observable result is that of raft's InmemStore: FirstIndex becomes
// max+1, LastIndex min-1, and both 0 once the log is empty (after which
// StoreLogs may start at any index). A range that misses the log deletes
// nothing (InmemStore would still move its bounds). A range strictly inside
// the log would leave a hole and is refused.
func (l *Log) DeleteRange(min, max uint64) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.checkWritable(); err != nil {
		return err
	}
	switch {
	case l.first == 0 || min > max || max < l.first || min > l.last:
		return nil
	case min <= l.first && max >= l.last:
		return l.reset()
	case min <= l.first:
		return l.compactPrefix(max + 1)
	case max >= l.last:
		return l.truncateSuffix(min)
	default:
		return fmt.Errorf("wal: DeleteRange(%d, %d) would leave a hole in the log [%d, %d]", min, max, l.first, l.last)
	}
}

// removeSegment closes and deletes a segment's file; the caller drops it
// from l.segs and syncs the directory.
func (l *Log) removeSegment(s *segment) error {
	s.f.Close()
	if err := os.Remove(s.path); err != nil && !os.IsNotExist(err) {
		return l.fail(fmt.Errorf("wal: remove %s: %w", s.path, err))
	}
	return nil
}

// reset deletes the whole log.
//
// Segments are removed oldest first, each removal made durable before the
// next: a crash part way leaves a contiguous suffix of the log (a valid log,
// as after a partial prefix compaction), never a log with a hole in the
// middle, which recovery would cut at the hole, losing the newer part.
func (l *Log) reset() error {
	for len(l.segs) > 0 {
		if err := l.removeSegment(l.segs[0]); err != nil {
			return err
		}
		l.segs = l.segs[1:]
		if err := l.syncDir(); err != nil {
			return l.fail(err)
		}
		if len(l.segs) > 0 {
			l.first = l.segs[0].first
		}
	}
	l.segs = nil
	l.first, l.last, l.lastTerm = 0, 0, 0
	return nil
}

// compactPrefix deletes the entries before newFirst, first < newFirst <=
// last.
//
// Segments that hold only deleted entries are removed, oldest first and each
// durably before the next (see reset for why). The deletion inside the
// segment that holds newFirst is persisted by renaming that segment to
// newFirst: its name is the first index it holds, and recovery skips the
// records before it. The rename is atomic, so a crash leaves the old or the
// new first index, and it costs no data write.
func (l *Log) compactPrefix(newFirst uint64) error {
	for l.segs[0].last() < newFirst {
		if err := l.removeSegment(l.segs[0]); err != nil {
			return err
		}
		l.segs = l.segs[1:]
		l.first = l.segs[0].first
		if err := l.syncDir(); err != nil {
			return l.fail(err)
		}
	}
	s := l.segs[0]
	if s.first == newFirst {
		return nil
	}
	path := filepath.Join(l.dir.Name(), segmentName(newFirst))
	if err := os.Rename(s.path, path); err != nil {
		return l.fail(fmt.Errorf("wal: rename segment: %w", err))
	}
	s.path = path
	s.offsets = append([]uint32(nil), s.offsets[newFirst-s.first:]...)
	s.first = newFirst
	l.first = newFirst
	if err := l.syncDir(); err != nil {
		return l.fail(err)
	}
	return nil
}

// truncateSuffix deletes the entries from newEnd on, first < newEnd <= last.
//
// The records from newEnd on in the segment holding newEnd-1 are overwritten
// with zeros up to and including the old end marker, and synced, before the
// later segments are removed. Zeroing rather than writing just an end marker
// keeps the invariant that no stale record follows the end of the log (see
// the package documentation). A crash before the sync completes leaves a
// prefix of the old log that is at least newEnd-1 long: recovery stops at the
// first zeroed record and discards the later segments as no longer
// contiguous, so the order of their removal does not matter and one
// directory sync covers them all. Truncations are rare and usually short,
// so the zeroing costs little.
func (l *Log) truncateSuffix(newEnd uint64) error {
	newLast := newEnd - 1
	k := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].first > newLast }) - 1
	s := l.segs[k]
	if newEnd <= s.last() {
		cut, _ := s.bounds(newEnd)
		// The end marker may be missing only where recovery found the
		// file cut short; never write past the end of the file.
		if err := writeZeros(s.f, cut, min(s.tail+endMarkerSize, s.size)); err != nil {
			return l.fail(fmt.Errorf("wal: truncate %s: %w", s.path, err))
		}
		if err := l.datasync(s); err != nil {
			return l.fail(err)
		}
		s.offsets = s.offsets[:newEnd-s.first]
		s.tail = cut
	}
	l.last = newLast
	for len(l.segs) > k+1 {
		n := len(l.segs) - 1
		if err := l.removeSegment(l.segs[n]); err != nil {
			return err
		}
		l.segs = l.segs[:n]
	}
	if err := l.syncDir(); err != nil {
		return l.fail(err)
	}
	t, err := l.readTerm(s, newLast)
	if err != nil {
		return l.fail(err)
	}
	l.lastTerm = t
	return nil
}

// Stats returns the log's size for metrics.
func (l *Log) Stats() Stats {
	l.mu.RLock()
	defer l.mu.RUnlock()
	st := Stats{Segments: len(l.segs), FirstIndex: l.first, LastIndex: l.last}
	for _, s := range l.segs {
		st.FileBytes += s.size
		st.UsedBytes += s.tail
	}
	return st
}

// Close closes the files and releases the directory lock. Entries are
// already durable: Close does not sync.
func (l *Log) Close() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return l.closeFiles()
}

func (l *Log) closeFiles() error {
	var errs []error
	for _, s := range l.segs {
		errs = append(errs, s.f.Close())
	}
	l.segs = nil
	errs = append(errs, l.dir.Close())
	return errors.Join(errs...)
}

// Validate is temporary (replaced by the wal rework).
func (c Config) Validate() error { _, err := c.withDefaults(); return err }
