package shard

import (
	"cmp"
	"slices"
)

// Mutations of lists. All of them keep copy-on-write: a block, page index or
// table chunk that a live View may read is copied before it changes, and
// memory freed while a View is live is only reused after the View is
// released.

// sharedGen reports whether something last written in generation g may be
// read by a live View.
func (s *Store) sharedGen(g uint32) bool { return s.viewsLive && g <= s.frozen }

func (s *Store) allocBlock(n int) uint32 { return s.balloc.alloc(classFor(n), s.gen) }

func (s *Store) freeBlock(h uint32) { s.balloc.release(h, s.viewsLive) }

func (s *Store) block(h uint32) blk { return s.st.blocks.block(h) }

// blkInsert inserts (uid, t) at index i of the block *hp holding n entries,
// moving it to a larger (or unshared) block when needed. n+1 <= maxBlock.
func (s *Store) blkInsert(hp *uint32, n, i int, uid uint32, t int64) {
	h := *hp
	if h == 0 {
		nh := s.allocBlock(1)
		s.block(nh).set(0, uid, t)
		*hp = nh
		return
	}
	if n < capOf(h) && !s.sharedGen(s.balloc.gen(h)) {
		b := s.block(h)
		copyEntries(b, i+1, b, i, n-i)
		b.set(i, uid, t)
		return
	}
	nh := s.allocBlock(n + 1)
	nb, ob := s.block(nh), s.block(h)
	copyEntries(nb, 0, ob, 0, i)
	nb.set(i, uid, t)
	copyEntries(nb, i+1, ob, i, n-i)
	s.freeBlock(h)
	*hp = nh
}

// blkRemove removes index i of the block *hp holding n entries; it moves
// the rest to a smaller block once the block is at most half full.
func (s *Store) blkRemove(hp *uint32, n, i int) {
	h := *hp
	if n == 1 {
		s.freeBlock(h)
		*hp = 0
		return
	}
	shrink := classCaps[classFor(n-1)]*2 <= capOf(h)
	if !shrink && !s.sharedGen(s.balloc.gen(h)) {
		b := s.block(h)
		copyEntries(b, i, b, i+1, n-i-1)
		return
	}
	nh := s.allocBlock(n - 1)
	nb, ob := s.block(nh), s.block(h)
	copyEntries(nb, 0, ob, 0, i)
	copyEntries(nb, i, ob, i+1, n-i-1)
	s.freeBlock(h)
	*hp = nh
}

// blkFrom allocates a block holding entries src[from:to].
func (s *Store) blkFrom(src blk, from, to int) uint32 {
	h := s.allocBlock(to - from)
	copyEntries(s.block(h), 0, src, from, to-from)
	return h
}

// largeMut returns a writable large list header.
func (s *Store) largeMut(idx uint32) *largeSet {
	ls := s.st.large.mut(idx, s.gen, s.frozen, s.viewsLive)
	if s.sharedGen(ls.gen) {
		ls.tp = append([]tpage(nil), ls.tp...)
		ls.up = append([]upage(nil), ls.up...)
	}
	ls.gen = s.gen
	return ls
}

func (s *Store) allocLarge() uint32 {
	var idx uint32
	if n := len(s.largeFree); n > 0 {
		idx = s.largeFree[n-1]
		s.largeFree = s.largeFree[:n-1]
	} else {
		idx = s.nlarge
		s.nlarge++
		s.st.large.ensure(idx, s.gen)
	}
	ls := s.st.large.mut(idx, s.gen, s.frozen, s.viewsLive)
	*ls = largeSet{gen: s.gen}
	s.nlargeLive++
	return idx
}

func (s *Store) freeLarge(idx uint32) {
	ls := s.st.large.mut(idx, s.gen, s.frozen, s.viewsLive)
	*ls = largeSet{}
	s.nlargeLive--
	if s.viewsLive {
		s.largePending = append(s.largePending, idx)
	} else {
		s.largeFree = append(s.largeFree, idx)
	}
}

// setInsert adds (uid, t) to the list r. The caller has checked that uid is
// not in it. key is uid's ID.
func (s *Store) setInsert(r *setRef, uid uint32, t int64, key []byte) {
	if !r.large() {
		n := int(r.n)
		if n < maxBlock {
			i := 0
			if n > 0 {
				i = s.st.lowerBound(s.block(r.h), n, t, key)
			}
			s.blkInsert(&r.h, n, i, uid, t)
			r.n++
			return
		}
		s.toLarge(r)
	}
	ls := s.largeMut(r.h &^ largeBit)
	s.tpInsert(ls, uid, t, key)
	s.upInsert(ls, uid, t)
	r.n++
}

// setRemove removes uid, whose entry has time t, from the list r.
func (s *Store) setRemove(r *setRef, uid uint32, t int64, key []byte) {
	if !r.large() {
		b := s.block(r.h)
		i := b.find(int(r.n), uid)
		if i < 0 {
			panic("shard: removing a missing entry")
		}
		s.blkRemove(&r.h, int(r.n), i)
		r.n--
		return
	}
	ls := s.largeMut(r.h &^ largeBit)
	s.tpRemove(ls, uid, t, key)
	s.upRemove(ls, uid)
	r.n--
	if r.n <= maxBlock/2 {
		s.toSmall(r)
	}
}

// toLarge converts a full small list into a large one.
func (s *Store) toLarge(r *setRef) {
	src := s.block(r.h)
	n := int(r.n)
	idx := s.allocLarge()
	ls := s.st.large.get(idx)
	half := n / 2
	for _, part := range [][2]int{{0, half}, {half, n}} {
		h := s.blkFrom(src, part[0], part[1])
		ls.tp = append(ls.tp, tpage{t: src.time(part[0]), u: src.u[part[0]], h: h, n: uint32(part[1] - part[0])})
	}
	// The uid index: the same entries sorted by uid.
	tmp := make([]entry, n)
	for i := range tmp {
		tmp[i] = entry{src.u[i], src.time(i)}
	}
	slices.SortFunc(tmp, func(a, b entry) int { return cmp.Compare(a.uid, b.uid) })
	ls.up = s.buildUpages(ls.up, tmp)
	s.freeBlock(r.h)
	r.h = largeBit | idx
}

type entry struct {
	uid uint32
	t   int64
}

// buildUpages appends to up the pages for entries sorted by uid, filled to
// three quarters so that random inserts do not split at once.
func (s *Store) buildUpages(up []upage, es []entry) []upage {
	const fill = maxBlock * 3 / 4
	for len(es) > 0 {
		k := min(len(es), fill)
		if rest := len(es) - k; rest > 0 && rest < fill/2 {
			k = len(es) // avoid a tiny last page
			if k > maxBlock {
				k = len(es) / 2
			}
		}
		h := s.allocBlock(k)
		b := s.block(h)
		for i, e := range es[:k] {
			b.set(i, e.uid, e.t)
		}
		up = append(up, upage{u: es[0].uid, h: h, n: uint32(k)})
		es = es[k:]
	}
	return up
}

// toSmall converts a large list of at most maxBlock entries into one block.
func (s *Store) toSmall(r *setRef) {
	idx := r.h &^ largeBit
	ls := s.st.large.get(idx)
	h := s.allocBlock(int(r.n))
	b := s.block(h)
	i := 0
	for _, p := range ls.tp {
		copyEntries(b, i, s.block(p.h), 0, int(p.n))
		i += int(p.n)
		s.freeBlock(p.h)
	}
	for _, p := range ls.up {
		s.freeBlock(p.h)
	}
	s.freeLarge(idx)
	r.h = h
}

func (s *Store) tpInsert(ls *largeSet, uid uint32, t int64, key []byte) {
	p := s.st.tpageFor(ls.tp, t, key)
	pg := &ls.tp[p]
	n := int(pg.n)
	i := s.st.lowerBound(s.block(pg.h), n, t, key)
	if n == maxBlock {
		// Split the full page. Inserts at the newest end of the list (the
		// common case: a new follower) start a fresh page instead, so
		// that pages behind it stay full.
		src := s.block(pg.h)
		var left, right tpage
		if i == 0 {
			left = tpage{t: t, u: uid, h: s.allocBlock(1), n: 1}
			s.block(left.h).set(0, uid, t)
			right = *pg
			ls.tp = append(ls.tp, tpage{})
			copy(ls.tp[p+1:], ls.tp[p:])
			ls.tp[p], ls.tp[p+1] = left, right
			return
		}
		half := n / 2
		lh, rh := s.blkFrom(src, 0, half), s.blkFrom(src, half, n)
		s.freeBlock(pg.h)
		left = tpage{t: src.time(0), u: src.u[0], h: lh, n: uint32(half)}
		right = tpage{t: s.block(rh).time(0), u: s.block(rh).u[0], h: rh, n: uint32(n - half)}
		ls.tp = append(ls.tp, tpage{})
		copy(ls.tp[p+1:], ls.tp[p:])
		ls.tp[p], ls.tp[p+1] = left, right
		if i >= half {
			p, i = p+1, i-half
		}
		pg = &ls.tp[p]
		n = int(pg.n)
	}
	s.blkInsert(&pg.h, n, i, uid, t)
	pg.n++
	if i == 0 {
		pg.t, pg.u = t, uid
	}
}

func (s *Store) upInsert(ls *largeSet, uid uint32, t int64) {
	p := upageFor(ls.up, uid)
	pg := &ls.up[p]
	n := int(pg.n)
	i := uidBound(s.block(pg.h), n, uid)
	if n == maxBlock {
		src := s.block(pg.h)
		half := n / 2
		lh, rh := s.blkFrom(src, 0, half), s.blkFrom(src, half, n)
		s.freeBlock(pg.h)
		left := upage{u: src.u[0], h: lh, n: uint32(half)}
		right := upage{u: s.block(rh).u[0], h: rh, n: uint32(n - half)}
		ls.up = append(ls.up, upage{})
		copy(ls.up[p+1:], ls.up[p:])
		ls.up[p], ls.up[p+1] = left, right
		if i >= half {
			p, i = p+1, i-half
		}
		pg = &ls.up[p]
		n = int(pg.n)
	}
	s.blkInsert(&pg.h, n, i, uid, t)
	pg.n++
	if i == 0 {
		pg.u = uid
	}
}

func (s *Store) tpRemove(ls *largeSet, uid uint32, t int64, key []byte) {
	p := s.st.tpageFor(ls.tp, t, key)
	pg := &ls.tp[p]
	b := s.block(pg.h)
	n := int(pg.n)
	i := s.st.lowerBound(b, n, t, key)
	if i >= n || b.u[i] != uid {
		panic("shard: removing a missing entry (time index)")
	}
	s.blkRemove(&pg.h, n, i)
	pg.n--
	if pg.n == 0 {
		ls.tp = append(ls.tp[:p], ls.tp[p+1:]...)
		return
	}
	if i == 0 {
		nb := s.block(pg.h)
		pg.t, pg.u = nb.time(0), nb.u[0]
	}
	s.tpMerge(ls, p)
}

func (s *Store) upRemove(ls *largeSet, uid uint32) {
	p := upageFor(ls.up, uid)
	pg := &ls.up[p]
	b := s.block(pg.h)
	n := int(pg.n)
	i := uidBound(b, n, uid)
	if i >= n || b.u[i] != uid {
		panic("shard: removing a missing entry (uid index)")
	}
	s.blkRemove(&pg.h, n, i)
	pg.n--
	if pg.n == 0 {
		ls.up = append(ls.up[:p], ls.up[p+1:]...)
		return
	}
	if i == 0 {
		pg.u = s.block(pg.h).u[0]
	}
	s.upMerge(ls, p)
}

// Pages that fall under a quarter full merge with a neighbour when the two
// fit in three quarters of a page, so that pages stay reasonably full after
// many removals without merging and splitting back and forth.
const (
	mergeBelow = maxBlock / 4
	mergeUpTo  = maxBlock * 3 / 4
)

// tpMerge merges time-index page p with a neighbour when mergePartner
// allows it.
func (s *Store) tpMerge(ls *largeSet, p int) {
	a, b, ok := mergePartner(len(ls.tp), p, func(i int) uint32 { return ls.tp[i].n })
	if !ok {
		return
	}
	ls.tp[a].h = s.joinBlocks(ls.tp[a].h, ls.tp[a].n, ls.tp[b].h, ls.tp[b].n)
	ls.tp[a].n += ls.tp[b].n
	ls.tp = append(ls.tp[:b], ls.tp[b+1:]...)
}

// upMerge merges uid-index page p with a neighbour when mergePartner
// allows it.
func (s *Store) upMerge(ls *largeSet, p int) {
	a, b, ok := mergePartner(len(ls.up), p, func(i int) uint32 { return ls.up[i].n })
	if !ok {
		return
	}
	ls.up[a].h = s.joinBlocks(ls.up[a].h, ls.up[a].n, ls.up[b].h, ls.up[b].n)
	ls.up[a].n += ls.up[b].n
	ls.up = append(ls.up[:b], ls.up[b+1:]...)
}

// mergePartner decides whether page p of an index of npages pages (size(i)
// entries in page i) merges with a neighbour, and returns the two pages in
// order. Only a page under mergeBelow merges, with the smaller of its
// neighbours (the next one on a tie), and only when the two fit in
// mergeUpTo. Both indexes of a large list follow this one rule.
func mergePartner(npages, p int, size func(i int) uint32) (a, b int, ok bool) {
	if size(p) >= mergeBelow {
		return 0, 0, false
	}
	q := p + 1
	if q >= npages || (p > 0 && size(p-1) < size(q)) {
		q = p - 1
	}
	if q < 0 {
		return 0, 0, false
	}
	a, b = min(p, q), max(p, q)
	if int(size(a))+int(size(b)) > mergeUpTo {
		return 0, 0, false
	}
	return a, b, true
}

// joinBlocks copies the na entries of block ha, then the nb of block hb,
// into a new block, frees both and returns the new one.
func (s *Store) joinBlocks(ha, na, hb, nb uint32) uint32 {
	h := s.allocBlock(int(na + nb))
	dst := s.block(h)
	copyEntries(dst, 0, s.block(ha), 0, int(na))
	copyEntries(dst, int(na), s.block(hb), 0, int(nb))
	s.freeBlock(ha)
	s.freeBlock(hb)
	return h
}
