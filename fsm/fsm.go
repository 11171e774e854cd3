// Package fsm is the raft finite-state machine of one shard: a shard.Store,
// the shard's outbox of reverse edges for other shards, and the per-source
// record of deliveries applied. It decodes log entries (see entry.go),
// applies them deterministically, and snapshots and restores the whole
// state.
//
// FSM implements raft.FSM and raft.BatchingFSM. Reads go straight to the
// Store under a read lock (see Read); they never pass through raft.
package fsm

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/shard"
	"github.com/followgraph/followgraph/wire"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Config describes the shard an FSM holds. Start from DefaultConfig.
type Config struct {
	Shard  int // this shard's number
	Shards int // shards in the cluster
	Store  shard.Config
	Logger hclog.Logger
	// OnRecords, if set, is called (under the FSM's lock, so it must not
	// block or call back) when records for shard dst are queued.
	OnRecords func(dst int)
	// Feed bounds the change feed (zero: none).
	Feed FeedConfig
}

// FSM is the state machine of one shard.
//
// Concurrency: raft calls Apply, ApplyBatch, Snapshot and Restore from one
// goroutine. Read may be called from any goroutine at any time. The
// FSMSnapshot returned by Snapshot is persisted concurrently with Apply.
type FSM struct {
	cfg Config
	log hclog.Logger

	mu    sync.RWMutex
	store *shard.Store
	// outbox[d] holds this shard's undelivered records for shard d, in
	// sequence order; nextSeq[d] is the sequence the next one gets.
	outbox  [][]Record
	nextSeq []uint64
	// applied[s] is the highest sequence from shard s applied here.
	applied []uint64
	// index is the raft index of the last entry applied.
	index uint64
	// hooks[id] is how far webhook id has delivered this shard's feed.
	hooks map[string]uint64
	// removals are the removals of this shard's users that are running;
	// blocked, the users of other shards being removed (see remove.go).
	removals map[string]*Removal
	blocked  map[string]bool
	// failed is set when an entry could not be applied; see Apply.
	failed error

	dec *decoder // used by the apply goroutine only

	// redelivered counts records skipped because they were applied
	// before (a relay resending after a lost reply, a leader change or a
	// crash before the source trimmed its outbox). Not replicated state:
	// it restarts at 0 with the process.
	redelivered atomic.Uint64

	// lastTime is the largest entry time applied here (see LastTime),
	// kept in snapshots.
	lastTime atomic.Int64

	cost snapshotCost // see SnapshotCost

	feed *Feed
	// The entry being applied, for its events' offsets (apply goroutine).
	evIndex uint64
	evK     int
	evTime  int64
}

// DefaultConfig returns the configuration of shard 0 of 1, with the
// default Store limits.
func DefaultConfig() Config {
	return Config{Shard: 0, Shards: 1, Store: shard.DefaultConfig(), Feed: DefaultFeedConfig()}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	if c.Shards < 1 || c.Shard < 0 || c.Shard >= c.Shards {
		return fmt.Errorf("fsm: shard %d of %d", c.Shard, c.Shards)
	}
	if err := c.Feed.Validate(); err != nil {
		return err
	}
	return c.Store.Validate()
}

// New returns an FSM holding an empty shard.
func New(cfg Config) (*FSM, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, err := shard.New(cfg.Store)
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	f := &FSM{cfg: cfg, log: cfg.Logger, store: s, dec: newDecoder(), feed: newFeed(cfg.Feed)}
	f.reset()
	return f, nil
}

func (f *FSM) reset() {
	n := f.cfg.Shards
	f.outbox = make([][]Record, n)
	f.nextSeq = make([]uint64, n)
	for i := range f.nextSeq {
		f.nextSeq[i] = 1
	}
	f.applied = make([]uint64, n)
	f.hooks = map[string]uint64{}
	f.removals = map[string]*Removal{}
	f.blocked = map[string]bool{}
}

// CommandResult is the outcome of one Command of a batch.
type CommandResult struct {
	Results []shard.Result
	Err     error
	// Removal is the state of the removal a remove-user command asked
	// for or stepped.
	Removal RemovalStatus
	// Waits lists, for each other shard this command's targets live on,
	// the outbox sequence that shard must have applied for the reverse
	// side of this command (and of every earlier one) to be visible: what
	// a sync write waits for.
	Waits []Watermark
}

// Watermark is a position in the record stream to one shard.
type Watermark struct {
	Shard int
	Seq   uint64
}

// BatchResponse is Apply's response to a batch entry: one result per
// command, and for each delivery the highest sequence from its source now
// applied here.
type BatchResponse struct {
	Commands  []CommandResult
	Delivered []uint64
}

// ErrFailed is the response to every entry after an entry failed to apply.
var ErrFailed = errors.New("fsm: shard halted after an entry failed to apply")

// Apply applies one committed log entry.
//
// Failure policy: an entry of an unknown version or type, or one that does
// not decode, was nevertheless committed, so every replica has it. Skipping
// it would let replicas that understand it diverge from this one. Instead
// the FSM halts: it logs the entry's index and the reason, returns the error
// for this entry and ErrFailed for every later one, refuses to snapshot (so
// the entry stays in the log), and Failed reports it. The shard stops
// serving; a build that understands the entry replays it from the log after
// a restart. Other shards of the node are not affected.
func (f *FSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.feed.publish()
	return f.apply(l)
}

// ApplyBatch applies consecutive committed entries under one lock.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.feed.publish()
	out := make([]any, len(logs))
	for i, l := range logs {
		out[i] = f.apply(l)
	}
	return out
}

func (f *FSM) apply(l *raft.Log) any {
	if l.Index > f.index {
		f.index = l.Index
	}
	if l.Type != raft.LogCommand {
		return nil
	}
	f.cost.logBytes.Add(int64(len(l.Data)))
	if f.failed != nil {
		return ErrFailed
	}
	b, err := f.dec.decode(l.Data)
	if err != nil {
		f.failed = fmt.Errorf("entry %d (term %d): %w", l.Index, l.Term, err)
		f.log.Error("halting shard: cannot apply log entry", "shard", f.cfg.Shard, "index", l.Index, "term", l.Term, "error", err)
		return f.failed
	}
	if b.Time > f.lastTime.Load() {
		f.lastTime.Store(b.Time)
	}
	f.evIndex, f.evK, f.evTime = l.Index, 0, b.Time
	return f.applyBatch(b)
}

// LastTime returns the largest entry time (the leader's clock, in ms)
// this replica applied. A new leader stamps no earlier time, so
// followTimes stay monotonic across a leader change even when the new
// leader's clock is behind the old one's.
func (f *FSM) LastTime() int64 { return f.lastTime.Load() }

func (f *FSM) applyBatch(e Batch) *BatchResponse {
	resp := &BatchResponse{Commands: make([]CommandResult, len(e.Commands)), Delivered: make([]uint64, len(e.Deliveries))}
	for i, c := range e.Commands {
		cr := &resp.Commands[i]
		switch c.Op {
		case OpFollow:
			cr.Results, cr.Err = f.guard(c, func(ts []string, _ []int64) ([]shard.Result, error) { return f.store.Follow(c.Actor, ts, e.Time) })
		case OpUnfollow:
			cr.Results, cr.Err = f.guard(c, func(ts []string, _ []int64) ([]shard.Result, error) { return f.store.Unfollow(c.Actor, ts) })
		case OpImport:
			cr.Results, cr.Err = f.guard(c, func(ts []string, times []int64) ([]shard.Result, error) { return f.store.Import(c.Actor, ts, times) })
		case OpRemoveUser:
			cr.Removal, cr.Err = f.startRemoval(c.Actor, e.Time)
			continue
		case OpRemoveStep:
			cr.Removal, cr.Err = f.removeStep(c.Actor, stepSize(c), e.Time)
			continue
		default:
			cr.Err = codes.New(codes.InvalidParam, "unknown write operation %d", c.Op)
		}
		if cr.Err != nil {
			continue
		}
		for _, r := range cr.Results {
			if r.Code != codes.OK {
				continue
			}
			d := shard.Of(r.UserID, f.cfg.Shards)
			if r.Changed {
				add := c.Op != OpUnfollow
				f.forwardEvents(add, c.Actor, &r)
				kind := uint8(RecordAdd)
				if !add {
					kind = RecordRemove
				}
				f.send(d, kind, r.UserID, c.Actor, r.Time, e.Time)
			}
			if d != f.cfg.Shard {
				cr.Waits = addWait(cr.Waits, d, f.nextSeq[d]-1)
			}
		}
	}
	for i, d := range e.Deliveries {
		resp.Delivered[i] = f.applyDeliver(d)
	}
	f.applyAcks(e.Acks)
	for _, h := range e.Hooks {
		if h.Offset > f.hooks[h.Hook] {
			f.hooks[h.Hook] = h.Offset
		}
	}
	return resp
}

func addWait(ws []Watermark, d int, seq uint64) []Watermark {
	for i := range ws {
		if ws[i].Shard == d {
			ws[i].Seq = max(ws[i].Seq, seq)
			return ws
		}
	}
	return append(ws, Watermark{d, seq})
}

// send applies a record meant for shard d, or queues it for the relay:
// the reverse side of a changed edge, or a removal's.
func (f *FSM) send(d int, kind uint8, followee, follower string, t, created int64) {
	if d == f.cfg.Shard {
		// Same shard: both sides change in the same entry.
		f.applyRecord(kind, followee, follower, t, created)
		return
	}
	f.outbox[d] = append(f.outbox[d], Record{Seq: f.nextSeq[d], Kind: kind, Followee: followee, Follower: follower, Time: t, Created: created})
	f.nextSeq[d]++
	if f.cfg.OnRecords != nil {
		f.cfg.OnRecords(d)
	}
}

// applyRecord applies a record from this shard or another.
func (f *FSM) applyRecord(kind uint8, followee, follower string, t, created int64) {
	switch kind {
	case RecordAdd:
		if f.removals[followee] != nil {
			// The user is being removed: the follower's edge goes too.
			f.send(shard.Of(follower, f.cfg.Shards), RecordDrop, followee, follower, t, created)
			return
		}
		f.applyReverse(true, followee, follower, t)
	case RecordRemove:
		f.applyReverse(false, followee, follower, t)
	case RecordDrop:
		f.applyDrop(followee, follower, t)
	case RecordBlock:
		f.blocked[followee] = true
		f.send(shard.Of(followee, f.cfg.Shards), RecordBlocked, followee, "", 0, created)
	case RecordBlocked:
		if r := f.removals[followee]; r != nil {
			r.Acks++
			f.maybeFinish(r, created)
		}
	case RecordUnblock:
		delete(f.blocked, followee)
	}
}

func (f *FSM) applyReverse(add bool, followee, follower string, t int64) {
	var c shard.EdgeChange
	var err error
	if add {
		c, err = f.store.AddFollowerChange(followee, follower, t)
	} else {
		c, err = f.store.RemoveFollowerChange(followee, follower, t)
	}
	if err != nil {
		// Deterministic on every replica; the forward edge stands. With a
		// followers cap, this is how a refused follower shows up.
		f.log.Warn("reverse edge not applied", "shard", f.cfg.Shard, "followee", followee, "follower", follower, "error", err)
		return
	}
	f.reverseEvents(add, followee, follower, t, c)
}

// emit records an event of the entry being applied.
func (f *FSM) emit(k wire.EventKind, user, other string, followTime int64) {
	f.feed.add(Event{Offset: OffsetOf(f.evIndex, f.evK), Time: f.evTime, FollowTime: followTime, Kind: k, User: user, Other: other})
	f.evK++
}

// forwardEvents records the events of an edge the actor's command
// changed: in its following list, and in its mutual list if the target
// follows it.
func (f *FSM) forwardEvents(add bool, actor string, r *shard.Result) {
	if !f.feed.Enabled() {
		return
	}
	following, mutual := wire.FollowingAdded, wire.MutualFormed
	if !add {
		following, mutual = wire.FollowingRemoved, wire.MutualBroken
	}
	f.emit(following, actor, r.UserID, r.Time)
	if r.Mutual {
		f.emit(mutual, actor, r.UserID, r.Time)
	}
}

// reverseEvents records what a reverse edge changed on the followee's
// side: a delivery that changed nothing (a duplicate, a stale removal) or
// only re-timed a follower yields nothing.
func (f *FSM) reverseEvents(add bool, followee, follower string, t int64, c shard.EdgeChange) {
	if !f.feed.Enabled() || !c.Edge {
		return
	}
	kind, mutual := wire.FollowerAdded, wire.MutualFormed
	if !add {
		kind, mutual = wire.FollowerRemoved, wire.MutualBroken
	}
	f.emit(kind, followee, follower, t)
	if c.Mutual {
		f.emit(mutual, followee, follower, t)
	}
}

// HookOffset returns how far webhook id has delivered this shard's feed
// (0: not at all), as replicated: a new leader resumes there.
func (f *FSM) HookOffset(id string) uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.hooks[id]
}

// Feed returns the replica's change feed.
func (f *FSM) Feed() *Feed { return f.feed }

// applyDeliver applies records from shard d.Src and returns the highest
// sequence from it applied here.
func (f *FSM) applyDeliver(d Delivery) uint64 {
	if d.Src < 0 || d.Src >= f.cfg.Shards {
		f.log.Error("delivery from unknown shard ignored", "shard", f.cfg.Shard, "src", d.Src)
		return 0
	}
	for _, r := range d.Records {
		switch {
		case r.Seq <= f.applied[d.Src]:
			f.redelivered.Add(1) // already applied
			continue
		case r.Seq != f.applied[d.Src]+1:
			// A gap: the sender skipped records. Apply nothing more; the
			// response tells it where to resume.
			f.log.Warn("gap in delivery", "shard", f.cfg.Shard, "src", d.Src, "want", f.applied[d.Src]+1, "got", r.Seq)
			return f.applied[d.Src]
		}
		f.applyRecord(r.Kind, r.Followee, r.Follower, r.Time, r.Created)
		f.applied[d.Src] = r.Seq
	}
	return f.applied[d.Src]
}

func (f *FSM) applyAcks(acks []Watermark) {
	for _, a := range acks {
		if a.Shard < 0 || a.Shard >= f.cfg.Shards {
			continue
		}
		q := f.outbox[a.Shard]
		k := 0
		for k < len(q) && q[k].Seq <= a.Seq {
			k++
		}
		q = q[k:]
		// Reslicing keeps the acknowledged records reachable until the
		// next reallocation; copy once the dead prefix dominates.
		if cap(q) > 1024 && cap(q) > 4*len(q) {
			q = append([]Record(nil), q...)
		}
		if len(q) == 0 {
			q = nil
		}
		f.outbox[a.Shard] = q
	}
}

// Head returns the sequence of the first undelivered record for shard d, or
// 0 when everything queued for d has been acknowledged.
func (f *FSM) Head(d int) uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if q := f.outbox[d]; len(q) > 0 {
		return q[0].Seq
	}
	return 0
}

// Read runs fn with the shard's Store, read-locked. fn must not keep the
// Store or anything it hands out.
func (f *FSM) Read(fn func(*shard.Store) error) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.failed != nil {
		return codes.New(codes.ShardUnavailable, "shard %d halted: %v", f.cfg.Shard, f.failed)
	}
	return fn(f.store)
}

// View captures a point-in-time View of the shard's Store (for exports).
// Taking it is a write on the Store, so it holds the lock exclusively, for
// microseconds; the caller releases the View. A restore or Close later
// replaces the Store without touching the View, which stays readable.
func (f *FSM) View() (*shard.View, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failed != nil {
		return nil, codes.New(codes.ShardUnavailable, "shard %d halted: %v", f.cfg.Shard, f.failed)
	}
	return f.store.View(), nil
}

// ReadAny runs fn with the Store read-locked, even when the FSM has halted
// (for statistics).
func (f *FSM) ReadAny(fn func(*shard.Store)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.store)
}

// Failed returns the error that halted the FSM, or nil.
func (f *FSM) Failed() error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.failed
}

// Index returns the raft index of the last entry applied.
func (f *FSM) Index() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.index
}

// Pending returns, for shard d, the undelivered records from index from
// on (at most max), for the relay. The records are shared: do not modify.
func (f *FSM) Pending(d int, afterSeq uint64, max int) []Record {
	f.mu.RLock()
	defer f.mu.RUnlock()
	q := f.outbox[d]
	i := 0
	for i < len(q) && q[i].Seq <= afterSeq {
		i++
	}
	q = q[i:]
	if len(q) > max {
		q = q[:max]
	}
	return q
}

// OutboxStats describes the undelivered records.
type OutboxStats struct {
	Records int   // undelivered records, all destinations
	Oldest  int64 // Created of the oldest undelivered record (0 if none)
	// Heads[d] is the sequence of the first undelivered record for shard
	// d (0 if none); Next[d] the sequence the next record gets.
	Heads, Next []uint64
}

// Outbox returns the outbox's state.
func (f *FSM) Outbox() OutboxStats {
	f.mu.RLock()
	defer f.mu.RUnlock()
	st := OutboxStats{Heads: make([]uint64, len(f.outbox)), Next: append([]uint64(nil), f.nextSeq...)}
	for d, q := range f.outbox {
		st.Records += len(q)
		if len(q) > 0 {
			st.Heads[d] = q[0].Seq
			if st.Oldest == 0 || q[0].Created < st.Oldest {
				st.Oldest = q[0].Created
			}
		}
	}
	return st
}

// Redelivered returns how many delivered records this replica skipped as
// already applied, since it started.
func (f *FSM) Redelivered() uint64 { return f.redelivered.Load() }

// Applied returns the highest sequence from shard src applied here.
func (f *FSM) Applied(src int) uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.applied[src]
}

// Snapshot captures the state: a Store View and copies of the outbox's
// slice headers (records are immutable). It takes microseconds.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failed != nil {
		// Keep the failed entry in the log for a build that can apply it.
		return nil, fmt.Errorf("fsm: refusing to snapshot a halted shard: %w", f.failed)
	}
	floor, events := f.feed.snapshot(f.index)
	return &snapshot{
		meta: meta{
			outbox:    append([][]Record(nil), f.outbox...),
			nextSeq:   append([]uint64(nil), f.nextSeq...),
			applied:   append([]uint64(nil), f.applied...),
			index:     f.index,
			lastTime:  f.lastTime.Load(),
			feedFloor: floor,
			feed:      events,
			hooks:     maps.Clone(f.hooks),
			removals:  cloneRemovals(f.removals),
			blocked:   maps.Clone(f.blocked),
		},
		cost:   &f.cost,
		atLog:  f.cost.logBytes.Load(),
		shard:  f.cfg.Shard,
		shards: f.cfg.Shards,
		view:   f.store.View(),
	}, nil
}

// Restore replaces the state with a snapshot's.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	cr := &countingReader{r: rc}
	st, err := readSnapshot(cr, f.cfg)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// The old Store gives back its references in the node's user table;
	// a snapshot still streaming from it keeps what it reads.
	f.store.Close()
	f.store, f.outbox, f.nextSeq, f.applied = st.store, st.outbox, st.nextSeq, st.applied
	f.index = max(f.index, st.index)
	f.hooks = st.hooks
	f.removals, f.blocked = st.removals, st.blocked
	if st.lastTime > f.lastTime.Load() {
		f.lastTime.Store(st.lastTime)
	}
	f.feed.restore(st.feedFloor, st.feed)
	f.failed = nil
	// The log applied so far is under the restored snapshot.
	f.cost.persisted(f.cost.logBytes.Load(), cr.n)
	return nil
}

// Close gives back the shard's references in the node's user table, for a
// replica the node no longer hosts (its raft shut down). The FSM is left
// holding an empty Store, so a late read finds nothing rather than IDs
// the table has since reused.
func (f *FSM) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.store.Close()
	s, err := shard.New(f.cfg.Store)
	if err != nil {
		panic(err) // the configuration was validated by New
	}
	f.store = s
}

// WriteSnapshot writes the current state in the snapshot format (for tests
// and tools; raft uses Snapshot and Persist).
func (f *FSM) WriteSnapshot(w io.Writer) error {
	s, err := f.Snapshot()
	if err != nil {
		return err
	}
	defer s.Release()
	return s.(*snapshot).write(w)
}
