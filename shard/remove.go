package shard

// RemovedEdge is an edge RemoveEdges took out of a user's lists.
type RemovedEdge struct {
	Peer string
	Time int64
	// Following: the edge was in the user's following list (the user
	// followed Peer); otherwise in its followers list.
	Following bool
	// Mutual: a mutual relation with Peer went with it.
	Mutual bool
}

// RemoveEdges takes up to max edges out of user's lists, following first,
// then followers, with the mutual relations they held, and returns them.
// The caller removes the other side of each: Peer's followers entry for a
// following edge, Peer's following entry for a follower edge. It is one
// bounded step of removing a user's whole graph: call it again until it
// returns nothing.
func (s *Store) RemoveEdges(user string, max int) ([]RemovedEdge, error) {
	if err := ValidateUserID(user); err != nil {
		return nil, err
	}
	a, ok := s.uidOf(user)
	if !ok || max <= 0 {
		return nil, nil
	}
	s.beginWrite()
	type entry struct {
		peer uint32
		t    int64
	}
	var out []RemovedEdge
	var batch []entry
	for _, k := range []setKind{kFollowing, kFollowers} {
		batch = batch[:0]
		s.st.scan(s.rec(a).sets[k], false, 0, nil, max-len(out), func(peer uint32, t int64) { batch = append(batch, entry{peer, t}) })
		for _, e := range batch {
			// Named before the entry goes: it may hold the last reference.
			name := string(s.st.idBytes(e.peer))
			mutual := false
			if tm, ok := s.lookup(a, kMutual, e.peer); ok {
				s.remove(a, kMutual, e.peer, tm)
				mutual = true
			}
			s.remove(a, k, e.peer, e.t)
			out = append(out, RemovedEdge{Peer: name, Time: e.t, Following: k == kFollowing, Mutual: mutual})
		}
	}
	s.settle(a)
	return out, nil
}

// DropFollowing removes followee from follower's following list (and
// mutual list), on follower's home Store, when followee's graph is being
// removed; t is the followTime of the edge. Like RemoveFollower it is
// idempotent, and changes nothing when the edge is not there with that
// time (the follower unfollowed, or followed again since).
func (s *Store) DropFollowing(follower, followee string, t int64) (EdgeChange, error) {
	if err := s.checkEdge(followee, follower, t); err != nil {
		return EdgeChange{}, err
	}
	a, ok1 := s.uidOf(follower)
	b, ok2 := s.uidOf(followee)
	if !ok1 || !ok2 {
		return EdgeChange{}, nil
	}
	old, ok := s.lookup(a, kFollowing, b)
	if !ok || old != t {
		return EdgeChange{}, nil
	}
	s.beginWrite()
	mutual := false
	if tm, ok := s.lookup(a, kMutual, b); ok {
		s.remove(a, kMutual, b, tm)
		mutual = true
	}
	// b's entry here holds b until this removal, its last use.
	s.remove(a, kFollowing, b, t)
	s.settle(a)
	return EdgeChange{Changed: true, Edge: true, Mutual: mutual}, nil
}

// Edges returns how many entries user's following and followers lists
// hold.
func (s *Store) Edges(user string) (following, followers int) {
	a, ok := s.uidOf(user)
	if !ok {
		return 0, 0
	}
	r := s.rec(a)
	return int(r.sets[kFollowing].n), int(r.sets[kFollowers].n)
}
