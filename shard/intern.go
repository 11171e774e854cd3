package shard

import (
	"hash/maphash"
)

// User IDs are interned: each distinct ID a Store knows gets a 32-bit number
// (a uid) that every list entry uses instead of the string. The string's
// bytes live once, in an append-only arena of 64 KiB chunks; freed strings
// are reused by later strings of the same length. uids are allocated
// smallest-free-first, so that the numbering is a function of the operation
// history alone: two replicas that apply the same log hold the same uids, and
// a snapshot restores them exactly.

const (
	strChunkBits = 16
	strChunkSize = 1 << strChunkBits
	maxIDLen     = 64
)

// strMem is the read side of the string arena.
type strMem [][]byte

func (m strMem) get(off uint32, n uint8) []byte {
	c := m[off>>strChunkBits]
	o := off & (strChunkSize - 1)
	return c[o : o+uint32(n) : o+uint32(n)]
}

// strAlloc is the write side of the string arena.
type strAlloc struct {
	mem     *strMem
	tail    uint32                 // next free byte offset
	free    [maxIDLen + 1][]uint32 // freed offsets by length
	pending []uint64               // (len<<32 | off) freed while a View was live
	inUse   int64
}

func (a *strAlloc) alloc(s string) uint32 {
	n := len(s)
	var off uint32
	if f := a.free[n]; len(f) > 0 {
		off = f[len(f)-1]
		a.free[n] = f[:len(f)-1]
	} else {
		if int(a.tail>>strChunkBits) >= len(*a.mem) || int(a.tail&(strChunkSize-1))+n > strChunkSize {
			*a.mem = append(*a.mem, make([]byte, strChunkSize))
			a.tail = uint32(len(*a.mem)-1) << strChunkBits
		}
		off = a.tail
		a.tail += uint32(n)
	}
	c := (*a.mem)[off>>strChunkBits]
	copy(c[off&(strChunkSize-1):], s)
	a.inUse += int64(n)
	return off
}

func (a *strAlloc) release(off uint32, n uint8, deferred bool) {
	a.inUse -= int64(n)
	if deferred {
		a.pending = append(a.pending, uint64(n)<<32|uint64(off))
		return
	}
	a.free[n] = append(a.free[n], off)
}

func (a *strAlloc) reclaim() {
	for _, p := range a.pending {
		n := p >> 32
		a.free[n] = append(a.free[n], uint32(p))
	}
	a.pending = a.pending[:0]
}

// internTable maps ID strings to uids: open addressing with linear probing
// and backward-shift deletion. A slot is (hash32<<32 | uid+1); 0 is empty.
// Only writers and point lookups use it; Views never do, so it needs no
// copy-on-write.
type internTable struct {
	seed  maphash.Seed
	slots []uint64
	n     int
}

func newInternTable() internTable {
	return internTable{seed: maphash.MakeSeed(), slots: make([]uint64, 64)}
}

func (t *internTable) hash(s string) uint64 { return maphash.String(t.seed, s) }

// lookup returns the uid of s. eq reports whether uid's string equals s.
func (t *internTable) lookup(s string, h uint64, eq func(uid uint32, s string) bool) (uint32, bool) {
	mask := uint64(len(t.slots) - 1)
	tag := h >> 32
	for i := tag & mask; ; i = (i + 1) & mask {
		v := t.slots[i]
		if v == 0 {
			return 0, false
		}
		if v>>32 == tag && eq(uint32(v)-1, s) {
			return uint32(v) - 1, true
		}
	}
}

func (t *internTable) insert(h uint64, uid uint32) {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.grow()
	}
	t.put(h>>32<<32 | uint64(uid+1))
	t.n++
}

func (t *internTable) put(v uint64) {
	mask := uint64(len(t.slots) - 1)
	for i := (v >> 32) & mask; ; i = (i + 1) & mask {
		if t.slots[i] == 0 {
			t.slots[i] = v
			return
		}
	}
}

func (t *internTable) grow() {
	old := t.slots
	t.slots = make([]uint64, len(old)*2)
	for _, v := range old {
		if v != 0 {
			t.put(v)
		}
	}
}

// remove deletes uid (whose string hashes to h).
func (t *internTable) remove(h uint64, uid uint32) {
	mask := uint64(len(t.slots) - 1)
	want := uint64(uid + 1)
	i := (h >> 32) & mask
	for t.slots[i]&0xffffffff != want {
		if t.slots[i] == 0 {
			panic("shard: interned uid missing from table")
		}
		i = (i + 1) & mask
	}
	// Backward-shift deletion keeps probe sequences unbroken without
	// tombstones.
	for {
		t.slots[i] = 0
		j := i
		for {
			j = (j + 1) & mask
			v := t.slots[j]
			if v == 0 {
				t.n--
				return
			}
			home := (v >> 32) & mask
			// Move v into the hole at i if its home is not in (i, j].
			if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
				t.slots[i] = v
				i = j
				break
			}
		}
	}
}

// uidHeap is a min-heap of free uids.
type uidHeap []uint32

func (h *uidHeap) push(x uint32) {
	*h = append(*h, x)
	a := *h
	i := len(a) - 1
	for i > 0 {
		p := (i - 1) / 2
		if a[p] <= a[i] {
			break
		}
		a[p], a[i] = a[i], a[p]
		i = p
	}
}

func (h *uidHeap) pop() uint32 {
	a := *h
	x := a[0]
	n := len(a) - 1
	a[0] = a[n]
	a = a[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && a[r] < a[l] {
			m = r
		}
		if a[i] <= a[m] {
			break
		}
		a[i], a[m] = a[m], a[i]
		i = m
	}
	*h = a
	return x
}
