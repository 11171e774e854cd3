package wal

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

const testSegmentSize = 64 << 10

// randData returns size-skewed random bytes: mostly small entries, some of a
// few KB, a few up to 100 KB (larger than a 64 KiB segment).
func randData(rng *rand.Rand) []byte {
	var n int
	switch p := rng.IntN(100); {
	case p < 5:
		n = 0
	case p < 75:
		n = rng.IntN(300)
	case p < 95:
		n = rng.IntN(4 << 10)
	default:
		n = rng.IntN(100_000) + 1
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func randEntry(rng *rand.Rand, idx, term uint64) *raft.Log {
	e := &raft.Log{
		Index: idx,
		Term:  term,
		Type:  raft.LogType(rng.IntN(6)),
		Data:  randData(rng),
	}
	if rng.IntN(5) == 0 {
		e.Extensions = make([]byte, rng.IntN(50)+1)
		for i := range e.Extensions {
			e.Extensions[i] = byte(rng.Uint32())
		}
	}
	if rng.IntN(4) != 0 {
		e.AppendedAt = time.Unix(1_700_000_000+rng.Int64N(1e8), rng.Int64N(1e9))
	}
	if len(e.Data) == 0 {
		e.Data = nil
	}
	return e
}

func randBatch(rng *rand.Rand, start, term uint64) []*raft.Log {
	n := 1 + rng.IntN(8)
	if rng.IntN(4) == 0 {
		n = 1 + rng.IntN(64)
	}
	b := make([]*raft.Log, n)
	for i := range b {
		b[i] = randEntry(rng, start+uint64(i), term)
	}
	return b
}

func sameLog(a, b *raft.Log) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type &&
		bytes.Equal(a.Data, b.Data) && bytes.Equal(a.Extensions, b.Extensions) &&
		a.AppendedAt.Equal(b.AppendedAt)
}

func openLog(t testing.TB, dir string, cfg Config) *Log {
	t.Helper()
	l, err := Open(dir, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func mustStore(t testing.TB, s raft.LogStore, logs []*raft.Log) {
	t.Helper()
	if err := s.StoreLogs(logs); err != nil {
		t.Fatalf("StoreLogs(%d..%d): %v", logs[0].Index, logs[len(logs)-1].Index, err)
	}
}

func mustDelete(t testing.TB, s raft.LogStore, min, max uint64) {
	t.Helper()
	if err := s.DeleteRange(min, max); err != nil {
		t.Fatalf("DeleteRange(%d, %d): %v", min, max, err)
	}
}

func bounds(t testing.TB, s raft.LogStore) (uint64, uint64) {
	t.Helper()
	first, err := s.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	last, err := s.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	return first, last
}

// compareIndex checks that both stores agree on index idx.
func compareIndex(t testing.TB, w *Log, m raft.LogStore, idx uint64) {
	t.Helper()
	var got, want raft.Log
	gerr := w.GetLog(idx, &got)
	werr := m.GetLog(idx, &want)
	switch {
	case werr != nil && !errors.Is(gerr, werr):
		t.Fatalf("GetLog(%d): wal err %v, inmem err %v", idx, gerr, werr)
	case werr == nil && gerr != nil:
		t.Fatalf("GetLog(%d): wal err %v, inmem has the entry", idx, gerr)
	case werr == nil && !sameLog(&got, &want):
		t.Fatalf("GetLog(%d): wal %+v, inmem %+v", idx, got, want)
	}
}

// compareStores checks bounds and entries. full compares every index,
// otherwise the boundaries and a sample.
func compareStores(t testing.TB, rng *rand.Rand, w *Log, m *raft.InmemStore, full bool) {
	t.Helper()
	wf, wl := bounds(t, w)
	mf, ml := bounds(t, m)
	if wf != mf || wl != ml {
		t.Fatalf("bounds: wal [%d, %d], inmem [%d, %d]", wf, wl, mf, ml)
	}
	st := w.Stats()
	if st.FirstIndex != wf || st.LastIndex != wl || (st.Segments == 0) != (wl == 0) {
		t.Fatalf("Stats %+v disagrees with bounds [%d, %d]", st, wf, wl)
	}
	if ml == 0 {
		for _, idx := range []uint64{0, 1, 2} {
			compareIndex(t, w, m, idx)
		}
		return
	}
	lo := mf - min(mf, 2)
	if full {
		for idx := lo; idx <= ml+2; idx++ {
			compareIndex(t, w, m, idx)
		}
		return
	}
	for _, idx := range []uint64{lo, mf, mf + 1, ml - 1, ml, ml + 1} {
		compareIndex(t, w, m, idx)
	}
	for range 10 {
		compareIndex(t, w, m, mf+rng.Uint64N(ml-mf+1))
	}
}

// TestConformanceWithInmemStore applies the same random sequence of the
// operations raft performs to a Log (with small segments, so that they roll
// over and get removed often) and to raft's InmemStore, comparing them after
// every step and across reopens.
func TestConformanceWithInmemStore(t *testing.T) {
	type variant struct {
		seed   uint64
		steps  int
		noSync bool
	}
	variants := []variant{{1, 600, true}, {2, 600, true}, {3, 600, true}, {4, 150, false}}
	if testing.Short() {
		variants = variants[:1]
	}
	for _, v := range variants {
		t.Run(fmt.Sprintf("seed=%d/nosync=%v", v.seed, v.noSync), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(v.seed, 42))
			dir := t.TempDir()
			cfg := Config{SegmentSize: testSegmentSize, NoSync: v.noSync}
			w := openLog(t, dir, cfg)
			defer func() { w.Close() }()
			m := raft.NewInmemStore()
			term, highest := uint64(1), uint64(0)
			ops := map[string]int{}

			for step := range v.steps {
				first, last := bounds(t, m)
				op := rng.IntN(100)
				switch {
				case op < 50 || last == 0: // append
					start := last + 1
					if last == 0 {
						// An empty log may restart anywhere, as after a
						// snapshot install.
						start = highest + 1 + rng.Uint64N(50)
					}
					if rng.IntN(10) == 0 {
						term++
					}
					b := randBatch(rng, start, term)
					mustStore(t, w, b)
					mustStore(t, m, b)
					ops["append"]++
				case op < 62: // compaction after a snapshot, keeping trailing logs
					max := first + rng.Uint64N(last-first+1)
					mustDelete(t, w, first, max)
					mustDelete(t, m, first, max)
					ops["prefix"]++
				case op < 74: // a follower's conflicting suffix, then the leader's entries
					min := first + 1 + rng.Uint64N(last-first+1)
					if min > last {
						min = last
					}
					if min <= first {
						break
					}
					mustDelete(t, w, min, last)
					mustDelete(t, m, min, last)
					term++
					if rng.IntN(4) != 0 {
						b := randBatch(rng, min, term)
						mustStore(t, w, b)
						mustStore(t, m, b)
					}
					ops["suffix"]++
				case op < 80: // StoreLogs overlapping the log: implicit truncation
					start := first + rng.Uint64N(last-first+1)
					term++
					b := randBatch(rng, start, term)
					mustStore(t, w, b)
					mustDelete(t, m, start, last)
					mustStore(t, m, b)
					ops["overlap"]++
				case op < 84: // removeOldLogs after a snapshot install or restore
					mustDelete(t, w, first, last)
					mustDelete(t, m, first, last)
					ops["all"]++
				case op < 88: // ranges that miss the log: nothing happens
					mustDelete(t, w, last+1, last+10)
					if first > 1 {
						mustDelete(t, w, 1, first-1)
					}
					ops["miss"]++
				case op < 94:
					if err := w.Close(); err != nil {
						t.Fatal(err)
					}
					w = openLog(t, dir, cfg)
					compareStores(t, rng, w, m, true)
					ops["reopen"]++
				default:
					compareStores(t, rng, w, m, true)
				}
				if _, l := bounds(t, m); l > highest {
					highest = l
				}
				// Keep the log short enough to compare often.
				if f, l := bounds(t, m); l > 0 && l-f > 400 {
					mustDelete(t, w, f, l-200)
					mustDelete(t, m, f, l-200)
				}
				compareStores(t, rng, w, m, step%25 == 0)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			w = openLog(t, dir, cfg)
			compareStores(t, rng, w, m, true)
			t.Logf("ops: %v, final %+v", ops, w.Stats())
		})
	}
}

// TestTruncationDurable checks that a suffix truncation survives a reopen,
// with and without entries written after it.
func TestTruncationDurable(t *testing.T) {
	entries := func(from, to, term uint64) []*raft.Log {
		var b []*raft.Log
		for i := from; i <= to; i++ {
			b = append(b, &raft.Log{Index: i, Term: term, Data: fmt.Appendf(nil, "entry %d term %d", i, term)})
		}
		return b
	}
	check := func(t *testing.T, l *Log, last uint64, termAt func(uint64) uint64) {
		t.Helper()
		first, got := bounds(t, l)
		if first != 1 || got != last {
			t.Fatalf("bounds [%d, %d], want [1, %d]", first, got, last)
		}
		for i := uint64(1); i <= last+1; i++ {
			var e raft.Log
			err := l.GetLog(i, &e)
			if i > last {
				if !errors.Is(err, raft.ErrLogNotFound) {
					t.Fatalf("GetLog(%d) = %v, want ErrLogNotFound", i, err)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("entry %d term %d", i, termAt(i)); e.Term != termAt(i) || string(e.Data) != want {
				t.Fatalf("GetLog(%d) = term %d %q, want %q", i, e.Term, e.Data, want)
			}
		}
	}
	for _, segSize := range []int64{testSegmentSize, 1 << 20} {
		t.Run(fmt.Sprintf("segment=%d", segSize), func(t *testing.T) {
			cfg := Config{SegmentSize: segSize}
			t.Run("then store", func(t *testing.T) {
				dir := t.TempDir()
				l := openLog(t, dir, cfg)
				for _, b := range [][]*raft.Log{entries(1, 50, 1), entries(51, 100, 1)} {
					mustStore(t, l, b)
				}
				mustDelete(t, l, 60, 100)
				mustStore(t, l, entries(60, 70, 2))
				l.Close()
				l = openLog(t, dir, cfg)
				defer l.Close()
				check(t, l, 70, func(i uint64) uint64 { return map[bool]uint64{true: 2, false: 1}[i >= 60] })
			})
			t.Run("nothing stored after", func(t *testing.T) {
				dir := t.TempDir()
				l := openLog(t, dir, cfg)
				mustStore(t, l, entries(1, 100, 1))
				mustDelete(t, l, 60, 100)
				l.Close()
				l = openLog(t, dir, cfg)
				defer l.Close()
				check(t, l, 59, func(uint64) uint64 { return 1 })
			})
		})
	}
}

func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestPrefixCompactionRemovesSegments checks that segments holding only
// compacted entries are deleted, and that the first index survives a reopen
// even when it falls inside a segment.
func TestPrefixCompactionRemovesSegments(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{SegmentSize: testSegmentSize}
	l := openLog(t, dir, cfg)
	defer func() { l.Close() }()
	data := bytes.Repeat([]byte("x"), 1000)
	// 1000 entries of ~1 KB in batches of 10: about 64 per 64 KiB segment.
	for i := uint64(1); i <= 1000; i += 10 {
		var b []*raft.Log
		for j := i; j < i+10; j++ {
			b = append(b, &raft.Log{Index: j, Term: 1, Data: data})
		}
		mustStore(t, l, b)
	}
	before := len(segmentFiles(t, dir))
	if before < 10 || before != l.Stats().Segments {
		t.Fatalf("%d segment files, Stats says %d; want >= 10 and equal", before, l.Stats().Segments)
	}
	mustDelete(t, l, 1, 800)
	after := segmentFiles(t, dir)
	if len(after) > before/4+1 || len(after) != l.Stats().Segments {
		t.Fatalf("after compaction to 801: %d files (was %d), Stats %+v", len(after), before, l.Stats())
	}
	if first, ok := parseSegmentName(filepath.Base(after[0])); !ok || first != 801 {
		t.Fatalf("first segment %s, want it renamed to 801", after[0])
	}
	l.Close()
	l = openLog(t, dir, cfg)
	if first, last := bounds(t, l); first != 801 || last != 1000 {
		t.Fatalf("after reopen: [%d, %d], want [801, 1000]", first, last)
	}
	var e raft.Log
	if err := l.GetLog(800, &e); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog(800) = %v, want ErrLogNotFound", err)
	}
	// Deleting everything removes every file; the log restarts anywhere.
	mustDelete(t, l, 801, 1000)
	if n := len(segmentFiles(t, dir)); n != 0 {
		t.Fatalf("%d segment files after deleting everything", n)
	}
	mustStore(t, l, []*raft.Log{{Index: 5000, Term: 3}})
	l.Close()
	l = openLog(t, dir, cfg)
	if first, last := bounds(t, l); first != 5000 || last != 5000 {
		t.Fatalf("after reset and reopen: [%d, %d], want [5000, 5000]", first, last)
	}
}

func TestLargeRecordsAndBatches(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{SegmentSize: testSegmentSize}
	l := openLog(t, dir, cfg)
	defer func() { l.Close() }()
	rng := rand.New(rand.NewPCG(7, 7))
	big := func(idx uint64, n int) *raft.Log {
		d := make([]byte, n)
		for i := range d {
			d[i] = byte(rng.Uint32())
		}
		return &raft.Log{Index: idx, Term: 1, Data: d}
	}
	m := raft.NewInmemStore()
	batches := [][]*raft.Log{
		{big(1, 100)},
		{big(2, 200_000)}, // larger than a segment
		{big(3, 10), big(4, 30_000), big(5, 40_000)},          // a batch larger than a segment
		{big(6, testSegmentSize-recordMinSize-endMarkerSize)}, // exactly one segment
		{big(7, 1)},
	}
	for _, b := range batches {
		mustStore(t, l, b)
		mustStore(t, m, b)
	}
	compareStores(t, rng, l, m, true)
	l.Close()
	l = openLog(t, dir, cfg)
	compareStores(t, rng, l, m, true)
	if st := l.Stats(); st.Segments != 5 || st.FileBytes < 4*testSegmentSize+200_000 {
		t.Fatalf("Stats %+v", st)
	}
}

func TestAPIErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir, Config{SegmentSize: 1000}); err == nil {
		t.Fatal("Open accepted a 1000-byte SegmentSize")
	}
	l := openLog(t, dir, Config{})
	if _, err := Open(dir, Config{}); err == nil {
		t.Fatal("second Open of the same directory succeeded")
	}
	e := func(idx, term uint64) *raft.Log { return &raft.Log{Index: idx, Term: term} }
	if err := l.StoreLogs([]*raft.Log{e(0, 1)}); err == nil {
		t.Fatal("stored index 0")
	}
	if err := l.StoreLogs([]*raft.Log{e(1, 1), e(3, 1)}); err == nil {
		t.Fatal("stored non-consecutive indexes")
	}
	if err := l.StoreLogs([]*raft.Log{e(1, 2), e(2, 1)}); err == nil {
		t.Fatal("stored a decreasing term")
	}
	mustStore(t, l, []*raft.Log{e(1, 2), e(2, 2), e(3, 2), e(4, 2)})
	if err := l.StoreLogs([]*raft.Log{e(5, 1)}); err == nil {
		t.Fatal("stored a term below the last one")
	}
	if err := l.DeleteRange(2, 3); err == nil {
		t.Fatal("DeleteRange made a hole")
	}
	mustDelete(t, l, 5, 9)
	mustDelete(t, l, 3, 2)
	if first, last := bounds(t, l); first != 1 || last != 4 {
		t.Fatalf("bounds [%d, %d] after no-op deletions", first, last)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.StoreLog(e(5, 2)); !errors.Is(err, ErrClosed) {
		t.Fatalf("StoreLog after Close: %v", err)
	}
	var got raft.Log
	if err := l.GetLog(1, &got); !errors.Is(err, ErrClosed) {
		t.Fatalf("GetLog after Close: %v", err)
	}
	// The lock is released by Close.
	l = openLog(t, dir, Config{})
	l.Close()
}

// TestConcurrentReaders runs readers against appends and both kinds of
// deletion, for the race detector and to check that a reader never sees a
// wrong entry.
func TestConcurrentReaders(t *testing.T) {
	t.Run("nosync", func(t *testing.T) { testConcurrentReaders(t, true, 5000) })
	t.Run("sync", func(t *testing.T) { testConcurrentReaders(t, false, 500) })
}

func testConcurrentReaders(t *testing.T, noSync bool, steps int) {
	l := openLog(t, t.TempDir(), Config{SegmentSize: testSegmentSize, NoSync: noSync})
	defer l.Close()
	payload := func(idx, term uint64) []byte { return fmt.Appendf(nil, "%d/%d", idx, term) }
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var readErr error
	var once sync.Once
	var reads atomic.Int64
	for r := range 3 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				first, _ := l.FirstIndex()
				last, _ := l.LastIndex()
				if last < first || last == 0 {
					continue
				}
				idx := first + rng.Uint64N(last-first+1)
				var e raft.Log
				err := l.GetLog(idx, &e)
				reads.Add(1)
				if errors.Is(err, raft.ErrLogNotFound) {
					continue // deleted since we looked at the bounds
				}
				if err == nil && (e.Index != idx || !bytes.Equal(e.Data, payload(idx, e.Term))) {
					err = fmt.Errorf("GetLog(%d) returned %d %q", idx, e.Index, e.Data)
				}
				if err != nil {
					once.Do(func() { readErr = err })
					return
				}
			}
		})
	}
	term := uint64(1)
	next := uint64(1)
	for step := range steps {
		var b []*raft.Log
		for j := range uint64(1 + step%7) {
			b = append(b, &raft.Log{Index: next + j, Term: term, Data: payload(next+j, term)})
		}
		mustStore(t, l, b)
		next += uint64(len(b))
		if step%50 == 49 {
			first, _ := l.FirstIndex()
			mustDelete(t, l, first, next-100)
		}
		if step%33 == 32 {
			term++
			next -= 5
			mustDelete(t, l, next, next+10)
		}
	}
	close(stop)
	wg.Wait()
	if readErr != nil {
		t.Fatal(readErr)
	}
	if reads.Load() < int64(steps/5) {
		t.Fatalf("only %d reads ran concurrently with the writes", reads.Load())
	}
	t.Logf("%d reads, %+v", reads.Load(), l.Stats())
}

// --- crash simulation ---

type dirImage map[string][]byte

func readImage(t testing.TB, dir string) dirImage {
	t.Helper()
	img := dirImage{}
	for _, p := range segmentFiles(t, dir) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		img[filepath.Base(p)] = b
	}
	return img
}

func writeImage(t testing.TB, img dirImage) string {
	t.Helper()
	dir := t.TempDir()
	for name, b := range img {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const sector = 512

// tear models what a crash in the middle of an unsynced write can leave:
// for every file changed between pre and post, each 512-byte sector has
// either its old or its new content. mode picks the pattern: sectors
// persisted in order up to a random point, a random subset, or the complete
// write with one byte flipped, or the file cut short. A file created by the
// write is kept (creation is synced before any write) with its old content
// being zeros, or dropped entirely when drop is set.
func tear(rng *rand.Rand, pre, post dirImage, mode int, drop bool) dirImage {
	out := dirImage{}
	for name, nb := range post {
		ob, existed := pre[name]
		if !existed {
			if drop {
				continue
			}
			ob = make([]byte, len(nb))
		}
		if bytes.Equal(ob, nb) {
			out[name] = nb
			continue
		}
		// The changed range, in sectors.
		lo, hi := 0, len(nb)
		for lo < hi && ob[lo] == nb[lo] {
			lo++
		}
		for hi > lo && ob[hi-1] == nb[hi-1] {
			hi--
		}
		b := slices.Clone(nb)
		s0, s1 := lo/sector, (hi+sector-1)/sector
		cut := s0 + rng.IntN(s1-s0+1)
		for s := s0; s < s1; s++ {
			old := false
			switch mode {
			case 0:
				old = s >= cut
			case 1:
				old = rng.IntN(2) == 0
			}
			if old {
				copy(b[s*sector:min((s+1)*sector, len(b))], ob[s*sector:min((s+1)*sector, len(ob))])
			}
		}
		switch mode {
		case 2:
			b[lo+rng.IntN(hi-lo)] ^= byte(1 + rng.IntN(255))
		case 3:
			b = b[:lo+rng.IntN(hi-lo)]
		}
		out[name] = b
	}
	return out
}

// recordIntact reports whether the bytes of entry idx are the same in the
// crash image as after the write.
func recordIntact(l *Log, crash, post dirImage, idx uint64) bool {
	s := l.findSegment(idx)
	off, end := s.bounds(idx)
	name := filepath.Base(s.path)
	c, ok := crash[name]
	return ok && int64(len(c)) >= end && bytes.Equal(c[off:end], post[name][off:end])
}

// checkRecovered opens a crash image and checks it holds exactly want, that
// nothing but zeros follows the last record of each segment, and that it
// accepts and keeps new entries.
func checkRecovered(t *testing.T, rng *rand.Rand, img dirImage, want []*raft.Log, what string) {
	t.Helper()
	dir := writeImage(t, img)
	// The image is a copy: syncing it would only slow the test down.
	cfg := Config{SegmentSize: testSegmentSize, NoSync: true}
	l, err := Open(dir, cfg)
	if err != nil {
		t.Fatalf("%s: Open: %v", what, err)
	}
	defer func() { l.Close() }()
	m := raft.NewInmemStore()
	if len(want) > 0 {
		mustStore(t, m, want)
	}
	compareStores(t, rng, l, m, true)
	for _, s := range l.segs {
		if end, err := lastNonZero(s.f, s.tail, s.size); err != nil || end != s.tail {
			t.Fatalf("%s: %s has non-zero bytes after its last record at %d (up to %d, %v)", what, s.path, s.tail, end, err)
		}
	}
	_, last := bounds(t, l)
	term := uint64(1000)
	if last == 0 {
		last = 10_000
	}
	b := randBatch(rng, last+1, term)
	mustStore(t, l, b)
	mustStore(t, m, b)
	l.Close()
	l = openLog(t, dir, cfg)
	compareStores(t, rng, l, m, true)
}

// TestCrashDuringStoreLogs tears every write in several ways and checks that
// recovery finds the entries before the write plus exactly the batch's
// records that are fully intact on disk, without garbage and without error.
func TestCrashDuringStoreLogs(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 99))
			dir := t.TempDir()
			l := openLog(t, dir, Config{SegmentSize: testSegmentSize})
			defer l.Close()
			var model []*raft.Log // the log's contents, from its first index
			next, term := uint64(1), uint64(1)
			steps := 60
			if testing.Short() {
				steps = 15
			}
			for step := range steps {
				pre := readImage(t, dir)
				if rng.IntN(8) == 0 {
					term++
				}
				b := randBatch(rng, next, term)
				mustStore(t, l, b)
				next += uint64(len(b))
				post := readImage(t, dir)
				for mode := range 4 {
					drop := mode == 0 && rng.IntN(2) == 0
					crash := tear(rng, pre, post, mode, drop)
					j := 0
					for j < len(b) && recordIntact(l, crash, post, b[j].Index) {
						j++
					}
					checkRecovered(t, rng, crash, append(slices.Clip(model), b[:j]...),
						fmt.Sprintf("step %d mode %d: %d of %d records intact", step, mode, j, len(b)))
				}
				model = append(model, b...)
				// Compact as raft would, keeping the images small and
				// the first segment often renamed.
				if len(model) > 40 && l.Stats().Segments > 2 {
					keep := 10 + rng.IntN(20)
					drop := model[len(model)-keep].Index - 1
					mustDelete(t, l, model[0].Index, drop)
					model = model[len(model)-keep:]
				}
			}
		})
	}
}

// TestCrashDuringTruncation tears the zeroing of a suffix truncation and
// drops any subset of the segment removals: recovery must find a prefix of
// the old log that is at least as long as the truncated log.
func TestCrashDuringTruncation(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for trial := range 20 {
		dir := t.TempDir()
		l := openLog(t, dir, Config{SegmentSize: testSegmentSize})
		var model []*raft.Log
		for range 10 + rng.IntN(20) {
			b := randBatch(rng, uint64(len(model)+1), 1)
			mustStore(t, l, b)
			model = append(model, b...)
		}
		pre := readImage(t, dir)
		min := uint64(2 + rng.IntN(len(model)-1))
		mustDelete(t, l, min, uint64(len(model)))
		post := readImage(t, dir)
		l.Close()
		for mode := range 4 {
			crash := tear(rng, pre, post, mode, false)
			for name, b := range pre {
				if _, ok := post[name]; !ok && rng.IntN(2) == 0 {
					crash[name] = b // removal not persisted
				}
			}
			d := writeImage(t, crash)
			r := openLog(t, d, Config{SegmentSize: testSegmentSize})
			first, last := bounds(t, r)
			if first != 1 || last < min-1 || last > uint64(len(model)) {
				t.Fatalf("trial %d mode %d: recovered [%d, %d] after truncating from %d of %d", trial, mode, first, last, min, len(model))
			}
			m := raft.NewInmemStore()
			mustStore(t, m, model[:last])
			compareStores(t, rng, r, m, true)
			r.Close()
		}
	}
}

// TestCrashDuringPrefixCompaction replays every intermediate directory state
// of a prefix compaction (removals oldest first, then the rename): each must
// recover as a contiguous suffix of the log.
func TestCrashDuringPrefixCompaction(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	for trial := range 10 {
		dir := t.TempDir()
		l := openLog(t, dir, Config{SegmentSize: testSegmentSize})
		var model []*raft.Log
		for range 40 {
			b := randBatch(rng, uint64(len(model)+1), 1)
			mustStore(t, l, b)
			model = append(model, b...)
		}
		pre := readImage(t, dir)
		newFirst := uint64(2 + rng.IntN(len(model)-1))
		mustDelete(t, l, 1, newFirst-1)
		post := readImage(t, dir)
		l.Close()
		// The segment holding newFirst is renamed (unless newFirst starts
		// a segment): it is the one file of pre whose content is in post
		// under another name. The others missing from post were removed.
		renamedFrom := ""
		for name, b := range post {
			if _, ok := pre[name]; !ok {
				for oldName, ob := range pre {
					if _, ok := post[oldName]; !ok && bytes.Equal(ob, b) {
						renamedFrom = oldName
					}
				}
			}
		}
		for name := range post {
			if _, ok := pre[name]; !ok && renamedFrom == "" {
				t.Fatalf("trial %d: new file %s in post is not a renamed one", trial, name)
			}
		}
		var removed []string
		for name := range pre {
			if _, ok := post[name]; !ok && name != renamedFrom {
				removed = append(removed, name)
			}
		}
		slices.Sort(removed)
		for k := 0; k <= len(removed); k++ {
			states := []dirImage{{}}
			for name, b := range pre {
				if !slices.Contains(removed[:k], name) {
					states[0][name] = b
				}
			}
			if k == len(removed) {
				states = append(states, post)
			}
			for _, crash := range states {
				r := openLog(t, writeImage(t, crash), Config{SegmentSize: testSegmentSize})
				first, last := bounds(t, r)
				if last != uint64(len(model)) || first < 1 || first > newFirst {
					t.Fatalf("trial %d after %d removals: recovered [%d, %d], want [1..%d, %d]", trial, k, first, last, newFirst, len(model))
				}
				m := raft.NewInmemStore()
				mustStore(t, m, model[first-1:])
				compareStores(t, rng, r, m, true)
				r.Close()
			}
		}
	}
}

// TestWriteFailureIsSticky checks that after a failed write the log refuses
// changes but still serves what it had, and that a reopen recovers.
func TestWriteFailureIsSticky(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, Config{SegmentSize: testSegmentSize})
	e := func(idx uint64) *raft.Log { return &raft.Log{Index: idx, Term: 1, Data: []byte{byte(idx)}} }
	mustStore(t, l, []*raft.Log{e(1), e(2)})
	// Make the next write fail: the active segment's file is closed under it.
	l.segs[0].f.Close()
	if err := l.StoreLog(e(3)); err == nil {
		t.Fatal("StoreLog on a closed file succeeded")
	}
	if err := l.StoreLog(e(3)); err == nil {
		t.Fatal("StoreLog after a failed write succeeded")
	}
	if err := l.DeleteRange(1, 1); err == nil {
		t.Fatal("DeleteRange after a failed write succeeded")
	}
	if first, last := bounds(t, l); first != 1 || last != 2 {
		t.Fatalf("bounds [%d, %d] after a failed write, want [1, 2]", first, last)
	}
	l.Close()
	l = openLog(t, dir, Config{SegmentSize: testSegmentSize})
	defer l.Close()
	mustStore(t, l, []*raft.Log{e(3)})
	if first, last := bounds(t, l); first != 1 || last != 3 {
		t.Fatalf("bounds [%d, %d] after reopen and store, want [1, 3]", first, last)
	}
}
