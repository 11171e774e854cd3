package shard

// Exports: a View's follow edges, page by page.
//
// Every edge is exported once, from its actor's following list on the
// actor's home shard (the followers lists hold the same edges seen from
// the other side). A position names a record number and an offset in that
// record's following list: the View never changes, so a position stays
// valid for the View's whole life and pages may be read by any goroutine,
// in any order, any number of times. A position means nothing to another
// View, even of the same Store.

// ExportPosition packs a record number and an offset in its following
// list into a position; StartPosition (0) is the first edge.
func ExportPosition(rec, off uint32) uint64 { return uint64(rec)<<32 | uint64(off) }

// StartPosition is the position of a View's first edge.
const StartPosition uint64 = 0

// Following calls fn with up to max following entries of the View (its
// follow edges: actor, target, followTime), starting at position from, user
// by user in record order and each user's list in list order (newest
// first). fn may end the page early by returning false: that entry is not
// counted and is the first of the next page. It returns the position to
// continue from and whether the View has no entry at or after it. actor and
// target are valid while the View is live; they must not be modified.
func (v *View) Following(from uint64, max int, fn func(actor, target []byte, followTime int64) bool) (next uint64, done bool) {
	st := &v.st
	rn, off := uint32(from>>32), int(uint32(from))
	for ; rn < st.nrecs; rn, off = rn+1, 0 {
		u := st.recs.get(rn)
		r := u.sets[kFollowing]
		if off >= int(r.n) {
			continue
		}
		if max <= 0 {
			return ExportPosition(rn, uint32(off)), false
		}
		actor := st.idBytes(u.uid)
		stopped := false
		at := st.from(r, off, func(uid uint32, t int64) bool {
			if max == 0 || !fn(actor, st.idBytes(uid), t) {
				stopped = true
				return false
			}
			max--
			return true
		})
		if stopped {
			return ExportPosition(rn, uint32(at)), false
		}
	}
	return ExportPosition(st.nrecs, 0), true
}
