package shard

import (
	"cmp"
	"slices"
	"strings"
	"unsafe"

	"github.com/followgraph/followgraph/codes"
)

// Set queries: known followers (followers of X whom V follows) and common
// following (users both A and B follow). Their answers are intersections
// with a user's following list, which the cap keeps at MaxFollowing
// entries, so the work of any page is bounded by the cap, whatever the
// size of the other list:
//
//  1. CopyFollowing copies the bounded side out of its Store (one read).
//  2. ProbeMembers (a Store of the same node: by uid) or Probe (another
//     node's: by ID) looks each member up in the other list, on that
//     user's Store (one batched read there, wherever it is).
//  3. A SetPager puts the members found in list order and cuts the page
//     after the cursor; it also gives the whole set's size.
//
// Every page repeats 1 and 2: the set is not kept between pages. The
// cursor is the (followTime, user ID) key of the page's last entry, like
// a list cursor, so a member that stays in the set during a scan is
// returned exactly once.

// SetQuery names a set query. The numbers are the cursor kinds of its
// cursors (list kinds are 1 to 3), so a cursor of one query or list is
// refused by the others.
type SetQuery uint8

// Set queries.
const (
	// KnownFollowersQuery: followers of user B whom viewer A follows, in
	// the order of B's followers list (when each followed B, newest first).
	KnownFollowersQuery SetQuery = 4
	// CommonFollowingQuery: users both A and B follow, in the order of A's
	// following list (when A followed each, newest first).
	CommonFollowingQuery SetQuery = 5
)

// Members is a following list copied out of a Store for a set query: the
// members' uids, each holding a reference in the node's user table so
// that it names the same user until Release, and their followTimes. A
// Store of the same node probes it by uid, with no ID lookups; a member's
// ID is resolved only when asked for. Reusing one Members copies the next
// list without allocating.
type Members struct {
	users *Users
	uids  []uint32
	times []int64
}

// Release gives back the members' references and empties m, keeping its
// memory. IDs returned before must no longer be used.
func (m *Members) Release() {
	for _, uid := range m.uids {
		m.users.unref(uid)
	}
	m.uids, m.times = m.uids[:0], m.times[:0]
}

// Len returns the number of members.
func (m *Members) Len() int { return len(m.uids) }

// ID returns member i's ID. It shares the user table's memory: valid
// until m is released.
func (m *Members) ID(i int) string {
	b := m.users.name(m.uids[i])
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// Time returns member i's followTime.
func (m *Members) Time(i int) int64 { return m.times[i] }

// IDs appends every member's ID (valid until Release, see ID) to dst.
func (m *Members) IDs(dst []string) []string {
	for i := range m.uids {
		dst = append(dst, m.ID(i))
	}
	return dst
}

// CopyFollowing sets m to user's whole following list, in list order,
// releasing what m held. It is a read; the list holds at most
// Config.MaxFollowing entries. The caller releases m.
func (s *Store) CopyFollowing(user string, m *Members) error {
	m.Release()
	if err := ValidateUserID(user); err != nil {
		return err
	}
	m.users = s.users
	uid, ok := s.uidOf(user)
	if !ok {
		return nil
	}
	s.st.each(s.rec(uid).sets[kFollowing], func(peer uint32, t int64) {
		// The list's entry holds a reference; this one outlives the read.
		s.users.ref(peer)
		m.uids = append(m.uids, peer)
		m.times = append(m.times, t)
	})
	return nil
}

// Probe sets out[i] to the followTime of ids[i] in owner's list k, or to
// -1 where ids[i] is not in it (an invalid ID is in no list). out must be
// as long as ids. It is a read and allocates nothing.
func (s *Store) Probe(k Kind, owner string, ids []string, out []int64) error {
	r, err := s.probed(k, owner, len(ids), len(out))
	if err != nil {
		return err
	}
	for i, id := range ids {
		out[i] = -1
		if r.n == 0 || len(id) == 0 || len(id) > maxIDLen {
			continue
		}
		if peer, ok := s.uidOf(id); ok {
			if t, ok := s.st.lookup(r, peer); ok {
				out[i] = t
			}
		}
	}
	return nil
}

// ProbeMembers is Probe of m's members. Members copied from a Store of
// this node (sharing its user table) are probed by uid.
func (s *Store) ProbeMembers(k Kind, owner string, m *Members, out []int64) error {
	if m.users != s.users {
		return s.Probe(k, owner, m.IDs(make([]string, 0, m.Len())), out)
	}
	r, err := s.probed(k, owner, m.Len(), len(out))
	if err != nil {
		return err
	}
	for i, peer := range m.uids {
		out[i] = -1
		if t, ok := s.st.lookup(r, peer); ok {
			out[i] = t
		}
	}
	return nil
}

// probed checks a probe and returns the list it reads.
func (s *Store) probed(k Kind, owner string, n, outs int) (setRef, error) {
	if !k.valid() {
		return setRef{}, codes.New(codes.InvalidParam, "unknown list kind %d", k)
	}
	if err := ValidateUserID(owner); err != nil {
		return setRef{}, err
	}
	if outs != n {
		return setRef{}, codes.New(codes.Internal, "probe: %d results for %d IDs", outs, n)
	}
	if uid, ok := s.uidOf(owner); ok {
		return s.rec(uid).sets[k.set()], nil
	}
	return setRef{}, nil
}

// Hit is one member of a set query's answer: a user and the followTime
// that orders it.
type Hit struct {
	ID string
	T  int64
}

// SetPager cuts the pages of one set query: it holds the request's
// cursor position and limit, checked before any list is read.
type SetPager struct {
	key    []byte
	owner  string
	q      SetQuery
	after  bool
	pos    cursorPos
	limit  int
	sorted bool
}

// NewSetPager checks a set query's page request: users a and b (the
// viewer and the user for KnownFollowersQuery), the cursor ("" for the
// first page) and limit (0 for cfg.DefaultPage, at most cfg.MaxPage).
func NewSetPager(cfg Config, q SetQuery, a, b, cursor string, limit int) (*SetPager, error) {
	if q != KnownFollowersQuery && q != CommonFollowingQuery {
		return nil, codes.New(codes.InvalidParam, "unknown set query %d", q)
	}
	if err := ValidateUserID(a); err != nil {
		return nil, err
	}
	if err := ValidateUserID(b); err != nil {
		return nil, err
	}
	if limit == 0 {
		limit = cfg.DefaultPage
	}
	if limit < 0 || limit > cfg.MaxPage {
		return nil, codes.New(codes.InvalidParam, "limit %d: want 1 to %d", limit, cfg.MaxPage)
	}
	// The cursor is bound to both users, in order: (a, b) and (b, a) are
	// different sets, or differently ordered.
	p := &SetPager{key: cfg.CursorKey, owner: a + "\x00" + b, q: q, limit: limit, sorted: q == CommonFollowingQuery}
	if cursor != "" {
		pos, err := decodeCursor(p.key, p.owner, Kind(q), cursor)
		if err != nil {
			return nil, err
		}
		p.after, p.pos = true, pos
	}
	return p, nil
}

// Page returns the page of hits after the cursor, in list order
// (followTime descending, then ID ascending), and the next page's cursor
// ("" when the page ends the set). The set's size is len(hits). It
// reorders hits in place: only the page is sorted, so the first page of
// a large set costs about one comparison per hit rather than a sort.
func (p *SetPager) Page(hits []Hit) ([]Hit, string) {
	rest := hits
	if p.after {
		key := Hit{ID: unsafe.String(unsafe.SliceData(p.pos.id), len(p.pos.id)), T: p.pos.t}
		rest = hits[:0]
		for _, h := range hits {
			if cmpHit(h, key) > 0 {
				rest = append(rest, h)
			}
		}
	}
	if !p.sorted {
		selectFirst(rest, p.limit)
	}
	page := rest[:min(p.limit, len(rest))]
	if len(page) == len(rest) {
		return page, ""
	}
	last := page[len(page)-1]
	return page, encodeCursor(p.key, p.owner, Kind(p.q), last.T, []byte(last.ID))
}

// selectFirst moves the k first hits in list order to the front of hs,
// sorted: a max-heap of the k best seen so far, then a sort of the heap.
func selectFirst(hs []Hit, k int) {
	if k >= len(hs) {
		slices.SortFunc(hs, cmpHit)
		return
	}
	heap := hs[:k]
	for i := k/2 - 1; i >= 0; i-- {
		siftDown(heap, i)
	}
	for i := k; i < len(hs); i++ {
		if cmpHit(hs[i], heap[0]) < 0 {
			heap[0], hs[i] = hs[i], heap[0]
			siftDown(heap, 0)
		}
	}
	slices.SortFunc(heap, cmpHit)
}

// siftDown restores the max-heap order (the last hit in list order at
// the root) below index i.
func siftDown(h []Hit, i int) {
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && cmpHit(h[c+1], h[c]) > 0 {
			c++
		}
		if cmpHit(h[c], h[i]) <= 0 {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// cmpHit orders hits in list order.
func cmpHit(x, y Hit) int {
	if c := cmp.Compare(y.T, x.T); c != 0 {
		return c
	}
	return strings.Compare(x.ID, y.ID)
}

// Relation returns the relation between actor and target (as Check does
// for one target: bit 1 the target follows the actor, bit 2 the actor
// follows the target), read from the actor's home Store, without
// allocating. Invalid IDs and oneself give NoRelation.
func (s *Store) Relation(actor, target string) FollowType {
	if actor == target || !ValidUserID(actor) || !ValidUserID(target) {
		return NoRelation
	}
	a, ok := s.uidOf(actor)
	if !ok {
		return NoRelation
	}
	b, ok := s.uidOf(target)
	if !ok {
		return NoRelation
	}
	u := s.rec(a)
	var ft FollowType
	if _, ok := s.st.lookup(u.sets[kFollowers], b); ok {
		ft |= FollowsActor
	}
	if _, ok := s.st.lookup(u.sets[kFollowing], b); ok {
		ft |= FollowedBy
	}
	return ft
}
