package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/shard"
	"github.com/hashicorp/raft"
	"github.com/vmihailenco/msgpack/v5"
)

func newFSM(t testing.TB, id, shards int) *FSM {
	t.Helper()
	f, err := New(Config{Shard: id, Shards: shards, Store: shard.DefaultConfig()})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// randomLog builds a log for shard 0 of 3: batches of follows and
// unfollows, deliveries from the other shards and acks.
func randomLog(seed uint64, n int) []*raft.Log {
	rng := rand.New(rand.NewPCG(seed, 1))
	var buf bytes.Buffer
	var logs []*raft.Log
	user := func() string { return fmt.Sprintf("u%d", rng.IntN(60)) }
	now := int64(1_700_000_000_000)
	seqs := []uint64{0, 0, 0}
	for i := range n {
		var data []byte
		switch rng.IntN(5) {
		case 0, 1, 2:
			var cmds []Command
			for range 1 + rng.IntN(8) {
				c := Command{Op: OpFollow, Actor: user()}
				switch rng.IntN(4) {
				case 0:
					c.Op = OpUnfollow
				case 1:
					c.Op = OpImport
				}
				for range 1 + rng.IntN(5) {
					c.Targets = append(c.Targets, user())
					if c.Op == OpImport {
						c.Times = append(c.Times, now-int64(rng.IntN(1000)))
					}
				}
				cmds = append(cmds, c)
			}
			now += int64(rng.IntN(3))
			data = EncodeCommands(&buf, now, cmds)
		case 3:
			src := 1 + rng.IntN(2)
			var recs []Record
			for range 1 + rng.IntN(4) {
				// Occasionally redeliver an old sequence.
				seq := seqs[src] + 1
				if rng.IntN(4) == 0 && seqs[src] > 0 {
					seq = seqs[src]
				} else {
					seqs[src] = seq
				}
				recs = append(recs, Record{Seq: seq, Kind: uint8(min(rng.IntN(3), 1)), Followee: user(), Follower: fmt.Sprintf("r%d", rng.IntN(20)), Time: now, Created: now})
			}
			data = EncodeDeliver(&buf, src, recs)
		case 4:
			data = EncodeAck(&buf, []Watermark{{Shard: 1 + rng.IntN(2), Seq: uint64(rng.IntN(i + 1))}})
		}
		logs = append(logs, &raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: bytes.Clone(data)})
	}
	return logs
}

func snapshotOf(t testing.TB, f *FSM) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := f.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDeterminism(t *testing.T) {
	for seed := range uint64(5) {
		logs := randomLog(seed, 400)
		a, b := newFSM(t, 0, 3), newFSM(t, 0, 3)
		for _, l := range logs {
			a.Apply(l)
		}
		// The other one in batches of random sizes, as raft may deliver.
		for i := 0; i < len(logs); {
			k := min(len(logs)-i, 1+int(seed)*3+i%7)
			b.ApplyBatch(logs[i : i+k])
			i += k
		}
		sa, sb := snapshotOf(t, a), snapshotOf(t, b)
		if !bytes.Equal(sa, sb) {
			t.Fatalf("seed %d: two FSMs fed the same log differ", seed)
		}
		// Restore from a mid-log snapshot, replay the rest: same bytes.
		c := newFSM(t, 0, 3)
		for _, l := range logs[:200] {
			c.Apply(l)
		}
		mid := snapshotOf(t, c)
		d := newFSM(t, 0, 3)
		if err := d.Restore(io.NopCloser(bytes.NewReader(mid))); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(snapshotOf(t, d), mid) {
			t.Fatal("restore is not identical")
		}
		for _, l := range logs[200:] {
			d.Apply(l)
		}
		if !bytes.Equal(snapshotOf(t, d), sa) {
			t.Fatalf("seed %d: snapshot + replay differs from a full replay", seed)
		}
		if err := d.Read(func(s *shard.Store) error { return s.CheckInvariants() }); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBatchResponses(t *testing.T) {
	f := newFSM(t, 0, 4)
	var buf bytes.Buffer
	data := EncodeCommands(&buf, 1000, []Command{
		{Op: OpFollow, Actor: "a", Targets: []string{"b", "c", "a"}},
		{Op: OpFollow, Actor: "", Targets: []string{"b"}},
		{Op: 9, Actor: "a", Targets: []string{"b"}},
	})
	resp := f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: data}).(*BatchResponse)
	if len(resp.Commands) != 3 {
		t.Fatalf("%+v", resp)
	}
	r0 := resp.Commands[0]
	if r0.Err != nil || r0.Results[0].Code != 0 || r0.Results[2].Code != codes.InvalidParam {
		t.Fatalf("command 0: %+v", r0)
	}
	if !errors.Is(resp.Commands[1].Err, codes.ErrInvalidParam) || !errors.Is(resp.Commands[2].Err, codes.ErrInvalidParam) {
		t.Fatalf("bad commands: %+v", resp.Commands[1:])
	}
	// The records for other shards are numbered from 1, and the watermarks
	// name them.
	st := f.Outbox()
	for _, w := range r0.Waits {
		if w.Seq != st.Next[w.Shard]-1 {
			t.Fatalf("watermark %+v, next %v", w, st.Next)
		}
	}
}

func TestDeliverIsExactlyOnce(t *testing.T) {
	f := newFSM(t, 1, 2)
	var buf bytes.Buffer
	deliver := func(recs ...Record) uint64 {
		r := f.Apply(&raft.Log{Type: raft.LogCommand, Data: EncodeDeliver(&buf, 0, recs)}).(*BatchResponse)
		return r.Delivered[0]
	}
	rec := func(seq uint64, add bool, t int64) Record {
		k := uint8(RecordRemove)
		if add {
			k = RecordAdd
		}
		return Record{Seq: seq, Kind: k, Followee: "star", Follower: "fan", Time: t}
	}
	if got := deliver(rec(1, true, 10), rec(2, false, 10)); got != 2 {
		t.Fatalf("applied %d", got)
	}
	// A redelivery of the add must not resurrect the edge.
	if got := deliver(rec(1, true, 10)); got != 2 {
		t.Fatalf("applied %d", got)
	}
	// A gap stops the batch where it is.
	if got := deliver(rec(4, true, 20)); got != 2 {
		t.Fatalf("applied %d after a gap", got)
	}
	if got := deliver(rec(3, true, 30), rec(4, false, 30)); got != 4 {
		t.Fatalf("applied %d", got)
	}
	f.Read(func(s *shard.Store) error {
		if _, fe, _, _ := s.Counts("star"); fe != 0 {
			t.Fatalf("star has %d followers", fe)
		}
		return nil
	})
}

func entryWith(version, typ uint8) []byte {
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	e.EncodeArrayLen(3)
	e.EncodeUint8(version)
	e.EncodeUint8(typ)
	e.EncodeArrayLen(0)
	return buf.Bytes()
}

// The failure policy for entries this build cannot apply: halt the shard,
// never skip.
func TestUnknownEntryHaltsTheShard(t *testing.T) {
	for name, data := range map[string][]byte{
		"version 2": entryWith(2, 1),
		"type 99":   entryWith(1, 99),
		"garbage":   {0xc1, 0x00},
		"truncated": EncodeCommands(&bytes.Buffer{}, 5, []Command{{Op: OpFollow, Actor: "a", Targets: []string{"b"}}})[:10],
	} {
		t.Run(name, func(t *testing.T) {
			f := newFSM(t, 0, 1)
			var buf bytes.Buffer
			ok := EncodeCommands(&buf, 5, []Command{{Op: OpFollow, Actor: "a", Targets: []string{"b"}}})
			f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: bytes.Clone(ok)})
			before := snapshotOf(t, f)
			resp := f.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: data})
			if err, _ := resp.(error); err == nil || f.Failed() == nil {
				t.Fatalf("response %v, failed %v", resp, f.Failed())
			}
			// Later entries are not applied.
			if r := f.Apply(&raft.Log{Index: 3, Type: raft.LogCommand, Data: ok}); !errors.Is(r.(error), ErrFailed) {
				t.Fatalf("entry after failure: %v", r)
			}
			if _, err := f.Snapshot(); err == nil {
				t.Fatal("a halted FSM took a snapshot")
			}
			if err := f.Read(func(*shard.Store) error { return nil }); !errors.Is(err, codes.ErrShardUnavailable) {
				t.Fatalf("read on a halted shard: %v", err)
			}
			// A restore (a newer snapshot from a healthy leader) heals it.
			if err := f.Restore(io.NopCloser(bytes.NewReader(before))); err != nil || f.Failed() != nil {
				t.Fatalf("restore: %v, failed %v", err, f.Failed())
			}
		})
	}
}

func TestSnapshotRestoreErrors(t *testing.T) {
	f := newFSM(t, 0, 3)
	for _, l := range randomLog(7, 300) {
		f.Apply(l)
	}
	good := snapshotOf(t, f)
	restore := func(b []byte, cfgShard int) error {
		g := newFSM(t, cfgShard, 3)
		return g.Restore(io.NopCloser(bytes.NewReader(b)))
	}
	if err := restore(good, 0); err != nil {
		t.Fatal(err)
	}
	if err := restore(good, 1); !errors.Is(err, ErrSnapshotShard) {
		t.Fatalf("other shard: %v", err)
	}
	for _, n := range []int{0, 10, 27, 40, len(good) / 2, len(good) - 1} {
		if err := restore(good[:n], 0); !errors.Is(err, shard.ErrSnapshotTruncated) {
			t.Fatalf("truncated at %d: %v", n, err)
		}
	}
	for _, i := range []int{0, 9, 30, len(good) / 2, len(good) - 3} {
		b := bytes.Clone(good)
		b[i] ^= 0x10
		err := restore(b, 0)
		if err == nil {
			t.Fatalf("byte %d flipped: restored", i)
		}
		if !errors.Is(err, ErrSnapshotCorrupt) && !errors.Is(err, ErrSnapshotVersion) && !errors.Is(err, shard.ErrSnapshotCorrupt) && !errors.Is(err, shard.ErrSnapshotTruncated) {
			t.Fatalf("byte %d flipped: unclear error %v", i, err)
		}
	}
	// A failed restore leaves the FSM as it was.
	g := newFSM(t, 0, 3)
	g.Apply(randomLog(8, 1)[0])
	before := snapshotOf(t, g)
	if err := g.Restore(io.NopCloser(bytes.NewReader(good[:100]))); err == nil {
		t.Fatal("truncated restore succeeded")
	}
	if !bytes.Equal(snapshotOf(t, g), before) {
		t.Fatal("a failed restore changed the state")
	}
}

// blockingSink is a raft.SnapshotSink that blocks writes until released.
type blockingSink struct {
	memSink
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (s *blockingSink) Write(p []byte) (int, error) {
	s.once.Do(func() { close(s.started) })
	<-s.release
	return s.Buffer.Write(p)
}

// Persist runs concurrently with Apply: a sink that does not drain must not
// hold up the state machine, and the snapshot shows the state at capture.
func TestSlowSnapshotDoesNotBlockApply(t *testing.T) {
	f := newFSM(t, 0, 3)
	logs := randomLog(3, 600)
	for _, l := range logs[:300] {
		f.Apply(l)
	}
	// Enough state that Persist is mid-stream (past its write buffer) when
	// the sink blocks.
	var buf bytes.Buffer
	for i := range 4000 {
		cmds := []Command{{Op: OpFollow, Actor: fmt.Sprintf("big%d", i), Targets: []string{"x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8"}}}
		f.Apply(&raft.Log{Type: raft.LogCommand, Data: EncodeCommands(&buf, int64(i), cmds)})
	}
	want := snapshotOf(t, f)
	if len(want) < 300<<10 {
		t.Fatalf("state of %d bytes is too small for this test", len(want))
	}
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &blockingSink{started: make(chan struct{}), release: make(chan struct{})}
	persisted := make(chan error, 1)
	go func() { persisted <- snap.Persist(sink) }()
	<-sink.started
	applied := make(chan struct{})
	go func() {
		for _, l := range logs[300:] {
			f.Apply(l)
		}
		close(applied)
	}()
	select {
	case <-applied:
	case <-time.After(10 * time.Second):
		t.Fatal("Apply blocked behind a slow snapshot sink")
	}
	close(sink.release)
	if err := <-persisted; err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if !bytes.Equal(sink.Bytes(), want) {
		t.Fatal("the persisted snapshot is not the state at capture")
	}
}

func FuzzDecodeEntry(f *testing.F) {
	for _, l := range randomLog(1, 30) {
		f.Add(l.Data)
	}
	f.Add(entryWith(2, 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := newDecoder()
		e, err := d.decode(data)
		if err != nil {
			return
		}
		// Whatever decodes, applies without panicking.
		g := newFSM(t, 0, 3)
		g.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: data})
		_ = e
	})
}

// An import keeps each edge's own followTime, on both sides: the reverse
// record carries it to the other shard. Importing again changes nothing.
func TestImportKeepsFollowTimes(t *testing.T) {
	f := newFSM(t, 0, 2)
	var b0, b1 string // users of shard 0 and 1
	for i := 0; b0 == "" || b1 == ""; i++ {
		u := fmt.Sprintf("u%d", i)
		if shard.Of(u, 2) == 0 && b0 == "" {
			b0 = u
		} else if shard.Of(u, 2) == 1 && b1 == "" {
			b1 = u
		}
	}
	a := b0 + "x"
	for shard.Of(a, 2) != 0 {
		a += "x"
	}
	var buf bytes.Buffer
	cmd := Command{Op: OpImport, Actor: a, Targets: []string{b0, b1}, Times: []int64{111, 222}}
	for i := range 2 {
		resp := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: bytes.Clone(EncodeCommands(&buf, 5000, []Command{cmd}))})
		res := resp.(*BatchResponse).Commands[0]
		if res.Err != nil || res.Results[0].Changed != (i == 0) || res.Results[1].Time != 222 {
			t.Fatalf("import %d: %+v", i, res)
		}
	}
	f.Read(func(st *shard.Store) error {
		items, _, _ := st.List(shard.Following, a, "", 10)
		if len(items) != 2 || items[0] != (shard.Item{UserID: b1, FollowTime: 222}) || items[1] != (shard.Item{UserID: b0, FollowTime: 111}) {
			t.Fatalf("following %v", items)
		}
		items, _, _ = st.List(shard.Followers, b0, "", 10)
		if len(items) != 1 || items[0].FollowTime != 111 {
			t.Fatalf("followers of the same shard's target %v", items)
		}
		return nil
	})
	if recs := f.Pending(1, 0, 10); len(recs) != 1 || recs[0].Followee != b1 || recs[0].Time != 222 || recs[0].Kind != RecordAdd {
		t.Fatalf("records for shard 1: %+v", recs)
	}
}

// LastTime is the largest entry time applied: a later entry with an
// earlier time (a leader whose clock was behind) does not lower it.
func TestLastTime(t *testing.T) {
	f := newFSM(t, 0, 1)
	var buf bytes.Buffer
	for i, ts := range []int64{1000, 5000, 3000} {
		data := EncodeCommands(&buf, ts, []Command{{Op: OpFollow, Actor: "a", Targets: []string{fmt.Sprintf("b%d", i)}}})
		f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: data})
	}
	if got := f.LastTime(); got != 5000 {
		t.Fatalf("LastTime = %d, want 5000", got)
	}
	// It travels in snapshots: a replica restored from one, with no log
	// after it, keeps it.
	g := newFSM(t, 0, 1)
	if err := g.Restore(io.NopCloser(bytes.NewReader(snapshotOf(t, f)))); err != nil {
		t.Fatal(err)
	}
	if got := g.LastTime(); got != 5000 {
		t.Fatalf("restored LastTime = %d, want 5000", got)
	}
}
