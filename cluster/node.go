package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/fsm"
	"github.com/followgraph/followgraph/shard"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Node runs the shards of one followgraph node: one raft group per shard,
// each with its FSM, group-commit batcher and relay.
type Node struct {
	cfg    Config
	log    hclog.Logger
	meta   Meta
	shards []*Shard

	closeOnce sync.Once
	closeErr  error
}

// Meta is what a data directory records about its cluster. It is written
// once, when the directory is created.
type Meta struct {
	Version   int       `json:"version"`
	ClusterID string    `json:"cluster_id"`
	Shards    int       `json:"shards"`
	NodeID    string    `json:"node_id"`
	Created   time.Time `json:"created"`
}

const metaFile = "followgraph.json"

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
	n := &Node{cfg: cfg, log: cfg.Logger}
	if err := n.loadMeta(); err != nil {
		return nil, err
	}
	if len(n.cfg.Store.CursorKey) == 0 {
		// Cursors must survive restarts and leader changes, so the key is
		// derived from the cluster's identity.
		k := sha256.Sum256([]byte("followgraph cursor key\x00" + n.meta.ClusterID))
		n.cfg.Store.CursorKey = k[:]
	}
	if n.cfg.Sender == nil {
		n.cfg.Sender = localSender{n}
	}
	if n.cfg.Transports == nil {
		n.cfg.Transports = &inmemTransports{node: raft.ServerID(cfg.NodeID)}
	}
	n.shards = make([]*Shard, n.meta.Shards)
	for i := range n.shards {
		s, err := openShard(n, i)
		if err != nil {
			n.Close()
			return nil, fmt.Errorf("shard %d: %w", i, err)
		}
		n.shards[i] = s
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

func (n *Node) loadMeta() error {
	if err := os.MkdirAll(n.cfg.DataDir, 0o750); err != nil {
		return err
	}
	path := filepath.Join(n.cfg.DataDir, metaFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &n.meta); err != nil {
			return fmt.Errorf("cluster: %s: %w", path, err)
		}
		if n.meta.Version != 1 || n.meta.Shards < 1 || n.meta.ClusterID == "" {
			return fmt.Errorf("cluster: %s: unsupported or incomplete metadata", path)
		}
		if n.cfg.Shards != 0 && n.cfg.Shards != n.meta.Shards {
			return fmt.Errorf("%w: %s was created for %d shards (cluster %s), not %d; the shard count is fixed when a cluster is created",
				ErrShardCount, n.cfg.DataDir, n.meta.Shards, n.meta.ClusterID, n.cfg.Shards)
		}
		return nil
	case errors.Is(err, os.ErrNotExist):
		entries, _ := os.ReadDir(n.cfg.DataDir)
		if len(entries) > 0 {
			return fmt.Errorf("cluster: %s is not empty but has no %s; refusing to use it", n.cfg.DataDir, metaFile)
		}
		var id [16]byte
		rand.Read(id[:])
		n.meta = Meta{Version: 1, ClusterID: hex.EncodeToString(id[:]), Shards: n.cfg.Shards, NodeID: n.cfg.NodeID, Created: time.Now().UTC()}
		if n.meta.Shards == 0 {
			n.meta.Shards = DefaultShards
		}
		b, _ := json.MarshalIndent(n.meta, "", "  ")
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, append(b, '\n'), 0o640); err != nil {
			return err
		}
		if err := syncFile(tmp); err != nil {
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
		return syncFile(n.cfg.DataDir)
	default:
		return err
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

// Meta returns the data directory's metadata.
func (n *Node) Meta() Meta { return n.meta }

// Shards returns the number of shards.
func (n *Node) Shards() int { return len(n.shards) }

// Shard returns shard i.
func (n *Node) Shard(i int) *Shard { return n.shards[i] }

// ShardOf returns the shard of a user.
func (n *Node) ShardOf(user string) int { return fsm.ShardOf(user, len(n.shards)) }

// Config returns the node's configuration (with defaults filled in).
func (n *Node) Config() Config { return n.cfg }

// WaitReady waits until every shard is ready to serve.
func (n *Node) WaitReady(ctx context.Context) error {
	for _, s := range n.shards {
		select {
		case <-s.readyCh():
		case <-ctx.Done():
			return fmt.Errorf("cluster: waiting for shard %d: %w", s.id, ctx.Err())
		}
	}
	return nil
}

// Ready reports whether every shard is ready to serve.
func (n *Node) Ready() bool {
	for _, s := range n.shards {
		if !s.Ready() {
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
		var errs []error
		for _, s := range n.shards {
			if s != nil {
				errs = append(errs, s.close())
			}
		}
		n.closeErr = errors.Join(errs...)
		n.log.Info("node stopped", "node", n.cfg.NodeID)
	})
	return n.closeErr
}

// Follow makes actor follow targets, on actor's shard.
func (n *Node) Follow(ctx context.Context, actor string, targets []string, opt WriteOptions) ([]shard.Result, error) {
	return n.shards[n.ShardOf(actor)].Write(ctx, fsm.OpFollow, actor, targets, opt)
}

// Unfollow makes actor stop following targets, on actor's shard.
func (n *Node) Unfollow(ctx context.Context, actor string, targets []string, opt WriteOptions) ([]shard.Result, error) {
	return n.shards[n.ShardOf(actor)].Write(ctx, fsm.OpUnfollow, actor, targets, opt)
}

// Read runs fn on the Store of user's shard (see Shard.Read).
func (n *Node) Read(user string, fn func(*shard.Store) error) error {
	return n.shards[n.ShardOf(user)].Read(fn)
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
	if dst < 0 || dst >= len(l.n.shards) {
		return 0, codes.New(codes.InvalidParam, "no shard %d", dst)
	}
	return l.n.shards[dst].Deliver(ctx, src, recs)
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
