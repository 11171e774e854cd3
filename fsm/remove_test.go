package fsm

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/shard"
	"github.com/followgraph/followgraph/wire"
	"github.com/hashicorp/raft"
	"pgregory.net/rapid"
)

// shards is a set of FSMs, one per shard, with a relay between them.
type shards struct {
	t   fataler
	fs  []*FSM
	idx []uint64
	buf bytes.Buffer
}

func newShards(t fataler, n int) *shards {
	s := &shards{t: t, fs: make([]*FSM, n), idx: make([]uint64, n)}
	for i := range s.fs {
		s.fs[i] = newFeedFSM(t, i, n, FeedConfig{Retention: 1 << 16})
	}
	return s
}

func (s *shards) apply(i int, data []byte) *BatchResponse {
	s.idx[i]++
	resp, _ := s.fs[i].Apply(&raft.Log{Index: s.idx[i], Type: raft.LogCommand, Data: bytes.Clone(data)}).(*BatchResponse)
	return resp
}

func (s *shards) command(c Command, now int64) CommandResult {
	return s.apply(shard.Of(c.Actor, len(s.fs)), EncodeCommands(&s.buf, now, []Command{c})).Commands[0]
}

func (s *shards) relay(src, dst int) {
	if recs := s.fs[src].Pending(dst, s.fs[dst].Applied(src), 50); len(recs) > 0 {
		s.apply(dst, EncodeDeliver(&s.buf, src, recs))
		s.apply(src, EncodeAck(&s.buf, []Watermark{{Shard: dst, Seq: s.fs[dst].Applied(src)}}))
	}
}

// drain relays until every outbox is empty.
func (s *shards) drain() {
	for i, busy := 0, true; busy; i++ {
		if i > 10000 {
			s.t.Fatal("the outboxes do not drain")
		}
		busy = false
		for src := range s.fs {
			for dst := range s.fs {
				if s.fs[src].Head(dst) != 0 {
					busy = true
					s.relay(src, dst)
				}
			}
		}
	}
}

func (s *shards) list(k shard.Kind, u string) []shard.Item {
	var items []shard.Item
	s.fs[shard.Of(u, len(s.fs))].Read(func(st *shard.Store) error {
		var err error
		items, _, err = st.List(k, u, "", 500)
		return err
	})
	return items
}

// checkGraph checks that both sides of every edge agree, with their
// times, and that mutual lists are following ∩ followers.
func (s *shards) checkGraph(users []string) {
	edges := func(k shard.Kind, flip bool) []string {
		var out []string
		for _, u := range users {
			for _, it := range s.list(k, u) {
				a, b := u, it.UserID
				if flip {
					a, b = b, a
				}
				out = append(out, fmt.Sprintf("%s>%s@%d", a, b, it.FollowTime))
			}
		}
		slices.Sort(out)
		return out
	}
	if fw, rv := edges(shard.Following, false), edges(shard.Followers, true); !slices.Equal(fw, rv) {
		s.t.Fatal(fmt.Sprintf("following and followers differ:\n%v\n%v", fw, rv))
	}
	for _, u := range users {
		var want []string
		for _, it := range s.list(shard.Following, u) {
			for _, jt := range s.list(shard.Followers, u) {
				if it.UserID == jt.UserID {
					want = append(want, fmt.Sprintf("%s@%d", it.UserID, max(it.FollowTime, jt.FollowTime)))
				}
			}
		}
		var got []string
		for _, it := range s.list(shard.Mutual, u) {
			got = append(got, fmt.Sprintf("%s@%d", it.UserID, it.FollowTime))
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			s.t.Fatal(fmt.Sprintf("mutual(%s) = %v, want %v", u, got, want))
		}
	}
}

// A removal, run in random steps among random writes (some naming the
// user: refused, or accepted by a shard the block has not reached yet),
// deliveries and snapshot restores, ends, unblocks every shard, leaves
// the graph consistent and leaves no trace of the user.
func TestRemoveUserLeavesNoTrace(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		const n = 3
		s := newShards(t, n)
		users := []string{"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7"}
		victim := rapid.SampledFrom(users).Draw(t, "victim")
		now := int64(1000)
		write := func() {
			actor := rapid.SampledFrom(users).Draw(t, "actor")
			op := rapid.SampledFrom([]Op{OpFollow, OpFollow, OpUnfollow, OpImport}).Draw(t, "op")
			c := Command{Op: op, Actor: actor, Targets: rapid.SliceOfNDistinct(rapid.SampledFrom(users), 1, 4, rapid.ID).Draw(t, "targets")}
			for range c.Targets {
				if op == OpImport {
					c.Times = append(c.Times, rapid.Int64Range(1, now).Draw(t, "time"))
				}
			}
			now++
			s.command(c, now)
		}
		for range rapid.IntRange(0, 60).Draw(t, "before") {
			write()
		}
		if rapid.Bool().Draw(t, "settled") {
			s.drain()
		}
		home := shard.Of(victim, n)
		st := s.command(Command{Op: OpRemoveUser, Actor: victim}, now)
		if st.Err != nil {
			t.Fatal(st.Err)
		}
		running := st.Removal.Running
		for i := 0; running; i++ {
			switch rapid.IntRange(0, 4).Draw(t, "during") {
			case 0:
				write()
			case 1:
				s.relay(rapid.IntRange(0, n-1).Draw(t, "src"), rapid.IntRange(0, n-1).Draw(t, "dst"))
			case 2:
				f := s.fs[rapid.IntRange(0, n-1).Draw(t, "restored")]
				var snap bytes.Buffer
				if err := f.WriteSnapshot(&snap); err != nil {
					t.Fatal(err)
				}
				if err := f.Restore(nopCloser{bytes.NewReader(snap.Bytes())}); err != nil {
					t.Fatal(err)
				}
			default:
				s.command(Command{Op: OpRemoveStep, Actor: victim, Times: []int64{int64(rapid.IntRange(1, 5).Draw(t, "step"))}}, now)
			}
			// It may also end with the last shard's answer to the block.
			running = s.fs[home].RemovalStatus(victim).Running
			if i > 10000 {
				t.Fatal("the removal does not end")
			}
		}
		// The home shard refuses the victim's own writes only while it runs.
		s.drain()
		for i, f := range s.fs {
			if f.removing(victim) || len(f.Removals()) > 0 {
				t.Fatalf("shard %d still blocks %s after the removal ended", i, victim)
			}
		}
		s.checkGraph(users)
		for _, u := range users {
			for _, k := range []shard.Kind{shard.Following, shard.Followers, shard.Mutual} {
				for _, it := range s.list(k, u) {
					if it.UserID == victim || u == victim {
						// Possible only for a follow accepted after the end.
						s.checkAfterEnd(t, victim)
					}
				}
			}
		}
	})
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// checkAfterEnd fails: the only way the victim can be in a list after
// its removal is an edge created after the removal ended, and the test
// creates none then.
func (s *shards) checkAfterEnd(t *rapid.T, victim string) {
	t.Fatalf("%s is still in the graph after its removal", victim)
}

// Writes involving a user being removed are refused with UserRemoving,
// on its home shard and, once the block arrives, on the others; a follow
// accepted before the block arrived is undone.
func TestRemoveUserRefusesWrites(t *testing.T) {
	s := newShards(t, 2)
	var a, b string // a lives on shard 0, b on shard 1
	for i := 0; a == "" || b == ""; i++ {
		u := fmt.Sprintf("x%d", i)
		if shard.Of(u, 2) == 0 && a == "" {
			a = u
		} else if shard.Of(u, 2) == 1 && b == "" {
			b = u
		}
	}
	c := b + "c"
	for shard.Of(c, 2) != 1 || c == b {
		c += "c"
	}
	s.command(Command{Op: OpFollow, Actor: a, Targets: []string{b}}, 10)
	s.command(Command{Op: OpFollow, Actor: b, Targets: []string{a}}, 11)
	s.drain()
	if st := s.command(Command{Op: OpRemoveUser, Actor: a}, 12); !st.Removal.Running || st.Removal.Following != 1 || st.Removal.Followers != 1 {
		t.Fatalf("start: %+v", st)
	}
	if cr := s.command(Command{Op: OpFollow, Actor: a, Targets: []string{c}}, 13); codes.Of(cr.Err) != codes.UserRemoving {
		t.Fatalf("the user's own follow: %+v", cr)
	}
	// Before the block reaches shard 1, c's follow of a is accepted...
	if cr := s.command(Command{Op: OpFollow, Actor: c, Targets: []string{a}}, 14); cr.Err != nil || cr.Results[0].Code != codes.OK {
		t.Fatalf("early follow: %+v", cr)
	}
	s.relay(0, 1) // the block
	if cr := s.command(Command{Op: OpImport, Actor: b, Targets: []string{a, c}, Times: []int64{1, 2}}, 15); cr.Err != nil || cr.Results[0].Code != codes.UserRemoving || cr.Results[1].Code != codes.OK {
		t.Fatalf("a write naming the user after the block: %+v", cr)
	}
	for i := 0; s.fs[0].RemovalStatus(a).Running; i++ {
		s.command(Command{Op: OpRemoveStep, Actor: a, Times: []int64{1}}, 16)
		s.drain()
		if i > 10 {
			t.Fatal("the removal does not end")
		}
	}
	s.drain()
	// ...and undone: the follow reached the home shard during the removal.
	if l := s.list(shard.Following, c); len(l) != 0 {
		t.Fatalf("following(%s) = %v", c, l)
	}
	if l := s.list(shard.Following, b); len(l) != 1 || l[0].UserID != c {
		t.Fatalf("following(%s) = %v", b, l)
	}
	if cr := s.command(Command{Op: OpFollow, Actor: a, Targets: []string{c}}, 17); cr.Err != nil || !cr.Results[0].Changed {
		t.Fatalf("after the removal the user is a fresh one: %+v", cr)
	}
	again := s.command(Command{Op: OpRemoveUser, Actor: b}, 18)
	if again2 := s.command(Command{Op: OpRemoveUser, Actor: b}, 19); again2.Removal.Following != again.Removal.Following || !again2.Removal.Running {
		t.Fatalf("asking twice: %+v then %+v", again, again2)
	}
}

// The wire protocol takes exactly the record kinds the FSM applies: a
// delivery with another would halt the shard.
func TestWireTakesTheRecordKinds(t *testing.T) {
	for k := range numRecordKinds + 1 {
		_, err := wire.ParseDeliverRequest(wire.AppendDeliverRequest(nil, wire.DeliverRequest{Records: []wire.Record{{Seq: 1, Kind: uint8(k)}}}))
		if (err == nil) != (k < numRecordKinds) {
			t.Errorf("kind %d: %v", k, err)
		}
	}
}
