package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/fsm"
)

// Hook delivers a shard's change feed to somewhere outside the cluster (a
// webhook endpoint: package webhook). The leader of each shard runs one
// delivery loop per hook: it reads the feed from the hook's replicated
// position, hands the events to Deliver, and records the new position in
// the shard's log, so a new leader resumes where the old one stopped
// (at least once: what was delivered after the last recorded position is
// delivered again).
type Hook interface {
	// ID names the hook in the log; it must not change across restarts.
	ID() string
	// Deliver sends events of shard, in offset order, retrying as it sees
	// fit; it returns nil once they are all delivered, or ctx's error.
	Deliver(ctx context.Context, shard int, events []fsm.Event) error
	// Skipped reports events the hook never got: it fell behind the
	// feed's retention (from floor below, exclusive, up to floor).
	Skipped(shard int, from, floor uint64)
}

// hookBatch bounds the events handed to one Deliver call.
const hookBatch = 256

// hookFlush is how long a delivered position may wait for an entry to
// carry it before the loop proposes one for it alone.
const hookFlush = time.Second

// hookPositions are the delivery positions a shard's leader has reached
// but no committed entry carries yet.
type hookPositions struct {
	mu      sync.Mutex
	owed    map[string]uint64
	carried map[string]uint64
}

// take returns the owed positions (for the entry being encoded).
func (h *hookPositions) take() []fsm.HookPosition {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []fsm.HookPosition
	for id, off := range h.owed {
		if off > h.carried[id] {
			out = append(out, fsm.HookPosition{Hook: id, Offset: off})
			h.carried[id] = off
		}
	}
	return out
}

// uncarry forgets positions whose entry failed, for the next entry.
func (h *hookPositions) uncarry(ps []fsm.HookPosition) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range ps {
		if h.carried[p.Hook] == p.Offset {
			h.carried[p.Hook] = 0
		}
	}
}

func (h *hookPositions) owe(id string, off uint64) (carried bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.owed == nil {
		h.owed, h.carried = map[string]uint64{}, map[string]uint64{}
	}
	h.owed[id] = max(h.owed[id], off)
	return h.carried[id] >= h.owed[id]
}

func (h *hookPositions) isCarried(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.carried[id] >= h.owed[id]
}

// runHooks runs every hook's delivery loop until ctx ends (leadership
// lost, the replica closing).
func (r *Replica) runHooks(ctx context.Context) {
	var wg sync.WaitGroup
	for _, h := range r.node.cfg.Hooks {
		wg.Go(func() { r.runHook(ctx, h) })
	}
	wg.Wait()
}

func (r *Replica) runHook(ctx context.Context, h Hook) {
	feed := r.fsm.Feed()
	if !feed.Enabled() {
		return
	}
	pos := r.fsm.HookOffset(h.ID())
	var flushAt time.Time
	for ctx.Err() == nil {
		es, next, err := feed.Read(pos, hookBatch, 1<<16, nil)
		switch {
		case codes.Of(err) == codes.FeedExpired:
			floor := feed.Floor()
			r.log.Error("webhook fell behind the change feed's retention: events lost", "hook", h.ID(), "from", pos, "floor", floor)
			h.Skipped(r.id, pos, floor)
			pos = floor
			continue
		case err != nil:
			return
		case len(es) == 0 && next == pos:
			wctx, cancel := context.WithTimeout(ctx, hookFlush)
			feed.Wait(wctx, pos)
			cancel()
		case len(es) > 0:
			if h.Deliver(ctx, r.id, es) != nil {
				return // ctx ended: the next leader resumes from the log
			}
		}
		if next > pos {
			pos = next
			if !r.hooks.owe(h.ID(), pos) && flushAt.IsZero() {
				flushAt = time.Now().Add(hookFlush)
			}
		}
		// Writes carry the position in entries they make anyway; an idle
		// shard gets an entry of its own after hookFlush.
		if !flushAt.IsZero() && time.Now().After(flushAt) {
			if r.hooks.isCarried(h.ID()) || r.flushAcks(ctx) == nil {
				flushAt = time.Time{}
			}
		}
	}
}

// HookLag returns how many retained events of the shard hook id has not
// delivered yet, by the replicated position (the leader may be further).
func (r *Replica) HookLag(id string) int {
	return r.fsm.Feed().CountAfter(r.fsm.HookOffset(id))
}
