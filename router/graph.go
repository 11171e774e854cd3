package router

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/fsm"
	"github.com/followgraph/followgraph/shard"
	"github.com/followgraph/followgraph/wire"
)

// The graph operations: validated here, then served by the local replica
// or forwarded to the shard's leader.

// Write follows or unfollows.
func (r *Router) Write(ctx context.Context, op wire.Op, req wire.WriteRequest) ([]wire.Result, error) {
	if err := shard.ValidateUserID(req.Actor); err != nil {
		return nil, err
	}
	if max := r.node.Limits().MaxTargets; len(req.Targets) < 1 || len(req.Targets) > max {
		return nil, codes.New(codes.InvalidParam, "%d targets: want 1 to %d", len(req.Targets), max)
	}
	var out []wire.Result
	err := r.retrying(ctx, func() (err error) {
		out, err = r.write(ctx, op, req)
		return err
	})
	return out, err
}

func (r *Router) write(ctx context.Context, op wire.Op, req wire.WriteRequest) ([]wire.Result, error) {
	rep, addr, err := r.route(ctx, req.Actor, wire.Leader)
	if err != nil {
		return nil, err
	}
	if addr != "" {
		return r.peers.forwardWrite(ctx, addr, op, req)
	}
	fop := fsm.OpFollow
	if op == wire.OpUnfollow {
		fop = fsm.OpUnfollow
	}
	res, err := rep.Write(ctx, fop, req.Actor, req.Targets, cluster.WriteOptions{Sync: req.Sync})
	if err != nil {
		return nil, err
	}
	out := make([]wire.Result, len(res))
	for i, x := range res {
		out[i] = wire.Result{UserID: x.UserID, Code: x.Code, Info: x.Info}
	}
	return out, nil
}

var listKinds = map[wire.Op]shard.Kind{wire.OpFollowers: shard.Followers, wire.OpFollowing: shard.Following, wire.OpMutual: shard.Mutual}

// List pages a list, calling fn for each entry.
func (r *Router) List(ctx context.Context, op wire.Op, req wire.ListRequest, fn func(id []byte, t int64)) (string, error) {
	k, ok := listKinds[op]
	if !ok {
		return "", codes.New(codes.UnknownOp, "not a list operation: %v", op)
	}
	if err := shard.ValidateUserID(req.User); err != nil {
		return "", err
	}
	var next string
	err := r.retrying(ctx, func() (err error) {
		next, err = r.list(ctx, k, op, req, fn)
		return err
	})
	return next, err
}

func (r *Router) list(ctx context.Context, k shard.Kind, op wire.Op, req wire.ListRequest, fn func(id []byte, t int64)) (string, error) {
	rep, addr, err := r.route(ctx, req.User, req.Consistency)
	if err != nil {
		return "", err
	}
	if addr != "" {
		return r.peers.forwardList(ctx, addr, op, req, fn)
	}
	var next string
	err = read(rep, req.Consistency, func(st *shard.Store) error {
		var err error
		next, err = st.Scan(k, req.User, req.Cursor, req.Limit, fn)
		return err
	})
	return next, err
}

// forwardRetry bounds how long a node retries a request it could not
// hand to the shard's leader, certainly unapplied: no leader known yet,
// the leader's node refusing the connection, or leadership moved. It
// covers an election, so a failover is absorbed here rather than passed
// to the caller; beyond it, the caller gets the error and may retry
// itself (the protocol carries no deadline: a caller with a shorter one
// sees a timeout meanwhile). 4 s, not one election's worth: on a loaded
// node a failover has been seen to take close to 2 s (detection, a
// pre-vote and a vote, then the new leader's first contact), and a split
// vote doubles that.
const forwardRetry = 4 * time.Second

// retrying runs fn, and again with a capped, doubling backoff, while it
// fails with NotLeader or ShardUnavailable, for up to forwardRetry or
// until ctx ends. Overloaded and ShuttingDown go back to the caller at
// once (back-pressure; another node should serve it), and so does a
// peer's request: the peer retries it.
func (r *Router) retrying(ctx context.Context, fn func() error) error {
	if !r.node.Clustered() || wire.FromPeer(ctx) {
		return fn()
	}
	began, backoff := time.Now(), 10*time.Millisecond
	for {
		err := fn()
		if c := codes.Of(err); c != codes.NotLeader && c != codes.ShardUnavailable || time.Since(began)+backoff > forwardRetry {
			return err
		}
		select {
		case <-time.After(backoff + rand.N(backoff/2)):
		case <-ctx.Done():
			return err
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// read reads a local replica at the requested consistency.
func read(rep *cluster.Replica, c wire.Consistency, fn func(*shard.Store) error) error {
	switch {
	case c == wire.Linearizable:
		return rep.ReadLinearizable(fn)
	case c == wire.Any && !rep.Ready():
		return rep.ReadLocal(fn)
	}
	return rep.Read(fn)
}

// Info returns the counts of users, which may live on different shards:
// those whose shard another node leads go there in one request per node,
// all nodes at once; the rest are read here. An invalid ID gets its
// item's code, not an error for the whole request.
func (r *Router) Info(ctx context.Context, req wire.UsersRequest) ([]wire.Info, error) {
	if max := r.node.Limits().MaxInfo; len(req.Users) < 1 || len(req.Users) > max {
		return nil, codes.New(codes.InvalidParam, "%d users: want 1 to %d", len(req.Users), max)
	}
	// Like the other reads, through a leadership handover (a transfer
	// after bootstrap, a failover) rather than failing at its first shard.
	var out []wire.Info
	err := r.retrying(ctx, func() (err error) {
		out, err = r.info(ctx, req)
		return err
	})
	return out, err
}

func (r *Router) info(ctx context.Context, req wire.UsersRequest) ([]wire.Info, error) {
	out := make([]wire.Info, len(req.Users))
	remote := map[string][]int{}
	for i, u := range req.Users {
		// The user ID may share the request frame: the result keeps its
		// own copy.
		out[i] = wire.Info{UserID: string([]byte(u))}
		if !shard.ValidUserID(u) {
			out[i].Code = codes.InvalidParam
			continue
		}
		rep, addr, err := r.route(ctx, u, req.Consistency)
		if err != nil {
			return nil, err
		}
		if addr != "" {
			remote[addr] = append(remote[addr], i)
			continue
		}
		if err := read(rep, req.Consistency, func(st *shard.Store) error { return infoOf(st, u, &out[i]) }); err != nil {
			return nil, err
		}
	}
	if len(remote) > 0 {
		if err := r.peers.forwardInfos(ctx, remote, req.Consistency, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// infoOf fills in the counts of user u.
func infoOf(st *shard.Store, u string, out *wire.Info) error {
	res, err := st.Info([]string{u})
	if err != nil {
		return err
	}
	x := res[0]
	out.Code, out.Following, out.Followers, out.Mutual = x.Code, uint64(x.Following), uint64(x.Followers), uint64(x.Mutual)
	return nil
}

// Check returns the follow type between the actor and each target.
func (r *Router) Check(ctx context.Context, req wire.CheckRequest) ([]wire.Check, error) {
	if err := shard.ValidateUserID(req.Actor); err != nil {
		return nil, err
	}
	var out []wire.Check
	err := r.retrying(ctx, func() (err error) {
		out, err = r.check(ctx, req)
		return err
	})
	return out, err
}

func (r *Router) check(ctx context.Context, req wire.CheckRequest) ([]wire.Check, error) {
	rep, addr, err := r.route(ctx, req.Actor, req.Consistency)
	if err != nil {
		return nil, err
	}
	if addr != "" {
		return r.peers.forwardCheck(ctx, addr, req)
	}
	var out []wire.Check
	err = read(rep, req.Consistency, func(st *shard.Store) error {
		cs, err := st.Check(req.Actor, req.Targets)
		if err != nil {
			return err
		}
		out = make([]wire.Check, len(cs))
		for i, c := range cs {
			// The target may share the request frame.
			out[i] = wire.Check{UserID: string([]byte(req.Targets[i])), Code: c.Code, FollowType: uint8(c.Type)}
		}
		return nil
	})
	return out, err
}
