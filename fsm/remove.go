package fsm

import (
	"maps"
	"slices"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/shard"
	"github.com/followgraph/followgraph/wire"
)

// Removing a user's whole graph.
//
// OpRemoveUser, on the user's home shard, starts a removal: the user is
// listed in removals (replicated, kept in snapshots) and every other
// shard gets a RecordBlock, which it answers with a RecordBlocked.
// OpRemoveStep then removes up to a given
// number of the user's edges: its following entries first, each followee
// getting a RecordRemove (the reverse side, as for an unfollow), then its
// followers, each follower getting a RecordDrop (its following entry for
// the user goes). The leader proposes steps until the lists are empty.
// The removal ends when they are and every other shard has answered the
// block (a follow of the user that shard accepted before the block is
// then in, and was undone); RecordUnblock then goes everywhere. Every step is an ordinary entry and every side effect an
// ordinary record, so a removal survives leader changes and restarts and
// resumes where it stood, and the records are exactly-once.
//
// While a user is removed (listed in removals on its home shard, or
// blocked on another shard), writes with the user as actor or target get
// codes.UserRemoving. A follower edge that still arrives at the home
// shard (sent before the block reached the follower's shard) is not
// added but sent back as a RecordDrop, so nothing of the user survives
// the removal. Afterwards the user is a fresh one.

// Removal is a running removal of a user's graph.
type Removal struct {
	User    string
	Started int64  // the entry time of the request
	Removed uint64 // edges removed so far
	Acks    int    // shards that answered the block
}

// RemovalStatus is the answer to a remove-user request.
type RemovalStatus struct {
	Running bool // false: done (nothing of the user is left)
	Removed uint64
	// Following and Followers are the entries the user's lists still
	// hold.
	Following, Followers int
}

// removing reports whether writes involving user are refused here.
func (f *FSM) removing(user string) bool {
	return f.blocked[user] || f.removals[user] != nil
}

// guard runs a write command, refusing the targets being removed
// (codes.UserRemoving) and passing the others to write. An actor being
// removed fails the whole command.
func (f *FSM) guard(c Command, write func(targets []string, times []int64) ([]shard.Result, error)) ([]shard.Result, error) {
	if len(f.blocked) == 0 && len(f.removals) == 0 {
		return write(c.Targets, c.Times)
	}
	if f.removing(c.Actor) {
		return nil, codes.New(codes.UserRemoving, "%s is being removed", c.Actor)
	}
	var targets []string
	var times []int64
	for i, t := range c.Targets {
		if !f.removing(t) {
			targets = append(targets, t)
			if c.Times != nil {
				times = append(times, c.Times[i])
			}
		}
	}
	var res []shard.Result
	if len(targets) > 0 {
		var err error
		if res, err = write(targets, times); err != nil {
			return nil, err
		}
	}
	out := make([]shard.Result, len(c.Targets))
	k := 0
	for i, t := range c.Targets {
		if f.removing(t) {
			out[i] = shard.Result{UserID: t, Code: codes.UserRemoving, Info: t + " is being removed"}
			continue
		}
		out[i] = res[k]
		k++
	}
	return out, nil
}

// startRemoval applies OpRemoveUser.
func (f *FSM) startRemoval(user string, now int64) (RemovalStatus, error) {
	if err := shard.ValidateUserID(user); err != nil {
		return RemovalStatus{}, err
	}
	if shard.Of(user, f.cfg.Shards) != f.cfg.Shard {
		return RemovalStatus{}, codes.New(codes.InvalidParam, "%s does not live on shard %d", user, f.cfg.Shard)
	}
	if r := f.removals[user]; r != nil {
		return f.removalStatus(user), nil
	}
	if fo, fe := f.store.Edges(user); fo+fe == 0 && f.cfg.Shards == 1 {
		return RemovalStatus{}, nil // nothing to remove: done at once
	}
	// Even a user without edges here is blocked elsewhere first: a
	// follow of it may be on its way.
	r := &Removal{User: user, Started: now}
	f.removals[user] = r
	f.broadcast(RecordBlock, user, now)
	f.maybeFinish(r, now)
	return f.removalStatus(user), nil
}

func (f *FSM) removalStatus(user string) RemovalStatus {
	st := RemovalStatus{}
	if r := f.removals[user]; r != nil {
		st.Running, st.Removed = true, r.Removed
	}
	st.Following, st.Followers = f.store.Edges(user)
	return st
}

// broadcast sends a record about user to every other shard.
func (f *FSM) broadcast(kind uint8, user string, now int64) {
	for d := range f.cfg.Shards {
		if d != f.cfg.Shard {
			f.send(d, kind, user, "", 0, now)
		}
	}
}

// removeStep applies OpRemoveStep: up to max of the user's edges go.
func (f *FSM) removeStep(user string, max int, now int64) (RemovalStatus, error) {
	r := f.removals[user]
	if r == nil {
		return f.removalStatus(user), nil // done already: a step proposed twice
	}
	edges, err := f.store.RemoveEdges(user, max)
	if err != nil {
		return RemovalStatus{}, err
	}
	for _, e := range edges {
		d := shard.Of(e.Peer, f.cfg.Shards)
		if e.Following {
			f.removedEvents(wire.FollowingRemoved, user, e)
			f.send(d, RecordRemove, e.Peer, user, e.Time, now)
		} else {
			f.removedEvents(wire.FollowerRemoved, user, e)
			f.send(d, RecordDrop, user, e.Peer, e.Time, now)
		}
	}
	r.Removed += uint64(len(edges))
	f.maybeFinish(r, now)
	return f.removalStatus(user), nil
}

// maybeFinish ends r if the user's lists are empty and every other shard
// has answered the block.
func (f *FSM) maybeFinish(r *Removal, now int64) {
	if fo, fe := f.store.Edges(r.User); fo+fe == 0 && r.Acks >= f.cfg.Shards-1 {
		delete(f.removals, r.User)
		f.broadcast(RecordUnblock, r.User, now)
	}
}

func (f *FSM) removedEvents(kind wire.EventKind, user string, e shard.RemovedEdge) {
	if !f.feed.Enabled() {
		return
	}
	f.emit(kind, user, e.Peer, e.Time)
	if e.Mutual {
		f.emit(wire.MutualBroken, user, e.Peer, e.Time)
	}
}

// applyDrop applies a RecordDrop: the follower's edge to a removed user.
func (f *FSM) applyDrop(followee, follower string, t int64) {
	c, err := f.store.DropFollowing(follower, followee, t)
	if err != nil {
		f.log.Warn("dropped edge not applied", "shard", f.cfg.Shard, "followee", followee, "follower", follower, "error", err)
		return
	}
	if f.feed.Enabled() && c.Edge {
		f.emit(wire.FollowingRemoved, follower, followee, t)
		if c.Mutual {
			f.emit(wire.MutualBroken, follower, followee, t)
		}
	}
}

func cloneRemovals(m map[string]*Removal) map[string]*Removal {
	out := make(map[string]*Removal, len(m))
	for u, r := range m {
		c := *r
		out[u] = &c
	}
	return out
}

// Removals returns the removals running on this shard, by user.
func (f *FSM) Removals() []Removal {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]Removal, 0, len(f.removals))
	for _, u := range slices.Sorted(maps.Keys(f.removals)) {
		out = append(out, *f.removals[u])
	}
	return out
}

// RemovalStatus returns the state of user's removal (not running: done,
// or never asked).
func (f *FSM) RemovalStatus(user string) RemovalStatus {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.removalStatus(user)
}
