package shard

// internTable is an open-addressing hash table of 32-bit values with linear
// probing and backward-shift deletion. A slot is (hash32<<32 | value+1); 0
// is empty. The table stores only the hash and the value: callers compare
// keys themselves through the eq function of lookup, so one table type
// serves the node's ID → uid index (keyed by ID strings) and each Store's
// uid → record index (keyed by uids).
type internTable struct {
	slots []uint64
	n     int
}

func newInternTable() internTable { return internTable{slots: make([]uint64, 16)} }

// lookup returns the value whose key hashes to h and for which eq holds.
func (t *internTable) lookup(h uint64, eq func(v uint32) bool) (uint32, bool) {
	mask := uint64(len(t.slots) - 1)
	tag := h >> 32
	for i := tag & mask; ; i = (i + 1) & mask {
		v := t.slots[i]
		if v == 0 {
			return 0, false
		}
		if v>>32 == tag && eq(uint32(v)-1) {
			return uint32(v) - 1, true
		}
	}
}

func (t *internTable) insert(h uint64, v uint32) {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.grow()
	}
	t.put(h>>32<<32 | uint64(v+1))
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

// remove deletes value v, whose key hashes to h.
func (t *internTable) remove(h uint64, v uint32) {
	mask := uint64(len(t.slots) - 1)
	want := uint64(v + 1)
	i := (h >> 32) & mask
	for t.slots[i]&0xffffffff != want {
		if t.slots[i] == 0 {
			panic("shard: value missing from its hash table")
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
			s := t.slots[j]
			if s == 0 {
				t.n--
				return
			}
			home := (s >> 32) & mask
			// Move s into the hole at i if its home is not in (i, j].
			if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
				t.slots[i] = s
				i = j
				break
			}
		}
	}
}

// bytes is the table's memory.
func (t *internTable) bytes() int64 { return int64(len(t.slots)) * 8 }
