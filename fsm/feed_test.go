package fsm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/shard"
	"github.com/followgraph/followgraph/wire"
	"github.com/hashicorp/raft"
	"pgregory.net/rapid"
)

// fataler is what the helpers need of testing.T and rapid.T.
type fataler interface {
	Helper()
	Fatal(args ...any)
}

func newFeedFSM(t fataler, id, shards int, feed FeedConfig) *FSM {
	t.Helper()
	f, err := New(Config{Shard: id, Shards: shards, Store: shard.DefaultConfig(), Feed: feed})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// ev is an event without its offset, for comparisons.
type ev struct {
	Kind        wire.EventKind
	User, Other string
}

func allEvents(t fataler, f *FSM, from uint64) []Event {
	t.Helper()
	var out []Event
	for {
		es, next, err := f.Feed().Read(from, 100, 1000, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			return out
		}
		out, from = append(out, es...), next
	}
}

func kinds(es []Event) []ev {
	out := make([]ev, len(es))
	for i, e := range es {
		out[i] = ev{e.Kind, e.User, e.Other}
	}
	return out
}

func TestFeedEventsOnOneShard(t *testing.T) {
	f := newFeedFSM(t, 0, 1, DefaultFeedConfig())
	var buf bytes.Buffer
	idx := uint64(0)
	write := func(ts int64, op Op, actor, target string) []Event {
		idx++
		head := f.Feed().Head()
		f.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: EncodeCommands(&buf, ts, []Command{{Op: op, Actor: actor, Targets: []string{target}}})})
		es := allEvents(t, f, head)
		for i, e := range es {
			if e.Time != ts || e.Offset>>offsetBits != idx || i > 0 && e.Offset <= es[i-1].Offset {
				t.Fatalf("entry %d at %d: event %d %+v", idx, ts, i, e)
			}
		}
		return es
	}
	steps := []struct {
		op            Op
		actor, target string
		want          []ev
	}{
		{OpFollow, "a", "b", []ev{{wire.FollowingAdded, "a", "b"}, {wire.FollowerAdded, "b", "a"}}},
		{OpFollow, "a", "b", []ev{}}, // already followed: nothing changes
		{OpFollow, "b", "a", []ev{{wire.FollowingAdded, "b", "a"}, {wire.MutualFormed, "b", "a"}, {wire.FollowerAdded, "a", "b"}, {wire.MutualFormed, "a", "b"}}},
		{OpUnfollow, "a", "b", []ev{{wire.FollowingRemoved, "a", "b"}, {wire.MutualBroken, "a", "b"}, {wire.FollowerRemoved, "b", "a"}, {wire.MutualBroken, "b", "a"}}},
		{OpUnfollow, "a", "b", []ev{}},
		{OpUnfollow, "b", "a", []ev{{wire.FollowingRemoved, "b", "a"}, {wire.FollowerRemoved, "a", "b"}}},
	}
	for i, s := range steps {
		got := kinds(write(int64(1000+i), s.op, s.actor, s.target))
		if !reflect.DeepEqual(got, s.want) {
			t.Fatalf("step %d (%d %s %s): events %v, want %v", i, s.op, s.actor, s.target, got, s.want)
		}
	}
}

func TestFeedRetentionAndExpiry(t *testing.T) {
	f := newFeedFSM(t, 0, 1, FeedConfig{Retention: 4})
	var buf bytes.Buffer
	for i := range 5 { // 10 events
		f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: EncodeCommands(&buf, 1000, []Command{{Op: OpFollow, Actor: "a", Targets: []string{fmt.Sprint("t", i)}}})})
	}
	fd := f.Feed()
	if fd.Len() != 4 {
		t.Fatalf("%d events kept, want 4", fd.Len())
	}
	if _, _, err := fd.Read(0, 10, 10, nil); !errors.Is(err, codes.ErrFeedExpired) {
		t.Fatalf("read from 0 after eviction: %v, want 40009", err)
	}
	es, _, err := fd.Read(fd.Floor(), 10, 10, nil)
	if err != nil || len(es) != 4 {
		t.Fatalf("read from the floor: %d events, %v", len(es), err)
	}
	// A filter skips, and the next offset moves past what it skipped.
	es, next, err := fd.Read(fd.Floor(), 10, 10, func(e *Event) bool { return e.Kind == wire.FollowerAdded })
	if err != nil || len(es) != 2 || next != fd.Head() {
		t.Fatalf("filtered read: %d events, next %d (head %d), %v", len(es), next, fd.Head(), err)
	}
	off, err := New(Config{Shard: 0, Shards: 1, Store: shard.DefaultConfig()})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := off.Feed().Read(0, 1, 1, nil); !errors.Is(err, ErrFeedDisabled) {
		t.Fatalf("read of a disabled feed: %v", err)
	}
}

func TestFeedAgeLimit(t *testing.T) {
	f := newFeedFSM(t, 0, 1, FeedConfig{Retention: 100, MaxAge: time.Second})
	var buf bytes.Buffer
	for i, ts := range []int64{1000, 1500, 2600} {
		f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: EncodeCommands(&buf, ts, []Command{{Op: OpFollow, Actor: "a", Targets: []string{fmt.Sprint("t", i)}}})})
	}
	es := allEvents(t, f, f.Feed().Floor())
	if len(es) != 2 || es[0].Time != 2600 {
		t.Fatalf("events after the age limit: %+v", es)
	}
}

// TestFeedAfterRestore: the feed travels in snapshots, so a replica
// restored from one (a restart, a new replica) serves the same events at
// the same offsets as one that applied the whole log; a snapshot from a
// node without a feed, or a smaller retention, raises the floor instead.
func TestFeedAfterRestore(t *testing.T) {
	logs := randomLog(3, 300)
	a := newFeedFSM(t, 0, 3, DefaultFeedConfig())
	off := newFeedFSM(t, 0, 3, FeedConfig{})
	for _, l := range logs[:150] {
		a.Apply(l)
		off.Apply(l)
	}
	snap, snapOff := snapshotOf(t, a), snapshotOf(t, off)
	before := allEvents(t, a, 0)
	for _, l := range logs[150:] {
		a.Apply(l)
	}
	b := newFeedFSM(t, 0, 3, DefaultFeedConfig())
	if err := b.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if got := allEvents(t, b, 0); b.Index() != 150 || !reflect.DeepEqual(got, before) || len(got) == 0 {
		t.Fatalf("restored: index %d, %d events, the source had %d at the snapshot", b.Index(), len(got), len(before))
	}
	for _, l := range logs[150:] {
		b.Apply(l)
	}
	if got, want := allEvents(t, b, 0), allEvents(t, a, 0); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the replay: %d events, the full replica has %d (or they differ)", len(got), len(want))
	}

	c := newFeedFSM(t, 0, 3, DefaultFeedConfig())
	if err := c.Restore(io.NopCloser(bytes.NewReader(snapOff))); err != nil {
		t.Fatal(err)
	}
	if c.Feed().Floor() != OffsetOf(150, 1<<offsetBits-1) {
		t.Fatalf("restored from a node without a feed: floor %d", c.Feed().Floor())
	}
	if _, _, err := c.Feed().Read(0, 1, 1, nil); !errors.Is(err, codes.ErrFeedExpired) {
		t.Fatalf("read before that snapshot: %v, want 40009", err)
	}
	small := newFeedFSM(t, 0, 3, FeedConfig{Retention: 3})
	if err := small.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatal(err)
	}
	if got := allEvents(t, small, small.Feed().Floor()); !reflect.DeepEqual(got, before[len(before)-3:]) || small.Feed().Floor() != before[len(before)-4].Offset {
		t.Fatalf("restored into a retention of 3: %+v, floor %d", got, small.Feed().Floor())
	}
}

func TestFeedWait(t *testing.T) {
	f := newFeedFSM(t, 0, 1, DefaultFeedConfig())
	done := make(chan struct{})
	go func() {
		f.Feed().Wait(context.Background(), 0)
		close(done)
	}()
	time.Sleep(10 * time.Millisecond)
	var buf bytes.Buffer
	f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: EncodeCommands(&buf, 1, []Command{{Op: OpFollow, Actor: "a", Targets: []string{"b"}}})})
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after events arrived")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	f.Feed().Wait(ctx, f.Feed().Head()) // returns at the deadline
}

// feedModel is the graph as the events tell it: replaying every shard's
// feed must rebuild every list of every Store.
type feedModel map[string]map[wire.EventKind]map[string]bool

func (m feedModel) apply(t *rapid.T, e Event) {
	lists := map[wire.EventKind]wire.EventKind{wire.FollowingAdded: wire.FollowingAdded, wire.FollowingRemoved: wire.FollowingAdded,
		wire.FollowerAdded: wire.FollowerAdded, wire.FollowerRemoved: wire.FollowerAdded, wire.MutualFormed: wire.MutualFormed, wire.MutualBroken: wire.MutualFormed}
	l := lists[e.Kind]
	if m[e.User] == nil {
		m[e.User] = map[wire.EventKind]map[string]bool{}
	}
	if m[e.User][l] == nil {
		m[e.User][l] = map[string]bool{}
	}
	add := e.Kind == l
	if m[e.User][l][e.Other] == add {
		t.Fatalf("event %v %s %s repeats the state", e.Kind, e.User, e.Other)
	}
	m[e.User][l][e.Other] = add
}

// TestFeedRebuildsTheGraph: random follows and unfollows over three
// shards, with the reverse edges relayed between them in random order
// and amounts: the events of all feeds, replayed into a model, give
// exactly the lists the Stores hold, and no event repeats a state.
func TestFeedRebuildsTheGraph(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		const shards = 3
		fs := make([]*FSM, shards)
		for i := range fs {
			fs[i] = newFeedFSM(t, i, shards, FeedConfig{Retention: 1 << 16})
		}
		users := []string{"u0", "u1", "u2", "u3", "u4", "u5"}
		idx := make([]uint64, shards)
		var buf bytes.Buffer
		apply := func(s int, data []byte) {
			idx[s]++
			fs[s].Apply(&raft.Log{Index: idx[s], Type: raft.LogCommand, Data: bytes.Clone(data)})
		}
		relay := func(src, dst int) {
			if recs := fs[src].Pending(dst, fs[dst].Applied(src), 100); len(recs) > 0 {
				apply(dst, EncodeDeliver(&buf, src, recs))
				apply(src, EncodeAck(&buf, []Watermark{{Shard: dst, Seq: fs[dst].Applied(src)}}))
			}
		}
		for i := range rapid.IntRange(1, 60).Draw(t, "steps") {
			if rapid.IntRange(0, 2).Draw(t, "relay") == 0 {
				relay(rapid.IntRange(0, shards-1).Draw(t, "src"), rapid.IntRange(0, shards-1).Draw(t, "dst"))
				continue
			}
			actor := rapid.SampledFrom(users).Draw(t, "actor")
			op := rapid.SampledFrom([]Op{OpFollow, OpUnfollow}).Draw(t, "op")
			targets := rapid.SliceOfNDistinct(rapid.SampledFrom(users), 1, 3, rapid.ID).Draw(t, "targets")
			apply(shard.Of(actor, shards), EncodeCommands(&buf, int64(1000+i), []Command{{Op: op, Actor: actor, Targets: targets}}))
		}
		for range 2 { // drain the outboxes
			for src := range shards {
				for dst := range shards {
					relay(src, dst)
				}
			}
		}
		model := feedModel{}
		for _, f := range fs {
			for _, e := range allEvents(t, f, 0) {
				model.apply(t, e)
			}
		}
		lists := map[shard.Kind]wire.EventKind{shard.Following: wire.FollowingAdded, shard.Followers: wire.FollowerAdded, shard.Mutual: wire.MutualFormed}
		for _, u := range users {
			f := fs[shard.Of(u, shards)]
			for k, ek := range lists {
				var got, want []string
				f.Read(func(st *shard.Store) error {
					items, _, err := st.List(k, u, "", 100)
					for _, it := range items {
						got = append(got, it.UserID)
					}
					return err
				})
				for o, in := range model[u][ek] {
					if in {
						want = append(want, o)
					}
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("%s's %v list: store %v, events %v", u, k, got, want)
				}
			}
		}
	})
}

// FuzzDecodeMeta: any snapshot meta section (the part behind the
// checksum) decodes or fails cleanly, never panics, and never yields a
// feed out of offset order.
func FuzzDecodeMeta(f *testing.F) {
	a := newFeedFSM(f, 0, 3, DefaultFeedConfig())
	for i, l := range randomLog(5, 60) {
		a.Apply(l)
		if i%20 == 0 {
			snap := snapshotOf(f, a)
			n := binary.LittleEndian.Uint32(snap[20:])
			f.Add(snap[28 : 28+n])
		}
	}
	f.Fuzz(func(t *testing.T, meta []byte) {
		st := &restored{}
		if err := st.decodeMeta(meta, 3); err != nil {
			return
		}
		for i := 1; i < len(st.feed); i++ {
			if st.feed[i].Offset <= st.feed[i-1].Offset {
				t.Fatalf("feed out of order: %+v", st.feed)
			}
		}
	})
}

// TestFeedRingGrowsAndWraps: the ring grows up to the retention, then
// keeps the newest events in order as it wraps.
func TestFeedRingGrowsAndWraps(t *testing.T) {
	f := newFeedFSM(t, 0, 1, FeedConfig{Retention: 1000})
	var buf bytes.Buffer
	for i := range 1700 { // 2 events each
		f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: EncodeCommands(&buf, int64(i), []Command{{Op: OpFollow, Actor: "a", Targets: []string{fmt.Sprint("t", i)}}})})
		if i == 100 && len(allEvents(t, f, 0)) != 202 {
			t.Fatalf("after 101 entries: %d events", len(allEvents(t, f, 0)))
		}
	}
	es := allEvents(t, f, f.Feed().Floor())
	if len(es) != 1000 || es[len(es)-1].Offset != f.Feed().Head() || es[0].Offset>>offsetBits != 1201 {
		t.Fatalf("%d events, first at entry %d, last %d (head %d)", len(es), es[0].Offset>>offsetBits, es[len(es)-1].Offset, f.Feed().Head())
	}
	for i := 1; i < len(es); i++ {
		if es[i].Offset <= es[i-1].Offset {
			t.Fatalf("event %d out of order", i)
		}
	}
}

// TestHookOffsets: webhook positions are replicated state: an entry moves
// a hook forward only, and snapshots carry the positions.
func TestHookOffsets(t *testing.T) {
	f := newFeedFSM(t, 0, 1, DefaultFeedConfig())
	var buf bytes.Buffer
	for i, hs := range [][]HookPosition{{{"h1", 50}, {"h2", 7}}, {{"h1", 40}}, {{"h2", 9}}} {
		f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: EncodeBatch(&buf, Batch{Hooks: hs})})
	}
	if f.HookOffset("h1") != 50 || f.HookOffset("h2") != 9 || f.HookOffset("h3") != 0 {
		t.Fatalf("hook offsets %d %d %d, want 50 9 0", f.HookOffset("h1"), f.HookOffset("h2"), f.HookOffset("h3"))
	}
	g := newFeedFSM(t, 0, 1, DefaultFeedConfig())
	if err := g.Restore(io.NopCloser(bytes.NewReader(snapshotOf(t, f)))); err != nil {
		t.Fatal(err)
	}
	if g.HookOffset("h1") != 50 || g.HookOffset("h2") != 9 {
		t.Fatalf("restored hook offsets %d %d", g.HookOffset("h1"), g.HookOffset("h2"))
	}
}
