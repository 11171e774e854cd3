package chaos

import (
	"context"
	"fmt"
	"maps"
	"math/bits"
	"slices"
	"sync"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/wire"
)

// The change-feed check: a watcher runs from the start of the workload
// through every fault, and the following sets its events rebuild (each
// shard's events in offset order, duplicates dropped) must equal the
// final reads. A lost event, an event of a write that did not commit, or
// one out of order shows up as a difference.

// feedRetention is what the chaos nodes keep of each shard's feed: the
// watcher may fall behind during a fault, never by this much.
const feedRetention = 200_000

// WatchResult is what the feed check saw.
type WatchResult struct {
	Events     int      `json:"events"`     // distinct events received
	Duplicates int      `json:"duplicates"` // events received again (at-least-once)
	Mismatches []string `json:"mismatches,omitempty"`
	Err        string   `json:"err,omitempty"`
}

// feedWatch collects the workload users' following events.
type feedWatch struct {
	mu     sync.Mutex
	byPos  map[int]map[uint64]client.Event
	dups   int
	err    error
	stop   func()
	closed chan struct{}
}

// startWatch starts the watcher over the chaos users' following events.
func (h *Harness) startWatch(ctx context.Context) (*feedWatch, error) {
	c, err := h.newClient(ctx, "chaos-watch")
	if err != nil {
		return nil, err
	}
	users := make([]string, h.cfg.Users)
	for i := range users {
		users[i] = userID(i)
	}
	wctx, cancel := context.WithCancel(ctx)
	w, err := c.Watch(wctx, client.WatchOptions{Start: wire.WatchOldest, Users: users,
		Kinds: []wire.EventKind{wire.FollowingAdded, wire.FollowingRemoved}})
	if err != nil {
		cancel()
		c.Close()
		return nil, err
	}
	fw := &feedWatch{byPos: map[int]map[uint64]client.Event{}, closed: make(chan struct{})}
	fw.stop = func() {
		cancel()
		<-fw.closed
		w.Close()
		c.Close()
	}
	go func() {
		defer close(fw.closed)
		for {
			e, err := w.Next(wctx)
			if err != nil {
				if wctx.Err() == nil {
					fw.mu.Lock()
					fw.err = err
					fw.mu.Unlock()
				}
				return
			}
			fw.add(e)
		}
	}()
	return fw, nil
}

func (fw *feedWatch) add(e client.Event) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	m := fw.byPos[e.Shard]
	if m == nil {
		m = map[uint64]client.Event{}
		fw.byPos[e.Shard] = m
	}
	if _, ok := m[e.Offset]; ok {
		fw.dups++
		return
	}
	m[e.Offset] = e
}

// sets rebuilds each actor's following set from the events.
func (fw *feedWatch) sets(users int) map[int]uint64 {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	out := map[int]uint64{}
	for _, m := range fw.byPos {
		for _, off := range slices.Sorted(maps.Keys(m)) {
			e := m[off]
			a, t := userIndex(e.User, users), userIndex(e.Other, users)
			if a < 0 || t < 0 {
				continue
			}
			if e.Kind == wire.FollowingAdded {
				out[a] |= 1 << t
			} else {
				out[a] &^= 1 << t
			}
		}
	}
	return out
}

func userIndex(id string, users int) int {
	var i int
	if _, err := fmt.Sscanf(id, "u%02d", &i); err != nil || i < 0 || i >= users || userID(i) != id {
		return -1
	}
	return i
}

// check waits (up to a minute: the watcher may still be catching up) for
// the events to rebuild final, then stops the watcher and reports.
func (fw *feedWatch) check(ctx context.Context, final map[int]uint64, users int) *WatchResult {
	defer fw.stop()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var diff []string
	for {
		got := fw.sets(users)
		diff = diff[:0]
		for u, want := range final {
			if g := got[u]; g != want {
				diff = append(diff, fmt.Sprintf("%s: events give %s, final read %s (%d differ)", userID(u), setString(g), setString(want), bits.OnesCount64(g^want)))
			}
		}
		fw.mu.Lock()
		err := fw.err
		fw.mu.Unlock()
		if len(diff) == 0 || err != nil || ctx.Err() != nil {
			break
		}
		sleep(ctx, 250*time.Millisecond)
	}
	fw.mu.Lock()
	defer fw.mu.Unlock()
	r := &WatchResult{Duplicates: fw.dups, Mismatches: slices.Clone(diff)}
	for _, m := range fw.byPos {
		r.Events += len(m)
	}
	if fw.err != nil {
		r.Err = fw.err.Error()
	}
	return r
}
