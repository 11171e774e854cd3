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
	refs := make([]uint32, st.nuids)
	var counts [numKinds]int64
	users := 0
	for uid := uint32(0); uid < st.nuids; uid++ {
		u := st.user(uid)
		if u.slen == 0 {
			if !u.empty() || u.refs != 0 {
				return fmt.Errorf("free uid %d has lists or references", uid)
			}
			continue
		}
		users++
		if got, ok := s.uidOf(string(st.idBytes(uid))); !ok || got != uid {
			return fmt.Errorf("uid %d (%q) not found in the intern index", uid, st.idBytes(uid))
		}
		if u.empty() && u.refs == 0 {
			return fmt.Errorf("uid %d (%q) should have been freed", uid, st.idBytes(uid))
		}
		for k := range numKinds {
			r := u.sets[k]
			var es []entry
			st.each(r, func(peer uint32, t int64) { es = append(es, entry{peer, t}) })
			if len(es) != int(r.n) {
				return fmt.Errorf("uid %d list %d: count %d, %d entries", uid, k, r.n, len(es))
			}
			seen := map[uint32]bool{}
			for i, e := range es {
				if e.uid == uid || e.uid >= st.nuids || st.user(e.uid).slen == 0 {
					return fmt.Errorf("uid %d list %d: bad peer %d", uid, k, e.uid)
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
		}
		if err := s.checkMutual(uid); err != nil {
			return err
		}
	}
	for uid := uint32(0); uid < st.nuids; uid++ {
		if u := st.user(uid); u.refs != refs[uid] {
			return fmt.Errorf("uid %d: refs %d, counted %d", uid, u.refs, refs[uid])
		}
	}
	if counts != s.counts {
		return fmt.Errorf("entry counts %v, counted %v", s.counts, counts)
	}
	if users != s.nusers {
		return fmt.Errorf("%d users, counted %d", s.nusers, users)
	}
	return nil
}

// checkMutual verifies that uid's mutual list is exactly following ∩
// followers, timed at the later of the two followTimes. Snapshot loading
// runs it for every user: the three lists are stored separately, and a
// stream that disagrees with itself must not load.
func (s *Store) checkMutual(uid uint32) error {
	st := &s.st
	u := st.user(uid)
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
