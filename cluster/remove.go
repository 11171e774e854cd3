package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/fsm"
)

// Removing users' graphs: the FSM holds the state of every removal
// (fsm/remove.go); the shard's leader drives them, one bounded step per
// log entry, so a removal survives leader changes and restarts: the next
// leader finds it in the state and goes on.

// RemovalConfig tunes the removal of users' graphs.
type RemovalConfig struct {
	// Step is the most edges one log entry removes. Applying a step holds
	// the shard's lock (about a microsecond per edge), so it bounds how
	// long reads wait behind it.
	Step int
	// Poll is how often an idle leader looks for removals to run.
	Poll time.Duration
	// MaxOutbox: steps wait while the shard's undelivered records exceed
	// it, so that a removal never fills the outbox that client writes need
	// (see RelayConfig.MaxOutbox).
	MaxOutbox int
}

// DefaultRemovalConfig returns the removal defaults.
func DefaultRemovalConfig() RemovalConfig {
	return RemovalConfig{Step: 8192, Poll: 100 * time.Millisecond, MaxOutbox: 1 << 18}
}

// Validate reports the first invalid field.
func (c *RemovalConfig) Validate() error {
	if c.Step < 1 || c.Step > fsm.MaxRemoveStep || c.Poll <= 0 || c.MaxOutbox < 1 {
		return errors.New("cluster: Removal.Step must be 1 to 2^20, Removal.Poll and Removal.MaxOutbox positive")
	}
	return nil
}

// RemoveUser starts removing user's whole graph (user must live on this
// shard), or reports how far a running removal is; asking again is
// harmless. The removal runs in the background, driven by the leader.
func (r *Replica) RemoveUser(ctx context.Context, user string) (fsm.RemovalStatus, error) {
	res, err := r.WriteCommands(ctx, []fsm.Command{{Op: fsm.OpRemoveUser, Actor: user}}, WriteOptions{})
	if err != nil {
		return fsm.RemovalStatus{}, err
	}
	if res[0].Err != nil {
		return fsm.RemovalStatus{}, res[0].Err
	}
	select {
	case r.removalKick <- struct{}{}:
	default:
	}
	return res[0].Removal, nil
}

// RemovalStatus reports how far the removal of user is, on the leader
// (not running: none is).
func (r *Replica) RemovalStatus(user string) (fsm.RemovalStatus, error) {
	if !r.isReady.Load() {
		return fsm.RemovalStatus{}, r.notLeader()
	}
	return r.fsm.RemovalStatus(user), nil
}

// Removals returns the removals running on the shard, as this replica
// has applied them.
func (r *Replica) Removals() []fsm.Removal { return r.fsm.Removals() }

// runRemovals steps the shard's removals while this replica leads, until
// ctx ends.
func (r *Replica) runRemovals(ctx context.Context) {
	cfg := r.cfg.Removal
	for {
		busy := false
		for _, rm := range r.fsm.Removals() {
			if ctx.Err() != nil {
				return
			}
			if st := r.fsm.RemovalStatus(rm.User); st.Following+st.Followers == 0 {
				continue // waiting for the other shards to answer the block
			}
			if r.fsm.Outbox().Records > cfg.MaxOutbox {
				continue
			}
			busy = true
			_, err := r.WriteCommands(ctx, []fsm.Command{{Op: fsm.OpRemoveStep, Actor: rm.User, Times: []int64{int64(cfg.Step)}}}, WriteOptions{})
			if err != nil && ctx.Err() == nil {
				r.log.Debug("removal step not committed; retrying", "user", rm.User, "error", err)
				if !codes.Of(err).Retryable() {
					r.log.Warn("removal step failed", "user", rm.User, "error", err)
				}
				busy = false
			}
		}
		if busy {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-r.removalKick:
		case <-time.After(cfg.Poll):
		}
	}
}
