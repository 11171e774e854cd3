package cluster

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/followgraph/followgraph/internal/wal"
)

// The raft log. Every replica on a node keeps its raft log in one
// write-ahead log (internal/wal), as its stream (stream ID = shard
// number): appends of different shards that arrive together share one
// write and one fdatasync, where separate logs would each pay their own.
// The node opens the log before its first replica and closes it after its
// last.
//
// A replica is deleted by emptying its stream and then removing its
// directory (dropReplica). A stream whose shard has no directory, left by
// a crash in between or by a directory removed by hand, is emptied when
// the log opens (dropStaleStreams), and a new replica always starts with
// an empty stream (newReplica): raft must never run on entries with no
// snapshot or term under them.

// openRaftLog returns the node's raft log, opening it on the first call.
func (n *Node) openRaftLog() (*wal.Log, error) {
	n.walMu.Lock()
	defer n.walMu.Unlock()
	if n.walClosed {
		return nil, errors.New("cluster: node is closing")
	}
	if n.raftLog != nil {
		return n.raftLog, nil
	}
	cfg := n.cfg.RaftLog
	cfg.Logger = n.log.Named("wal")
	l, err := wal.Open(filepath.Join(n.cfg.DataDir, raftLogDir), cfg)
	if err != nil {
		return nil, fmt.Errorf("raft log: %w", err)
	}
	if err := n.dropStaleStreams(l); err != nil {
		l.Close()
		return nil, fmt.Errorf("raft log: %w", err)
	}
	n.raftLog = l
	return l, nil
}

// closeRaftLog closes the raft log once every replica has stopped; it
// cannot be opened again.
func (n *Node) closeRaftLog() error {
	n.walMu.Lock()
	defer n.walMu.Unlock()
	n.walClosed = true
	if n.raftLog == nil {
		return nil
	}
	return n.raftLog.Close()
}

// dropStaleStreams empties the streams of the log that belong to no
// replica on disk.
func (n *Node) dropStaleStreams(l *wal.Log) error {
	for _, id := range l.Streams() {
		if int64(id) < int64(n.nshards) {
			if _, err := os.Stat(filepath.Join(n.cfg.DataDir, shardDir(int(id)))); err == nil {
				continue
			}
		}
		n.log.Warn("raft log holds entries of a shard with no replica here; deleting them", "shard", id)
		if err := emptyStream(l, id); err != nil {
			return err
		}
	}
	return nil
}

// emptyStream deletes every entry of stream id.
func emptyStream(l *wal.Log, id uint32) error {
	st, err := l.Stream(id)
	if err != nil {
		return err
	}
	if err := st.DeleteRange(0, math.MaxUint64); err != nil {
		return fmt.Errorf("delete the log of shard %d: %w", id, err)
	}
	return nil
}

// RaftLogStats describes the node's raft log (zero before it opens).
func (n *Node) RaftLogStats() wal.LogStats {
	n.walMu.Lock()
	defer n.walMu.Unlock()
	if n.raftLog == nil {
		return wal.LogStats{}
	}
	return n.raftLog.Stats()
}
