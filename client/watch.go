package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/wire"
)

// Event is one change from the feed of the shard of Event.User.
type Event struct {
	Shard  int
	Offset uint64 // position in the shard's feed
	Kind   wire.EventKind
	// User is the user whose list changed; Other the user added to or
	// removed from it.
	User, Other string
	// Time is the commit time and FollowTime the edge's followTime, both
	// in ms since the epoch.
	Time, FollowTime int64
}

// Positions is a watcher's place in each shard's feed: the offset of the
// last event consumed (or skipped by its filter). Stored by a consumer
// and given back as WatchOptions.From, it resumes the watch without
// losing or repeating an event.
type Positions map[int]uint64

// String formats p as "shard:offset,...", in shard order (the form
// ParsePositions and followctl watch --from take).
func (p Positions) String() string {
	shards := make([]int, 0, len(p))
	for s := range p {
		shards = append(shards, s)
	}
	slices.Sort(shards)
	parts := make([]string, len(shards))
	for i, s := range shards {
		parts[i] = fmt.Sprintf("%d:%d", s, p[s])
	}
	return strings.Join(parts, ",")
}

// ParsePositions parses the form Positions.String writes.
func ParsePositions(s string) (Positions, error) {
	p := Positions{}
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		sh, off, ok := strings.Cut(part, ":")
		si, err1 := strconv.Atoi(sh)
		o, err2 := strconv.ParseUint(off, 10, 64)
		if !ok || err1 != nil || err2 != nil || si < 0 {
			return nil, fmt.Errorf("position %q: want shard:offset", part)
		}
		p[si] = o
	}
	return p, nil
}

// WatchOptions says what to watch and from where.
type WatchOptions struct {
	// From gives the position to resume from, per shard. Shards it does
	// not name start where Start says.
	From Positions
	// Start is where shards without a position start: wire.WatchNow (the
	// default, also for the zero value: only changes from now on) or
	// wire.WatchOldest (everything the feed still retains).
	Start wire.WatchStart
	// Kinds keeps only these kinds of events (none: all).
	Kinds []wire.EventKind
	// Users keeps only events whose user or other side is one of these
	// (none: all). Events live on the shard of their User, so every shard
	// is watched either way.
	Users []string
	// Buffer is how many events may wait for Next (default 1024); a
	// consumer that falls behind stops the polling, not the server.
	Buffer int
}

// Watcher streams change-feed events of every shard. Next returns them in
// offset order per shard (shards interleave). Delivery is at least once:
// a consumer that stores Positions and resumes from them sees every event
// exactly once. The watcher rides through leader changes and node
// restarts by itself: any replica of a shard serves its feed at the same
// offsets.
type Watcher struct {
	events chan watchItem
	errc   chan error
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu  sync.Mutex
	pos Positions
}

// watchItem is an event, or (progress) a shard's position after a page.
type watchItem struct {
	ev       Event
	progress bool
}

// Watch starts watching every shard's feed. Close the Watcher when done.
func (c *Client) Watch(ctx context.Context, opts WatchOptions) (*Watcher, error) {
	switch opts.Start {
	case wire.WatchFrom:
		opts.Start = wire.WatchNow
	case wire.WatchNow, wire.WatchOldest:
	default:
		return nil, codes.New(codes.InvalidParam, "watch start %d: want now or oldest", opts.Start)
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 1024
	}
	var kinds uint32
	for _, k := range opts.Kinds {
		kinds |= 1 << k
	}
	c.mu.Lock()
	shards := c.shards
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	w := &Watcher{events: make(chan watchItem, opts.Buffer), errc: make(chan error, 1), cancel: cancel, pos: Positions{}}
	reqs := make([]wire.WatchRequest, shards)
	for s := range shards {
		reqs[s] = wire.WatchRequest{Shard: s, Start: opts.Start, Max: 1000, Wait: wire.MaxWatchWait, Kinds: kinds, Users: opts.Users}
		if off, ok := opts.From[s]; ok {
			reqs[s].From, reqs[s].Start = off, wire.WatchFrom
			w.pos[s] = off
		} else if opts.Start == wire.WatchNow {
			// Learn where "now" is before returning, so that every change
			// committed after Watch returns is delivered.
			p, err := c.watchPage(ctx, reqs[s])
			if err != nil {
				cancel()
				return nil, fmt.Errorf("watch shard %d: %w", s, err)
			}
			reqs[s].From, reqs[s].Start = p.Next, wire.WatchFrom
			w.pos[s] = p.Next
		}
	}
	for _, req := range reqs {
		w.wg.Go(func() { w.poll(ctx, c, req) })
	}
	return w, nil
}

// watchPage sends one watch request to the shard.
func (c *Client) watchPage(ctx context.Context, req wire.WatchRequest) (wire.WatchPage, error) {
	body, err := c.do(ctx, req.Shard, wire.OpWatch, func(b []byte) []byte { return wire.AppendWatchRequest(b, req) })
	if err != nil {
		return wire.WatchPage{}, err
	}
	return wire.ParseWatchPage(body)
}

// poll reads one shard's feed until ctx ends or an error that retrying
// cannot cure (the position expired, a bad request).
func (w *Watcher) poll(ctx context.Context, c *Client, req wire.WatchRequest) {
	backoff := c.cfg.RetryBackoff
	for ctx.Err() == nil {
		p, err := c.watchPage(ctx, req)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !retryable(err) {
				w.fail(fmt.Errorf("watch shard %d: %w", req.Shard, err))
				return
			}
			// The cluster is unavailable past the request's deadline:
			// keep trying, more slowly.
			select {
			case <-time.After(backoff + rand.N(backoff)):
			case <-ctx.Done():
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = c.cfg.RetryBackoff
		for _, e := range p.Events {
			if !w.push(ctx, watchItem{ev: Event{Shard: req.Shard, Offset: e.Offset, Kind: e.Kind, User: e.User, Other: e.Other, Time: e.Time, FollowTime: e.FollowTime}}) {
				return
			}
		}
		if p.Next != req.From || req.Start != wire.WatchFrom {
			if !w.push(ctx, watchItem{ev: Event{Shard: req.Shard, Offset: p.Next}, progress: true}) {
				return
			}
		}
		req.From, req.Start = p.Next, wire.WatchFrom
	}
}

func (w *Watcher) push(ctx context.Context, it watchItem) bool {
	select {
	case w.events <- it:
		return true
	case <-ctx.Done():
		return false
	}
}

func (w *Watcher) fail(err error) {
	select {
	case w.errc <- err:
	default:
	}
}

// ErrWatchClosed is returned by Next after Close.
var ErrWatchClosed = errors.New("client: watcher closed")

// Next returns the next event, waiting for one until ctx ends. An error
// other than ctx's ends the watch: codes.FeedExpired means a position is
// older than the feed retains, and the consumer must resync (read the
// lists again) and watch from now.
func (w *Watcher) Next(ctx context.Context) (Event, error) {
	for {
		select {
		case it := <-w.events:
			w.mu.Lock()
			w.pos[it.ev.Shard] = it.ev.Offset
			w.mu.Unlock()
			if !it.progress {
				return it.ev, nil
			}
		case err := <-w.errc:
			w.errc <- err // every later call fails too
			return Event{}, err
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// Positions returns the watcher's place in every shard's feed, as of the
// events Next has returned.
func (w *Watcher) Positions() Positions {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(Positions, len(w.pos))
	for s, o := range w.pos {
		out[s] = o
	}
	return out
}

// Close stops the watch and waits for its goroutines.
func (w *Watcher) Close() {
	w.cancel()
	w.wg.Wait()
	w.fail(ErrWatchClosed)
}
