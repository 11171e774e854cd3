package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/fsm"
)

// Unsafe recovery: a shard whose voters are mostly gone for good (their
// disks lost) cannot elect a leader, and raft has no safe way out. Recover
// rewrites one surviving replica's configuration to name itself as the
// only voter, keeping everything in its log, so the shard serves again
// and placement rebuilds the other replicas from it. What only the lost
// replicas held is lost: entries they committed that the survivor had not
// received. Entries the survivor held but that were never committed
// become committed. docs/OPERATIONS.md says what this means for clients.

// Recovery records an unsafe recovery of a shard, kept in the replica's
// directory so that status shows it across restarts.
type Recovery struct {
	Shard int       `json:"shard"`
	Node  string    `json:"node"` // the node recovered from
	At    time.Time `json:"at"`
	// Index and Term are the last entry the survivor held: everything up
	// to it was kept (and is now committed).
	Index uint64 `json:"index"`
	Term  uint64 `json:"term"`
	// Lost are the voters the shard had, less this node: what they held
	// beyond Index is gone.
	Lost []string `json:"lost"`
}

// String is the one-line form status shows.
func (rc Recovery) String() string {
	return fmt.Sprintf("unsafe recovery from %s at %s (kept entries up to index %d, term %d; lost voters %s)",
		rc.Node, rc.At.UTC().Format(time.RFC3339), rc.Index, rc.Term, strings.Join(rc.Lost, ","))
}

// recoveryFile is the record's name in the replica's directory.
const recoveryFile = "recovered.json"

// Recover makes shard i serve again from this node's replica alone, after
// the shard lost its quorum. It refuses while the shard has a leader, or
// while a majority of its voters is alive in gossip (an election will
// succeed without losing anything), and on a single node.
func (n *Node) Recover(i int) (Recovery, error) {
	if n.members == nil {
		return Recovery{}, codes.New(codes.InvalidParam, "a single node has no quorum to lose: nothing to recover")
	}
	if i < 0 || i >= n.nshards {
		return Recovery{}, codes.New(codes.InvalidParam, "no shard %d (there are %d)", i, n.nshards)
	}
	r := n.Replica(i)
	if r == nil {
		return Recovery{}, codes.New(codes.InvalidParam, "node %s holds no replica of shard %d", n.cfg.NodeID, i)
	}
	conf, err := n.recoverable(r)
	if err != nil {
		return Recovery{}, err
	}
	if !n.claimForRecovery(r) {
		return Recovery{}, codes.New(codes.ShardUnavailable, "shard %d's replica is being closed or recovered already", i)
	}
	defer n.releaseClaim(i)
	n.log.Error("UNSAFE RECOVERY: making this replica the shard's only voter; what only the lost voters held is gone",
		"shard", i, "voters", voterIDs(conf))
	if err := r.close(); err != nil {
		n.log.Warn("closing the replica to recover it", "shard", i, "error", err)
	}
	r.fsm.Close()
	rec := Recovery{Shard: i, Node: n.cfg.NodeID, At: time.Now().UTC(), Lost: slices.DeleteFunc(voterIDs(conf), func(id string) bool { return id == n.cfg.NodeID })}
	nr, err := newRecoveredReplica(n, i, &rec)
	if err != nil {
		n.log.Error("unsafe recovery failed; the replica stays closed until the node restarts", "shard", i, "error", err)
		return Recovery{}, codes.New(codes.Internal, "recovering shard %d: %v", i, err)
	}
	n.mu.Lock()
	n.replicas[i] = nr
	n.mu.Unlock()
	nr.start()
	n.log.Error("UNSAFE RECOVERY done: the shard serves from this replica; placement adds new replicas", "shard", i, "index", rec.Index, "term", rec.Term)
	return rec, nil
}

// recoverable returns r's configuration if recovering r is called for: no
// leader, and fewer than a majority of the shard's voters alive.
func (n *Node) recoverable(r *Replica) (raft.Configuration, error) {
	if r.raft.State() == raft.Leader {
		return raft.Configuration{}, codes.New(codes.InvalidParam, "shard %d is led by this node: nothing to recover", r.id)
	}
	if addr, id := r.raft.LeaderWithID(); addr != "" {
		return raft.Configuration{}, codes.New(codes.InvalidParam, "shard %d has a leader (%s): nothing to recover", r.id, id)
	}
	f := r.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return raft.Configuration{}, codes.New(codes.ShardUnavailable, "reading shard %d's configuration: %v", r.id, err)
	}
	conf := f.Configuration()
	voters := voterIDs(conf)
	alive := map[string]bool{}
	for _, m := range n.Members() {
		alive[m.Meta.ID] = m.Alive
	}
	var up []string
	for _, v := range voters {
		if v == n.cfg.NodeID || alive[v] {
			up = append(up, v)
		}
	}
	if len(up) > len(voters)/2 {
		return raft.Configuration{}, codes.New(codes.InvalidParam,
			"shard %d has %d of %d voters alive (%s): a majority, so it elects a leader without losing data; wait, or stop those nodes first",
			r.id, len(up), len(voters), strings.Join(up, ","))
	}
	return conf, nil
}

// claimForRecovery takes shard i out of the node's replicas (as
// dropReplica does), so that nothing opens or uses it meanwhile. It fails
// if r is no longer the shard's replica.
func (n *Node) claimForRecovery(r *Replica) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.replicas[r.id] != r || n.dropping[r.id] {
		return false
	}
	n.replicas[r.id] = nil
	if n.dropping == nil {
		n.dropping = map[int]bool{}
	}
	n.dropping[r.id] = true
	return true
}

func (n *Node) releaseClaim(i int) {
	n.mu.Lock()
	delete(n.dropping, i)
	n.mu.Unlock()
}

func voterIDs(conf raft.Configuration) []string {
	var out []string
	for _, s := range conf.Servers {
		if s.Suffrage == raft.Voter {
			out = append(out, string(s.ID))
		}
	}
	slices.Sort(out)
	return out
}

// newRecoveredReplica opens shard i's replica with its configuration
// rewritten to this node alone (raft.RecoverCluster: the whole log is
// applied to a scratch state machine, snapshotted under the new
// configuration and compacted away), records the recovery in rec and on
// disk, and starts raft on the result.
func newRecoveredReplica(n *Node, i int, rec *Recovery) (*Replica, error) {
	return openReplicaWith(n, i, nil, func(r *Replica, snaps raft.SnapshotStore, rc *raft.Config) error {
		if last, err := r.logs.LastIndex(); err == nil {
			rec.Index = last
			var e raft.Log
			if last > 0 && r.logs.GetLog(last, &e) == nil {
				rec.Term = e.Term
			}
		}
		if rec.Index == 0 {
			if list, err := snaps.List(); err == nil && len(list) > 0 {
				rec.Index, rec.Term = list[0].Index, list[0].Term
			}
		}
		// The feed too: the recovered replica keeps its events and offsets.
		scratch, err := fsm.New(fsm.Config{Shard: i, Shards: n.nshards, Store: n.cfg.Store, Feed: n.cfg.Feed, Logger: r.log})
		if err != nil {
			return err
		}
		defer scratch.Close()
		self := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(n.cfg.NodeID), Address: raft.ServerAddress(n.members.Local().RaftAddr)}}}
		if err := raft.RecoverCluster(rc, scratch, r.logs, r.stable, snaps, r.trans, self); err != nil {
			return err
		}
		r.recovered = rec.String()
		return writeRecovery(filepath.Join(n.cfg.DataDir, shardDir(i)), *rec)
	})
}

// writeRecovery records rec in the replica's directory dir.
func writeRecovery(dir string, rec Recovery) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, recoveryFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, recoveryFile))
}

// readRecovery returns the recovery recorded in dir, "" if none.
func readRecovery(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, recoveryFile))
	if errors.Is(err, os.ErrNotExist) || err != nil {
		return ""
	}
	var rec Recovery
	if json.Unmarshal(b, &rec) != nil {
		return "unsafe recovery (unreadable record)"
	}
	return rec.String()
}

// RecoverAll recovers, in parallel, every shard of which this node holds a
// replica and which lost its quorum (see Recover); shards that have a
// leader or can elect one are left alone. It fails if there is none.
func (n *Node) RecoverAll() ([]Recovery, error) {
	if n.members == nil {
		return nil, codes.New(codes.InvalidParam, "a single node has no quorum to lose: nothing to recover")
	}
	var todo []int
	var why error
	for _, r := range n.localReplicas() {
		if _, err := n.recoverable(r); err == nil {
			todo = append(todo, r.id)
		} else if why == nil {
			why = err
		}
	}
	if len(todo) == 0 {
		return nil, codes.New(codes.InvalidParam, "no shard of node %s has lost its quorum, nothing to recover (first refusal: %v)", n.cfg.NodeID, why)
	}
	recs := make([]Recovery, len(todo))
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	for k, i := range todo {
		wg.Go(func() { recs[k], errs[k] = n.Recover(i) })
	}
	wg.Wait()
	var out []Recovery
	for k := range todo {
		if errs[k] == nil {
			out = append(out, recs[k])
		}
	}
	return out, errors.Join(errs...)
}
