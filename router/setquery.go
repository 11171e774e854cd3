package router

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/shard"
	"github.com/followgraph/followgraph/wire"
)

// The set queries (docs/ARCHITECTURE.md, "Set queries"). Known followers
// and common following are served by the leader of the shard whose user's
// following list bounds the set (the viewer's, or A's): a request that
// lands elsewhere is forwarded there whole. That node copies the list
// (at most the following cap), probes the other user's list for all of
// it in one batched read, on its own replica or in one probe request to
// that shard's leader, and cuts the page from the members found.

// setQuery is one known-followers or common-following request.
type setQuery struct {
	op    wire.Op
	pager *shard.SetPager
	// bound is the user whose following list is copied; other the user
	// whose list probe is probed.
	bound, other string
	probe        shard.Kind
	// probeTimes orders the set by the probed list's times (known
	// followers: when each followed the user) rather than the copied
	// list's (common following: when A followed each).
	probeTimes bool
	cons       wire.Consistency
	// body re-encodes the request, for forwarding.
	body func([]byte) []byte
}

// KnownFollowers returns a page of req.User's followers whom req.Viewer
// follows, in the order of req.User's followers list.
func (r *Router) KnownFollowers(ctx context.Context, req wire.KnownFollowersRequest) (wire.SetPage, error) {
	p, err := shard.NewSetPager(r.node.Limits(), shard.KnownFollowersQuery, req.Viewer, req.User, req.Cursor, req.Limit)
	if err != nil {
		return wire.SetPage{}, err
	}
	q := setQuery{op: wire.OpKnownFollowers, pager: p, bound: req.Viewer, other: req.User, probe: shard.Followers, probeTimes: true, cons: req.Consistency,
		body: func(b []byte) []byte { return wire.AppendKnownFollowersRequest(b, req) }}
	return r.runSetQuery(ctx, q)
}

// CommonFollowing returns a page of the users both req.A and req.B
// follow, in the order of req.A's following list.
func (r *Router) CommonFollowing(ctx context.Context, req wire.CommonFollowingRequest) (wire.SetPage, error) {
	p, err := shard.NewSetPager(r.node.Limits(), shard.CommonFollowingQuery, req.A, req.B, req.Cursor, req.Limit)
	if err != nil {
		return wire.SetPage{}, err
	}
	q := setQuery{op: wire.OpCommonFollowing, pager: p, bound: req.A, other: req.B, probe: shard.Following, cons: req.Consistency,
		body: func(b []byte) []byte { return wire.AppendCommonFollowingRequest(b, req) }}
	return r.runSetQuery(ctx, q)
}

func (r *Router) runSetQuery(ctx context.Context, q setQuery) (wire.SetPage, error) {
	var out wire.SetPage
	err := r.retrying(ctx, func() (err error) {
		out, err = r.setQuery(ctx, q)
		return err
	})
	return out, err
}

// setScratch is a set query's working memory, reused across requests so
// that a page allocates little more than its answer.
type setScratch struct {
	members shard.Members
	ids     []string
	times   []int64
	hits    []shard.Hit
}

var setScratchPool = sync.Pool{New: func() any { return new(setScratch) }}

func (r *Router) setQuery(ctx context.Context, q setQuery) (wire.SetPage, error) {
	rep, addr, err := r.route(ctx, q.bound, q.cons)
	if err != nil {
		return wire.SetPage{}, err
	}
	if addr != "" {
		return r.peers.forwardSetQuery(ctx, addr, q.op, q.body)
	}
	sc := setScratchPool.Get().(*setScratch)
	defer setScratchPool.Put(sc)
	// The members hold references to their users until the answer is
	// built: their IDs point into the node's user table.
	defer sc.members.Release()
	if err := read(rep, q.cons, func(st *shard.Store) error { return st.CopyFollowing(q.bound, &sc.members) }); err != nil {
		return wire.SetPage{}, err
	}
	n := sc.members.Len()
	sc.times = slices.Grow(sc.times[:0], n)[:n]
	if n > 0 {
		if err := r.probe(ctx, q, sc); err != nil {
			return wire.SetPage{}, err
		}
	}
	sc.hits = sc.hits[:0]
	for i, t := range sc.times {
		if t < 0 {
			continue
		}
		if !q.probeTimes {
			t = sc.members.Time(i)
		}
		sc.hits = append(sc.hits, shard.Hit{ID: sc.members.ID(i), T: t})
	}
	page, next := q.pager.Page(sc.hits)
	out := wire.SetPage{Items: make([]wire.Item, len(page)), NextCursor: next, Total: uint64(len(sc.hits))}
	for i, h := range page {
		// The IDs point into the user table, only until the members are
		// released.
		out.Items[i] = wire.Item{UserID: strings.Clone(h.ID), FollowTime: h.T}
	}
	return out, nil
}

// probe sets sc.times[i] to the followTime of member i in the probed
// list, or -1, reading the local replica of the other user's shard (by
// uid: no ID lookups) or asking its leader. The probe is this node's own
// request, so it goes to the leader even when the set query came from a
// peer; the leader serves it itself.
func (r *Router) probe(ctx context.Context, q setQuery, sc *setScratch) error {
	rep, addr, err := r.routeShardVia(r.node.ShardOf(q.other), q.cons, true)
	if err != nil {
		return err
	}
	if addr == "" {
		return read(rep, q.cons, func(st *shard.Store) error { return st.ProbeMembers(q.probe, q.other, &sc.members, sc.times) })
	}
	sc.ids = sc.members.IDs(sc.ids[:0])
	ts, err := r.peers.probe(ctx, addr, wire.ProbeRequest{Owner: q.other, Kind: uint8(q.probe), IDs: sc.ids, Consistency: q.cons})
	if err != nil {
		return err
	}
	if len(ts) != len(sc.ids) {
		return codes.New(codes.Internal, "probe: %d answers for %d IDs", len(ts), len(sc.ids))
	}
	copy(sc.times, ts)
	return nil
}

// Probe serves another node's probe from this node's replica of the
// owner's shard; it is never forwarded.
func (r *Router) Probe(ctx context.Context, req wire.ProbeRequest) ([]int64, error) {
	rep, _, err := r.routeShardVia(r.node.ShardOf(req.Owner), req.Consistency, false)
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(req.IDs))
	err = read(rep, req.Consistency, func(st *shard.Store) error { return st.Probe(shard.Kind(req.Kind), req.Owner, req.IDs, out) })
	return out, err
}

// Relationships returns the relation of each pair, read from the shard of
// the pair's From (which holds both its following and its followers
// lists): pairs whose shard another node leads go there in one request per
// node, all nodes at once. A pair with an invalid ID gets its item's code.
func (r *Router) Relationships(ctx context.Context, req wire.RelationshipsRequest) ([]wire.Relationship, error) {
	if max := r.node.Limits().MaxCheck; len(req.Pairs) < 1 || len(req.Pairs) > max {
		return nil, codes.New(codes.InvalidParam, "%d pairs: want 1 to %d", len(req.Pairs), max)
	}
	var out []wire.Relationship
	err := r.retrying(ctx, func() (err error) {
		out, err = r.relationships(ctx, req)
		return err
	})
	return out, err
}

func (r *Router) relationships(ctx context.Context, req wire.RelationshipsRequest) ([]wire.Relationship, error) {
	out := make([]wire.Relationship, len(req.Pairs))
	byShard := map[int][]int{}
	for i, p := range req.Pairs {
		// The IDs may share the request frame: the result keeps copies.
		out[i] = wire.Relationship{From: strings.Clone(p.From), To: strings.Clone(p.To)}
		if !shard.ValidUserID(p.From) || !shard.ValidUserID(p.To) {
			out[i].Code = codes.InvalidParam
			continue
		}
		s := r.node.ShardOf(p.From)
		byShard[s] = append(byShard[s], i)
	}
	remote := map[string][]int{}
	for s, idx := range byShard {
		rep, addr, err := r.routeShard(ctx, s, req.Consistency)
		if err != nil {
			return nil, err
		}
		if addr != "" {
			remote[addr] = append(remote[addr], idx...)
			continue
		}
		err = read(rep, req.Consistency, func(st *shard.Store) error {
			for _, i := range idx {
				out[i].FollowType = uint8(st.Relation(out[i].From, out[i].To))
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(remote) > 0 {
		if err := r.peers.forwardRelationships(ctx, remote, req.Consistency, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}
