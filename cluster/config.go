package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/followgraph/followgraph/fsm"
	"github.com/followgraph/followgraph/internal/raftmux"
	"github.com/followgraph/followgraph/internal/wal"
	"github.com/followgraph/followgraph/shard"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// DefaultShards is the shard count of a new data directory when Config
// does not set one.
const DefaultShards = 16

// Config configures a Node. Start from DefaultConfig. docs/ARCHITECTURE.md
// says how the defaults were chosen.
type Config struct {
	// NodeID names this node in raft configurations and gossip.
	NodeID string
	// DataDir holds the node's metadata, its raft log and, per shard, the
	// raft stable store and snapshots.
	DataDir string
	// Shards is the number of shards of a new cluster. 0 means: what the
	// data directory says, or DefaultShards for a new one. A node refuses
	// to start if it is set and differs from the data directory's.
	Shards int
	// Logger receives the node's structured logs (and raft's).
	Logger hclog.Logger

	// Store holds the limits of every shard's Store. Its CursorKey, when
	// empty, is derived from the cluster ID.
	Store shard.Config
	// Feed bounds every shard's change feed (see fsm.FeedConfig).
	Feed fsm.FeedConfig
	// Hooks receive every shard's feed from its leader (webhooks).
	Hooks []Hook
	// Raft tunes every shard's raft group.
	Raft RaftConfig
	// RaftLog tunes the node's write-ahead log, which holds the raft logs
	// of all its shards.
	RaftLog wal.Config
	// Batch tunes group commit: how client writes share log entries.
	Batch BatchConfig
	// Relay tunes the delivery of reverse edges to other shards.
	Relay RelayConfig
	// Export bounds the node's export sessions (exportsession.go).
	Export ExportConfig
	// Removal tunes the removal of users' graphs (remove.go).
	Removal RemovalConfig
	// Membership makes the node a member of a cluster; its zero value
	// (no RaftAddr) is a single node holding every shard.
	Membership MembershipConfig

	// Peers reaches the other nodes of the cluster: required with
	// Membership.RaftAddr, unused on a single node.
	Peers Peers
	// PeerDialer, if set, is bound to the node once its raft port is
	// open, so that Peers can reach other nodes over it (see DialPeer)
	// from the node's first call on.
	PeerDialer *PeerDialer
	// OnCommit, if set, is called after each batch entry commits with the
	// time from proposal to commit and the number of commands it carried
	// (for metrics). It must not block.
	OnCommit func(shard int, d time.Duration, commands int)

	// sender, if set, replaces the relay's delivery (tests inject faults
	// with it).
	sender sender
}

// RaftConfig tunes every shard's raft group (hashicorp/raft's Config).
type RaftConfig struct {
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	// CommitTimeout is how often an idle leader sends each follower an
	// AppendEntries carrying the commit index. It bounds how stale an
	// idle follower's applied state is (reads at consistency any), and
	// costs idle CPU on every replica.
	CommitTimeout    time.Duration
	MaxAppendEntries int
	// SnapshotLogRatio and SnapshotMinLogBytes snapshot a shard by cost:
	// once the log applied since its newest snapshot reaches
	// SnapshotLogRatio times that snapshot's size, and at least
	// SnapshotMinLogBytes (see snapshots.go). SnapshotThreshold (entries)
	// and SnapshotInterval (how often raft checks it) are raft's own
	// trigger, kept as a backstop.
	SnapshotLogRatio    float64
	SnapshotMinLogBytes int64
	// SnapshotOnCloseBytes snapshots, when the node closes, every replica
	// whose log since its newest snapshot holds at least this many bytes,
	// so that the next start loads snapshots instead of replaying the log
	// (at a million users, most of the start time). 0 disables it.
	SnapshotOnCloseBytes int64
	SnapshotThreshold    uint64
	SnapshotInterval     time.Duration
	// TrailingLogs are the entries kept after a snapshot, for followers
	// to catch up from. They must outlast a snapshot restore on a
	// follower, or it never catches up.
	TrailingLogs   uint64
	SnapshotRetain int
	// LogCache is how many recent entries each shard keeps in memory to
	// send to followers without reading the log back (raft's LogCache).
	// A cached entry keeps its batch and its apply results alive, so the
	// cost grows with the write rate: 1,024 entries per shard held over
	// 80 bytes per edge loaded. A single node has no followers and keeps
	// none; 0 disables the cache in a cluster too.
	LogCache int
	// QuietAfter is how long a shard goes without writes or lease
	// renewals before it is quiet: its leader stops sending idle
	// followers heartbeats and empty AppendEntries, and the node sends
	// each peer one coalesced beat for all its quiet shards instead
	// (quiet.go). 0 keeps every shard's heartbeats on the wire.
	QuietAfter time.Duration
}

// BatchConfig tunes group commit. At most MaxCommands commands (and
// MaxBytes of encoded commands) share one log entry, and at most
// MaxInflight entries per shard are in flight in raft. While they are, new
// commands queue and go out together in the next entry, so entries grow
// with load while a lone command goes out at once.
type BatchConfig struct {
	MaxCommands int
	MaxBytes    int
	MaxInflight int
	// QueueDepth bounds the commands waiting per shard; beyond it, writes
	// fail with codes.Overloaded.
	QueueDepth int
	// ApplyTimeout bounds how long a write may wait to be committed.
	ApplyTimeout time.Duration
}

// RelayConfig tunes the relay of reverse edges to other shards.
type RelayConfig struct {
	// Batch is the most records per delivery.
	Batch int
	// Retry is the first delay after a failed delivery (doubling, up to
	// 2 s).
	Retry time.Duration
	// AckAfter is how long a delivery's confirmation may wait for an
	// entry the shard writes anyway to carry its acknowledgement (which
	// drops the records from the outbox); after that, an entry is
	// written for it alone. Longer means fewer entries on a shard that
	// writes in bursts, and more records redelivered after a leader
	// change (harmless: the destination skips them).
	AckAfter time.Duration
	// MaxOutbox bounds a shard's undelivered records; while it is
	// exceeded, new writes to the shard fail with codes.Overloaded.
	MaxOutbox int
}

// MembershipConfig makes a node a member of a cluster: its shards' raft
// groups talk to other nodes over one multiplexed port, gossip says who is
// alive and who leads what, and each shard has Replicas voters.
type MembershipConfig struct {
	// RaftAddr is the raft listener, one port for every shard; its
	// presence puts the node in cluster mode. RaftAdvertise is the
	// address peers dial (default: RaftAddr).
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
	// Join lists gossip seeds (it may include this node's own address).
	Join []string
	// BootstrapExpect creates a new cluster once this many nodes see each
	// other (0: join an existing cluster only).
	BootstrapExpect int
	// Replicas is the number of voters of each shard.
	Replicas int
	// DeadTimeout is how long a node must have been gone before its
	// replicas are re-created elsewhere (never on a single suspicion).
	DeadTimeout time.Duration
	// ReapAfter is how long a node may be dead before gossip forgets it:
	// it leaves the member table and followctl status, and is no longer
	// retried (0: never). At least DeadTimeout, so that its replicas were
	// replaced first. A reaped node that comes back joins as any new one.
	ReapAfter time.Duration
	// ReconcileInterval is how often each shard leader compares its
	// replicas with the live membership.
	ReconcileInterval time.Duration
	// FastGossip shortens gossip timers (tests on loopback).
	FastGossip bool
	// GossipKey, an AES key of 16, 24 or 32 bytes, encrypts gossip
	// (gossipkeys.go). It seeds the data directory's keyring when there
	// is none yet; once there is one, the keyring wins. Empty: gossip in
	// the clear, unless the data directory has a keyring.
	GossipKey []byte
	// PeerAuth authenticates the other nodes on the raft port (mutual
	// TLS or a cluster secret, raftmux.NewMutualTLSAuth/NewSecretAuth;
	// peerauth.go). Nil: the raft port is unauthenticated.
	PeerAuth *raftmux.Auth
	// OnPeerRefused, if set, is called with the reason (raftmux.Refused*)
	// of every peer the raft port refuses. It must not block.
	OnPeerRefused func(reason string)
}

// DefaultConfig returns the defaults: a single node; set
// Membership.RaftAddr (and the other addresses) for a cluster member.
func DefaultConfig() Config {
	return Config{
		NodeID:     "node1",
		DataDir:    "followd-data",
		Store:      shard.DefaultConfig(),
		Feed:       fsm.DefaultFeedConfig(),
		Raft:       DefaultRaftConfig(),
		RaftLog:    wal.DefaultConfig(),
		Batch:      DefaultBatchConfig(),
		Relay:      DefaultRelayConfig(),
		Export:     DefaultExportConfig(),
		Removal:    DefaultRemovalConfig(),
		Membership: DefaultMembershipConfig(),
	}
}

// DefaultRaftConfig returns the raft defaults.
func DefaultRaftConfig() RaftConfig {
	return RaftConfig{
		HeartbeatTimeout:     500 * time.Millisecond,
		ElectionTimeout:      500 * time.Millisecond,
		LeaderLeaseTimeout:   250 * time.Millisecond,
		CommitTimeout:        250 * time.Millisecond,
		MaxAppendEntries:     128,
		LogCache:             256,
		QuietAfter:           2 * time.Second,
		SnapshotLogRatio:     1,
		SnapshotMinLogBytes:  4 << 20,
		SnapshotOnCloseBytes: 1 << 20,
		SnapshotThreshold:    32768,
		SnapshotInterval:     30 * time.Second,
		TrailingLogs:         16384,
		SnapshotRetain:       2,
	}
}

// DefaultBatchConfig returns the group-commit defaults.
func DefaultBatchConfig() BatchConfig {
	return BatchConfig{MaxCommands: 512, MaxBytes: 1 << 20, MaxInflight: 4, QueueDepth: 8192, ApplyTimeout: 10 * time.Second}
}

// DefaultRelayConfig returns the relay defaults.
func DefaultRelayConfig() RelayConfig {
	return RelayConfig{Batch: 2048, Retry: 20 * time.Millisecond, AckAfter: time.Second, MaxOutbox: 1 << 20}
}

// DefaultMembershipConfig returns the cluster-mode defaults, without
// addresses (a single node).
func DefaultMembershipConfig() MembershipConfig {
	return MembershipConfig{Replicas: 3, DeadTimeout: 30 * time.Second, ReapAfter: 72 * time.Hour, ReconcileInterval: 2 * time.Second}
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
	case c.clusterMode() && c.Shards > 1024:
		return fmt.Errorf("cluster: at most 1024 shards in a cluster (gossip metadata), not %d", c.Shards)
	case c.clusterMode() && c.Peers == nil:
		return errors.New("cluster: Peers is required with Membership.RaftAddr")
	}
	for _, err := range []error{c.Store.Validate(), c.Feed.Validate(), c.Raft.Validate(), c.RaftLog.Validate(), c.Batch.Validate(), c.Relay.Validate(), c.Export.Validate(), c.Removal.Validate()} {
		if err != nil {
			return err
		}
	}
	if c.clusterMode() {
		if err := c.Membership.Validate(); err != nil {
			return err
		}
	}
	return raft.ValidateConfig(c.raftConfig())
}

// Validate reports the first invalid field.
func (c *RaftConfig) Validate() error {
	switch {
	case c.TrailingLogs < c.SnapshotThreshold/2:
		return fmt.Errorf("cluster: Raft.TrailingLogs (%d) below half of Raft.SnapshotThreshold (%d) leaves slow followers no log to catch up from", c.TrailingLogs, c.SnapshotThreshold)
	case c.SnapshotLogRatio < 0 || c.SnapshotMinLogBytes < 0 || c.SnapshotOnCloseBytes < 0:
		return fmt.Errorf("cluster: Raft.SnapshotLogRatio (%g), Raft.SnapshotMinLogBytes (%d) and Raft.SnapshotOnCloseBytes (%d) must not be negative",
			c.SnapshotLogRatio, c.SnapshotMinLogBytes, c.SnapshotOnCloseBytes)
	case c.LogCache < 0:
		return fmt.Errorf("cluster: Raft.LogCache (%d) must not be negative", c.LogCache)
	case c.QuietAfter < 0:
		return fmt.Errorf("cluster: Raft.QuietAfter (%v) must not be negative", c.QuietAfter)
	case c.SnapshotRetain < 1:
		return fmt.Errorf("cluster: Raft.SnapshotRetain (%d) must be at least 1", c.SnapshotRetain)
	}
	return nil // raft.ValidateConfig checks the rest
}

// Validate reports the first invalid field.
func (c *BatchConfig) Validate() error {
	switch {
	case c.MaxCommands < 1 || c.MaxInflight < 1 || c.QueueDepth < 1:
		return fmt.Errorf("cluster: Batch.MaxCommands (%d), Batch.MaxInflight (%d) and Batch.QueueDepth (%d) must be positive",
			c.MaxCommands, c.MaxInflight, c.QueueDepth)
	case c.MaxBytes < 1024:
		return fmt.Errorf("cluster: Batch.MaxBytes (%d) must be at least 1024", c.MaxBytes)
	case c.ApplyTimeout <= 0:
		return errors.New("cluster: Batch.ApplyTimeout must be positive")
	}
	return nil
}

// Validate reports the first invalid field.
func (c *RelayConfig) Validate() error {
	if c.Batch < 1 || c.Retry <= 0 || c.AckAfter <= 0 || c.MaxOutbox < 1 {
		return errors.New("cluster: Relay.Batch, Relay.Retry, Relay.AckAfter and Relay.MaxOutbox must be positive")
	}
	return nil
}

// Validate reports the first invalid field of a cluster member's
// configuration.
func (c *MembershipConfig) Validate() error {
	switch {
	case c.RaftAddr == "":
		return errors.New("cluster: Membership.RaftAddr is empty")
	case c.GossipAddr == "":
		return errors.New("cluster: Membership.GossipAddr is required with RaftAddr")
	case c.ClientAddr == "":
		return errors.New("cluster: Membership.ClientAddr is required with RaftAddr")
	case c.Replicas < 1:
		return fmt.Errorf("cluster: Membership.Replicas (%d) must be at least 1", c.Replicas)
	case c.BootstrapExpect < 0:
		return fmt.Errorf("cluster: Membership.BootstrapExpect (%d) must not be negative", c.BootstrapExpect)
	case c.DeadTimeout <= 0 || c.ReconcileInterval <= 0:
		return errors.New("cluster: Membership.DeadTimeout and Membership.ReconcileInterval must be positive")
	case c.ReapAfter != 0 && c.ReapAfter < c.DeadTimeout:
		return fmt.Errorf("cluster: Membership.ReapAfter (%v) must be 0 or at least DeadTimeout (%v)", c.ReapAfter, c.DeadTimeout)
	case len(c.GossipKey) != 0 && len(c.GossipKey) != 16 && len(c.GossipKey) != 24 && len(c.GossipKey) != 32:
		return fmt.Errorf("cluster: Membership.GossipKey has %d bytes: want 16, 24 or 32", len(c.GossipKey))
	}
	return nil
}

// clusterMode reports whether the node is a member of a cluster (it has a
// raft address) rather than a single node.
func (c *Config) clusterMode() bool { return c.Membership.RaftAddr != "" }

func (c *Config) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.NodeID)
	rc.HeartbeatTimeout = c.Raft.HeartbeatTimeout
	rc.ElectionTimeout = c.Raft.ElectionTimeout
	rc.LeaderLeaseTimeout = c.Raft.LeaderLeaseTimeout
	rc.CommitTimeout = c.Raft.CommitTimeout
	rc.MaxAppendEntries = c.Raft.MaxAppendEntries
	rc.BatchApplyCh = true
	rc.SnapshotThreshold = c.Raft.SnapshotThreshold
	rc.SnapshotInterval = c.Raft.SnapshotInterval
	rc.TrailingLogs = c.Raft.TrailingLogs
	rc.NoLegacyTelemetry = true
	if !c.clusterMode() {
		// A single voter has no one to hear from: the heartbeat timeout
		// only delays its first election after the start, by 0.5-1 s per
		// shard with the cluster's values.
		rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = singleVoterTimeout, singleVoterTimeout, singleVoterTimeout
	}
	return rc
}

// singleVoterTimeout is raft's heartbeat, election and lease timeout on a
// single node.
const singleVoterTimeout = 20 * time.Millisecond

// Peers reaches the other nodes of a cluster. cmd/followd supplies one
// that speaks the client protocol (router.Peers); the cluster package
// itself knows no protocol. Implementations must be safe for concurrent
// use.
type Peers interface {
	// Deliver hands records of shard src to shard dst, whose leader is
	// the node at addr (a client address), and returns the highest
	// sequence from src that dst has applied.
	Deliver(ctx context.Context, addr string, dst, src int, recs []fsm.Record) (applied uint64, err error)
	// Status returns the replicas the node at addr hosts, as it sees them.
	Status(ctx context.Context, addr string) (NodeStatus, error)
}

// sender delivers a batch of outbox records from shard src to shard dst
// and returns the highest sequence from src that dst has applied. The
// relay calls it for one (src, dst) pair at a time, in sequence order.
type sender interface {
	Deliver(ctx context.Context, dst, src int, recs []fsm.Record) (applied uint64, err error)
}
