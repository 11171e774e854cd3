package cluster

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The data directory:
//
//	followgraph.json     Meta: format version, cluster ID, shard count, node
//	wal/                 the raft log of every replica here (internal/wal)
//	shard-NNN/stable.db  raft term and vote (raft-boltdb)
//	shard-NNN/snapshots/ raft snapshots
//	draining             present while the node is drained (SetDraining)
//
// A replica exists here exactly when its shard-NNN directory does.

// Meta is what a data directory records about its cluster. It is written
// once, when the directory is created (in cluster mode: when the node
// learns its cluster's ID).
type Meta struct {
	// Version is the data directory's format (metaVersion).
	Version   int       `json:"version"`
	ClusterID string    `json:"cluster_id"`
	Shards    int       `json:"shards"`
	NodeID    string    `json:"node_id"`
	Created   time.Time `json:"created"`
	// RaftLog names the raft log's layout: always raftLogShared, one
	// write-ahead log for every shard of the node.
	RaftLog string `json:"raft_log"`
}

// The data directory format this build reads and writes.
const (
	metaVersion   = 2
	raftLogShared = "shared"
	metaFile      = "followgraph.json"
	raftLogDir    = "wal"
)

// ErrShardCount reports a data directory made for another shard count.
var ErrShardCount = errors.New("cluster: data directory has another shard count")

func shardDir(i int) string { return fmt.Sprintf("shard-%03d", i) }

// newMeta is the metadata of a new data directory.
func newMeta(clusterID string, shards int, nodeID string) Meta {
	return Meta{Version: metaVersion, ClusterID: clusterID, Shards: shards, NodeID: nodeID, RaftLog: raftLogShared}
}

// parseMeta reads and checks a metadata file's contents. Any other format
// is refused with the one this build reads: opening a directory of
// another layout would start its shards on empty logs.
func parseMeta(path string, b []byte) (Meta, error) {
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("cluster: %s: %w", path, err)
	}
	if m.Version != metaVersion || m.RaftLog != raftLogShared {
		return m, fmt.Errorf("cluster: %s: unsupported format version %d (raft log %q); this build reads version %d (raft log %q)",
			path, m.Version, m.RaftLog, metaVersion, raftLogShared)
	}
	if m.Shards < 1 || m.ClusterID == "" {
		return m, fmt.Errorf("cluster: %s: unsupported or incomplete metadata", path)
	}
	return m, nil
}

// loadMeta reads the data directory's metadata. On a single node, a new
// directory gets a random cluster ID at once; in cluster mode it gets one
// when the node learns its cluster's (see joinCluster), and a directory of
// another node is refused.
func (n *Node) loadMeta() error {
	m, found, err := readMeta(n.cfg.DataDir, n.cfg.Shards)
	if err != nil {
		return err
	}
	switch {
	case found && n.cfg.clusterMode() && m.NodeID != n.cfg.NodeID:
		return fmt.Errorf("cluster: %s belongs to node %q, not %q: a node's ID cannot change", n.cfg.DataDir, m.NodeID, n.cfg.NodeID)
	case !found && n.cfg.clusterMode():
		m = newMeta("", cmp.Or(n.cfg.Shards, DefaultShards), n.cfg.NodeID)
	case !found:
		var id [16]byte
		rand.Read(id[:])
		m = newMeta(hex.EncodeToString(id[:]), cmp.Or(n.cfg.Shards, DefaultShards), n.cfg.NodeID)
		m.Created = time.Now().UTC()
		if err := writeMeta(n.cfg.DataDir, m); err != nil {
			return err
		}
	}
	n.meta = m
	n.nshards = m.Shards
	return nil
}

// setCursorKey derives the cursor key from the cluster ID: cursors must
// survive restarts and leader changes, so every replica of every shard
// needs the same key. Called before any replica opens.
func (n *Node) setCursorKey() {
	if len(n.cfg.Store.CursorKey) == 0 && n.meta.ClusterID != "" {
		k := sha256.Sum256([]byte("followgraph cursor key\x00" + n.meta.ClusterID))
		n.cfg.Store.CursorKey = k[:]
	}
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

// writeMeta writes m atomically and durably (temporary file, fsync,
// rename, fsync of the directory).
func writeMeta(dir string, m Meta) error {
	path := filepath.Join(dir, metaFile)
	b, _ := json.MarshalIndent(m, "", "  ")
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
	return syncFile(dir)
}

// drainFile marks a drained node's data directory.
const drainFile = "draining"

// setDrainFile creates (on) or removes the drain mark, durably.
func setDrainFile(dir string, on bool) error {
	path := filepath.Join(dir, drainFile)
	if on {
		if err := os.WriteFile(path, []byte("drained with followctl drain; followctl drain --off ends it\n"), 0o640); err != nil {
			return err
		}
		if err := syncFile(path); err != nil {
			return err
		}
	} else if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return syncFile(dir)
}

// drainMarked reports whether the data directory carries the drain mark.
func drainMarked(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, drainFile))
	return err == nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
