package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/fsm"
	"github.com/followgraph/followgraph/internal/wal"
	"github.com/followgraph/followgraph/shard"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// Shard is one shard's raft group on this node, with its FSM, group-commit
// batcher and relay.
type Shard struct {
	id     int
	node   *Node
	cfg    *Config
	log    hclog.Logger
	fsm    *fsm.FSM
	raft   *raft.Raft
	logs   logStore  // the raft log: a stream of the node's shared log, or the shard's own
	ownLog io.Closer // the shard's own log (per-shard layout), which close closes; else nil
	stable *raftboltdb.BoltStore
	trans  raft.Transport

	props    chan *proposal
	sendMu   sync.RWMutex // see Write and close
	inflight chan *batch
	stop     chan struct{} // closed by close: no new work
	done     chan struct{} // closed when the batcher and completer exited
	wg       sync.WaitGroup
	relay    *relay

	mu      sync.Mutex
	ready   chan struct{} // closed while this node leads and has caught up
	leading bool
	isReady atomic.Bool
	closing atomic.Bool
	lastT   int64 // last followTime proposed (batcher only)

	// leaseUntil is when this leader's read lease ends, as monotonic
	// time since leaseBase (0: no lease). transferring blocks leader
	// reads while a leadership transfer runs. See Read.
	leaseUntil   atomic.Int64
	transferring atomic.Int32
}

// leaseBase anchors lease times on the monotonic clock (wall-clock jumps
// must not stretch a lease).
var leaseBase = time.Now()

// WriteOptions are per-request options of a write.
type WriteOptions struct {
	// Sync makes the write return only once its reverse side (the
	// followers and mutual lists on the targets' shards) is applied too.
	Sync bool
}

// proposal is one thing to commit through the batcher: a client command,
// a delivery of records from another shard, or acknowledgements. They all
// share log entries, so one fsync commits every stream.
type proposal struct {
	cmd     *fsm.Command
	dlv     *fsm.Delivery
	acks    []fsm.Watermark
	res     fsm.CommandResult // for a command
	applied uint64            // for a delivery
	err     error
	done    chan struct{}
	idx     int // position in its batch's commands or deliveries
}

func (p *proposal) size() int {
	switch {
	case p.cmd != nil:
		return len(p.cmd.Actor) + 16*len(p.cmd.Targets)
	case p.dlv != nil:
		return 48 * len(p.dlv.Records)
	}
	return 16 * len(p.acks)
}

// logStore is a shard's raft log: a *wal.Stream of the node's shared log,
// or in the per-shard layout a *wal.Log of its own.
type logStore interface {
	raft.LogStore
	Stats() wal.Stats
}

type batch struct {
	props []*proposal
	fut   raft.ApplyFuture
	start time.Time
	cmds  int // commands in it (for metrics)
}

// openShard opens shard id's replica on this node. boot, if not empty, is
// the configuration to bootstrap a new shard with.
func openShard(n *Node, id int, boot []raft.Server) (*Shard, error) {
	cfg := &n.cfg
	dir := filepath.Join(cfg.DataDir, shardDir(id))
	_, err := os.Stat(dir)
	fresh := errors.Is(err, os.ErrNotExist)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	log := n.log.Named(fmt.Sprintf("shard-%d", id))
	s := &Shard{
		id: id, node: n, cfg: cfg, log: log,
		props:    make(chan *proposal, cfg.QueueDepth),
		inflight: make(chan *batch, cfg.MaxInflight),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		ready:    make(chan struct{}),
	}
	// The relay exists before the FSM, which may apply entries (and
	// queue records) as soon as raft starts.
	s.relay = newRelay(s)
	s.fsm, err = fsm.New(fsm.Config{Shard: id, Shards: n.nshards, Store: cfg.Store, Logger: log, OnRecords: s.onRecords})
	if err != nil {
		return nil, err
	}
	// The raft log is a write-ahead log of preallocated segments, no
	// B+tree (internal/wal): the shard's stream of the node's shared log,
	// or its own log in the per-shard layout. Term and vote, written only
	// on elections, stay in bolt.
	if err := s.openLog(dir, fresh); err != nil {
		return nil, fmt.Errorf("raft log: %w", err)
	}
	s.stable, err = raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(dir, "stable.db"),
		NoSync:      cfg.NoSync,
		BoltOptions: &bbolt.Options{Timeout: 2 * time.Second},
	})
	if err != nil {
		s.closeLog()
		return nil, fmt.Errorf("raft stable store: %w", err)
	}
	closeStores := func() {
		s.closeLog()
		s.stable.Close()
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, cfg.SnapshotRetain, log.Named("snapshots"))
	if err != nil {
		closeStores()
		return nil, err
	}
	s.trans, err = cfg.Transports.Transport(id)
	if err != nil {
		closeStores()
		return nil, err
	}
	rc := cfg.raftConfig()
	rc.Logger = quietInfo{log.Named("raft")}
	has, err := raft.HasExistingState(s.logs, s.stable, snaps)
	if err != nil {
		closeStores()
		return nil, err
	}
	// Recent entries stay in memory for followers and replays.
	cached, err := raft.NewLogCache(1024, s.logs)
	if err != nil {
		closeStores()
		return nil, err
	}
	s.raft, err = raft.NewRaft(rc, s.fsm, cached, s.stable, snaps, s.trans)
	if err != nil {
		closeStores()
		return nil, err
	}
	if !has && len(boot) > 0 {
		f := s.raft.BootstrapCluster(raft.Configuration{Servers: boot})
		if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			s.raft.Shutdown()
			closeStores()
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
	}
	return s, nil
}

// openLog opens the shard's raft log. In the shared layout that is stream
// number id of the node's shared log, which the node owns: the shard does
// not close it. A shard whose directory did not exist (fresh) is a new
// replica, and must start with an empty log: raft.HasExistingState counts
// any entry as existing state, and would run on a log with no snapshot or
// term under it. The stream of a dropped replica is emptied before its
// directory is removed, so only a crash in between, or a directory
// removed by hand, leaves entries behind (see Node.dropStaleStreams).
func (s *Shard) openLog(dir string, fresh bool) error {
	sh, err := s.node.sharedLog()
	if err != nil {
		return err
	}
	if sh == nil {
		l, err := wal.Open(filepath.Join(dir, "wal"), s.node.walConfig(s.log.Named("wal")))
		if err != nil {
			return err
		}
		s.logs, s.ownLog = l, l
		return nil
	}
	st, err := sh.Stream(uint32(s.id))
	if err != nil {
		return err
	}
	if last, _ := st.LastIndex(); fresh && last != 0 {
		s.log.Warn("new replica finds entries in its raft log stream; deleting them", "last", last)
		if err := emptyStream(sh, uint32(s.id)); err != nil {
			return err
		}
	}
	s.logs = st
	return nil
}

// closeLog closes the shard's own raft log, if it has one.
func (s *Shard) closeLog() error {
	if s.ownLog == nil {
		return nil
	}
	return s.ownLog.Close()
}

// LogStats describes the shard's raft log: its bounds and the bytes of its
// entries (see wal.Stream.Stats and wal.Log.Stats).
func (s *Shard) LogStats() wal.Stats { return s.logs.Stats() }

// start launches the shard's goroutines.
func (s *Shard) start() {
	s.wg.Add(3)
	go func() { defer s.wg.Done(); s.batcher() }()
	go func() { defer s.wg.Done(); s.completer() }()
	go func() { defer s.wg.Done(); s.watchLeadership() }()
}

// watchLeadership tracks whether this node leads the shard. After winning
// leadership it waits for a barrier, so that every entry committed by
// earlier terms is applied before it serves reads or runs the relay.
func (s *Shard) watchLeadership() {
	var cancelRelay context.CancelFunc
	relayDone := make(chan struct{})
	close(relayDone)
	setLeading := func(lead bool) {
		if lead {
			s.mu.Lock()
			already := s.leading
			s.mu.Unlock()
			if already {
				// LeaderCh repeats what the initial State check saw.
				return
			}
			for {
				err := s.raft.Barrier(s.cfg.ApplyTimeout).Error()
				if err == nil {
					break
				}
				if s.raft.State() != raft.Leader {
					return // lost it meanwhile; LeaderCh will say so
				}
				s.log.Warn("barrier after election failed, retrying", "error", err)
				select {
				case <-s.stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
			s.mu.Lock()
			s.leading = true
			s.isReady.Store(true)
			close(s.ready)
			s.mu.Unlock()
			var ctx context.Context
			ctx, cancelRelay = context.WithCancel(context.Background())
			relayDone = make(chan struct{})
			go func() { defer close(relayDone); s.relay.run(ctx) }()
			s.log.Debug("leading", "index", s.fsm.Index())
			s.node.leadershipChanged(s.id, true)
			return
		}
		s.mu.Lock()
		was := s.leading
		if s.leading {
			s.leading = false
			s.isReady.Store(false)
			s.ready = make(chan struct{})
		}
		s.mu.Unlock()
		if was {
			s.node.leadershipChanged(s.id, false)
		}
		if cancelRelay != nil {
			cancelRelay()
			<-relayDone
			cancelRelay = nil
		}
	}
	// LeaderCh only reports changes; a single voter may already lead.
	if s.raft.State() == raft.Leader {
		setLeading(true)
	}
	for {
		select {
		case lead := <-s.raft.LeaderCh():
			setLeading(lead)
		case <-s.stop:
			setLeading(false)
			return
		}
	}
}

func (s *Shard) readyCh() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready
}

// Ready reports whether this node leads the shard and has caught up.
func (s *Shard) Ready() bool { return s.isReady.Load() }

// ID returns the shard number.
func (s *Shard) ID() int { return s.id }

// FSM returns the shard's state machine.
func (s *Shard) FSM() *fsm.FSM { return s.fsm }

// Raft returns the shard's raft instance.
func (s *Shard) Raft() *raft.Raft { return s.raft }

func (s *Shard) notLeader() error {
	if s.closing.Load() {
		return codes.New(codes.ShuttingDown, "node is shutting down")
	}
	addr, id := s.raft.LeaderWithID()
	if addr == "" {
		return codes.New(codes.ShardUnavailable, "shard %d has no leader", s.id)
	}
	// The message names the leader's client address, which clients dial;
	// raft knows only its raft address. Without gossip (single node) or
	// before the leader is known there, name no address: the client then
	// refreshes its shard map instead.
	if n := s.node; n != nil && n.members != nil {
		for _, m := range n.members.Alive() {
			if m.Meta.ID == string(id) && m.Meta.ClientAddr != "" {
				return codes.New(codes.NotLeader, "shard %d is led by %s at %s", s.id, id, m.Meta.ClientAddr)
			}
		}
	}
	return codes.New(codes.NotLeader, "shard %d is led by %s", s.id, id)
}

// Read runs fn on the shard's Store if this node leads the shard, has
// caught up and holds a read lease; fn must not keep the Store. Reads do
// not go through raft.
//
// The lease makes leader reads see every acknowledged write, also when
// this node was deposed without noticing (paused, or cut off: the chaos
// suite's -reads leader runs found such stale reads). A VerifyLeader
// round that started at T proves that a quorum heard from this leader
// after T; each of them rejects other candidates until its own heartbeat
// timeout (at least HeartbeatTimeout) passes without news, so no other
// leader exists before T + HeartbeatTimeout. Reads are served until
// T + HeartbeatTimeout/2 (margin for scheduling), on the monotonic clock;
// a read after that renews the lease first (concurrent renewals share one
// raft round). A leadership transfer skips the followers' wait, so reads
// are refused while one runs.
func (s *Shard) Read(fn func(*shard.Store) error) error {
	if !s.isReady.Load() {
		return s.notLeader()
	}
	if err := s.lease(); err != nil {
		return err
	}
	return s.fsm.Read(fn)
}

// lease checks, and if needed renews, the read lease.
func (s *Shard) lease() error {
	if s.transferring.Load() > 0 {
		return codes.New(codes.NotLeader, "shard %d is handing its leadership over", s.id)
	}
	if int64(time.Since(leaseBase)) < s.leaseUntil.Load() {
		return nil
	}
	start := time.Since(leaseBase)
	if err := s.raft.VerifyLeader().Error(); err != nil {
		return s.raftErr(err)
	}
	if s.transferring.Load() > 0 {
		return codes.New(codes.NotLeader, "shard %d is handing its leadership over", s.id)
	}
	until := int64(start + s.cfg.HeartbeatTimeout/2)
	for {
		cur := s.leaseUntil.Load()
		if cur >= until || s.leaseUntil.CompareAndSwap(cur, until) {
			return nil
		}
	}
}

// transfer runs a leadership transfer with leader reads blocked, and the
// lease dropped, until it ends.
func (s *Shard) transfer(f func() raft.Future) error {
	s.transferring.Add(1)
	s.leaseUntil.Store(0)
	defer s.transferring.Add(-1)
	return f().Error()
}

// ReadLinearizable is Read after confirming with a quorum that this node
// still leads the shard (one round trip): the read sees every write
// acknowledged before it started, even if this node was just deposed.
func (s *Shard) ReadLinearizable(fn func(*shard.Store) error) error {
	if !s.isReady.Load() {
		return s.notLeader()
	}
	if err := s.raft.VerifyLeader().Error(); err != nil {
		return s.raftErr(err)
	}
	return s.fsm.Read(fn)
}

// ReadLocal runs fn on this replica's state whatever its role: a follower
// read, possibly behind the leader.
func (s *Shard) ReadLocal(fn func(*shard.Store) error) error {
	return s.fsm.Read(fn)
}

// Write proposes a follow or unfollow and waits for it to be committed and
// applied (and, with opt.Sync, for its reverse side to be applied too).
func (s *Shard) Write(ctx context.Context, op fsm.Op, actor string, targets []string, opt WriteOptions) ([]shard.Result, error) {
	if err := shard.ValidateUserID(actor); err != nil {
		return nil, err
	}
	if len(targets) < 1 || len(targets) > s.cfg.Store.MaxTargets {
		return nil, codes.New(codes.InvalidParam, "%d targets: want 1 to %d", len(targets), s.cfg.Store.MaxTargets)
	}
	if !s.isReady.Load() {
		return nil, s.notLeader()
	}
	if st := s.fsm.Outbox(); st.Records >= s.cfg.MaxOutbox {
		return nil, codes.New(codes.Overloaded, "shard %d has %d undelivered reverse edges", s.id, st.Records)
	}
	p := &proposal{cmd: &fsm.Command{Op: op, Actor: actor, Targets: targets}, done: make(chan struct{})}
	if err := s.enqueue(p); err != nil {
		return nil, err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		// The write may still commit; writes are idempotent, so the
		// client may retry.
		return nil, ctxErr(ctx)
	}
	if p.err != nil {
		return nil, p.err
	}
	if p.res.Err != nil {
		return nil, p.res.Err
	}
	if opt.Sync && len(p.res.Waits) > 0 {
		if err := s.relay.wait(ctx, p.res.Waits); err != nil {
			return p.res.Results, err
		}
	}
	return p.res.Results, nil
}

// enqueue hands a proposal to the batcher. Under sendMu, a proposal is
// either queued before close marks the shard closing (and the batcher
// answers it), or refused.
func (s *Shard) enqueue(p *proposal) error {
	s.sendMu.RLock()
	defer s.sendMu.RUnlock()
	if s.closing.Load() {
		return codes.New(codes.ShuttingDown, "node is shutting down")
	}
	select {
	case s.props <- p:
		return nil
	default:
		return codes.New(codes.Overloaded, "shard %d write queue is full", s.id)
	}
}

func ctxErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return codes.New(codes.Timeout, "deadline exceeded; the write may still be applied (retrying is safe)")
	}
	return codes.New(codes.Timeout, "canceled; the write may still be applied (retrying is safe)")
}

// batcher groups queued commands into log entries. It proposes as soon as
// an in-flight slot is free, so a lone command goes out at once, and under
// load every entry carries whatever queued while the previous ones were
// committing.
func (s *Shard) batcher() {
	defer close(s.inflight)
	var buf bytes.Buffer
	var eb fsm.Batch
	for {
		var first *proposal
		select {
		case first = <-s.props:
		case <-s.stop:
			s.drainQueue()
			return
		}
		b := &batch{props: []*proposal{first}}
		size := first.size()
	fill:
		for len(b.props) < s.cfg.MaxBatch && size < s.cfg.MaxBatchBytes {
			select {
			case p := <-s.props:
				b.props = append(b.props, p)
				size += p.size()
			default:
				break fill
			}
		}
		eb.Commands, eb.Deliveries, eb.Acks = eb.Commands[:0], eb.Deliveries[:0], eb.Acks[:0]
		for _, p := range b.props {
			switch {
			case p.cmd != nil:
				p.idx = len(eb.Commands)
				eb.Commands = append(eb.Commands, *p.cmd)
			case p.dlv != nil:
				p.idx = len(eb.Deliveries)
				eb.Deliveries = append(eb.Deliveries, *p.dlv)
			default:
				eb.Acks = append(eb.Acks, p.acks...)
			}
		}
		b.cmds = len(eb.Commands)
		now := time.Now().UnixMilli()
		if now < s.lastT {
			now = s.lastT // the wall clock went back: keep followTimes monotonic
		}
		s.lastT = now
		eb.Time = now
		data := fsm.EncodeBatch(&buf, eb)
		b.start = time.Now()
		b.fut = s.raft.Apply(bytes.Clone(data), s.cfg.ApplyTimeout)
		// The inflight channel's capacity bounds the entries in flight:
		// while it is full this blocks, and proposals keep queueing for
		// the next entry.
		select {
		case s.inflight <- b:
		case <-s.stop:
			s.finish(b)
			s.drainQueue()
			return
		}
	}
}

// drainQueue fails queued commands at shutdown.
func (s *Shard) drainQueue() {
	for {
		select {
		case p := <-s.props:
			p.err = codes.New(codes.ShuttingDown, "node is shutting down")
			close(p.done)
		default:
			return
		}
	}
}

// completer waits for entries in order and hands out their results.
func (s *Shard) completer() {
	defer close(s.done)
	for b := range s.inflight {
		s.finish(b)
	}
}

func (s *Shard) finish(b *batch) {
	err := b.fut.Error()
	if s.cfg.OnCommit != nil && err == nil && b.cmds > 0 {
		s.cfg.OnCommit(s.id, time.Since(b.start), b.cmds)
	}
	var resp *fsm.BatchResponse
	if err == nil {
		switch r := b.fut.Response().(type) {
		case *fsm.BatchResponse:
			resp = r
		case error:
			err = codes.New(codes.ShardUnavailable, "shard %d: %v", s.id, r)
		default:
			err = codes.New(codes.Internal, "shard %d: unexpected apply response %T", s.id, r)
		}
	} else {
		err = s.raftErr(err)
	}
	for _, p := range b.props {
		switch {
		case err != nil:
			p.err = err
		case p.cmd != nil:
			p.res = resp.Commands[p.idx]
		case p.dlv != nil:
			p.applied = resp.Delivered[p.idx]
		}
		close(p.done)
	}
}

// raftErr maps a raft error to a code.
func (s *Shard) raftErr(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// Refused before it reached the log: certainly not applied.
		return s.notLeader()
	case errors.Is(err, raft.ErrLeadershipLost):
		// The entry is in the log of a deposed leader: a new leader may
		// still commit it. NotLeader would promise it did not apply.
		return codes.New(codes.Timeout, "shard %d: leadership lost while the write was in flight; its outcome is unknown", s.id)
	case errors.Is(err, raft.ErrRaftShutdown):
		return codes.New(codes.ShuttingDown, "shard %d is shut down", s.id)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return codes.New(codes.Timeout, "shard %d: raft did not take the entry in time", s.id)
	}
	return codes.New(codes.Internal, "shard %d: %v", s.id, err)
}

// Deliver applies records from shard src through this shard's raft log
// (sharing entries with client writes) and returns the highest sequence
// from src applied here.
func (s *Shard) Deliver(ctx context.Context, src int, recs []fsm.Record) (uint64, error) {
	if !s.isReady.Load() {
		return 0, s.notLeader()
	}
	p := &proposal{dlv: &fsm.Delivery{Src: src, Records: recs}, done: make(chan struct{})}
	if err := s.enqueue(p); err != nil {
		return 0, err
	}
	select {
	case <-p.done:
		return p.applied, p.err
	case <-ctx.Done():
		return 0, ctxErr(ctx)
	}
}

// ack commits acknowledgements through the batcher.
func (s *Shard) ack(ctx context.Context, acks []fsm.Watermark) error {
	p := &proposal{acks: acks, done: make(chan struct{})}
	if err := s.enqueue(p); err != nil {
		return err
	}
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctxErr(ctx)
	}
}

// Lag describes the relay's backlog.
type Lag struct {
	Records int           // undelivered reverse edges
	Oldest  time.Duration // age of the oldest one
}

// Lag returns the relay's backlog.
func (s *Shard) Lag() Lag {
	st := s.fsm.Outbox()
	l := Lag{Records: st.Records}
	if st.Oldest > 0 {
		l.Oldest = time.Duration(max(0, time.Now().UnixMilli()-st.Oldest)) * time.Millisecond
	}
	return l
}

func (s *Shard) onRecords(dst int) { s.relay.kick(dst) }

// close stops the shard: queued writes fail with ShuttingDown, in-flight
// entries complete, then raft and the stores shut down (the node closes
// the shared raft log, after all its shards).
func (s *Shard) close() error {
	s.sendMu.Lock()
	s.closing.Store(true)
	s.sendMu.Unlock()
	close(s.stop)
	// Entries in flight normally commit within milliseconds; give them a
	// moment. A shard that lost its quorum never commits them, and only
	// shutting raft down fails their futures, so then shut down anyway.
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(closeGrace):
		s.log.Warn("entries still in flight at shutdown; shutting raft down under them")
	}
	// raft.Shutdown waits for every raft goroutine; one stuck on the
	// network must not hold up the node's exit forever (the chaos suite
	// found a replication goroutine blocked in a pipeline, fixed by
	// guardedTransport; this is the backstop).
	shut := make(chan error, 1)
	go func() { shut <- s.raft.Shutdown().Error() }()
	var err error
	select {
	case err = <-shut:
	case <-time.After(raftShutdownGrace):
		s.log.Error("raft did not shut down in time; abandoning its goroutines", "waited", raftShutdownGrace)
	}
	// Shutting down, raft fails the futures of the entries it is
	// replicating, but not those still queued in its (buffered, with
	// BatchApplyCh) apply channel or committed and not yet handed to the
	// FSM: hashicorp/raft 1.8 never answers those, and the completer
	// would wait on one forever, and Close with it. Should that happen,
	// leave the completer blocked, its callers time out on their
	// contexts, and close the stores.
	select {
	case <-done:
	case <-time.After(closeGrace):
		s.log.Error("raft shut down without answering entries in flight; abandoning their writes")
	}
	if c, ok := s.trans.(raft.WithClose); ok {
		c.Close()
	}
	return errors.Join(err, s.closeLog(), s.stable.Close())
}

// closeGrace is how long close waits for entries in flight.
const closeGrace = 3 * time.Second

// raftShutdownGrace bounds the wait for raft's goroutines at close.
const raftShutdownGrace = 5 * time.Second

// quietInfo demotes raft's info logs (elections, snapshots: a dozen lines
// per shard at every start) to debug; warnings and errors pass through.
type quietInfo struct{ hclog.Logger }

func (q quietInfo) Info(msg string, args ...any) { q.Logger.Debug(msg, args...) }

func (q quietInfo) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Info {
		level = hclog.Debug
	}
	q.Logger.Log(level, msg, args...)
}

func (q quietInfo) Named(name string) hclog.Logger      { return quietInfo{q.Logger.Named(name)} }
func (q quietInfo) ResetNamed(name string) hclog.Logger { return quietInfo{q.Logger.ResetNamed(name)} }
func (q quietInfo) With(args ...any) hclog.Logger       { return quietInfo{q.Logger.With(args...)} }
