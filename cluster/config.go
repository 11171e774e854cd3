package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/followgraph/followgraph/fsm"
	"github.com/followgraph/followgraph/shard"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// DefaultShards is the shard count of a new data directory when Config
// does not set one.
const DefaultShards = 16

// Config configures a Node. Start from DefaultConfig.
type Config struct {
	// NodeID names this node in raft configurations.
	NodeID string
	// DataDir holds the node's metadata, and per shard the raft log,
	// stable store and snapshots.
	DataDir string
	// Shards is the number of shards of a new cluster. 0 means: what the
	// data directory says, or DefaultShards for a new one. A node refuses
	// to start if it is set and differs from the data directory's.
	Shards int
	// Store holds the limits of every shard's Store. Its CursorKey, when
	// empty, is derived from the cluster ID.
	Store shard.Config
	// Logger receives the node's structured logs (and raft's).
	Logger hclog.Logger

	// Raft tuning. See docs/ARCHITECTURE.md for how these were chosen.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	// CommitTimeout is how often an idle leader sends each follower an
	// AppendEntries that carries the commit index (raft's pipeline sends
	// one per follower per shard every CommitTimeout to 2x, even with
	// nothing new). Under load new entries trigger sends at once, so it
	// only bounds how stale an idle follower's applied state is; at 5 ms it
	// cost a 16-shard idle node a third of a core.
	CommitTimeout     time.Duration
	MaxAppendEntries  int
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	SnapshotRetain    int
	// WALSegmentSize is the preallocated size of a raft log segment file:
	// of the node's shared log, or of each shard's own log in a data
	// directory of the per-shard layout (see Meta.RaftLog). The default,
	// 8 MiB, is the per-shard one kept for the shared log: a segment
	// fills 16 times as fast there, but creating one (zero-filled and
	// synced) holds up every shard's appends, and a small segment keeps
	// that pause short (about 9 ms for 8 MiB on the test VM) and reclaims
	// space in small steps.
	WALSegmentSize int64
	// WALSyncDepth is how many group commits of the shared raft log may
	// have their fdatasync in flight at once (wal.Config.SyncDepth; 0 is
	// wal's default, 4). The default is 1: raft has at most one append
	// per shard in flight, so at most about one per shard wait at a time,
	// and with one fdatasync in flight they gather into groups of about 7
	// (16 shards) where 4 in flight split them into groups of 2.5. On the
	// 2-core test VM, the extra fdatasyncs cost more than the overlap
	// saves: depth 1 gave 1.5 to 1.8 times the throughput of depth 4 with
	// 16 to 256 writers on 16 shards, at a similar or lower p99
	// (BenchmarkGroupCommitShards, docs/PERFORMANCE.md). A disk that
	// completes concurrent fdatasyncs in parallel may do better with 2-4.
	WALSyncDepth int
	// NoSync turns off fsync of the raft log. Only for tests and
	// benchmarks that measure something else: acknowledged writes may be
	// lost on a crash.
	NoSync bool

	// Group commit: at most MaxBatch commands (and MaxBatchBytes of
	// encoded commands) share one log entry, and at most MaxInflight
	// entries per shard are in flight in raft. While they are, new
	// commands queue up and go out together in the next entry, so batches
	// grow with load while a lone command goes out at once.
	MaxBatch      int
	MaxBatchBytes int
	MaxInflight   int
	// QueueDepth bounds the commands waiting per shard; beyond it, writes
	// fail with codes.Overloaded.
	QueueDepth int
	// ApplyTimeout bounds how long a write may wait to be committed.
	ApplyTimeout time.Duration

	// Relay of reverse edges to other shards.
	RelayBatch int           // records per delivery
	RelayRetry time.Duration // first retry delay after a failed delivery (doubles, up to 2s)
	AckEvery   time.Duration // how often delivered records are acknowledged (and dropped)
	// MaxOutbox bounds a shard's undelivered records; while it is
	// exceeded, new writes to the shard fail with codes.Overloaded.
	MaxOutbox int

	// OnCommit, if set, is called after each batch entry commits with the
	// time from proposal to commit and the number of commands it carried
	// (for metrics). It must not block.
	OnCommit func(shard int, d time.Duration, commands int)

	// Cluster mode: a node with a RaftAddr is a member of a cluster (see
	// clustermode.go); without one it is a single node, as above.
	//
	// RaftAddr is the raft listener, one port for every shard;
	// RaftAdvertise the address peers dial (default: RaftAddr).
	RaftAddr, RaftAdvertise string
	// RaftDial, if set, replaces the raft port's dialer (tests inject
	// partitions with it).
	RaftDial func(addr string, timeout time.Duration) (net.Conn, error)
	// GossipAddr is memberlist's address (UDP and TCP); GossipAdvertise
	// the one peers use.
	GossipAddr, GossipAdvertise string
	// ClientAddr is this node's client address as other nodes and clients
	// should use it (shard maps, forwarding).
	ClientAddr string
	// Token is presented to other nodes when forwarding and relaying.
	Token string
	// Join lists gossip seeds (it may include this node's own address).
	Join []string
	// BootstrapExpect creates a new cluster once this many nodes see each
	// other (0: join an existing cluster only).
	BootstrapExpect int
	// Replicas is the number of voters of each shard (default 3).
	Replicas int
	// DeadTimeout is how long a node must have been gone before its
	// replicas are re-created elsewhere (never on a single suspicion).
	DeadTimeout time.Duration
	// ReconcileInterval is how often each shard leader compares its
	// replicas with the live membership.
	ReconcileInterval time.Duration
	// FastGossip shortens gossip timers (tests on loopback).
	FastGossip bool

	// Sender delivers records to other shards. Nil means this node holds
	// every shard (a single node): deliveries go to the local shard.
	Sender Sender
	// Transports makes each shard's raft transport. Nil means in-memory
	// transports (a single node, replication factor 1).
	Transports TransportFactory
}

// DefaultConfig returns the single-node defaults.
func DefaultConfig() Config {
	return Config{
		NodeID:             "node1",
		DataDir:            "followd-data",
		Store:              shard.DefaultConfig(),
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      250 * time.Millisecond,
		MaxAppendEntries:   128,
		SnapshotThreshold:  8192,
		SnapshotInterval:   30 * time.Second,
		TrailingLogs:       16384,
		SnapshotRetain:     2,
		WALSegmentSize:     8 << 20,
		WALSyncDepth:       1,
		MaxBatch:           512,
		MaxBatchBytes:      1 << 20,
		MaxInflight:        4,
		QueueDepth:         8192,
		ApplyTimeout:       10 * time.Second,
		RelayBatch:         2048,
		RelayRetry:         20 * time.Millisecond,
		AckEvery:           50 * time.Millisecond,
		MaxOutbox:          1 << 20,
		Replicas:           3,
		DeadTimeout:        30 * time.Second,
		ReconcileInterval:  2 * time.Second,
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case c.NodeID == "":
		return errors.New("cluster: NodeID is empty")
	case c.DataDir == "":
		return errors.New("cluster: DataDir is empty")
	case c.Shards < 0 || c.Shards > 4096:
		return fmt.Errorf("cluster: Shards (%d) must be between 1 and 4096, or 0", c.Shards)
	case c.MaxBatch < 1 || c.MaxBatchBytes < 1024 || c.MaxInflight < 1 || c.QueueDepth < 1:
		return fmt.Errorf("cluster: MaxBatch (%d), MaxBatchBytes (%d), MaxInflight (%d) and QueueDepth (%d) must be positive (bytes at least 1024)",
			c.MaxBatch, c.MaxBatchBytes, c.MaxInflight, c.QueueDepth)
	case c.RelayBatch < 1 || c.RelayRetry <= 0 || c.AckEvery <= 0 || c.MaxOutbox < 1:
		return errors.New("cluster: RelayBatch, RelayRetry, AckEvery and MaxOutbox must be positive")
	case c.WALSyncDepth < 0 || c.WALSyncDepth > 64:
		return fmt.Errorf("cluster: WALSyncDepth (%d) must be between 1 and 64, or 0 for the default", c.WALSyncDepth)
	case c.ApplyTimeout <= 0:
		return errors.New("cluster: ApplyTimeout must be positive")
	case c.TrailingLogs < c.SnapshotThreshold/2:
		return fmt.Errorf("cluster: TrailingLogs (%d) below half of SnapshotThreshold (%d) leaves slow followers no log to catch up from", c.TrailingLogs, c.SnapshotThreshold)
	}
	if c.clusterMode() {
		switch {
		case c.GossipAddr == "":
			return errors.New("cluster: GossipAddr is required with RaftAddr")
		case c.ClientAddr == "":
			return errors.New("cluster: ClientAddr is required with RaftAddr")
		case c.Replicas < 1:
			return fmt.Errorf("cluster: Replicas (%d) must be at least 1", c.Replicas)
		case c.BootstrapExpect < 0:
			return fmt.Errorf("cluster: BootstrapExpect (%d) must not be negative", c.BootstrapExpect)
		case c.DeadTimeout <= 0 || c.ReconcileInterval <= 0:
			return errors.New("cluster: DeadTimeout and ReconcileInterval must be positive")
		case c.Shards > 1024:
			return fmt.Errorf("cluster: at most 1024 shards in a cluster (gossip metadata), not %d", c.Shards)
		}
	}
	if err := c.Store.Validate(); err != nil {
		return err
	}
	return raft.ValidateConfig(c.raftConfig())
}

func (c *Config) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.NodeID)
	rc.HeartbeatTimeout = c.HeartbeatTimeout
	rc.ElectionTimeout = c.ElectionTimeout
	rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	rc.CommitTimeout = c.CommitTimeout
	rc.MaxAppendEntries = c.MaxAppendEntries
	rc.BatchApplyCh = true
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.SnapshotInterval = c.SnapshotInterval
	rc.TrailingLogs = c.TrailingLogs
	rc.NoLegacyTelemetry = true
	return rc
}

// Sender delivers a batch of outbox records from shard src to shard dst
// and returns the highest sequence from src that dst has applied. It must
// be safe for concurrent use. The relay calls it for one (src, dst) pair at
// a time, in sequence order.
type Sender interface {
	Deliver(ctx context.Context, dst, src int, recs []fsm.Record) (applied uint64, err error)
}

// TransportFactory makes the raft transport of one shard.
type TransportFactory interface {
	Transport(shard int) (raft.Transport, error)
	// Servers returns the initial voters of a new shard.
	Servers(shard int) []raft.Server
}
