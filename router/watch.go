package router

import (
	"context"
	"slices"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/fsm"
	"github.com/followgraph/followgraph/shard"
	"github.com/followgraph/followgraph/wire"
)

// watchScan bounds the events one watch request looks at, so a filter
// that matches little costs a bounded amount per request; the response's
// next offset moves past what it skipped.
const watchScan = 1 << 16

// Watch reads a shard's change feed from any local replica (all derive
// the same events at the same offsets), or from the leader's when this
// node holds none or its replica no longer has the position (restored
// from a snapshot since, or evicted).
func (r *Router) Watch(ctx context.Context, req wire.WatchRequest) (wire.WatchPage, error) {
	if req.Shard < 0 || req.Shard >= r.node.Shards() {
		return wire.WatchPage{}, codes.New(codes.InvalidParam, "no shard %d (there are %d)", req.Shard, r.node.Shards())
	}
	for _, u := range req.Users {
		if err := shard.ValidateUserID(u); err != nil {
			return wire.WatchPage{}, err
		}
	}
	var p wire.WatchPage
	err := r.retrying(ctx, func() (err error) {
		p, err = r.watch(ctx, req)
		return err
	})
	return p, err
}

func (r *Router) watch(ctx context.Context, req wire.WatchRequest) (wire.WatchPage, error) {
	var local error
	if rep := r.node.Replica(req.Shard); rep != nil {
		p, err := watchFeed(ctx, rep.Feed(), req)
		if codes.Of(err) != codes.FeedExpired {
			return p, err
		}
		local = err
	}
	m, ok := r.node.Leader(req.Shard)
	if !ok || m.Meta.ID == r.node.ID() || wire.FromPeer(ctx) || r.peers == nil {
		if local != nil {
			return wire.WatchPage{}, local
		}
		return wire.WatchPage{}, r.node.NotLeaderError(req.Shard)
	}
	// The forward must answer within ForwardTimeout.
	req.Wait = min(req.Wait, ForwardTimeout/2)
	return r.peers.forwardWatch(ctx, m.Meta.ClientAddr, req)
}

// watchFeed serves a watch request from one replica's feed, waiting up to
// req.Wait for events when there are none after req.From.
func watchFeed(ctx context.Context, f *fsm.Feed, req wire.WatchRequest) (wire.WatchPage, error) {
	if !f.Enabled() {
		return wire.WatchPage{}, fsm.ErrFeedDisabled
	}
	switch req.Start {
	case wire.WatchNow:
		h := f.Head()
		return wire.WatchPage{Next: h, Head: h}, nil
	case wire.WatchOldest:
		req.From = f.Floor()
	}
	match := matcher(req)
	es, next, err := f.Read(req.From, req.Max, watchScan, match)
	if err == nil && len(es) == 0 && next == req.From && req.Wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, req.Wait)
		f.Wait(wctx, req.From)
		cancel()
		es, next, err = f.Read(req.From, req.Max, watchScan, match)
	}
	if err != nil {
		return wire.WatchPage{}, err
	}
	p := wire.WatchPage{Events: make([]wire.WatchEvent, len(es)), Next: next, Head: f.Head()}
	for i, e := range es {
		p.Events[i] = wire.WatchEvent{Offset: e.Offset, Time: e.Time, FollowTime: e.FollowTime, Kind: e.Kind, User: e.User, Other: e.Other}
	}
	return p, nil
}

// matcher returns the request's filter, nil for none.
func matcher(req wire.WatchRequest) func(*fsm.Event) bool {
	if req.Kinds == 0 && len(req.Users) == 0 {
		return nil
	}
	users := slices.Clone(req.Users)
	slices.Sort(users)
	return func(e *fsm.Event) bool {
		if req.Kinds != 0 && req.Kinds&(1<<e.Kind) == 0 {
			return false
		}
		if len(users) == 0 {
			return true
		}
		_, a := slices.BinarySearch(users, e.User)
		_, b := slices.BinarySearch(users, e.Other)
		return a || b
	}
}
