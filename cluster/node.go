package cluster

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/fsm"
	"github.com/followgraph/followgraph/internal/raftmux"
	"github.com/followgraph/followgraph/internal/wal"
	"github.com/followgraph/followgraph/shard"
	"github.com/followgraph/followgraph/wire"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Node runs the shards of one followgraph node: one raft group per shard,
// each with its FSM, group-commit batcher and relay.
type Node struct {
	leaders leaderPlan // preferred leaders, see Leaders
	cfg     Config
	log     hclog.Logger
	meta    Meta
	nshards int

	// shards[i] is nil for a shard this node hosts no replica of (only in
	// cluster mode, where replicas are opened as they are assigned).
	// dropping[i] is set while dropReplica deletes shard i's replica: it
	// must not be opened again meanwhile.
	mu       sync.RWMutex
	shards   []*Shard
	dropping map[int]bool

	// sharedLayout is the data directory's raft log layout (Meta.RaftLog
	// is RaftLogShared), set before any shard opens. In that layout, wal is
	// the node's shared raft log, opened by sharedLog before the first
	// shard and closed by Close after the last.
	sharedLayout bool
	walMu        sync.Mutex
	wal          *wal.Shared
	walClosed    bool

	// Cluster mode only (see clustermode.go).
	mux     *raftmux.Mux
	members *Membership
	started atomic.Bool // cluster mode: local shards open, gossip running
	peers   *client.Client
	// lostWarned rate-limits the lost-replica warning (under mu).
	lostWarned map[int]time.Time
	stop       chan struct{}
	wg         sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	mapMu   sync.Mutex
	mapHash uint64
	mapVer  uint64
}

// mapVersion numbers shard maps: it grows whenever this node builds one
// that differs from the last. Clients compare versions from one node only,
// and refresh on "not leader" anyway.
func (n *Node) mapVersion(m wire.ShardMap) uint64 {
	h := fnv.New64a()
	for _, l := range m.Leaders {
		fmt.Fprintf(h, "%d %s %s;", l.Shard, l.LeaderID, l.Addr)
	}
	n.mapMu.Lock()
	defer n.mapMu.Unlock()
	if v := h.Sum64(); v != n.mapHash || n.mapVer == 0 {
		n.mapHash = v
		n.mapVer++
	}
	return n.mapVer
}

// Meta is what a data directory records about its cluster. It is written
// once, when the directory is created.
type Meta struct {
	// Version is the data directory's format: metaVersionPerShardLog or
	// metaVersionSharedLog (see RaftLog).
	Version   int       `json:"version"`
	ClusterID string    `json:"cluster_id"`
	Shards    int       `json:"shards"`
	NodeID    string    `json:"node_id"`
	Created   time.Time `json:"created"`
	// RaftLog is where the shards keep their raft logs: RaftLogShared in
	// version 2 directories; absent in version 1, which means
	// RaftLogPerShard (and reads as that).
	RaftLog string `json:"raft_log,omitempty"`
}

// The raft log layouts of a data directory. A directory keeps the layout
// it was created with.
const (
	// RaftLogPerShard: each shard has its own write-ahead log in
	// shard-NNN/wal (a wal.Log), with one fdatasync per append of that
	// shard. The layout of data directories created before the shared
	// log (format version 1), which keep using it.
	RaftLogPerShard = "per-shard"
	// RaftLogShared: the node keeps the raft logs of all its shards in one
	// write-ahead log in wal/ (a wal.Shared, one stream per shard, the
	// stream ID being the shard number), so that the appends of all
	// shards share fdatasyncs. New data directories (format version 2).
	RaftLogShared = "shared"
)

const (
	metaVersionPerShardLog = 1
	metaVersionSharedLog   = 2
)

const metaFile = "followgraph.json"

// newMeta is the metadata of a new data directory.
func newMeta(clusterID string, shards int, nodeID string) Meta {
	return Meta{Version: metaVersionSharedLog, ClusterID: clusterID, Shards: shards, NodeID: nodeID, RaftLog: RaftLogShared}
}

// parseMeta reads and checks a metadata file's contents. Builds before the
// shared log know only version 1, and refuse version 2 directories rather
// than start their shards with empty logs.
func parseMeta(path string, b []byte) (Meta, error) {
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("cluster: %s: %w", path, err)
	}
	switch {
	case m.Version == metaVersionPerShardLog && (m.RaftLog == "" || m.RaftLog == RaftLogPerShard):
		m.RaftLog = RaftLogPerShard
	case m.Version == metaVersionSharedLog && m.RaftLog == RaftLogShared:
	default:
		return m, fmt.Errorf("cluster: %s: unsupported format version %d (raft log %q); this build reads versions %d and %d",
			path, m.Version, m.RaftLog, metaVersionPerShardLog, metaVersionSharedLog)
	}
	if m.Shards < 1 || m.ClusterID == "" {
		return m, fmt.Errorf("cluster: %s: unsupported or incomplete metadata", path)
	}
	return m, nil
}

// ErrShardCount reports a data directory made for another shard count.
var ErrShardCount = errors.New("cluster: data directory has another shard count")

// Open opens (or creates) the node's data directory and starts its shards.
// It returns once every shard has a leader and has applied its log (on a
// single node: once each shard elected itself and caught up), or when ctx
// ends.
func Open(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	n := &Node{cfg: cfg, log: cfg.Logger, stop: make(chan struct{})}
	if cfg.clusterMode() {
		return openCluster(ctx, n)
	}
	if err := n.loadMeta(); err != nil {
		return nil, err
	}
	n.setCursorKey()
	if n.cfg.Sender == nil {
		n.cfg.Sender = localSender{n}
	}
	if n.cfg.Transports == nil {
		n.cfg.Transports = &inmemTransports{node: raft.ServerID(cfg.NodeID)}
	}
	n.nshards = n.meta.Shards
	n.shards = make([]*Shard, n.nshards)
	if err := n.openAll(func(i int) []raft.Server { return n.cfg.Transports.Servers(i) }, nil); err != nil {
		n.Close()
		return nil, err
	}
	for _, s := range n.shards {
		s.start()
	}
	if err := n.WaitReady(ctx); err != nil {
		n.Close()
		return nil, err
	}
	n.log.Info("node ready", "node", cfg.NodeID, "shards", len(n.shards), "cluster", n.meta.ClusterID, "data", cfg.DataDir)
	return n, nil
}

// openAll opens shards in parallel (restoring a snapshot and replaying
// the log is most of a restart, and shards are independent): every shard,
// or those for which want returns true. The shared raft log, if the data
// directory has one, is opened first.
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
	if _, err := n.sharedLog(); err != nil {
		return err
	}
	sem := make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))
	errs := make([]error, n.nshards)
	var wg sync.WaitGroup
	for _, i := range ids {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			s, err := openShard(n, i, boot(i))
			if err != nil {
				errs[i] = fmt.Errorf("shard %d: %w", i, err)
				return
			}
			n.mu.Lock()
			n.shards[i] = s
			n.mu.Unlock()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// sharedLog returns the node's shared raft log, opening it on the first
// call, or nil in the per-shard layout. Opening it deletes the streams of
// shards that have no directory (see dropStaleStreams).
func (n *Node) sharedLog() (*wal.Shared, error) {
	if !n.sharedLayout {
		return nil, nil
	}
	n.walMu.Lock()
	defer n.walMu.Unlock()
	if n.walClosed {
		return nil, errors.New("cluster: node is closing")
	}
	if n.wal != nil {
		return n.wal, nil
	}
	sh, err := wal.OpenShared(filepath.Join(n.cfg.DataDir, sharedLogDir), n.walConfig(n.log.Named("wal")))
	if err != nil {
		return nil, fmt.Errorf("raft log: %w", err)
	}
	if err := n.dropStaleStreams(sh); err != nil {
		sh.Close()
		return nil, fmt.Errorf("raft log: %w", err)
	}
	n.wal = sh
	return sh, nil
}

// sharedLogDir is the shared raft log's directory in the data directory.
const sharedLogDir = "wal"

// walConfig is the raft logs' configuration, shared or per shard.
func (n *Node) walConfig(log hclog.Logger) wal.Config {
	return wal.Config{SegmentSize: n.cfg.WALSegmentSize, SyncDepth: n.cfg.WALSyncDepth, NoSync: n.cfg.NoSync, Logger: log}
}

// dropStaleStreams empties the streams of the shared log that belong to no
// replica on disk: a replica is deleted by emptying its stream and then
// removing its directory (see dropReplica), and a crash in between, or a
// directory removed by hand, would leave entries that pin log segments
// and that a later replica of the shard must not find (openShard checks
// that too).
func (n *Node) dropStaleStreams(sh *wal.Shared) error {
	for _, id := range sh.Streams() {
		if int64(id) < int64(n.nshards) {
			if _, err := os.Stat(filepath.Join(n.cfg.DataDir, shardDir(int(id)))); err == nil {
				continue
			}
		}
		n.log.Warn("raft log holds entries of a shard with no replica here; deleting them", "shard", id)
		if err := emptyStream(sh, id); err != nil {
			return err
		}
	}
	return nil
}

// emptyStream deletes every entry of stream id.
func emptyStream(sh *wal.Shared, id uint32) error {
	st, err := sh.Stream(id)
	if err != nil {
		return err
	}
	if err := st.DeleteRange(0, math.MaxUint64); err != nil {
		return fmt.Errorf("delete the log of shard %d: %w", id, err)
	}
	return nil
}

// setCursorKey derives the cursor key from the cluster ID: cursors must
// survive restarts and leader changes, so every replica of every shard
// needs the same key.
func (n *Node) setCursorKey() {
	if len(n.cfg.Store.CursorKey) == 0 && n.meta.ClusterID != "" {
		k := sha256.Sum256([]byte("followgraph cursor key\x00" + n.meta.ClusterID))
		n.cfg.Store.CursorKey = k[:]
	}
}

func (n *Node) loadMeta() error {
	m, found, err := readMeta(n.cfg.DataDir, n.cfg.Shards)
	if err != nil {
		return err
	}
	if !found {
		var id [16]byte
		rand.Read(id[:])
		m = newMeta(hex.EncodeToString(id[:]), cmp.Or(n.cfg.Shards, DefaultShards), n.cfg.NodeID)
		m.Created = time.Now().UTC()
		if err := writeMeta(n.cfg.DataDir, m); err != nil {
			return err
		}
	}
	n.meta = m
	n.sharedLayout = m.RaftLog == RaftLogShared
	return nil
}

// readMeta reads the metadata of the data directory dir, creating dir if
// missing. found is false for a new, empty directory; a directory with
// files but no metadata is refused, and so is one made for another shard
// count than shards (0: any).
func readMeta(dir string, shards int) (m Meta, found bool, err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return m, false, err
	}
	path := filepath.Join(dir, metaFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if m, err = parseMeta(path, b); err != nil {
			return m, false, err
		}
		if shards != 0 && shards != m.Shards {
			return m, false, fmt.Errorf("%w: %s was created for %d shards (cluster %s), not %d; the shard count is fixed when a cluster is created",
				ErrShardCount, dir, m.Shards, m.ClusterID, shards)
		}
		return m, true, nil
	case errors.Is(err, os.ErrNotExist):
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			return m, false, fmt.Errorf("cluster: %s is not empty but has no %s; refusing to use it", dir, metaFile)
		}
		return m, false, nil
	default:
		return m, false, err
	}
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// RaftLogStats describes the node's shared raft log, if the data directory
// has one (ok false in the per-shard layout: see Shard.LogStats then).
func (n *Node) RaftLogStats() (st wal.SharedStats, ok bool) {
	n.walMu.Lock()
	sh := n.wal
	n.walMu.Unlock()
	if !n.sharedLayout {
		return st, false
	}
	if sh != nil {
		st = sh.Stats()
	}
	return st, true
}

// Meta returns the data directory's metadata.
func (n *Node) Meta() Meta { return n.meta }

// Shards returns the number of shards of the cluster.
func (n *Node) Shards() int { return n.nshards }

// Shard returns shard i, or nil if this node hosts no replica of it.
func (n *Node) Shard(i int) *Shard {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if i < 0 || i >= len(n.shards) {
		return nil
	}
	return n.shards[i]
}

// ShardOf returns the shard of a user.
func (n *Node) ShardOf(user string) int { return fsm.ShardOf(user, n.nshards) }

// local returns the shard of user if this node hosts it, or an error
// naming where it is.
func (n *Node) local(user string) (*Shard, error) {
	i := n.ShardOf(user)
	if s := n.Shard(i); s != nil {
		return s, nil
	}
	return nil, n.elsewhere(i)
}

// Config returns the node's configuration (with defaults filled in).
func (n *Node) Config() Config { return n.cfg }

// WaitReady waits until every local shard is ready to serve.
func (n *Node) WaitReady(ctx context.Context) error {
	for _, s := range n.localShards() {
		select {
		case <-s.readyCh():
		case <-ctx.Done():
			return fmt.Errorf("cluster: waiting for shard %d: %w", s.id, ctx.Err())
		}
	}
	return nil
}

// Ready reports whether every local shard is ready to serve.
func (n *Node) Ready() bool {
	for _, s := range n.localShards() {
		if !s.Ready() {
			return false
		}
	}
	return true
}

// localShards returns the shards this node hosts.
func (n *Node) localShards() []*Shard {
	n.mu.RLock()
	defer n.mu.RUnlock()
	var out []*Shard
	for _, s := range n.shards {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// Close stops the node: it refuses new writes, lets queued writes finish,
// stops relays, and shuts down raft and the stores. Safe to call more than
// once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.stop)
		var errs []error
		// Leave gossip first, so peers stop routing here, then stop the
		// shards, then the raft port.
		if n.members != nil {
			errs = append(errs, n.members.Close())
		}
		n.wg.Wait()
		for _, s := range n.localShards() {
			errs = append(errs, s.close())
		}
		// Every shard, and with it every user of the shared log, has
		// stopped.
		n.walMu.Lock()
		n.walClosed = true
		if n.wal != nil {
			errs = append(errs, n.wal.Close())
		}
		n.walMu.Unlock()
		if n.mux != nil {
			errs = append(errs, n.mux.Close())
		}
		if n.peers != nil {
			n.peers.Close()
		}
		n.closeErr = errors.Join(errs...)
		n.log.Info("node stopped", "node", n.cfg.NodeID)
	})
	return n.closeErr
}

// Follow makes actor follow targets, on actor's shard (which must be
// local: see Service for routing).
func (n *Node) Follow(ctx context.Context, actor string, targets []string, opt WriteOptions) ([]shard.Result, error) {
	s, err := n.local(actor)
	if err != nil {
		return nil, err
	}
	return s.Write(ctx, fsm.OpFollow, actor, targets, opt)
}

// Unfollow makes actor stop following targets, on actor's shard.
func (n *Node) Unfollow(ctx context.Context, actor string, targets []string, opt WriteOptions) ([]shard.Result, error) {
	s, err := n.local(actor)
	if err != nil {
		return nil, err
	}
	return s.Write(ctx, fsm.OpUnfollow, actor, targets, opt)
}

// Read runs fn on the Store of user's shard (see Shard.Read).
func (n *Node) Read(user string, fn func(*shard.Store) error) error {
	s, err := n.local(user)
	if err != nil {
		return err
	}
	return s.Read(fn)
}

// Info returns the counts of users, which may live on different shards.
func (n *Node) Info(users []string) ([]shard.Info, error) {
	if len(users) < 1 || len(users) > n.cfg.Store.MaxInfo {
		return nil, codes.New(codes.InvalidParam, "%d users: want 1 to %d", len(users), n.cfg.Store.MaxInfo)
	}
	out := make([]shard.Info, len(users))
	for i, u := range users {
		if !shard.ValidUserID(u) {
			out[i] = shard.Info{UserID: u, Code: codes.InvalidParam}
			continue
		}
		err := n.Read(u, func(s *shard.Store) error {
			r, err := s.Info([]string{u})
			if err == nil {
				out[i] = r[0]
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// localSender delivers records to this node's own shards.
type localSender struct{ n *Node }

func (l localSender) Deliver(ctx context.Context, dst, src int, recs []fsm.Record) (uint64, error) {
	s := l.n.Shard(dst)
	if s == nil {
		return 0, l.n.elsewhere(dst)
	}
	return s.Deliver(ctx, src, recs)
}

// inmemTransports gives each shard of a single node an in-memory
// transport: with one voter, raft never sends anything.
type inmemTransports struct{ node raft.ServerID }

func (t *inmemTransports) Transport(shard int) (raft.Transport, error) {
	_, tr := raft.NewInmemTransport(raft.ServerAddress(fmt.Sprintf("%s/shard-%d", t.node, shard)))
	return tr, nil
}

func (t *inmemTransports) Servers(shard int) []raft.Server {
	return []raft.Server{{Suffrage: raft.Voter, ID: t.node, Address: raft.ServerAddress(fmt.Sprintf("%s/shard-%d", t.node, shard))}}
}
