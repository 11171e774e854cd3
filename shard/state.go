package shard

import (
	"bytes"
	"sort"
)

// A list ("set") of one user: following, followers or mutual.
//
// Every list is kept in list order: followTime descending, then user ID
// (the string) ascending. That is the order pages are served in, so a page
// is a binary search plus a sequential read, whatever the list's length.
//
// Small lists (up to maxBlock entries, the vast majority) are a single block
// in list order; membership is a scan of at most 128 uint32s.
//
// Large lists are split into pages of at most maxBlock entries, indexed
// twice: tp holds pages in list order (for paging) and up holds pages in uid
// order (for membership and to find an entry's time). Both indexes are plain
// slices of page descriptors, about 0.3 bytes per entry, so even a list of
// ten million followers needs only a few hundred kilobytes of index and no
// tree of pointers.

type setKind int

const (
	kFollowing setKind = iota
	kFollowers
	kMutual
	numKinds
)

type setRef struct {
	h uint32 // block handle (small), largeBit|index (large), or 0 (empty)
	n uint32 // entries
}

const largeBit = 1 << 31

func (r setRef) large() bool { return r.h&largeBit != 0 }

// userRec is a Store's record of one of its users: the uid and the three
// lists. A Store keeps records only for users with a non-empty list; a
// user that only appears in others' lists has none.
type userRec struct {
	uid  uint32
	sets [numKinds]setRef
}

// noRec stands for the record of a user without lists. Never written.
var noRec userRec

func (u *userRec) empty() bool {
	return u.sets[0].n == 0 && u.sets[1].n == 0 && u.sets[2].n == 0
}

// tpage describes one page of a large list in list order; t and u are the
// page's first entry.
type tpage struct {
	t int64
	u uint32
	h uint32
	n uint32
}

// upage describes one page of a large list in uid order; u is its first uid.
type upage struct {
	u uint32
	h uint32
	n uint32
}

type largeSet struct {
	gen uint32
	tp  []tpage
	up  []upage
}

// state is everything a reader needs. The Store owns one and mutates it; a
// View owns a frozen copy of the top-level slices.
type state struct {
	recs   table[userRec] // by record number
	nrecs  uint32         // record numbers in use or free
	large  table[largeSet]
	blocks slabs
	names  *Users
}

func (st *state) idBytes(uid uint32) []byte { return st.names.name(uid) }

// cmpKey compares entry (et, eu) with key (t, s) in list order: -1 if the
// entry comes first, 0 if equal, +1 if it comes after.
func (st *state) cmpKey(et int64, eu uint32, t int64, s []byte) int {
	switch {
	case et > t:
		return -1
	case et < t:
		return 1
	}
	return bytes.Compare(st.idBytes(eu), s)
}

// lowerBound returns the first index in b[:n] whose entry does not come
// before key (t, s).
func (st *state) lowerBound(b blk, n int, t int64, s []byte) int {
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if st.cmpKey(b.time(m), b.u[m], t, s) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// uidBound returns the first index in b[:n] (sorted by uid) with uid >= x.
func uidBound(b blk, n int, x uint32) int {
	u := b.u[:n]
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if u[m] < x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// tpageFor returns the index of the page of ls.tp that key (t, s) belongs
// to: the last page whose first entry does not come after the key, or 0.
func (st *state) tpageFor(tp []tpage, t int64, s []byte) int {
	i := sort.Search(len(tp), func(i int) bool { return st.cmpKey(tp[i].t, tp[i].u, t, s) > 0 })
	if i > 0 {
		i--
	}
	return i
}

// upageFor returns the index of the page of up that uid belongs to.
func upageFor(up []upage, uid uint32) int {
	i := sort.Search(len(up), func(i int) bool { return up[i].u > uid })
	if i > 0 {
		i--
	}
	return i
}

// lookup returns the time of uid's entry in the list.
func (st *state) lookup(r setRef, uid uint32) (int64, bool) {
	if r.n == 0 {
		return 0, false
	}
	if !r.large() {
		b := st.blocks.block(r.h)
		if i := b.find(int(r.n), uid); i >= 0 {
			return b.time(i), true
		}
		return 0, false
	}
	ls := st.large.get(r.h &^ largeBit)
	p := ls.up[upageFor(ls.up, uid)]
	b := st.blocks.block(p.h)
	i := uidBound(b, int(p.n), uid)
	if i < int(p.n) && b.u[i] == uid {
		return b.time(i), true
	}
	return 0, false
}

// scan visits up to limit entries of the list in list order, starting at
// the first entry after key (t, s) when after is set, otherwise at the
// beginning. It reports whether entries remain after the last one visited.
func (st *state) scan(r setRef, after bool, t int64, s []byte, limit int, fn func(uid uint32, t int64)) bool {
	if r.n == 0 || limit <= 0 {
		return false
	}
	if !r.large() {
		b := st.blocks.block(r.h)
		n := int(r.n)
		i := 0
		if after {
			i = st.lowerBound(b, n, t, s)
			if i < n && st.cmpKey(b.time(i), b.u[i], t, s) == 0 {
				i++
			}
		}
		for ; i < n && limit > 0; i, limit = i+1, limit-1 {
			fn(b.u[i], b.time(i))
		}
		return i < n
	}
	ls := st.large.get(r.h &^ largeBit)
	p, i := 0, 0
	if after {
		p = st.tpageFor(ls.tp, t, s)
		b := st.blocks.block(ls.tp[p].h)
		n := int(ls.tp[p].n)
		i = st.lowerBound(b, n, t, s)
		if i < n && st.cmpKey(b.time(i), b.u[i], t, s) == 0 {
			i++
		}
	}
	for p < len(ls.tp) {
		pg := ls.tp[p]
		b := st.blocks.block(pg.h)
		n := int(pg.n)
		for ; i < n; i++ {
			if limit == 0 {
				return true
			}
			fn(b.u[i], b.time(i))
			limit--
		}
		p, i = p+1, 0
	}
	return false
}

// each visits every entry of the list in list order.
func (st *state) each(r setRef, fn func(uid uint32, t int64)) {
	st.scan(r, false, 0, nil, int(r.n), fn)
}

// from visits the list's entries in list order starting at position off
// (0 is the first entry) while fn returns true, and returns the position
// of the first entry not visited: r.n when fn accepted them all. A frozen
// list (a View's) keeps its positions, so an export resumes at one.
func (st *state) from(r setRef, off int, fn func(uid uint32, t int64) bool) int {
	n := int(r.n)
	if off >= n {
		return n
	}
	if !r.large() {
		b := st.blocks.block(r.h)
		for i := off; i < n; i++ {
			if !fn(b.u[i], b.time(i)) {
				return i
			}
		}
		return n
	}
	ls := st.large.get(r.h &^ largeBit)
	pos, p := 0, 0
	for p < len(ls.tp) && off-pos >= int(ls.tp[p].n) {
		pos += int(ls.tp[p].n)
		p++
	}
	for i := off - pos; p < len(ls.tp); p, i = p+1, 0 {
		pg := ls.tp[p]
		b := st.blocks.block(pg.h)
		for ; i < int(pg.n); i++ {
			if !fn(b.u[i], b.time(i)) {
				return pos + i
			}
		}
		pos += int(pg.n)
	}
	return n
}
