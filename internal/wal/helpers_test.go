package wal

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
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

// --- crash simulation ---

type dirImage map[string][]byte

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
