package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/fsm"
	"github.com/followgraph/followgraph/internal/wal"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// Replica is this node's replica of one shard: its raft group, FSM,
// group-commit batcher and, while it leads, its relay. See doc.go for the
// goroutines it runs.
type Replica struct {
	id     int
	node   *Node
	cfg    *Config
	log    hclog.Logger
	fsm    *fsm.FSM
	raft   *raft.Raft
	logs   *wal.Stream // the shard's stream of the node's raft log (the node owns it)
	stable *raftboltdb.BoltStore
	trans  raft.Transport

	props    chan *proposal
	sendMu   sync.RWMutex // see enqueue and close
	inflight chan *batch
	stop     chan struct{} // closed by close: no new work
	done     chan struct{} // closed when the batcher and completer exited
	wg       sync.WaitGroup
	relay    *relay
	hooks    hookPositions // webhook positions to record in the log
	// removalKick wakes the leader's removal loop (runRemovals).
	removalKick chan struct{}

	mu      sync.Mutex
	ready   chan struct{} // closed while this node leads and has caught up
	leading bool
	isReady atomic.Bool
	closing atomic.Bool
	lastT   int64 // last followTime proposed (batcher only)
	entries [numKinds]atomic.Uint64

	snapRetryAt time.Time // snapshotter only: no snapshot by cost before

	// leaseUntil is when this leader's read lease ends, as monotonic
	// time since leaseBase (0: no lease). transferring blocks leader
	// reads while a leadership transfer runs. See Read.
	leaseUntil   atomic.Int64
	transferring atomic.Int32
	// recovered describes the unsafe recovery made from this replica, if
	// one was (read from its directory; see recover.go).
	recovered string
}

// newReplica opens shard id's replica on this node. boot, if not empty,
// is the configuration to bootstrap a new shard with.
func newReplica(n *Node, id int, boot []raft.Server) (*Replica, error) {
	return openReplicaWith(n, id, boot, nil)
}

// prepareFunc runs on a replica's stores before its raft starts (unsafe
// recovery rewrites them).
type prepareFunc func(r *Replica, snaps raft.SnapshotStore, rc *raft.Config) error

// openReplicaWith is newReplica, with prepare (if not nil) run before raft
// starts.
func openReplicaWith(n *Node, id int, boot []raft.Server, prepare prepareFunc) (*Replica, error) {
	cfg := &n.cfg
	dir := filepath.Join(cfg.DataDir, shardDir(id))
	_, err := os.Stat(dir)
	fresh := errors.Is(err, os.ErrNotExist)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	log := n.log.Named(fmt.Sprintf("shard-%d", id))
	r := &Replica{
		id: id, node: n, cfg: cfg, log: log,
		props:       make(chan *proposal, cfg.Batch.QueueDepth),
		inflight:    make(chan *batch, cfg.Batch.MaxInflight),
		stop:        make(chan struct{}),
		removalKick: make(chan struct{}, 1),
		done:        make(chan struct{}),
		ready:       make(chan struct{}),
	}
	// The relay exists before the FSM, which may apply entries (and
	// queue records) as soon as raft starts.
	r.relay = newRelay(r)
	r.fsm, err = fsm.New(fsm.Config{Shard: id, Shards: n.nshards, Store: cfg.Store, Feed: cfg.Feed, Logger: log, OnRecords: r.relay.kick})
	if err != nil {
		return nil, err
	}
	if err := r.openLog(fresh); err != nil {
		return nil, fmt.Errorf("raft log: %w", err)
	}
	// Term and vote, written only on elections, stay in bolt.
	r.stable, err = raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(dir, "stable.db"),
		NoSync:      cfg.RaftLog.NoSync,
		BoltOptions: &bbolt.Options{Timeout: 2 * time.Second},
	})
	if err != nil {
		return nil, fmt.Errorf("raft stable store: %w", err)
	}
	r.recovered = readRecovery(dir)
	if err := r.startRaft(dir, boot, prepare); err != nil {
		r.stable.Close()
		return nil, err
	}
	return r, nil
}

// openLog opens the replica's raft log: stream number id of the node's
// raft log. A replica whose directory did not exist (fresh) is new and
// must start with an empty log: raft.HasExistingState counts any entry as
// existing state, and would run on a log with no snapshot or term under
// it (see raftlog.go for how a stream can outlive its replica).
func (r *Replica) openLog(fresh bool) error {
	l, err := r.node.openRaftLog()
	if err != nil {
		return err
	}
	st, err := l.Stream(uint32(r.id))
	if err != nil {
		return err
	}
	if last, _ := st.LastIndex(); fresh && last != 0 {
		r.log.Warn("new replica finds entries in its raft log stream; deleting them", "last", last)
		if err := emptyStream(l, uint32(r.id)); err != nil {
			return err
		}
	}
	r.logs = st
	return nil
}

// startRaft starts the replica's raft group over its stores, bootstrapping
// a shard that has no state yet with boot (if not empty).
func (r *Replica) startRaft(dir string, boot []raft.Server, prepare prepareFunc) error {
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, r.cfg.Raft.SnapshotRetain, r.log.Named("snapshots"))
	if err != nil {
		return err
	}
	if r.trans, err = r.node.transport(r.id); err != nil {
		return err
	}
	rc := r.cfg.raftConfig()
	rc.Logger = quietInfo{Logger: r.log.Named("raft"), single: !r.node.cfg.clusterMode()}
	if prepare != nil {
		if err := prepare(r, snaps, rc); err != nil {
			return err
		}
	}
	has, err := raft.HasExistingState(r.logs, r.stable, snaps)
	if err != nil {
		return err
	}
	var logs raft.LogStore = r.logs
	if n := r.cfg.Raft.LogCache; n > 0 && r.node.cfg.clusterMode() {
		// Recent entries stay in memory for followers.
		if logs, err = raft.NewLogCache(n, r.logs); err != nil {
			return err
		}
	}
	if r.raft, err = raft.NewRaft(rc, r.fsm, logs, r.stable, snaps, r.trans); err != nil {
		return err
	}
	if q, ok := r.trans.(*quietTransport); ok {
		q.raft.Store(r.raft)
	}
	if !has && len(boot) > 0 {
		f := r.raft.BootstrapCluster(raft.Configuration{Servers: boot})
		if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			r.raft.Shutdown()
			return fmt.Errorf("bootstrap: %w", err)
		}
	}
	return nil
}

// start launches the replica's goroutines.
func (r *Replica) start() {
	r.wg.Add(3)
	go func() { defer r.wg.Done(); r.batcher() }()
	go func() { defer r.wg.Done(); r.completer() }()
	go func() { defer r.wg.Done(); r.watchLeadership() }()
}

// watchLeadership tracks whether this node leads the shard: while it does,
// the replica serves and its relay runs.
func (r *Replica) watchLeadership() {
	var stopRelay func()
	// LeaderCh only reports changes; a single voter may already lead.
	if r.raft.State() == raft.Leader {
		stopRelay = r.becomeLeader()
	}
	for {
		select {
		case lead := <-r.raft.LeaderCh():
			if lead && stopRelay == nil {
				stopRelay = r.becomeLeader()
			} else if !lead {
				r.stepDown(stopRelay)
				stopRelay = nil
			}
		case <-r.stop:
			r.stepDown(stopRelay)
			return
		}
	}
}

// becomeLeader waits for a barrier after winning leadership, so that every
// entry committed by earlier terms is applied before the replica serves
// reads or runs the relay; then it serves and starts the relay, and
// returns what stops the relay (nil if leadership was lost meanwhile).
func (r *Replica) becomeLeader() (stopRelay func()) {
	for {
		err := r.raft.Barrier(r.cfg.Batch.ApplyTimeout).Error()
		if err == nil {
			break
		}
		if r.raft.State() != raft.Leader {
			return nil // lost it meanwhile; LeaderCh will say so
		}
		r.log.Warn("barrier after election failed, retrying", "error", err)
		select {
		case <-r.stop:
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	r.mu.Lock()
	r.leading = true
	r.isReady.Store(true)
	close(r.ready)
	r.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	relayDone, hooksDone, removalsDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() { defer close(relayDone); r.relay.run(ctx) }()
	go func() { defer close(hooksDone); r.runHooks(ctx) }()
	go func() { defer close(removalsDone); r.runRemovals(ctx) }()
	r.log.Debug("leading", "index", r.fsm.Index())
	r.node.leadershipChanged(r.id, true)
	return func() { cancel(); <-relayDone; <-hooksDone; <-removalsDone }
}

// stepDown stops serving as leader and stops the relay (if stopRelay is
// not nil).
func (r *Replica) stepDown(stopRelay func()) {
	r.mu.Lock()
	was := r.leading
	if r.leading {
		r.leading = false
		r.isReady.Store(false)
		r.ready = make(chan struct{})
	}
	r.mu.Unlock()
	if was {
		r.node.leadershipChanged(r.id, false)
	}
	if stopRelay != nil {
		stopRelay()
	}
}

func (r *Replica) readyCh() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ready
}

// Ready reports whether this node leads the shard and has caught up: it
// serves the shard's reads and writes.
func (r *Replica) Ready() bool { return r.isReady.Load() }

// Feed returns the replica's change feed. Every replica derives the same
// events at the same offsets, so any of them may serve a watcher.
func (r *Replica) Feed() *fsm.Feed { return r.fsm.Feed() }

// Shard returns the replica's shard number.
func (r *Replica) Shard() int { return r.id }

// notLeader is the error for a request this replica cannot serve because
// it does not lead: it names the leader (and its client address, which
// clients dial; raft knows only its raft address) when known, so the
// client can go there directly.
func (r *Replica) notLeader() error {
	if r.closing.Load() {
		return codes.New(codes.ShuttingDown, "node is shutting down")
	}
	addr, id := r.raft.LeaderWithID()
	if addr == "" {
		return codes.New(codes.ShardUnavailable, "shard %d has no leader", r.id)
	}
	if m, ok := r.node.member(string(id)); ok && m.Meta.ClientAddr != "" {
		return codes.New(codes.NotLeader, "shard %d is led by %s at %s", r.id, id, m.Meta.ClientAddr)
	}
	return codes.New(codes.NotLeader, "shard %d is led by %s", r.id, id)
}

// close stops the replica: queued writes fail with ShuttingDown, in-flight
// entries complete, then raft and the stable store shut down (the node
// closes the raft log, after all its replicas).
func (r *Replica) close() error {
	r.sendMu.Lock()
	r.closing.Store(true)
	r.sendMu.Unlock()
	close(r.stop)
	// Entries in flight normally commit within milliseconds; give them a
	// moment. A shard that lost its quorum never commits them, and only
	// shutting raft down fails their futures, so then shut down anyway.
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(closeGrace):
		r.log.Warn("entries still in flight at shutdown; shutting raft down under them")
	}
	err := r.shutdownRaft()
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
		r.log.Error("raft shut down without answering entries in flight; abandoning their writes")
	}
	if c, ok := r.trans.(raft.WithClose); ok {
		c.Close()
	}
	return errors.Join(err, r.stable.Close())
}

// shutdownRaft shuts raft down, waiting at most raftShutdownGrace: raft
// waits for every goroutine of its own, and one stuck on the network must
// not hold up the node's exit forever (guardedTransport removes the one
// known cause; this is the backstop).
func (r *Replica) shutdownRaft() error {
	shut := make(chan error, 1)
	go func() { shut <- r.raft.Shutdown().Error() }()
	select {
	case err := <-shut:
		return err
	case <-time.After(raftShutdownGrace):
		r.log.Error("raft did not shut down in time; abandoning its goroutines", "waited", raftShutdownGrace)
		return nil
	}
}

// closeGrace is how long close waits for entries in flight.
const closeGrace = 3 * time.Second

// raftShutdownGrace bounds the wait for raft's goroutines at close.
const raftShutdownGrace = 5 * time.Second

// quietInfo demotes raft's info logs (elections, snapshots: a dozen lines
// per shard at every start) to debug; warnings and errors pass through.
type quietInfo struct {
	hclog.Logger
	single bool // a single node: every shard has one voter
}

func (q quietInfo) Info(msg string, args ...any) { q.Logger.Debug(msg, args...) }

// Warn demotes the warnings every healthy start logs: the first election
// of a replica that has never known a leader (every replica of a fresh or
// restarted node, one per shard), and a replica with no configuration yet
// (a cluster shard before its bootstrap or before it is added).
func (q quietInfo) Warn(msg string, args ...any) {
	if startupWarning(msg, args) || q.single && msg == "Election timeout reached, restarting election" {
		// A single voter elects itself once it has stored its vote: a
		// second election only says the disk was slow (see the fsync
		// metrics), not that anything is wrong.
		q.Logger.Debug(msg, args...)
		return
	}
	q.Logger.Warn(msg, args...)
}

func startupWarning(msg string, args []any) bool {
	switch msg {
	case "no known peers, aborting election":
		return true
	case "heartbeat timeout reached, starting election":
		for i := 0; i+1 < len(args); i += 2 {
			if fmt.Sprint(args[i]) == "last-leader-id" {
				return fmt.Sprint(args[i+1]) == ""
			}
		}
	}
	return false
}

// Error demotes the error raft logs when a pipeline ends because its
// shard went quiet (quiet.go): that is the intended way back to plain
// AppendEntries, not a failure. A leader that meets a newer term (after
// a leadership transfer, a restart or a healed partition) steps down: a
// warning, since every handover logs it.
func (q quietInfo) Error(msg string, args ...any) {
	if msg == "peer has newer term, stopping replication" {
		q.Logger.Warn(msg, args...)
		return
	}
	for _, a := range args {
		if err, ok := a.(error); ok && errors.Is(err, errPipelineQuiet) {
			q.Logger.Debug(msg, args...)
			return
		}
	}
	q.Logger.Error(msg, args...)
}

func (q quietInfo) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Info || level == hclog.Warn && startupWarning(msg, args) {
		level = hclog.Debug
	}
	q.Logger.Log(level, msg, args...)
}

func (q quietInfo) Named(name string) hclog.Logger { return quietInfo{q.Logger.Named(name), q.single} }
func (q quietInfo) ResetNamed(name string) hclog.Logger {
	return quietInfo{q.Logger.ResetNamed(name), q.single}
}
func (q quietInfo) With(args ...any) hclog.Logger { return quietInfo{q.Logger.With(args...), q.single} }
