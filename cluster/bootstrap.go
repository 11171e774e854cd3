package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// Bootstrap: how a cluster comes to be.
//
// Every node computes the same plan from the same member list: the
// BootstrapExpect members with the lowest IDs form the initial node set;
// each shard's replicas are its top Replicas nodes by rendezvous hash over
// that set, and only the first of them bootstraps the shard (raft's
// BootstrapCluster with all of them), so each shard is bootstrapped exactly
// once. The member list must have been stable for a moment, so that nodes
// still joining do not make the plans differ. A node that finds a cluster
// already there (its gossip carries a cluster ID) joins it instead.

// bootstrapStable is how long the set of live nodes must stay the same
// before a new cluster is bootstrapped from it.
const bootstrapStable = 2 * time.Second

// freshIndex is the highest applied index a shard of a cluster that is
// still bootstrapping can have: the bootstrap configuration and the no-op
// entries of its first leaders.
const freshIndex = 16

// joinCluster records the cluster ID in the data directory (once) and in
// gossip. It must happen before the first replica of the cluster opens
// (the cursor key derives from the ID).
func (n *Node) joinCluster(id string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.meta.ClusterID != "" {
		if n.meta.ClusterID != id {
			return fmt.Errorf("cluster: this node belongs to cluster %s, not %s", n.meta.ClusterID, id)
		}
		return nil
	}
	n.meta.ClusterID = id
	n.meta.Created = time.Now().UTC()
	if err := writeMeta(n.cfg.DataDir, n.meta); err != nil {
		n.meta.ClusterID = ""
		return err
	}
	n.setCursorKey()
	n.log.Info("joined cluster", "cluster", id)
	return n.members.Update(func(m *NodeMeta) { m.ClusterID = id })
}

// bootstrapper creates the cluster's shards once BootstrapExpect nodes see
// each other, or joins the cluster that already exists.
func (n *Node) bootstrapper() {
	var last []string
	var since time.Time
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-tick.C:
		}
		if n.ClusterID() != "" {
			return
		}
		alive := n.members.Alive()
		if done, found := n.joinExisting(alive); found {
			if done {
				return
			}
			continue
		}
		if n.cfg.Membership.BootstrapExpect == 0 {
			continue // waiting to be found by an existing cluster
		}
		var ids []string
		for _, m := range alive {
			ids = append(ids, m.Meta.ID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, last) {
			last, since = ids, time.Now()
			continue
		}
		if len(ids) < n.cfg.Membership.BootstrapExpect || time.Since(since) < bootstrapStable {
			continue
		}
		if err := n.bootstrap(alive); err != nil {
			n.log.Error("bootstrap failed; retrying", "error", err)
			continue
		}
		return
	}
}

// joinExisting acts on a cluster that already exists among the alive
// members (found), if one does. If it is the one this node's own plan
// makes (another bootstrap node was quicker), this node does its part of
// the bootstrap; otherwise it joins as a new node and the shards' leaders
// give it replicas. done is false when it must try again.
func (n *Node) joinExisting(alive []Member) (done, found bool) {
	for _, m := range alive {
		if m.Meta.ClusterID == "" {
			continue
		}
		if m.Meta.Shards != n.nshards {
			n.log.Error("cannot join: the cluster has another shard count", "cluster", m.Meta.ClusterID, "theirs", m.Meta.Shards, "ours", n.nshards)
			return true, true
		}
		if expect := n.cfg.Membership.BootstrapExpect; expect > 0 && len(alive) >= expect {
			if id, ids := n.plan(alive); id == m.Meta.ClusterID && slices.Contains(ids, n.cfg.NodeID) {
				return n.bootstrapOrRejoin(alive, m), true
			}
		}
		if err := n.joinCluster(m.Meta.ClusterID); err != nil {
			n.log.Error("cannot join cluster", "error", err)
		}
		return true, true
	}
	return false, false
}

// bootstrapOrRejoin does this node's part of the bootstrap of the cluster
// member m belongs to, which this node's plan made. That is right only
// while the cluster is new. A cluster with history that this node's plan
// matches means this node was one of its founders and lost its data (same
// ID, empty directory): its replicas would come back as empty voters, able
// to elect a leader that lacks committed entries. It joins as a new node
// instead, and the leaders re-add it as a non-voter (reconcile). It
// returns false to be called again.
func (n *Node) bootstrapOrRejoin(alive []Member, m Member) bool {
	fresh, err := n.clusterIsFresh(m)
	if err != nil {
		n.log.Warn("cannot tell whether the cluster is new; retrying", "error", err)
		return false
	}
	if !fresh {
		n.log.Warn("this node's data is gone but the cluster it founded has history; joining as an empty node", "cluster", m.Meta.ClusterID)
		if err := n.joinCluster(m.Meta.ClusterID); err != nil {
			n.log.Error("cannot join cluster", "error", err)
		}
		return true
	}
	if err := n.bootstrap(alive); err != nil {
		n.log.Error("bootstrap failed; retrying", "error", err)
		return false
	}
	return true
}

// clusterIsFresh asks member m whether every shard it holds is still at
// its bootstrap entries.
func (n *Node) clusterIsFresh(m Member) (bool, error) {
	st, err := n.peerStatus(m)
	if err != nil {
		return false, err
	}
	for _, r := range st.Replicas {
		if r.AppliedIndex > freshIndex || r.Recovered != "" {
			return false, nil
		}
	}
	return true, nil
}

// plan returns the cluster ID and node set a bootstrap from alive (sorted
// by ID) makes: the first BootstrapExpect nodes.
func (n *Node) plan(alive []Member) (string, []string) {
	var ids []string
	for _, m := range alive[:n.cfg.Membership.BootstrapExpect] {
		ids = append(ids, m.Meta.ID)
	}
	// The first node's random nonce makes the ID unique to this cluster
	// (two clusters with the same node names still differ), while every
	// node computes the same ID from gossip.
	h := sha256.Sum256([]byte("followgraph cluster\x00" + alive[0].Meta.Nonce + "\x00" + strconv.Itoa(n.nshards) + "\x00" + strings.Join(ids, "\x00")))
	return hex.EncodeToString(h[:16]), ids
}

// bootstrap joins the cluster of the plan from alive and opens this node's
// replicas of it, bootstrapping the shards it comes first for.
func (n *Node) bootstrap(alive []Member) error {
	id, ids := n.plan(alive)
	raftAddr := map[string]string{}
	for _, m := range alive[:n.cfg.Membership.BootstrapExpect] {
		if m.Meta.Shards != n.nshards {
			return fmt.Errorf("node %s has %d shards, this node %d: start every node with the same --shards", m.Meta.ID, m.Meta.Shards, n.nshards)
		}
		raftAddr[m.Meta.ID] = m.Meta.RaftAddr
	}
	if !slices.Contains(ids, n.cfg.NodeID) {
		n.log.Info("not among the bootstrap nodes; waiting to be given replicas", "nodes", strings.Join(ids, ","))
		return nil
	}
	if err := n.joinCluster(id); err != nil {
		return err
	}
	created := 0
	for i := range n.nshards {
		reps := Replicas(i, ids, n.cfg.Membership.Replicas)
		if !slices.Contains(reps, n.cfg.NodeID) {
			continue
		}
		var boot []raft.Server
		if reps[0] == n.cfg.NodeID {
			for _, id := range reps {
				boot = append(boot, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(raftAddr[id])})
			}
			created++
		}
		if err := n.openReplica(i, boot); err != nil {
			return fmt.Errorf("shard %d: %w", i, err)
		}
	}
	n.log.Info("bootstrapped the cluster", "nodes", strings.Join(ids, ","), "shards bootstrapped here", created, "replicas here", len(n.localReplicas()))
	return nil
}

// peerStatus asks member m for its replicas' status, within 2 s.
func (n *Node) peerStatus(m Member) (NodeStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return n.cfg.Peers.Status(ctx, m.Meta.ClientAddr)
}
