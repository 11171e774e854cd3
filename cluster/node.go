package cluster

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/followgraph/followgraph/internal/raftmux"
	"github.com/followgraph/followgraph/internal/wal"
	"github.com/followgraph/followgraph/shard"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Node runs the replicas of one followgraph node: one raft group per shard
// it hosts, each with its FSM, group-commit batcher and relay, over one
// raft log. On a single node it hosts every shard; in a cluster, the
// replicas placement gives it (see clustermode.go).
type Node struct {
	leaders leaderPlan // preferred leaders, see Leaders
	cfg     Config
	log     hclog.Logger
	nshards int
	send    sender // the relay's delivery (nodeSender unless a test replaces it)

	// replicas[i] is nil for a shard this node hosts no replica of (only in
	// cluster mode, where replicas are opened as they are assigned).
	// dropping[i] is set while dropReplica deletes shard i's replica: it
	// must not be opened again meanwhile. meta is written once the node
	// learns its cluster's ID (cluster mode), under mu.
	mu       sync.RWMutex
	meta     Meta
	replicas []*Replica
	dropping map[int]bool

	// raftLog holds the raft logs of every replica here, one stream each.
	// It is opened (by openRaftLog) before the first replica and closed by
	// Close after the last.
	walMu     sync.Mutex
	raftLog   *wal.Log
	walClosed bool

	// Cluster mode only (see clustermode.go).
	mux     *raftmux.Mux
	peers   *raftmux.Layer // other nodes' client-protocol streams
	members *Membership
	beats   *beats      // nil when Raft.QuietAfter is 0
	started atomic.Bool // local replicas open, gossip running

	// gossipKeys is the gossip keyring: nil when gossip is not encrypted.
	gossipKeys *gossipKeyring

	// lostWarned rate-limits the lost-replica warning (under mu).
	lostWarned map[int]time.Time
	stop       chan struct{}
	wg         sync.WaitGroup

	exports *exports // export sessions (exportsession.go)

	closeOnce sync.Once
	closeErr  error
}

// Open opens (or creates) the node's data directory and starts its
// replicas. On a single node it returns once every shard has elected
// itself and applied its log, or when ctx ends; in cluster mode, once the
// replicas on disk are open and gossip has started (joining,
// bootstrapping and elections continue in the background: see Ready).
func Open(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	// One user table for every replica the node hosts: each user ID is
	// stored once per node, whatever the number of shards naming it.
	if cfg.Store.Users == nil {
		cfg.Store.Users = shard.NewUsers()
	}
	n := &Node{cfg: cfg, log: cfg.Logger, stop: make(chan struct{}), exports: newExports(cfg.Export)}
	n.send = cfg.sender
	if n.send == nil {
		n.send = nodeSender{n}
	}
	if cfg.clusterMode() {
		return openCluster(n)
	}
	return openSingle(ctx, n)
}

// openSingle is Open on a single node: one voter per shard, in-memory
// transports (raft never sends anything with one voter).
func openSingle(ctx context.Context, n *Node) (*Node, error) {
	if err := n.loadMeta(); err != nil {
		return nil, err
	}
	n.setCursorKey()
	n.replicas = make([]*Replica, n.nshards)
	if err := n.openAll(singleVoter(n.cfg.NodeID), nil); err != nil {
		n.Close()
		return nil, err
	}
	for _, r := range n.localReplicas() {
		r.start()
	}
	if err := n.WaitReady(ctx); err != nil {
		n.Close()
		return nil, err
	}
	// Only once every shard has caught up: a snapshot during the replay
	// would compete with it for the cores and delay readiness.
	n.wg.Go(n.snapshotter)
	n.log.Info("node ready", "node", n.cfg.NodeID, "shards", n.nshards, "cluster", n.ClusterID(), "data", n.cfg.DataDir)
	return n, nil
}

// openAll opens replicas in parallel (restoring a snapshot and replaying
// the log is most of a restart, and shards are independent): of every
// shard, or of those for which want returns true. boot gives a new
// shard's initial voters (none: the shard is not bootstrapped here). The
// raft log is opened first.
func (n *Node) openAll(boot func(int) []raft.Server, want func(int) bool) error {
	var ids []int
	for i := range n.nshards {
		if want == nil || want(i) {
			ids = append(ids, i)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	if _, err := n.openRaftLog(); err != nil {
		return err
	}
	sem := make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))
	errs := make([]error, n.nshards)
	var wg sync.WaitGroup
	for _, i := range ids {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			r, err := newReplica(n, i, boot(i))
			if err != nil {
				errs[i] = fmt.Errorf("shard %d: %w", i, err)
				return
			}
			n.mu.Lock()
			n.replicas[i] = r
			n.mu.Unlock()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Meta returns the data directory's metadata.
func (n *Node) Meta() Meta {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.meta
}

// ClusterID returns the cluster's ID ("" for a cluster node that has not
// joined a cluster yet).
func (n *Node) ClusterID() string { return n.Meta().ClusterID }

// ID returns the node's ID.
func (n *Node) ID() string { return n.cfg.NodeID }

// Shards returns the number of shards of the cluster.
func (n *Node) Shards() int { return n.nshards }

// ShardOf returns the shard of a user.
func (n *Node) ShardOf(user string) int { return shard.Of(user, n.nshards) }

// Clustered reports whether the node is a member of a cluster, which may
// hold only some shards and forwards the rest.
func (n *Node) Clustered() bool { return n.cfg.clusterMode() }

// Limits returns the limits every shard's Store enforces.
func (n *Node) Limits() shard.Config { return n.cfg.Store }

// UserStats returns the size of the node's user table, shared by its
// replicas.
func (n *Node) UserStats() shard.UsersStats { return n.cfg.Store.Users.Stats() }

// Replica returns this node's replica of shard i, or nil if it hosts none.
func (n *Node) Replica(i int) *Replica {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if i < 0 || i >= len(n.replicas) {
		return nil
	}
	return n.replicas[i]
}

// localReplicas returns the replicas this node hosts.
func (n *Node) localReplicas() []*Replica {
	n.mu.RLock()
	defer n.mu.RUnlock()
	var out []*Replica
	for _, r := range n.replicas {
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}

// WaitReady waits until every local replica leads and is ready to serve.
func (n *Node) WaitReady(ctx context.Context) error {
	for _, r := range n.localReplicas() {
		select {
		case <-r.readyCh():
		case <-ctx.Done():
			return fmt.Errorf("cluster: waiting for shard %d: %w", r.id, ctx.Err())
		}
	}
	return nil
}

// Ready reports whether every local replica leads and is ready to serve.
func (n *Node) Ready() bool {
	for _, r := range n.localReplicas() {
		if !r.Ready() {
			return false
		}
	}
	return true
}

// Close stops the node: it refuses new writes, lets queued writes finish,
// stops relays, and shuts down raft and the stores. Safe to call more than
// once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.stop)
		n.exports.close()
		var errs []error
		// Leave gossip first, so peers stop routing here, then stop the
		// replicas, then the raft log and the raft port.
		if n.members != nil {
			errs = append(errs, n.members.Close())
		}
		n.wg.Wait()
		n.snapshotOnClose()
		for _, r := range n.localReplicas() {
			errs = append(errs, r.close())
		}
		if n.beats != nil {
			n.beats.close()
		}
		errs = append(errs, n.closeRaftLog())
		if n.mux != nil {
			errs = append(errs, n.mux.Close())
		}
		n.closeErr = errors.Join(errs...)
		n.log.Info("node stopped", "node", n.cfg.NodeID)
	})
	return n.closeErr
}

// singleVoter is the initial configuration of every shard of a single
// node: this node alone, at the address of its in-memory transport.
func singleVoter(node string) func(int) []raft.Server {
	return func(i int) []raft.Server {
		return []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(node), Address: inmemAddr(node, i)}}
	}
}

// ReplicationFactor is how many voting replicas each shard should have:
// Membership.Replicas in a cluster, 1 on a single node.
func (n *Node) ReplicationFactor() int {
	if !n.cfg.clusterMode() {
		return 1
	}
	return n.cfg.Membership.Replicas
}
