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
//  2. Probe looks each of its IDs up in the other list, on that user's
//     Store (one batched read there, wherever it is).
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

// Members is a list of user IDs and followTimes packed into one buffer:
// a following list copied out of a Store. Reusing one Members (Reset)
// copies the next list without allocating.
type Members struct {
	buf   []byte
	ends  []uint32
	times []int64
}

// Reset empties m, keeping its memory. Strings returned by ID before the
// reset must no longer be used.
func (m *Members) Reset() { m.buf, m.ends, m.times = m.buf[:0], m.ends[:0], m.times[:0] }

// Len returns the number of members.
func (m *Members) Len() int { return len(m.ends) }

// Add appends a member.
func (m *Members) Add(id []byte, t int64) {
	m.buf = append(m.buf, id...)
	m.ends = append(m.ends, uint32(len(m.buf)))
	m.times = append(m.times, t)
}

// ID returns member i's ID. It shares m's buffer: valid until m is reset
// (later Adds do not change it).
func (m *Members) ID(i int) string {
	start := uint32(0)
	if i > 0 {
		start = m.ends[i-1]
	}
	if start == m.ends[i] {
		return ""
	}
	return unsafe.String(&m.buf[start], int(m.ends[i]-start))
}

// Time returns member i's followTime.
func (m *Members) Time(i int) int64 { return m.times[i] }

// IDs appends every member's ID (sharing m's buffer, see ID) to dst.
func (m *Members) IDs(dst []string) []string {
	for i := range m.ends {
		dst = append(dst, m.ID(i))
	}
	return dst
}

// CopyFollowing appends user's whole following list to m, in list order.
// It is a read; the list holds at most Config.MaxFollowing entries.
func (s *Store) CopyFollowing(user string, m *Members) error {
	if err := ValidateUserID(user); err != nil {
		return err
	}
	uid, ok := s.uidOf(user)
	if !ok {
		return nil
	}
	s.st.each(s.rec(uid).sets[kFollowing], func(peer uint32, t int64) { m.Add(s.st.idBytes(peer), t) })
	return nil
}

// Probe sets out[i] to the followTime of ids[i] in owner's list k, or to
// -1 where ids[i] is not in it (an invalid ID is in no list). out must be
// as long as ids. It is a read and allocates nothing.
func (s *Store) Probe(k Kind, owner string, ids []string, out []int64) error {
	if !k.valid() {
		return codes.New(codes.InvalidParam, "unknown list kind %d", k)
	}
	if err := ValidateUserID(owner); err != nil {
		return err
	}
	if len(out) != len(ids) {
		return codes.New(codes.Internal, "probe: %d results for %d IDs", len(out), len(ids))
	}
	r := setRef{}
	if uid, ok := s.uidOf(owner); ok {
		r = s.rec(uid).sets[k.set()]
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

// Page puts hits in list order (followTime descending, then ID ascending;
// it sorts them in place unless the query's hits come in that order
// already) and returns the page after the cursor and the next page's
// cursor ("" when the page ends the set). The set's size is len(hits).
func (p *SetPager) Page(hits []Hit) ([]Hit, string) {
	if !p.sorted {
		slices.SortFunc(hits, cmpHit)
	}
	start := 0
	if p.after {
		key := Hit{ID: unsafe.String(unsafe.SliceData(p.pos.id), len(p.pos.id)), T: p.pos.t}
		start, _ = slices.BinarySearchFunc(hits, key, cmpHit)
		if start < len(hits) && cmpHit(hits[start], key) == 0 {
			start++
		}
	}
	end := min(start+p.limit, len(hits))
	page := hits[start:end]
	if end == len(hits) {
		return page, ""
	}
	last := page[len(page)-1]
	return page, encodeCursor(p.key, p.owner, Kind(p.q), last.T, []byte(last.ID))
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
