package wire

import (
	"context"

	"github.com/followgraph/followgraph/codes"
)

// The set queries: known followers (op 20), common following (op 21),
// relationships (op 22), and the membership probe the router sends to
// another shard's leader to answer the first two (op 23, peer only).

// MaxProbeIDs is the most IDs one probe names. A probe carries a user's
// whole following list, which the store caps at 5,000 by default; the
// bound leaves room for a higher configured cap, and a probe of 2^16 IDs
// of 64 bytes still fits a frame of 4.5 MiB.
const MaxProbeIDs = 1 << 16

// KnownFollowersRequest asks for a page of User's followers whom Viewer
// follows: [viewer, user, cursor, limit(, consistency)].
type KnownFollowersRequest struct {
	Viewer      string
	User        string
	Cursor      string
	Limit       int
	Consistency Consistency
}

// CommonFollowingRequest asks for a page of the users both A and B
// follow: [a, b, cursor, limit(, consistency)].
type CommonFollowingRequest struct {
	A, B        string
	Cursor      string
	Limit       int
	Consistency Consistency
}

// SetPage is a page of a set query: [[item...], nextCursor, total].
// Total counts the whole set, not the page.
type SetPage struct {
	Items      []Item
	NextCursor string
	Total      uint64
}

// appendPairRequest encodes [a, b, cursor, limit(, consistency)].
func appendPairRequest(b []byte, x, y, cursor string, limit int, c Consistency) []byte {
	n := 4
	if c != Leader {
		n = 5
	}
	b = appendArray(b, n)
	b = appendStr(b, x)
	b = appendStr(b, y)
	b = appendStr(b, cursor)
	b = appendUint(b, uint64(max(limit, 0)))
	return appendConsistency(b, c)
}

// parsePairRequest decodes [a, b, cursor, limit(, consistency)]; the
// strings share the frame.
func parsePairRequest(body []byte, ra, rb, what string) (x, y, cursor string, limit int, c Consistency, err error) {
	r := reader{b: body}
	n := r.array(5)
	if n < 4 {
		r.fail()
	}
	x, y = r.idView(ra, 0), r.idView(rb, 0)
	cursor = r.strView(maxCursorLen)
	limit = r.upTo(1 << 20)
	c = r.readConsistency(n == 5)
	return x, y, cursor, limit, c, wrap(r.done(), what)
}

// AppendKnownFollowersRequest encodes a known-followers request body.
func AppendKnownFollowersRequest(b []byte, q KnownFollowersRequest) []byte {
	return appendPairRequest(b, q.Viewer, q.User, q.Cursor, q.Limit, q.Consistency)
}

// ParseKnownFollowersRequest decodes a known-followers request body. Its
// strings share the frame's memory: use them before the frame is reused.
func ParseKnownFollowersRequest(body []byte) (KnownFollowersRequest, error) {
	v, u, cur, lim, c, err := parsePairRequest(body, "viewer", "user", "known-followers request")
	return KnownFollowersRequest{Viewer: v, User: u, Cursor: cur, Limit: lim, Consistency: c}, err
}

// AppendCommonFollowingRequest encodes a common-following request body.
func AppendCommonFollowingRequest(b []byte, q CommonFollowingRequest) []byte {
	return appendPairRequest(b, q.A, q.B, q.Cursor, q.Limit, q.Consistency)
}

// ParseCommonFollowingRequest decodes a common-following request body
// (strings share the frame).
func ParseCommonFollowingRequest(body []byte) (CommonFollowingRequest, error) {
	a, b, cur, lim, c, err := parsePairRequest(body, "first user", "second user", "common-following request")
	return CommonFollowingRequest{A: a, B: b, Cursor: cur, Limit: lim, Consistency: c}, err
}

// AppendSetPage encodes a set query's page.
func AppendSetPage(b []byte, p SetPage) []byte {
	b = appendArray(b, 3)
	b = appendArray(b, len(p.Items))
	for _, it := range p.Items {
		b = appendArray(b, 2)
		b = appendStr(b, it.UserID)
		b = appendInt(b, it.FollowTime)
	}
	b = appendStr(b, p.NextCursor)
	return appendUint(b, p.Total)
}

// ParseSetPage decodes a set query's page.
func ParseSetPage(body []byte) (SetPage, error) {
	r := reader{b: body}
	r.arrayN(3)
	n := r.array(1 << 16)
	p := SetPage{Items: make([]Item, 0, min(n, 512))}
	for range n {
		r.arrayN(2)
		it := Item{UserID: r.str(maxIDLen * 4), FollowTime: r.int()}
		if r.err != nil {
			break
		}
		p.Items = append(p.Items, it)
	}
	p.NextCursor = r.str(maxCursorLen)
	p.Total = r.uint()
	return p, wrap(r.done(), "set page")
}

// Pair names two users for a relationship query.
type Pair struct {
	From, To string
}

// RelationshipsRequest is [[[from, to]...](, consistency)]: the relation
// of each pair, up to 100 pairs.
type RelationshipsRequest struct {
	Pairs       []Pair
	Consistency Consistency
}

// Relationship is the relation of one pair: [from, to, code, followType],
// followType numbered as Check's with From as the actor: 2 From follows
// To, 1 To follows From, 3 both. Code is 30001 for a pair with an invalid
// ID (its type is then 0).
type Relationship struct {
	From, To   string
	Code       codes.Code
	FollowType uint8
}

// Follows reports whether From follows To.
func (r Relationship) Follows() bool { return r.FollowType&2 != 0 }

// FollowedBy reports whether To follows From.
func (r Relationship) FollowedBy() bool { return r.FollowType&1 != 0 }

// AppendRelationshipsRequest encodes a relationships request body.
func AppendRelationshipsRequest(b []byte, q RelationshipsRequest) []byte {
	n := 1
	if q.Consistency != Leader {
		n = 2
	}
	b = appendArray(b, n)
	b = appendArray(b, len(q.Pairs))
	for _, p := range q.Pairs {
		b = appendArray(b, 2)
		b = appendStr(b, p.From)
		b = appendStr(b, p.To)
	}
	return appendConsistency(b, q.Consistency)
}

// ParseRelationshipsRequest decodes a relationships request body
// (strings share the frame).
func ParseRelationshipsRequest(body []byte) (RelationshipsRequest, error) {
	r := reader{b: body}
	k := r.array(2)
	if k < 1 {
		r.fail()
	}
	n := r.array(maxList)
	q := RelationshipsRequest{Pairs: make([]Pair, 0, min(n, 128))}
	for i := range n {
		r.arrayN(2)
		p := Pair{From: r.idView("from", i+1), To: r.idView("to", i+1)}
		if r.err != nil {
			break
		}
		q.Pairs = append(q.Pairs, p)
	}
	q.Consistency = r.readConsistency(k == 2)
	return q, wrap(r.done(), "relationships request")
}

// AppendRelationships encodes relationship results.
func AppendRelationships(b []byte, rs []Relationship) []byte {
	b = appendArray(b, len(rs))
	for _, x := range rs {
		b = appendArray(b, 4)
		b = appendStr(b, x.From)
		b = appendStr(b, x.To)
		b = appendUint(b, uint64(x.Code))
		b = appendUint(b, uint64(x.FollowType))
	}
	return b
}

// ParseRelationships decodes relationship results.
func ParseRelationships(body []byte) ([]Relationship, error) {
	r := reader{b: body}
	n := r.array(maxList)
	rs := make([]Relationship, 0, min(n, 128))
	for range n {
		r.arrayN(4)
		x := Relationship{From: r.str(maxIDLen * 4), To: r.str(maxIDLen * 4), Code: codes.Code(r.upTo(1<<32 - 1)), FollowType: uint8(r.upTo(3))}
		if r.err != nil {
			break
		}
		rs = append(rs, x)
	}
	return rs, wrap(r.done(), "relationships")
}

// ProbeRequest asks a shard's leader which of IDs are in Owner's list
// Kind (1 following, 2 followers, 3 mutual): [owner, kind, [id...](,
// consistency)]. Nodes send it to each other to answer set queries; the
// response is [[followTime or -1]...], one per ID, -1 where the ID is not
// in the list (or is not a valid user ID).
type ProbeRequest struct {
	Owner       string
	Kind        uint8
	IDs         []string
	Consistency Consistency
}

// AppendProbeRequest encodes a probe request body.
func AppendProbeRequest(b []byte, q ProbeRequest) []byte {
	n := 3
	if q.Consistency != Leader {
		n = 4
	}
	b = appendArray(b, n)
	b = appendStr(b, q.Owner)
	b = appendUint(b, uint64(q.Kind))
	b = appendArray(b, len(q.IDs))
	for _, id := range q.IDs {
		b = appendStr(b, id)
	}
	return appendConsistency(b, q.Consistency)
}

// ParseProbeRequest decodes a probe request body (strings share the
// frame).
func ParseProbeRequest(body []byte) (ProbeRequest, error) {
	r := reader{b: body}
	k := r.array(4)
	if k < 3 {
		r.fail()
	}
	q := ProbeRequest{Owner: r.idView("owner", 0), Kind: uint8(r.upTo(3))}
	n := r.array(MaxProbeIDs)
	q.IDs = make([]string, 0, min(n, 8192))
	for range n {
		// Not idView: a probe's IDs come from a list, and an ID too long
		// for one is simply absent from the answer.
		q.IDs = append(q.IDs, r.strView(maxIDLen*4))
	}
	q.Consistency = r.readConsistency(k == 4)
	if r.err == nil && q.Kind == 0 {
		r.fail()
	}
	return q, wrap(r.done(), "probe request")
}

// AppendProbeTimes encodes a probe response.
func AppendProbeTimes(b []byte, ts []int64) []byte {
	b = appendArray(b, len(ts))
	for _, t := range ts {
		b = appendInt(b, t)
	}
	return b
}

// ParseProbeTimes decodes a probe response.
func ParseProbeTimes(body []byte) ([]int64, error) {
	r := reader{b: body}
	n := r.array(MaxProbeIDs)
	ts := make([]int64, 0, min(n, 8192))
	for range n {
		t := r.int()
		if r.err != nil {
			break
		}
		ts = append(ts, t)
	}
	return ts, wrap(r.done(), "probe response")
}

func serveKnownFollowers(s *Server, ctx context.Context, _ Op, body, b []byte) ([]byte, error) {
	q, err := ParseKnownFollowersRequest(body)
	if err != nil {
		return b, err
	}
	p, err := s.handler.KnownFollowers(ctx, q)
	if err != nil {
		return b, err
	}
	return AppendSetPage(b, p), nil
}

func serveCommonFollowing(s *Server, ctx context.Context, _ Op, body, b []byte) ([]byte, error) {
	q, err := ParseCommonFollowingRequest(body)
	if err != nil {
		return b, err
	}
	p, err := s.handler.CommonFollowing(ctx, q)
	if err != nil {
		return b, err
	}
	return AppendSetPage(b, p), nil
}

func serveRelationships(s *Server, ctx context.Context, _ Op, body, b []byte) ([]byte, error) {
	q, err := ParseRelationshipsRequest(body)
	if err != nil {
		return b, err
	}
	rs, err := s.handler.Relationships(ctx, q)
	if err != nil {
		return b, err
	}
	return AppendRelationships(b, rs), nil
}

func serveProbe(s *Server, ctx context.Context, _ Op, body, b []byte) ([]byte, error) {
	q, err := ParseProbeRequest(body)
	if err != nil {
		return b, err
	}
	ch, err := s.clusterHandler()
	if err != nil {
		return b, err
	}
	ts, err := ch.Probe(ctx, q)
	if err != nil {
		return b, err
	}
	return AppendProbeTimes(b, ts), nil
}
