package fsm

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/wire"
)

// The change feed: every committed change to a shard's lists yields
// events where it is applied, kept in a bounded ring that any replica can
// serve, since every replica applies the same entries to the same state
// and so derives the same events at the same offsets.

// Event is one change to one user's lists.
type Event struct {
	// Offset is the event's position in its shard's feed: strictly
	// increasing, the same on every replica (see OffsetOf), not dense.
	Offset uint64
	// Time is the commit time (the entry's time on the leader's clock, ms).
	Time int64
	// FollowTime is the followTime of the edge that changed (the removed
	// edge's for a removal).
	FollowTime int64
	Kind       wire.EventKind
	User       string // whose list changed: a user of this shard
	Other      string // the user added to or removed from it
}

// offsetBits is the room for events within one entry: an entry is far
// smaller than 16M events (a frame holds at most 1 MiB of commands).
const offsetBits = 24

// OffsetOf is the offset of the k-th event (from 0) of the entry at raft
// index i. Offsets derive from the log, so replicas agree on them.
func OffsetOf(i uint64, k int) uint64 { return i<<offsetBits | uint64(k) }

// FeedConfig bounds what a replica keeps of its feed.
type FeedConfig struct {
	// Retention is how many events a shard's feed keeps (0: no feed:
	// nothing is recorded and Watch is refused).
	Retention int
	// MaxAge, if positive, also drops events older than this (by commit
	// time, relative to the newest event).
	MaxAge time.Duration
}

// DefaultFeedConfig keeps 16,384 events per shard: about 1.5 MiB each,
// minutes of a busy shard's changes.
func DefaultFeedConfig() FeedConfig { return FeedConfig{Retention: 1 << 14} }

// Validate reports the first invalid field.
func (c *FeedConfig) Validate() error {
	if c.Retention < 0 || c.Retention > 1<<26 || c.MaxAge < 0 {
		return fmt.Errorf("fsm: feed retention %d events (0 to %d) and max age %v (not negative)", c.Retention, 1<<26, c.MaxAge)
	}
	return nil
}

// Feed is one replica's ring of recent events. The apply goroutine adds
// events; any goroutine reads them.
type Feed struct {
	cfg FeedConfig

	mu    sync.Mutex
	ring  []Event // grown as events come, up to the retention
	first int     // ring index of the oldest event
	n     int
	// floor: events at or below this offset may be missing here (evicted,
	// or applied before the snapshot this replica restored); head: the
	// largest offset this replica knows, its newest event's or the floor.
	floor, head uint64
	wake        chan struct{} // closed when events arrive; nil if nobody waits

	pending []Event // the apply goroutine's events not yet published
}

func newFeed(cfg FeedConfig) *Feed { return &Feed{cfg: cfg} }

// Enabled reports whether the feed records anything.
func (f *Feed) Enabled() bool { return f.cfg.Retention > 0 }

// add queues an event (apply goroutine only); publish makes the queued
// events visible.
func (f *Feed) add(e Event) { f.pending = append(f.pending, e) }

func (f *Feed) publish() {
	if len(f.pending) == 0 {
		return
	}
	f.mu.Lock()
	for _, e := range f.pending {
		if f.n == len(f.ring) && len(f.ring) < f.cfg.Retention {
			f.grow()
		}
		if f.n == len(f.ring) {
			f.dropOldest()
		}
		f.ring[(f.first+f.n)%len(f.ring)] = e
		f.n++
	}
	f.head = f.pending[len(f.pending)-1].Offset
	if f.cfg.MaxAge > 0 {
		oldest := f.pending[len(f.pending)-1].Time - f.cfg.MaxAge.Milliseconds()
		for f.n > 0 && f.ring[f.first].Time < oldest {
			f.dropOldest()
		}
	}
	if f.wake != nil {
		close(f.wake)
		f.wake = nil
	}
	f.mu.Unlock()
	clear(f.pending) // drop the strings
	f.pending = f.pending[:0]
}

// grow doubles the ring, up to the retention: a large retention costs
// memory only once the events are there.
func (f *Feed) grow() {
	r := make([]Event, min(max(2*len(f.ring), 256), f.cfg.Retention))
	for k := range f.n {
		r[k] = f.ring[(f.first+k)%len(f.ring)]
	}
	f.ring, f.first = r, 0
}

func (f *Feed) dropOldest() {
	f.floor = f.ring[f.first].Offset
	f.ring[f.first] = Event{}
	f.first = (f.first + 1) % len(f.ring)
	f.n--
}

// snapshot returns the floor and a copy of the events, for a snapshot
// taken at raft index i: the feed survives restarts and travels with the
// snapshots a new replica is built from. A feed that records nothing
// knows nothing up to i.
func (f *Feed) snapshot(i uint64) (uint64, []Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.Enabled() {
		return OffsetOf(i, 1<<offsetBits-1), nil
	}
	out := make([]Event, f.n)
	for k := range out {
		out[k] = f.ring[(f.first+k)%len(f.ring)]
	}
	return f.floor, out
}

// restore replaces the events with a snapshot's. What does not fit this
// feed's retention is dropped, and raises the floor.
func (f *Feed) restore(floor uint64, events []Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ring, f.first, f.n, f.floor, f.head = nil, 0, 0, floor, floor
	if !f.Enabled() {
		return
	}
	if k := len(events) - f.cfg.Retention; k > 0 {
		f.floor = events[k-1].Offset
		events = events[k:]
	}
	if len(events) > 0 {
		f.ring = make([]Event, len(events))
		f.n = copy(f.ring, events)
		f.head = events[len(events)-1].Offset
	}
}

// Head returns the largest offset this replica knows: a consumer that
// starts "now" resumes after it.
func (f *Feed) Head() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.head
}

// Floor returns the offset at or below which events may be missing here.
func (f *Feed) Floor() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.floor
}

// Len returns how many events the feed holds.
func (f *Feed) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// CountAfter returns how many retained events have offsets above from.
func (f *Feed) CountAfter(from uint64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := sort.Search(f.n, func(i int) bool { return f.ring[(f.first+i)%len(f.ring)].Offset > from })
	return f.n - i
}

// ErrFeedDisabled refuses reads of a feed that records nothing.
var ErrFeedDisabled = codes.New(codes.InvalidParam, "the change feed is off on this node (feed retention 0)")

// Read returns up to max events after offset from that match (all if
// match is nil), looking at no more than scan events, and the offset to
// read from next: the last event looked at, so a filtered consumer moves
// on past what it skipped. A from below the floor is refused with
// codes.FeedExpired: events after it may be gone.
func (f *Feed) Read(from uint64, max, scan int, match func(*Event) bool) ([]Event, uint64, error) {
	if !f.Enabled() {
		return nil, from, ErrFeedDisabled
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if from < f.floor {
		return nil, from, codes.New(codes.FeedExpired, "offset %d is older than this replica's feed (it holds events after %d): resync and watch from now", from, f.floor)
	}
	at := func(i int) *Event { return &f.ring[(f.first+i)%len(f.ring)] }
	i := sort.Search(f.n, func(i int) bool { return at(i).Offset > from })
	var out []Event
	next := from
	for ; i < f.n && scan > 0 && len(out) < max; i, scan = i+1, scan-1 {
		e := at(i)
		next = e.Offset
		if match == nil || match(e) {
			out = append(out, *e)
		}
	}
	return out, next, nil
}

// Wait returns once the feed holds an offset above from, or ctx ends.
func (f *Feed) Wait(ctx context.Context, from uint64) {
	f.mu.Lock()
	if f.head > from {
		f.mu.Unlock()
		return
	}
	if f.wake == nil {
		f.wake = make(chan struct{})
	}
	w := f.wake
	f.mu.Unlock()
	select {
	case <-w:
	case <-ctx.Done():
	}
}
