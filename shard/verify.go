package shard

import (
	"fmt"
)

// CheckInvariants verifies the Store's internal consistency and the
// invariants that hold within one Store: every list is strictly in list
// order with no duplicates and matches its count; a large list's two
// indexes hold the same entries; mutual(A) is exactly following(A) ∩
// followers(A) as this Store knows them, timed at the later of the two
// followTimes; reference counts match. It walks the whole Store, so it is
// for tests and offline checks, not for the serving path.
func (s *Store) CheckInvariants() error {
	st := &s.st
	refs := map[uint32]uint32{} // references this Store holds, by uid
	var counts [numKinds]int64
	users := 0
	for rn := range st.nrecs {
		u := st.recs.get(rn)
		if u.empty() {
			continue
		}
		users++
		uid := u.uid
		refs[uid]++
		if got, ok := s.recNum(uid); !ok || got != rn {
			return fmt.Errorf("uid %d: record %d not in the record index", uid, rn)
		}
		if err := s.checkName(uid); err != nil {
			return err
		}
		for k := range numKinds {
			if err := s.checkList(uid, k, refs, &counts); err != nil {
				return err
			}
		}
		if err := s.checkMutual(uid); err != nil {
			return err
		}
	}
	if users != s.nusers || s.owners.n != users {
		return fmt.Errorf("%d users, %d indexed, counted %d", s.nusers, s.owners.n, users)
	}
	if counts != s.counts {
		return fmt.Errorf("entry counts %v, counted %v", s.counts, counts)
	}
	// A table of the Store's own holds exactly the Store's references; a
	// shared one holds at least them.
	own := s.cfg.Users == nil
	if own && s.users.live.Load() != int64(len(refs)) {
		return fmt.Errorf("user table holds %d users, the Store names %d", s.users.live.Load(), len(refs))
	}
	for uid, n := range refs {
		if got := s.users.rec(uid).refs.Load(); got < n || own && got != n {
			return fmt.Errorf("uid %d: %d references, counted %d", uid, got, n)
		}
	}
	return nil
}

// checkName verifies that uid is live in the user table and found there
// by its ID.
func (s *Store) checkName(uid uint32) error {
	if uid >= s.users.size() || s.users.rec(uid).slen == 0 {
		return fmt.Errorf("uid %d is not in use", uid)
	}
	id := s.st.idBytes(uid)
	if got, ok := s.uidOf(string(id)); !ok || got != uid {
		return fmt.Errorf("uid %d (%q) not found in the user table", uid, id)
	}
	return nil
}

// checkList verifies uid's list k and counts its entries and references.
func (s *Store) checkList(uid uint32, k setKind, refs map[uint32]uint32, counts *[numKinds]int64) error {
	st := &s.st
	r := s.rec(uid).sets[k]
	var es []entry
	st.each(r, func(peer uint32, t int64) { es = append(es, entry{peer, t}) })
	if len(es) != int(r.n) {
		return fmt.Errorf("uid %d list %d: count %d, %d entries", uid, k, r.n, len(es))
	}
	seen := map[uint32]bool{}
	for i, e := range es {
		if e.uid == uid {
			return fmt.Errorf("uid %d list %d: names its owner", uid, k)
		}
		if err := s.checkName(e.uid); err != nil {
			return fmt.Errorf("uid %d list %d: %w", uid, k, err)
		}
		if seen[e.uid] {
			return fmt.Errorf("uid %d list %d: peer %d twice", uid, k, e.uid)
		}
		seen[e.uid] = true
		if i > 0 && st.cmpKey(es[i-1].t, es[i-1].uid, e.t, st.idBytes(e.uid)) >= 0 {
			return fmt.Errorf("uid %d list %d: out of order at %d", uid, k, i)
		}
		if t, ok := st.lookup(r, e.uid); !ok || t != e.t {
			return fmt.Errorf("uid %d list %d: lookup of %d gives %d,%v, want %d", uid, k, e.uid, t, ok, e.t)
		}
		refs[e.uid]++
	}
	counts[k] += int64(r.n)
	if err := s.checkLarge(r); err != nil {
		return fmt.Errorf("uid %d list %d: %w", uid, k, err)
	}
	return nil
}

// checkMutual verifies that uid's mutual list is exactly following ∩
// followers, timed at the later of the two followTimes. Snapshot loading
// runs it for every user: the three lists are stored separately, and a
// stream that disagrees with itself must not load.
func (s *Store) checkMutual(uid uint32) error {
	st := &s.st
	u := s.rec(uid)
	want := 0
	var err error
	st.each(u.sets[kFollowing], func(peer uint32, tf int64) {
		if err != nil {
			return
		}
		tr, ok := st.lookup(u.sets[kFollowers], peer)
		if !ok {
			return
		}
		want++
		if tm, ok := st.lookup(u.sets[kMutual], peer); !ok || tm != max(tf, tr) {
			err = fmt.Errorf("uid %d: mutual entry for %d is %d,%v, want %d", uid, peer, tm, ok, max(tf, tr))
		}
	})
	if err != nil {
		return err
	}
	if want != int(u.sets[kMutual].n) {
		return fmt.Errorf("uid %d: %d mutual entries, following ∩ followers has %d", uid, u.sets[kMutual].n, want)
	}
	return nil
}

// checkLarge verifies a large list's page descriptors.
func (s *Store) checkLarge(r setRef) error {
	if !r.large() {
		if r.n > maxBlock {
			return fmt.Errorf("small list of %d entries", r.n)
		}
		if r.n > 0 && capOf(r.h) < int(r.n) {
			return fmt.Errorf("block of capacity %d holds %d", capOf(r.h), r.n)
		}
		return nil
	}
	st := &s.st
	ls := st.large.get(r.h &^ largeBit)
	var nt, nu uint32
	for i, p := range ls.tp {
		b := st.blocks.block(p.h)
		if p.n == 0 || int(p.n) > capOf(p.h) || b.time(0) != p.t || b.u[0] != p.u {
			return fmt.Errorf("time page %d: bad descriptor", i)
		}
		nt += p.n
	}
	prev := int64(-1)
	for i, p := range ls.up {
		b := st.blocks.block(p.h)
		if p.n == 0 || int(p.n) > capOf(p.h) || b.u[0] != p.u {
			return fmt.Errorf("uid page %d: bad descriptor", i)
		}
		for j := 0; j < int(p.n); j++ {
			if int64(b.u[j]) <= prev {
				return fmt.Errorf("uid page %d: out of order", i)
			}
			prev = int64(b.u[j])
		}
		nu += p.n
	}
	if nt != r.n || nu != r.n {
		return fmt.Errorf("large list of %d: %d in time pages, %d in uid pages", r.n, nt, nu)
	}
	return nil
}
