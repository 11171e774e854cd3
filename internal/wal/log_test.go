package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func openT(t testing.TB, dir string, cfg Config, noRelocate bool) *Log {
	t.Helper()
	// Small relocation requests, so that relocations take several.
	s, err := open(dir, cfg, options{noRelocate: noRelocate, relocateChunk: 16 << 10})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func streamT(t testing.TB, s *Log, id uint32) *Stream {
	t.Helper()
	st, err := s.Stream(id)
	if err != nil {
		t.Fatalf("Stream(%d): %v", id, err)
	}
	return st
}

func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// storeBounds is bounds without testing.TB, for goroutines.
func storeBounds(s raft.LogStore) (uint64, uint64, error) {
	first, err := s.FirstIndex()
	if err != nil {
		return 0, 0, err
	}
	last, err := s.LastIndex()
	return first, last, err
}

func compareStreamIndex(st *Stream, m raft.LogStore, idx uint64) error {
	var got, want raft.Log
	gerr := st.GetLog(idx, &got)
	werr := m.GetLog(idx, &want)
	switch {
	case werr != nil && !errors.Is(gerr, werr):
		return fmt.Errorf("stream %d GetLog(%d): err %v, inmem err %v", st.id, idx, gerr, werr)
	case werr == nil && gerr != nil:
		return fmt.Errorf("stream %d GetLog(%d): err %v, inmem has the entry", st.id, idx, gerr)
	case werr == nil && !sameLog(&got, &want):
		return fmt.Errorf("stream %d GetLog(%d): %+v, inmem %+v", st.id, idx, got, want)
	}
	return nil
}

// compareStream is compareStores for a Stream, returning the first
// difference instead of failing, so that goroutines can use it.
func compareStream(rng *rand.Rand, st *Stream, m *raft.InmemStore, full bool) error {
	sf, sl, err := storeBounds(st)
	if err != nil {
		return err
	}
	mf, ml, _ := storeBounds(m)
	if sf != mf || sl != ml {
		return fmt.Errorf("stream %d bounds [%d, %d], inmem [%d, %d]", st.id, sf, sl, mf, ml)
	}
	if ss := st.Stats(); ss.FirstIndex != sf || ss.LastIndex != sl || (ss.Segments == 0) != (sl == 0) {
		return fmt.Errorf("stream %d Stats %+v disagrees with bounds [%d, %d]", st.id, ss, sf, sl)
	}
	var idxs []uint64
	switch {
	case ml == 0:
		idxs = []uint64{0, 1, 2}
	case full:
		for idx := mf - min(mf, 2); idx <= ml+2; idx++ {
			idxs = append(idxs, idx)
		}
	default:
		idxs = []uint64{mf - min(mf, 2), mf, mf + 1, ml - 1, ml, ml + 1}
		for range 10 {
			idxs = append(idxs, mf+rng.Uint64N(ml-mf+1))
		}
	}
	for _, idx := range idxs {
		if err := compareStreamIndex(st, m, idx); err != nil {
			return err
		}
	}
	return nil
}

// conformer drives one stream and its model with the operations raft
// performs (as TestConformanceWithInmemStore does for a Log).
type conformer struct {
	sh      *Log
	st      *Stream
	m       *raft.InmemStore
	rng     *rand.Rand
	term    uint64
	highest uint64
	ops     map[string]int
}

func (c *conformer) step() error {
	w, m, rng := c.st, c.m, c.rng
	first, last, _ := storeBounds(m)
	both := func(f func(raft.LogStore) error) error {
		if err := f(w); err != nil {
			return fmt.Errorf("stream %d: %w", w.id, err)
		}
		return f(m)
	}
	store := func(b []*raft.Log) func(raft.LogStore) error {
		return func(s raft.LogStore) error { return s.StoreLogs(b) }
	}
	del := func(min, max uint64) func(raft.LogStore) error {
		return func(s raft.LogStore) error { return s.DeleteRange(min, max) }
	}
	var err error
	op := rng.IntN(100)
	switch {
	case op < 50 || last == 0: // append
		start := last + 1
		if last == 0 {
			start = c.highest + 1 + rng.Uint64N(50)
		}
		if rng.IntN(10) == 0 {
			c.term++
		}
		err = both(store(randBatch(rng, start, c.term)))
		c.ops["append"]++
	case op < 62: // compaction after a snapshot
		err = both(del(first, first+rng.Uint64N(last-first+1)))
		c.ops["prefix"]++
	case op < 74: // a follower's conflicting suffix, then the leader's entries
		min := first + 1 + rng.Uint64N(last-first+1)
		if min > last {
			min = last
		}
		if min <= first {
			break
		}
		if err = both(del(min, last)); err != nil {
			break
		}
		c.term++
		if rng.IntN(4) != 0 {
			err = both(store(randBatch(rng, min, c.term)))
		}
		c.ops["suffix"]++
	case op < 80: // StoreLogs overlapping the log: implicit truncation
		start := first + rng.Uint64N(last-first+1)
		c.term++
		b := randBatch(rng, start, c.term)
		if err = w.StoreLogs(b); err != nil {
			break
		}
		if err = m.DeleteRange(start, last); err != nil {
			break
		}
		err = m.StoreLogs(b)
		c.ops["overlap"]++
	case op < 84: // removeOldLogs after a snapshot install
		err = both(del(first, last))
		c.ops["all"]++
	case op < 88: // ranges that miss the log
		err = w.DeleteRange(last+1, last+10)
		if err == nil && first > 1 {
			err = w.DeleteRange(1, first-1)
		}
		c.ops["miss"]++
	case op < 91:
		err = c.sh.relocate(w, false)
		c.ops["relocate"]++
	}
	if err != nil {
		return err
	}
	if _, l, _ := storeBounds(m); l > c.highest {
		c.highest = l
	}
	if f, l, _ := storeBounds(m); l > 0 && l-f > 400 {
		if err := both(del(f, l-200)); err != nil {
			return err
		}
	}
	return compareStream(rng, w, m, rng.IntN(25) == 0)
}

// TestConformance drives 5 streams of one Log concurrently,
// each from its own goroutine, with the operations raft performs (and
// relocations), comparing each with raft's InmemStore after every step and
// after reopens. Small segments make them roll, get reclaimed and pinned.
func TestConformance(t *testing.T) {
	type variant struct {
		seed          uint64
		rounds, steps int
		noSync        bool
		depth         int
	}
	variants := []variant{{1, 8, 50, true, 0}, {2, 8, 50, true, 1}, {3, 5, 25, false, 0}}
	if testing.Short() {
		variants = variants[:1]
	}
	const nstreams = 5
	for _, v := range variants {
		t.Run(fmt.Sprintf("seed=%d/nosync=%v/depth=%d", v.seed, v.noSync, v.depth), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfg := Config{SegmentSize: testSegmentSize, NoSync: v.noSync, SyncDepth: v.depth}
			s := openT(t, dir, cfg, false)
			defer func() { s.Close() }()
			cs := make([]*conformer, nstreams)
			for i := range cs {
				cs[i] = &conformer{
					sh: s, st: streamT(t, s, uint32(i*7+1)), m: raft.NewInmemStore(),
					rng: rand.New(rand.NewPCG(v.seed, uint64(i))), term: 1, ops: map[string]int{},
				}
			}
			rng := rand.New(rand.NewPCG(v.seed, 1000))
			for round := range v.rounds {
				var wg sync.WaitGroup
				errs := make([]error, nstreams)
				for i, c := range cs {
					wg.Go(func() {
						for range v.steps {
							if err := c.step(); err != nil {
								errs[i] = err
								return
							}
						}
					})
				}
				wg.Wait()
				if err := errors.Join(errs...); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				if rng.IntN(2) == 0 {
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
					s = openT(t, dir, cfg, false)
					for _, c := range cs {
						c.sh, c.st = s, streamT(t, s, c.st.id)
					}
					// Nothing runs in the background before the first
					// write: the files are the segments.
					if st := s.Stats(); len(segmentFiles(t, dir)) != st.Segments {
						t.Fatalf("%d files, Stats %+v", len(segmentFiles(t, dir)), st)
					}
				}
				for _, c := range cs {
					if err := compareStream(rng, c.st, c.m, true); err != nil {
						t.Fatalf("round %d: %v", round, err)
					}
				}
			}
			ops := map[string]int{}
			for _, c := range cs {
				for k, n := range c.ops {
					ops[k] += n
				}
			}
			t.Logf("ops: %v, %+v", ops, s.Stats())

			// Emptying every stream frees every sealed segment.
			for _, c := range cs {
				if f, l, _ := storeBounds(c.m); l > 0 {
					mustDelete(t, c.st, f, l)
					mustDelete(t, c.m, f, l)
				}
			}
			if st := s.Stats(); st.Segments != 1 || st.LiveBytes != 0 || st.Streams != 0 || len(segmentFiles(t, dir)) != 1 {
				t.Fatalf("after deleting everything: %+v, files %v", st, segmentFiles(t, dir))
			}
			mustStore(t, cs[0].st, []*raft.Log{{Index: 5, Term: 9}})
			mustStore(t, cs[0].m, []*raft.Log{{Index: 5, Term: 9}})
			s.Close()
			s = openT(t, dir, cfg, false)
			for _, c := range cs {
				c.st = streamT(t, s, c.st.id)
				if err := compareStream(rng, c.st, c.m, true); err != nil {
					t.Fatal(err)
				}
			}
			if ids := s.Streams(); !slices.Equal(ids, []uint32{cs[0].st.id}) {
				t.Fatalf("Streams() = %v", ids)
			}
		})
	}
}

func entryRange(from, to, term uint64, size int) []*raft.Log {
	var b []*raft.Log
	for i := from; i <= to; i++ {
		d := make([]byte, size)
		binary.LittleEndian.PutUint64(d, i)
		b = append(b, &raft.Log{Index: i, Term: term, Data: d})
	}
	return b
}

// TestReclaimAndRelocate checks that compaction frees segments, that
// an emptied stream pins nothing, and that an idle stream with live entries
// is relocated instead of pinning the log forever.
func TestReclaimAndRelocate(t *testing.T) {
	for _, relocate := range []bool{true, false} {
		t.Run(fmt.Sprintf("relocate=%v", relocate), func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{SegmentSize: testSegmentSize, NoSync: true}
			s := openT(t, dir, cfg, !relocate)
			defer func() { s.Close() }()
			idle, emptied, busy := streamT(t, s, 1), streamT(t, s, 2), streamT(t, s, 3)
			mustStore(t, idle, entryRange(1, 10, 1, 1000))
			mustStore(t, emptied, entryRange(1, 10, 1, 1000))
			mustDelete(t, emptied, 1, 10)
			maxSegs := 0
			for i := uint64(1); i <= 3000; i += 10 {
				mustStore(t, busy, entryRange(i, i+9, 1, 1000))
				if f, l := bounds(t, busy); l-f > 200 {
					mustDelete(t, busy, f, l-100)
				}
				maxSegs = max(maxSegs, s.Stats().Segments)
				// A relocation is started before the call that triggers
				// it returns; let it finish so that the bound below
				// measures the policy, not the scheduler.
				waitFor(t, "relocation", func() bool {
					s.mu.Lock()
					defer s.mu.Unlock()
					return !s.relocating
				})
			}
			st := s.Stats()
			t.Logf("max %d segments, %+v", maxSegs, st)
			if relocate {
				// Live: 10 + 100..200 entries of ~1 KB, i.e. 2 to 4
				// segments; relocation allows as much garbage plus 2.
				if maxSegs > 12 || st.Relocations == 0 {
					t.Fatalf("with relocation: up to %d segments, %+v", maxSegs, st)
				}
			} else if maxSegs < 40 {
				t.Fatalf("without relocation the idle stream should pin every segment: only %d", maxSegs)
			}
			if es := emptied.Stats(); es.Segments != 0 || es.UsedBytes != 0 {
				t.Fatalf("emptied stream pins %+v", es)
			}
			s.Close()
			s = openT(t, dir, cfg, !relocate)
			idle, busy = streamT(t, s, 1), streamT(t, s, 3)
			m := raft.NewInmemStore()
			mustStore(t, m, entryRange(1, 10, 1, 1000))
			rng := rand.New(rand.NewPCG(1, 2))
			if err := compareStream(rng, idle, m, true); err != nil {
				t.Fatal(err)
			}
			f, l := bounds(t, busy)
			m = raft.NewInmemStore()
			mustStore(t, m, entryRange(f, l, 1, 1000))
			if err := compareStream(rng, busy, m, true); err != nil {
				t.Fatal(err)
			}
			if ids := s.Streams(); !slices.Equal(ids, []uint32{1, 3}) {
				t.Fatalf("Streams() = %v", ids)
			}
		})
	}
}

// --- crash simulation ---

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

// placedRec is a record written between two images.
type placedRec struct {
	name string
	rec  recInfo
}

// newRecords returns the records of post that pre does not have, in log
// order.
func newRecords(t testing.TB, pre, post dirImage) []placedRec {
	t.Helper()
	names := make([]string, 0, len(post))
	for name := range post {
		names = append(names, name)
	}
	sort.Strings(names) // zero-padded sequence numbers: log order
	var out []placedRec
	for _, name := range names {
		var from int64
		if ob, ok := pre[name]; ok {
			tail, _, _, err := scanSegment(bytes.NewReader(ob), int64(len(ob)), func(recInfo) {})
			if err != nil {
				t.Fatal(err)
			}
			from = tail
		}
		nb := post[name]
		if _, _, _, err := scanSegment(bytes.NewReader(nb), int64(len(nb)), func(r recInfo) {
			if r.off >= from {
				out = append(out, placedRec{name, r})
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func modelStore(m, b []*raft.Log) []*raft.Log {
	if len(b) == 0 {
		return m
	}
	start := b[0].Index
	if len(m) == 0 || start == m[len(m)-1].Index+1 {
		return append(slices.Clip(m), b...)
	}
	first, last := m[0].Index, m[len(m)-1].Index
	if start <= first || start > last+1 {
		return slices.Clone(b)
	}
	return append(slices.Clip(m[:start-first]), b...)
}

func modelDelete(m []*raft.Log, min, max uint64) []*raft.Log {
	if len(m) == 0 || min > max {
		return m
	}
	first, last := m[0].Index, m[len(m)-1].Index
	switch {
	case max < first || min > last:
		return m
	case min <= first && max >= last:
		return nil
	case min <= first:
		return m[max+1-first:]
	default:
		return m[:min-first]
	}
}

// crashOp is one stream's call in a crash-test step.
type crashOp struct {
	kind     string // store, delete, relocate
	batch    []*raft.Log
	min, max uint64
}

func (o *crashOp) apply(m []*raft.Log, records int) []*raft.Log {
	switch o.kind {
	case "store":
		return modelStore(m, o.batch[:min(records, len(o.batch))])
	case "delete":
		if records > 0 {
			return modelDelete(m, o.min, o.max)
		}
	}
	return m // a relocation changes no entry, torn or not
}

// checkRecovered opens a crash image and checks that every stream
// holds exactly its model, that nothing but zeros follows the last record
// of each segment, and that the streams accept and keep new entries.
func checkRecovered(t *testing.T, rng *rand.Rand, img dirImage, ids []uint32, models [][]*raft.Log, what string) {
	t.Helper()
	dir := writeImage(t, img)
	cfg := Config{SegmentSize: testSegmentSize, NoSync: true}
	s, err := open(dir, cfg, options{noRelocate: true})
	if err != nil {
		t.Fatalf("%s: Open: %v", what, err)
	}
	defer func() { s.Close() }()
	ms := make([]*raft.InmemStore, len(ids))
	for i, id := range ids {
		ms[i] = raft.NewInmemStore()
		if len(models[i]) > 0 {
			mustStore(t, ms[i], models[i])
		}
		if err := compareStream(rng, streamT(t, s, id), ms[i], true); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	for _, seg := range s.segs {
		if end, err := lastNonZero(seg.f, seg.tail, seg.size); err != nil || end != seg.tail {
			t.Fatalf("%s: %s has non-zero bytes after its last record at %d (up to %d, %v)", what, seg.path, seg.tail, end, err)
		}
	}
	for i, id := range ids {
		st := streamT(t, s, id)
		_, last := bounds(t, st)
		if last == 0 {
			last = 10_000
		}
		b := randBatch(rng, last+1, 1000)
		mustStore(t, st, b)
		mustStore(t, ms[i], b)
	}
	s.Close()
	s = openT(t, dir, cfg, true)
	for i, id := range ids {
		if err := compareStream(rng, streamT(t, s, id), ms[i], true); err != nil {
			t.Fatalf("%s, after reopen: %v", what, err)
		}
	}
}

// TestCrash runs steps in which several streams store, delete or get
// relocated concurrently (forming one or more group commits), and tears
// the writes of each step in the ways TestCrashDuringStoreLogs does. The log
// must recover to the state before the step plus, for each stream, the
// records of its call that precede the first torn record of the step (in
// log order): so every call that returned before the step is kept. As
// writes are ordered, a torn segment has no later segment created in the
// same step (tear alone would not know that). Segment
// removals by reclamation are modelled as done oldest first, and only once
// the step's records are all durable.
func TestCrash(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 77))
			dir := t.TempDir()
			// The tears are simulated on copies: real syncs of the live log
			// only slow the test down, except to vary the group commits.
			s := openT(t, dir, Config{SegmentSize: testSegmentSize, NoSync: seed > 0}, true)
			defer s.Close()
			ids := []uint32{3, 1, 4, 15}
			streams := make([]*Stream, len(ids))
			for i, id := range ids {
				streams[i] = streamT(t, s, id)
			}
			models := make([][]*raft.Log, len(ids))
			terms := []uint64{1, 1, 1, 1}
			steps := 30
			if testing.Short() {
				steps = 10
			}
			stats := map[string]int{}
			for step := range steps {
				ops := make([]*crashOp, len(ids))
				for i := range ids {
					if rng.IntN(3) == 0 {
						continue
					}
					m := models[i]
					var first, last uint64
					if len(m) > 0 {
						first, last = m[0].Index, m[len(m)-1].Index
					}
					switch p := rng.IntN(100); {
					case p < 65 || len(m) < 4:
						start := last + 1
						if len(m) == 0 {
							start = 1 + rng.Uint64N(100)
						}
						if rng.IntN(8) == 0 {
							terms[i]++
						}
						ops[i] = &crashOp{kind: "store", batch: randBatch(rng, start, terms[i])}
					case p < 73:
						terms[i]++
						start := first + 1 + rng.Uint64N(last-first)
						ops[i] = &crashOp{kind: "store", batch: randBatch(rng, start, terms[i])}
					case p < 83:
						ops[i] = &crashOp{kind: "delete", min: first, max: first + rng.Uint64N(last-first)}
					case p < 88:
						ops[i] = &crashOp{kind: "delete", min: first + 1 + rng.Uint64N(last-first), max: last}
					case p < 91:
						ops[i] = &crashOp{kind: "delete", min: first, max: last}
					default:
						ops[i] = &crashOp{kind: "relocate"}
					}
					stats[ops[i].kind]++
				}
				pre := readImage(t, dir)
				var wg sync.WaitGroup
				errs := make([]error, len(ids))
				for i, op := range ops {
					if op == nil {
						continue
					}
					wg.Go(func() {
						switch op.kind {
						case "store":
							errs[i] = streams[i].StoreLogs(op.batch)
						case "delete":
							errs[i] = streams[i].DeleteRange(op.min, op.max)
						case "relocate":
							errs[i] = s.relocate(streams[i], false)
						}
					})
				}
				wg.Wait()
				if err := errors.Join(errs...); err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
				post := readImage(t, dir)
				recs := newRecords(t, pre, post)
				var removed []string
				for name := range pre {
					if _, ok := post[name]; !ok {
						removed = append(removed, name)
					}
				}
				slices.Sort(removed)
				for mode := range 4 {
					drop := mode == 0 && rng.IntN(2) == 0
					crash := tear(rng, pre, post, mode, drop)
					cut := 0
					for cut < len(recs) {
						r := recs[cut]
						c, ok := crash[r.name]
						end := r.rec.off + int64(r.rec.size)
						if !ok || int64(len(c)) < end || !bytes.Equal(c[r.rec.off:end], post[r.name][r.rec.off:end]) {
							break
						}
						cut++
					}
					// Each segment's part of a group is synced before the
					// next segment is created: after a torn record, the
					// step's new segments do not exist yet.
					if cut < len(recs) {
						for name := range crash {
							if _, old := pre[name]; !old && name > recs[cut].name {
								delete(crash, name)
							}
						}
					}
					keep := removed // not yet removed at the crash
					if cut == len(recs) {
						keep = removed[rng.IntN(len(removed)+1):]
					}
					for _, name := range keep {
						crash[name] = pre[name]
					}
					want := make([][]*raft.Log, len(ids))
					for i, op := range ops {
						want[i] = models[i]
						if op == nil {
							continue
						}
						n := 0
						for _, r := range recs[:cut] {
							if r.rec.stream == ids[i] {
								n++
							}
						}
						want[i] = op.apply(models[i], n)
					}
					checkRecovered(t, rng, crash, ids, want,
						fmt.Sprintf("step %d mode %d drop %v: %d of %d records intact, %d of %d removals kept back",
							step, mode, drop, cut, len(recs), len(keep), len(removed)))
				}
				for i, op := range ops {
					if op != nil {
						models[i] = op.apply(models[i], len(op.batch)+1)
					}
				}
				// Compact as raft would, so that segments get reclaimed.
				for i, m := range models {
					if len(m) > 40 {
						mustDelete(t, streams[i], m[0].Index, m[len(m)-16].Index)
						models[i] = m[len(m)-15:]
					}
				}
			}
			t.Logf("ops %v, %+v", stats, s.Stats())
		})
	}
}

// TestTruncationDurable checks that both kinds of deletion survive a
// reopen while other streams keep appending after the markers.
func TestTruncationDurable(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{SegmentSize: testSegmentSize}
	s := openT(t, dir, cfg, true)
	a, b := streamT(t, s, 1), streamT(t, s, 2)
	mustStore(t, a, entryRange(1, 100, 1, 100))
	mustStore(t, b, entryRange(1, 100, 1, 100))
	mustDelete(t, a, 60, 100)
	mustDelete(t, b, 1, 40)
	mustStore(t, b, entryRange(101, 150, 1, 100))
	mustStore(t, a, entryRange(60, 70, 2, 100))
	mustDelete(t, a, 65, 70) // nothing stored after this one in a
	s.Close()
	s = openT(t, dir, cfg, true)
	defer s.Close()
	a, b = streamT(t, s, 1), streamT(t, s, 2)
	ma, mb := raft.NewInmemStore(), raft.NewInmemStore()
	mustStore(t, ma, entryRange(1, 59, 1, 100))
	mustStore(t, ma, entryRange(60, 64, 2, 100))
	mustStore(t, mb, entryRange(41, 150, 1, 100))
	rng := rand.New(rand.NewPCG(3, 3))
	for _, c := range []struct {
		st *Stream
		m  *raft.InmemStore
	}{{a, ma}, {b, mb}} {
		if err := compareStream(rng, c.st, c.m, true); err != nil {
			t.Fatal(err)
		}
	}
	// The term of the new last entry is known after the truncation.
	if err := a.StoreLogs([]*raft.Log{{Index: 65, Term: 1}}); err == nil {
		t.Fatal("stored a term below the last one after a truncation")
	}
}

func TestAPIErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir, Config{SegmentSize: 1000}); err == nil {
		t.Fatal("Open accepted a 1000-byte SegmentSize")
	}
	s := openT(t, dir, Config{}, false)
	if _, err := Open(dir, Config{}); err == nil {
		t.Fatal("second Open of the same directory succeeded")
	}
	l := streamT(t, s, 7)
	if again := streamT(t, s, 7); again != l {
		t.Fatal("Stream(7) returned two different streams")
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
	if err := l.StoreLogs([]*raft.Log{e(3, 1)}); err == nil {
		t.Fatal("overwrote with a term below the previous entry's")
	}
	if err := l.DeleteRange(2, 3); err == nil {
		t.Fatal("DeleteRange made a hole")
	}
	mustDelete(t, l, 5, 9)
	mustDelete(t, l, 3, 2)
	if first, last := bounds(t, l); first != 1 || last != 4 {
		t.Fatalf("bounds [%d, %d] after no-op deletions", first, last)
	}
	if !l.IsMonotonic() || l.ID() != 7 {
		t.Fatal("IsMonotonic or ID")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.StoreLog(e(5, 2)); !errors.Is(err, ErrClosed) {
		t.Fatalf("StoreLog after Close: %v", err)
	}
	if err := l.DeleteRange(1, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("DeleteRange after Close: %v", err)
	}
	var got raft.Log
	if err := l.GetLog(1, &got); !errors.Is(err, ErrClosed) {
		t.Fatalf("GetLog after Close: %v", err)
	}
	if _, err := l.FirstIndex(); !errors.Is(err, ErrClosed) {
		t.Fatalf("FirstIndex after Close: %v", err)
	}
	if _, err := s.Stream(8); !errors.Is(err, ErrClosed) {
		t.Fatalf("Stream after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

}

// TestSegmentHoleRefused checks that a missing segment in the middle
// of the log (which no crash produces) is an error, not a silent loss.
func TestSegmentHoleRefused(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{SegmentSize: testSegmentSize, NoSync: true}
	s := openT(t, dir, cfg, true)
	for i := uint64(1); i <= 200; i += 10 {
		mustStore(t, streamT(t, s, 1), entryRange(i, i+9, 1, 1000))
	}
	s.Close()
	files := segmentFiles(t, dir)
	if len(files) < 3 {
		t.Fatalf("only %d segments", len(files))
	}
	if err := os.Remove(files[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, cfg); err == nil {
		t.Fatal("Open accepted a log with a missing segment")
	}
}

// TestWriteFailureIsSticky checks that after a failed write every
// stream refuses changes but still serves what it had, and that a reopen
// recovers.
func TestWriteFailureIsSticky(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{SegmentSize: testSegmentSize}
	s := openT(t, dir, cfg, true)
	a, b := streamT(t, s, 1), streamT(t, s, 2)
	e := func(idx uint64) *raft.Log { return &raft.Log{Index: idx, Term: 1, Data: []byte{byte(idx)}} }
	mustStore(t, a, []*raft.Log{e(1), e(2)})
	mustStore(t, b, []*raft.Log{e(1)})
	s.mu.Lock()
	s.segs[len(s.segs)-1].f.Close() // the next write fails
	s.mu.Unlock()
	if err := a.StoreLog(e(3)); err == nil {
		t.Fatal("StoreLog on a closed file succeeded")
	}
	if err := b.StoreLog(e(2)); err == nil {
		t.Fatal("StoreLog on another stream after a failed write succeeded")
	}
	if err := a.DeleteRange(1, 1); err == nil {
		t.Fatal("DeleteRange after a failed write succeeded")
	}
	if first, last := bounds(t, a); first != 1 || last != 2 {
		t.Fatalf("bounds [%d, %d] after a failed write, want [1, 2]", first, last)
	}
	s.Close()
	s = openT(t, dir, cfg, true)
	defer s.Close()
	a = streamT(t, s, 1)
	mustStore(t, a, []*raft.Log{e(3)})
	if first, last := bounds(t, a); first != 1 || last != 3 {
		t.Fatalf("bounds [%d, %d] after reopen and store, want [1, 3]", first, last)
	}
}

// TestGroupCommit checks that concurrent appends to different streams
// share fdatasyncs: 16 goroutines, each appending one entry at a time to
// its own stream, need fewer syncs than calls, with one group at a time and
// with several in flight.
func TestGroupCommit(t *testing.T) {
	for _, depth := range []int{1, 4} {
		t.Run(fmt.Sprintf("depth=%d", depth), func(t *testing.T) {
			s := openT(t, t.TempDir(), Config{SyncDepth: depth}, true)
			defer s.Close()
			const streams, calls = 16, 150
			data := make([]byte, 200)
			before := s.Stats()
			var wg sync.WaitGroup
			errs := make([]error, streams)
			start := time.Now()
			for i := range streams {
				st := streamT(t, s, uint32(i))
				wg.Go(func() {
					for j := range uint64(calls) {
						if err := st.StoreLogs([]*raft.Log{{Index: j + 1, Term: 1, Data: data}}); err != nil {
							errs[i] = err
							return
						}
					}
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			after := s.Stats()
			syncs := after.Syncs - before.Syncs
			t.Logf("%d calls in %v: %d syncs, %d groups (%.1f calls per sync)",
				streams*calls, time.Since(start), syncs, after.Groups-before.Groups, float64(streams*calls)/float64(syncs))
			if syncs == 0 || streams*calls < 2*syncs {
				t.Fatalf("%d calls needed %d syncs: no group commit", streams*calls, syncs)
			}
			for i := range streams {
				if f, l := bounds(t, streamT(t, s, uint32(i))); f != 1 || l != calls {
					t.Fatalf("stream %d: [%d, %d]", i, f, l)
				}
			}
		})
	}
}

// TestSyncFailureOrder fails the fdatasync of one group while a later
// group's succeeds: the later group must neither complete first nor
// succeed, since nothing is known of the file after a failed fdatasync.
func TestSyncFailureOrder(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	hook := func(*segment) error {
		if calls.Add(1) == 1 {
			<-release
			return errors.New("injected fdatasync failure")
		}
		return nil
	}
	dir := t.TempDir()
	cfg := Config{SegmentSize: testSegmentSize, SyncDepth: 2} // two groups in flight
	s, err := open(dir, cfg, options{noRelocate: true, syncHook: hook})
	if err != nil {
		t.Fatal(err)
	}
	a, b := streamT(t, s, 1), streamT(t, s, 2)
	e := []*raft.Log{{Index: 1, Term: 1, Data: []byte("x")}}
	errA, errB := make(chan error), make(chan error)
	go func() { errA <- a.StoreLogs(e) }()
	waitFor(t, "the first fdatasync", func() bool { return calls.Load() == 1 })
	go func() { errB <- b.StoreLogs(e) }()
	waitFor(t, "the second fdatasync", func() bool { return calls.Load() == 2 })
	select {
	case err := <-errB:
		t.Fatalf("the later group completed (%v) before the earlier one", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-errA; err == nil {
		t.Fatal("StoreLogs succeeded despite its failed fdatasync")
	}
	if err := <-errB; err == nil {
		t.Fatal("StoreLogs of a group after a failed fdatasync succeeded")
	}
	for _, st := range []*Stream{a, b} {
		if f, l := bounds(t, st); f != 0 || l != 0 {
			t.Fatalf("stream %d: [%d, %d] published after a failed sync", st.id, f, l)
		}
	}
	if err := b.StoreLogs(e); err == nil {
		t.Fatal("StoreLogs after a failed fdatasync succeeded")
	}
	s.Close()
	s = openT(t, dir, cfg, true)
	defer s.Close()
	mustStore(t, streamT(t, s, 3), e)
}

// TestUnderRaft runs three single-node raft groups on streams of one
// Log (behind raft's LogCache, as in production), with frequent
// snapshots and compaction, restarts them on the same files and checks that
// every FSM is rebuilt from its snapshot plus log replay.
func TestUnderRaft(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{SegmentSize: testSegmentSize}
	const groups, n, tail = 3, 1500, 30
	var wantHash uint64
	for v := uint64(1); v <= n+tail; v++ {
		wantHash = seqHash(wantHash, v)
	}
	type node struct {
		stable *raft.InmemStore
		snaps  *raft.InmemSnapshotStore
		fsm    *seqFSM
		r      *raft.Raft
		first  uint64
		last   uint64
	}
	nodes := make([]*node, groups)
	for i := range nodes {
		nodes[i] = &node{stable: raft.NewInmemStore(), snaps: raft.NewInmemSnapshotStore()}
	}
	start := func(s *Log, nd *node, id int, bootstrap bool) {
		t.Helper()
		conf := raftConfig()
		st := streamT(t, s, uint32(id))
		logs, err := raft.NewLogCache(64, st)
		if err != nil {
			t.Fatal(err)
		}
		addr, trans := raft.NewInmemTransport(raft.ServerAddress(fmt.Sprintf("g%d", id)))
		if bootstrap {
			c := raft.Configuration{Servers: []raft.Server{{ID: conf.LocalID, Address: addr}}}
			if err := raft.BootstrapCluster(conf, logs, nd.stable, nd.snaps, trans, c); err != nil {
				t.Fatal(err)
			}
		}
		nd.fsm = &seqFSM{}
		nd.r, err = raft.NewRaft(conf, nd.fsm, logs, nd.stable, nd.snaps, trans)
		if err != nil {
			t.Fatal(err)
		}
	}
	apply := applyRange
	parallel := func(f func(i int, nd *node) error) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, groups)
		for i, nd := range nodes {
			wg.Go(func() { errs[i] = f(i, nd) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}

	s := openT(t, dir, cfg, false)
	for i, nd := range nodes {
		start(s, nd, i, true)
	}
	for _, nd := range nodes {
		waitFor(t, "leadership", func() bool { return nd.r.State() == raft.Leader })
	}
	parallel(func(i int, nd *node) error {
		// Apply in chunks so that snapshots and compactions interleave
		// with appends of the other groups.
		for v := uint64(1); v <= n; v += 100 {
			if err := apply(nd.r, v, min(v+99, n)); err != nil {
				return err
			}
		}
		if err := nd.r.Snapshot().Error(); err != nil {
			return err
		}
		return apply(nd.r, n+1, n+tail)
	})
	for i, nd := range nodes {
		got, hash, _, _, err := nd.fsm.state()
		if err != nil || got != n+tail || hash != wantHash {
			t.Fatalf("group %d before restart: n=%d hash=%d err=%v", i, got, hash, err)
		}
		st := streamT(t, s, uint32(i))
		nd.first, nd.last = bounds(t, st)
		if nd.first <= 1 || nd.last < n+tail {
			t.Fatalf("group %d: log [%d, %d]: expected compaction and at least %d entries", i, nd.first, nd.last, n+tail)
		}
		if err := nd.r.Shutdown().Error(); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	t.Logf("before restart: %+v", st)
	if st.Segments > 12 {
		t.Fatalf("%d segments for 3 compacted logs", st.Segments)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, dir, cfg, false)
	defer s.Close()
	for i, nd := range nodes {
		if f, l := bounds(t, streamT(t, s, uint32(i))); f != nd.first || l != nd.last {
			t.Fatalf("group %d after reopen: log [%d, %d], was [%d, %d]", i, f, l, nd.first, nd.last)
		}
		start(s, nd, i, false)
	}
	defer func() {
		for _, nd := range nodes {
			if err := nd.r.Shutdown().Error(); err != nil {
				t.Error(err)
			}
		}
	}()
	for i, nd := range nodes {
		waitFor(t, "replay", func() bool { got, _, _, _, _ := nd.fsm.state(); return got >= n+tail })
		got, hash, applied, restores, err := nd.fsm.state()
		if err != nil || got != n+tail || hash != wantHash || restores != 1 || applied < tail {
			t.Fatalf("group %d after restart: n=%d hash=%d applied=%d restores=%d err=%v", i, got, hash, applied, restores, err)
		}
		waitFor(t, "leadership", func() bool { return nd.r.State() == raft.Leader })
	}
	parallel(func(i int, nd *node) error { return apply(nd.r, n+tail+1, n+tail+100) })
	for i, nd := range nodes {
		if got, _, _, _, err := nd.fsm.state(); err != nil || got != n+tail+100 {
			t.Fatalf("group %d after more applies: n=%d err=%v", i, got, err)
		}
	}
}

// TestRelocationInChunks relocates a stream in several requests,
// compacts it past the first ones, so that the segment holding the first
// copies is reclaimed, and checks that a reopen finds the stream intact:
// the kindReplace then sees only part of the copies.
func TestRelocationInChunks(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{SegmentSize: testSegmentSize, NoSync: true}
	s := openT(t, dir, cfg, true)
	defer func() { s.Close() }()
	a, b := streamT(t, s, 1), streamT(t, s, 2)
	for i := uint64(1); i <= 200; i += 10 {
		mustStore(t, a, entryRange(i, i+9, 1, 1000))
		mustStore(t, b, entryRange(i, i+9, 1, 1000))
	}
	mustDelete(t, b, 1, 200) // b pins nothing
	before := s.Stats()
	if err := s.relocate(a, false); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Relocations != 1 || st.Groups-before.Groups < 10 || st.Segments > 5 {
		// About 200 KB in 16 KiB requests, into new segments; the old
		// ones, now unpinned, are gone.
		t.Fatalf("relocation in chunks: before %+v, after %+v", before, st)
	}
	// Keep only the copies in the segment of the last one (and of the
	// kindReplace), which must not be the segment of the first copies.
	firstSeg, lastSeg := a.locs[0].seg, a.locs[len(a.locs)-1].seg
	if firstSeg == lastSeg {
		t.Fatal("the relocation fits in one segment")
	}
	keep := uint64(200)
	for keep > 1 && a.locs[keep-2].seg == lastSeg {
		keep--
	}
	mustDelete(t, a, 1, keep-1)
	if _, err := os.Stat(firstSeg.path); !os.IsNotExist(err) {
		t.Fatalf("the segment of the first copies was not reclaimed: %v, %+v", err, s.Stats())
	}
	m := raft.NewInmemStore()
	mustStore(t, m, entryRange(keep, 200, 1, 1000))
	rng := rand.New(rand.NewPCG(4, 4))
	for range 2 {
		s.Close()
		s = openT(t, dir, cfg, true)
		a = streamT(t, s, 1)
		if err := compareStream(rng, a, m, true); err != nil {
			t.Fatal(err)
		}
	}
	mustStore(t, a, entryRange(201, 210, 2, 10))
	mustStore(t, m, entryRange(201, 210, 2, 10))
	s.Close()
	s = openT(t, dir, cfg, true)
	if err := compareStream(rng, streamT(t, s, 1), m, true); err != nil {
		t.Fatal(err)
	}
}
