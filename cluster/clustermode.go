package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/internal/raftmux"
	"github.com/hashicorp/raft"
)

// Cluster mode.
//
// A node with a raft address runs as a member of a cluster: its replicas'
// raft groups talk to the other nodes over one multiplexed port
// (internal/raftmux), gossip (membership.go) tells who is alive and who
// leads what, and each shard has Replicas voters spread over the nodes by
// rendezvous hashing (placement.go). A node opens a shard's replica when
// the shard is bootstrapped with it (bootstrap.go), when the shard's
// leader first contacts it (it was added to the shard: adopt), or at start
// when it finds the replica's directory on disk.

// openCluster is Open in cluster mode. It returns once the node's existing
// replicas are open and gossip has started; joining, bootstrapping and
// elections continue in the background (see Ready).
func openCluster(n *Node) (*Node, error) {
	if err := n.loadMeta(); err != nil {
		return nil, err
	}
	n.setCursorKey()
	if err := n.openRaftPort(); err != nil {
		return nil, err
	}
	n.openPeerStream()
	n.replicas = make([]*Replica, n.nshards)
	// Replicas with data on disk rejoin their groups.
	onDisk := func(i int) bool {
		_, err := os.Stat(filepath.Join(n.cfg.DataDir, shardDir(i)))
		return err == nil
	}
	if err := n.openAll(func(int) []raft.Server { return nil }, onDisk); err != nil {
		n.Close()
		return nil, err
	}
	if err := n.startGossip(); err != nil {
		n.Close()
		return nil, err
	}
	if n.cfg.Raft.QuietAfter > 0 {
		n.beats = newBeats(n)
		n.beats.start()
	}
	for _, r := range n.localReplicas() {
		r.start()
	}
	if n.ClusterID() == "" {
		n.wg.Go(n.bootstrapper)
	}
	n.wg.Go(n.reconciler)
	n.wg.Go(n.snapshotter)
	n.started.Store(true)
	mc := &n.cfg.Membership
	n.log.Info("cluster node started", "node", n.cfg.NodeID, "raft", n.mux.Addr(), "gossip", mc.GossipAddr,
		"join", strings.Join(mc.Join, ","), "shards", n.nshards, "hosting", len(n.localReplicas()), "cluster", n.ClusterID())
	return n, nil
}

// openRaftPort listens on the raft address, multiplexing every shard's
// raft traffic over it.
func (n *Node) openRaftPort() error {
	mc := &n.cfg.Membership
	ln, err := net.Listen("tcp", mc.RaftAddr)
	if err != nil {
		return fmt.Errorf("cluster: raft listener %s: %w", mc.RaftAddr, err)
	}
	cfg := raftmux.Config{
		Listener:       ln,
		Advertise:      mc.RaftAdvertise,
		Dial:           mc.RaftDial,
		Logger:         n.log.Named("raftmux"),
		OnUnknownShard: func(s uint32) { n.adopt(int(s)) },
	}
	n.peerAuth(&cfg)
	n.mux, err = raftmux.New(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	return nil
}

// startGossip joins gossip with this node's metadata: its addresses and
// the replicas it hosts.
func (n *Node) startGossip() error {
	mc := &n.cfg.Membership
	var nonce [8]byte
	rand.Read(nonce[:])
	local := NodeMeta{ID: n.cfg.NodeID, ClusterID: n.ClusterID(), Nonce: hex.EncodeToString(nonce[:]), ClientAddr: mc.ClientAddr, RaftAddr: n.mux.Addr(),
		Shards: n.nshards, Leads: NewBitmap(n.nshards), Hosts: NewBitmap(n.nshards)}
	for _, r := range n.localReplicas() {
		local.Hosts.Set(r.id, true)
	}
	if drainMarked(n.cfg.DataDir) {
		local.State = NodeDraining
		n.log.Info("draining, as before the restart (followctl drain --off ends it)")
	}
	var err error
	n.gossipKeys, err = openGossipKeyring(n.cfg.DataDir, mc.GossipKey, n.log.Named("gossip"))
	if err != nil {
		return err
	}
	gc := GossipConfig{
		BindAddr: mc.GossipAddr, AdvertiseAddr: mc.GossipAdvertise, Join: mc.Join,
		Local: local, Fast: mc.FastGossip, ReapAfter: mc.ReapAfter, Logger: n.log.Named("gossip"),
	}
	if n.gossipKeys != nil {
		gc.Keyring = n.gossipKeys.ring
	}
	n.members, err = NewMembership(gc)
	return err
}

// openReplica opens and starts shard i's replica here (bootstrapping it
// with boot if not empty), unless it is open already.
func (n *Node) openReplica(i int, boot []raft.Server) error {
	n.mu.Lock()
	if n.replicas[i] != nil {
		n.mu.Unlock()
		return nil
	}
	if n.dropping[i] {
		// The leader retries; by then the old replica is gone.
		n.mu.Unlock()
		return fmt.Errorf("cluster: the previous replica of shard %d is still being deleted", i)
	}
	select {
	case <-n.stop:
		n.mu.Unlock()
		return errors.New("cluster: node is closing")
	default:
	}
	r, err := newReplica(n, i, boot)
	if err != nil {
		n.mu.Unlock()
		return err
	}
	n.replicas[i] = r
	// Started before the node's lock is released: a Close that finds the
	// replica must not wait for its goroutines before they were added.
	r.start()
	n.mu.Unlock()
	return n.members.Update(func(m *NodeMeta) { m.Hosts.Set(i, true) })
}

// adopt opens shard i's replica when its leader contacts this node: the
// node was added to the shard's replicas.
//
// It opens only when the shard's known leader lists this node as a
// non-voter. Not listed: a leader that has not yet learned that this node
// was removed (or a stale connection) must not resurrect a dropped
// replica. Listed as a voter: the shard counts on a replica this node does
// not have - its data was lost - and an empty replica would vote with an
// empty log, for any candidate, even one missing committed entries; the
// leader removes it and adds it back as a non-voter (reconcile). No known
// leader: a candidate's vote request must not open a replica that would
// then vote.
func (n *Node) adopt(i int) {
	// Until the node has opened what is on its disk and started gossip,
	// peers' streams wait (raftmux holds them, raft retries).
	if !n.started.Load() || i < 0 || i >= n.nshards || n.Replica(i) != nil {
		return
	}
	if n.ClusterID() == "" {
		n.log.Warn("contacted for a shard before joining a cluster; ignoring", "shard", i)
		return
	}
	m, ok := n.Leader(i)
	if !ok || m.Meta.ID == n.cfg.NodeID {
		return
	}
	listed, voter := n.listedBy(m, i)
	if !listed {
		return
	}
	if voter {
		n.warnLost(i)
		return
	}
	if err := n.openReplica(i, nil); err != nil {
		n.log.Error("cannot open replica", "shard", i, "error", err)
		return
	}
	n.log.Info("opened a new replica", "shard", i)
}

// warnLost logs, at most once a minute per shard, that this node was
// contacted as a voter of a shard it holds nothing of.
func (n *Node) warnLost(i int) {
	n.mu.Lock()
	if n.lostWarned == nil {
		n.lostWarned = map[int]time.Time{}
	}
	last := n.lostWarned[i]
	if time.Since(last) < time.Minute {
		n.mu.Unlock()
		return
	}
	n.lostWarned[i] = time.Now()
	n.mu.Unlock()
	n.log.Warn("a shard lists this node as a voter but its data is not here (lost data directory?); waiting for the leader to re-add it as a non-voter", "shard", i)
}

// listedBy asks leader m whether shard i's configuration includes this
// node, and as a voter.
func (n *Node) listedBy(m Member, i int) (listed, voter bool) {
	st, err := n.peerStatus(m)
	if err != nil {
		return false, false
	}
	for _, r := range st.Replicas {
		if r.Shard == i && r.Leader {
			voter = slices.Contains(r.Voters, n.cfg.NodeID)
			return voter || slices.Contains(r.Nonvoters, n.cfg.NodeID), voter
		}
	}
	return false, false
}

// leadershipChanged gossips this node's leaderships.
func (n *Node) leadershipChanged(shard int, lead bool) {
	if n.members == nil {
		return
	}
	if err := n.members.Update(func(m *NodeMeta) { m.Leads.Set(shard, lead) }); err != nil {
		n.log.Warn("cannot gossip leadership", "shard", shard, "error", err)
	}
}

// Leader returns the member that leads shard i (false on a single node, or
// when no leader is known). A node that hosts a replica asks its raft
// first (it learns of a new leader within a heartbeat); gossip, slower to
// notice a dead leader, is the fallback.
func (n *Node) Leader(i int) (Member, bool) {
	if n.members == nil {
		return Member{}, false
	}
	members := n.members.Alive()
	if r := n.Replica(i); r != nil {
		if _, id := r.raft.LeaderWithID(); id != "" {
			for _, m := range members {
				if m.Meta.ID == string(id) && m.Meta.ClientAddr != "" {
					return m, true
				}
			}
		}
	}
	for _, m := range members {
		if m.Meta.Leads.Has(i) && m.Meta.ClientAddr != "" {
			return m, true
		}
	}
	return Member{}, false
}

// member returns the alive member with ID id.
func (n *Node) member(id string) (Member, bool) {
	if n.members == nil {
		return Member{}, false
	}
	for _, m := range n.members.Alive() {
		if m.Meta.ID == id {
			return m, true
		}
	}
	return Member{}, false
}

// NotLeaderError is the error for a request about shard i that this node
// does not serve: NotLeader naming the leader when one is known (clients
// go there), else ShardUnavailable.
func (n *Node) NotLeaderError(i int) error {
	if m, ok := n.Leader(i); ok {
		return codes.New(codes.NotLeader, "shard %d is led by %s at %s", i, m.Meta.ID, m.Meta.ClientAddr)
	}
	return codes.New(codes.ShardUnavailable, "shard %d has no known leader", i)
}

// leaderAddr returns the client address of shard i's leader, if another
// node.
func (n *Node) leaderAddr(i int) (string, bool) {
	m, ok := n.Leader(i)
	if !ok || m.Meta.ID == n.cfg.NodeID {
		return "", false
	}
	return m.Meta.ClientAddr, true
}

// Members returns gossip's view of the cluster (nil on a single node).
func (n *Node) Members() []Member {
	if n.members == nil {
		return nil
	}
	return n.members.Members()
}

// HandOffLeaderships transfers the leadership of every shard this node
// leads to another replica, so that a planned shutdown costs no election
// timeout. It gives up on a shard after ctx ends.
func (n *Node) HandOffLeaderships(ctx context.Context) int {
	moved := 0
	for _, r := range n.localReplicas() {
		if r.raft.State() != raft.Leader {
			continue
		}
		done := make(chan error, 1)
		go func() { done <- r.transfer(r.raft.LeadershipTransfer) }()
		select {
		case err := <-done:
			if err == nil {
				moved++
			} else {
				n.log.Warn("leadership transfer failed", "shard", r.id, "error", err)
			}
		case <-ctx.Done():
			return moved
		}
	}
	return moved
}

// SetDraining marks this node as draining (or active again): leaders move
// its replicas to other nodes and it hands its leaderships over.
func (n *Node) SetDraining(on bool) error {
	if n.members == nil {
		return codes.New(codes.InvalidParam, "a single node cannot be drained")
	}
	state := NodeActive
	if on {
		state = NodeDraining
	}
	// Persisted first: a drained node stays drained across its restarts
	// and the cluster's, until it is made active again.
	if err := setDrainFile(n.cfg.DataDir, on); err != nil {
		return codes.New(codes.Internal, "recording the drain in the data directory: %v", err)
	}
	n.log.Info("draining", "on", on)
	return n.members.Update(func(m *NodeMeta) { m.State = state })
}

// Draining reports whether this node is draining (false on a single node).
func (n *Node) Draining() bool {
	return n.members != nil && n.members.Local().State == NodeDraining
}
