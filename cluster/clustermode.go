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
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/fsm"
	"github.com/followgraph/followgraph/internal/raftmux"
	"github.com/followgraph/followgraph/wire"
	"github.com/hashicorp/raft"
)

// Cluster mode.
//
// A node with a raft address runs as a member of a cluster: its shards'
// raft groups talk to the other nodes over one multiplexed port
// (internal/raftmux), gossip (membership.go) tells who is alive and who
// leads what, and each shard has Replicas voters spread over the nodes by
// rendezvous hashing (placement.go). A node opens a shard's replica when
// the shard is bootstrapped with it, when the shard's leader first
// contacts it (it was added to the shard), or at start when it finds the
// shard's data on disk.

func (c *Config) clusterMode() bool { return c.RaftAddr != "" }

// openCluster is Open in cluster mode. It returns once the node's existing
// shards are open and gossip has started; joining, bootstrapping and
// elections continue in the background (see Ready).
func openCluster(ctx context.Context, n *Node) (*Node, error) {
	cfg := &n.cfg
	if err := n.loadClusterMeta(); err != nil {
		return nil, err
	}
	n.setCursorKey()
	ln, err := net.Listen("tcp", cfg.RaftAddr)
	if err != nil {
		return nil, fmt.Errorf("cluster: raft listener %s: %w", cfg.RaftAddr, err)
	}
	n.mux, err = raftmux.New(raftmux.Config{
		Listener:       ln,
		Advertise:      cfg.RaftAdvertise,
		Dial:           cfg.RaftDial,
		Logger:         n.log.Named("raftmux"),
		OnUnknownShard: func(s uint32) { n.adopt(int(s)) },
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	cfg.Transports = &muxTransports{n: n}
	if cfg.Sender == nil {
		cfg.Sender = &netSender{n: n}
	}
	n.peers, err = client.NewLazy(client.Config{Token: cfg.Token, Name: wire.PeerName, ConnsPerNode: 2, Retries: -1, RequestTimeout: 10 * time.Second})
	if err != nil {
		n.mux.Close()
		return nil, err
	}
	n.shards = make([]*Shard, n.nshards)
	var nonce [8]byte
	rand.Read(nonce[:])
	local := NodeMeta{ID: cfg.NodeID, ClusterID: n.meta.ClusterID, Nonce: hex.EncodeToString(nonce[:]), ClientAddr: cfg.ClientAddr, RaftAddr: n.mux.Addr(),
		Shards: n.nshards, Leads: NewBitmap(n.nshards), Hosts: NewBitmap(n.nshards)}
	// Shards with data on disk rejoin their groups.
	onDisk := func(i int) bool {
		_, err := os.Stat(filepath.Join(cfg.DataDir, shardDir(i)))
		return err == nil
	}
	if err := n.openAll(func(int) []raft.Server { return nil }, onDisk); err != nil {
		n.Close()
		return nil, err
	}
	for _, s := range n.localShards() {
		local.Hosts.Set(s.id, true)
	}
	n.members, err = NewMembership(MembershipConfig{
		BindAddr: cfg.GossipAddr, AdvertiseAddr: cfg.GossipAdvertise, Join: cfg.Join,
		Local: local, Fast: cfg.FastGossip, Logger: n.log.Named("gossip"),
	})
	if err != nil {
		n.Close()
		return nil, err
	}
	for _, s := range n.localShards() {
		s.start()
	}
	if n.meta.ClusterID == "" {
		n.wg.Add(1)
		go func() { defer n.wg.Done(); n.bootstrapper() }()
	}
	n.wg.Add(1)
	go func() { defer n.wg.Done(); n.reconciler() }()
	n.started.Store(true)
	n.log.Info("cluster node started", "node", cfg.NodeID, "raft", n.mux.Addr(), "gossip", cfg.GossipAddr,
		"join", strings.Join(cfg.Join, ","), "shards", n.nshards, "hosting", len(n.localShards()), "cluster", n.meta.ClusterID)
	return n, nil
}

func shardDir(i int) string { return fmt.Sprintf("shard-%03d", i) }

// loadClusterMeta reads the data directory's metadata, if any. A fresh
// directory gets its metadata once the node learns the cluster's ID (at
// bootstrap, or from gossip when it joins an existing cluster).
func (n *Node) loadClusterMeta() error {
	m, found, err := readMeta(n.cfg.DataDir, n.cfg.Shards)
	if err != nil {
		return err
	}
	if !found {
		m = newMeta("", cmp.Or(n.cfg.Shards, DefaultShards), n.cfg.NodeID)
	} else if m.NodeID != n.cfg.NodeID {
		return fmt.Errorf("cluster: %s belongs to node %q, not %q: a node's ID cannot change", n.cfg.DataDir, m.NodeID, n.cfg.NodeID)
	}
	n.meta = m
	n.nshards = m.Shards
	n.sharedLayout = m.RaftLog == RaftLogShared
	return nil
}

// joinCluster records the cluster ID in the data directory (once) and in
// gossip. It must happen before the first shard of the cluster is opened.
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

// bootstrapStable is how long the set of live nodes must stay the same
// before a new cluster is bootstrapped from it.
const bootstrapStable = 2 * time.Second

// bootstrapper creates the cluster's shards once BootstrapExpect nodes see
// each other, or adopts the ID of a cluster that already exists.
//
// Every node computes the same plan from the same member list: the
// BootstrapExpect members with the lowest IDs form the initial node set;
// each shard's replicas are its top Replicas nodes by rendezvous hash over
// that set, and only the first of them bootstraps the shard (raft's
// BootstrapCluster on one server), so each shard is bootstrapped exactly
// once. The member list must have been stable for a moment, so that nodes
// still joining do not make the plans differ.
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
		n.mu.RLock()
		known := n.meta.ClusterID
		n.mu.RUnlock()
		if known != "" {
			return
		}
		alive := n.members.Alive()
		// A cluster exists already. If it is the one this node's own plan
		// makes (another bootstrap node was quicker), this node does its
		// part of the bootstrap; otherwise it joins as a new node and the
		// shards' leaders give it replicas.
		for _, m := range alive {
			if m.Meta.ClusterID == "" {
				continue
			}
			if m.Meta.Shards != n.nshards {
				n.log.Error("cannot join: the cluster has another shard count", "cluster", m.Meta.ClusterID, "theirs", m.Meta.Shards, "ours", n.nshards)
				return
			}
			if n.cfg.BootstrapExpect > 0 && len(alive) >= n.cfg.BootstrapExpect {
				if id, ids := n.plan(alive); id == m.Meta.ClusterID && slices.Contains(ids, n.cfg.NodeID) {
					// Doing this node's part is right only while the
					// cluster is new. A cluster with history that this
					// node's plan matches means this node was one of its
					// founders and lost its data (same ID, empty
					// directory): its replicas would come back as empty
					// voters, able to elect a leader that lacks committed
					// entries. It joins as a new node instead, and the
					// leaders re-add it as a non-voter (reconcile).
					fresh, err := n.clusterIsFresh(m)
					if err != nil {
						n.log.Warn("cannot tell whether the cluster is new; retrying", "error", err)
						continue
					}
					if !fresh {
						n.log.Warn("this node's data is gone but the cluster it founded has history; joining as an empty node", "cluster", m.Meta.ClusterID)
						if err := n.joinCluster(m.Meta.ClusterID); err != nil {
							n.log.Error("cannot join cluster", "error", err)
						}
						return
					}
					if err := n.bootstrap(alive); err != nil {
						n.log.Error("bootstrap failed; retrying", "error", err)
						continue
					}
					return
				}
			}
			if err := n.joinCluster(m.Meta.ClusterID); err != nil {
				n.log.Error("cannot join cluster", "error", err)
			}
			return
		}
		if n.cfg.BootstrapExpect == 0 {
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
		if len(ids) < n.cfg.BootstrapExpect || time.Since(since) < bootstrapStable {
			continue
		}
		if err := n.bootstrap(alive); err != nil {
			n.log.Error("bootstrap failed; retrying", "error", err)
			continue
		}
		return
	}
}

// freshIndex is the highest applied index a shard of a cluster that is
// still bootstrapping can have: the bootstrap configuration and the no-op
// entries of its first leaders.
const freshIndex = 16

// clusterIsFresh asks member m whether every shard it holds is still at
// its bootstrap entries.
func (n *Node) clusterIsFresh(m Member) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	body, err := n.peers.Call(ctx, m.Meta.ClientAddr, wire.OpStatus, wire.AppendEmpty)
	if err != nil {
		return false, err
	}
	st, err := wire.ParseStatus(body)
	if err != nil {
		return false, err
	}
	for _, sh := range st.Shards {
		if sh.AppliedIndex > freshIndex {
			return false, nil
		}
	}
	return true, nil
}

// plan returns the cluster ID and node set a bootstrap from alive (sorted
// by ID) makes: the first BootstrapExpect nodes.
func (n *Node) plan(alive []Member) (string, []string) {
	var ids []string
	for _, m := range alive[:n.cfg.BootstrapExpect] {
		ids = append(ids, m.Meta.ID)
	}
	// The first node's random nonce makes the ID unique to this cluster
	// (two clusters with the same node names still differ), while every
	// node computes the same ID from gossip.
	h := sha256.Sum256([]byte("followgraph cluster\x00" + alive[0].Meta.Nonce + "\x00" + strconv.Itoa(n.nshards) + "\x00" + strings.Join(ids, "\x00")))
	return hex.EncodeToString(h[:16]), ids
}

func (n *Node) bootstrap(alive []Member) error {
	id, ids := n.plan(alive)
	raftAddr := map[string]string{}
	for _, m := range alive[:n.cfg.BootstrapExpect] {
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
	replicas := n.cfg.Replicas
	created := 0
	for i := range n.nshards {
		reps := Replicas(i, ids, replicas)
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
	n.log.Info("bootstrapped the cluster", "nodes", strings.Join(ids, ","), "shards bootstrapped here", created, "replicas here", len(n.localShards()))
	return nil
}

// openReplica opens and starts shard i here (bootstrapping it with boot if
// not empty), unless it is open already.
func (n *Node) openReplica(i int, boot []raft.Server) error {
	n.mu.Lock()
	if n.shards[i] != nil {
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
	s, err := openShard(n, i, boot)
	if err != nil {
		n.mu.Unlock()
		return err
	}
	n.shards[i] = s
	n.mu.Unlock()
	s.start()
	return n.members.Update(func(m *NodeMeta) { m.Hosts.Set(i, true) })
}

// adopt opens shard i when its leader contacts this node: the node was
// added to the shard's replicas.
func (n *Node) adopt(i int) {
	// Until the node has opened what is on its disk and started gossip,
	// peers' streams wait (raftmux holds them, raft retries).
	if !n.started.Load() || i < 0 || i >= n.nshards || n.Shard(i) != nil {
		return
	}
	n.mu.RLock()
	known := n.meta.ClusterID
	n.mu.RUnlock()
	if known == "" {
		n.log.Warn("contacted for a shard before joining a cluster; ignoring", "shard", i)
		return
	}
	// Open only when the shard's known leader lists this node as a
	// non-voter. Not listed: a leader that has not yet learned that this
	// node was removed (or a stale connection) must not resurrect a
	// dropped replica. Listed as a voter: the shard counts on a replica
	// this node does not have - its data was lost - and an empty replica
	// would vote with an empty log, for any candidate, even one missing
	// committed entries; the leader removes it and adds it back as a
	// non-voter (reconcile). No known leader: a candidate's vote request
	// must not open a replica that would then vote.
	m, ok := n.leaderOf(i)
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
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	body, err := n.peers.Call(ctx, m.Meta.ClientAddr, wire.OpStatus, wire.AppendEmpty)
	if err != nil {
		return false, false
	}
	st, err := wire.ParseStatus(body)
	if err != nil {
		return false, false
	}
	for _, ss := range st.Shards {
		if ss.Shard == i && ss.Leader {
			voter = slices.Contains(ss.Voters, n.cfg.NodeID)
			return voter || slices.Contains(ss.Nonvoters, n.cfg.NodeID), voter
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

// leaderOf returns the member that leads shard i. A node that hosts a
// replica asks its raft first (it learns of a new leader within a
// heartbeat); gossip, slower to notice a dead leader, is the fallback.
func (n *Node) leaderOf(i int) (Member, bool) {
	if n.members == nil {
		return Member{}, false
	}
	members := n.members.Alive()
	if s := n.Shard(i); s != nil {
		if _, id := s.raft.LeaderWithID(); id != "" {
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

// elsewhere is the error for a request about shard i that this node does
// not serve.
func (n *Node) elsewhere(i int) error {
	if m, ok := n.leaderOf(i); ok {
		return codes.New(codes.NotLeader, "shard %d is led by %s at %s", i, m.Meta.ID, m.Meta.ClientAddr)
	}
	return codes.New(codes.ShardUnavailable, "shard %d has no known leader", i)
}

// leaderAddr returns the client address of shard i's leader, if another
// node.
func (n *Node) leaderAddr(i int) (string, bool) {
	m, ok := n.leaderOf(i)
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

// muxTransports gives each shard a raft transport over the node's
// multiplexed raft port.
type muxTransports struct{ n *Node }

func (t *muxTransports) Transport(shard int) (raft.Transport, error) {
	return guardedTransport{raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  t.n.mux.Layer(uint32(shard)),
		MaxPool: 2,
		Timeout: raftIOTimeout,
		Logger:  t.n.log.Named("raft-transport"),
	})}, nil
}

// raftIOTimeout bounds each raft RPC's reads and writes.
const raftIOTimeout = 10 * time.Second

// guardedTransport is raft's NetworkTransport (all its methods and
// optional interfaces promoted) with pipelines that cannot block forever.
//
// The chaos suite found a shard whose raft never shut down: after a
// follower stopped answering, raft's pipeline decoder gave up (its
// consumer returns on the first failed response), and then the leader's
// "best effort" final send on stop (replication.go, pipelineReplicate)
// blocked in netPipeline.AppendEntries, whose in-progress queue nobody
// would drain again. The replication goroutine leaked, and
// raft.Shutdown waited for it forever (followd hung on SIGTERM).
type guardedTransport struct{ *raft.NetworkTransport }

func (t guardedTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p, err := t.NetworkTransport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	return &guardedPipeline{AppendPipeline: p, timeout: raftIOTimeout}, nil
}

// guardedPipeline closes its pipeline when one AppendEntries has been
// blocked longer than timeout: the call then fails, and raft falls back
// to plain replication and opens a new pipeline later.
type guardedPipeline struct {
	raft.AppendPipeline
	timeout time.Duration
}

func (p *guardedPipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	watchdog := time.AfterFunc(p.timeout, func() { p.AppendPipeline.Close() })
	defer watchdog.Stop()
	return p.AppendPipeline.AppendEntries(args, resp)
}

func (t *muxTransports) Servers(int) []raft.Server { return nil }

// netSender relays records to the leader of the destination shard, here or
// on another node.
type netSender struct{ n *Node }

func (s *netSender) Deliver(ctx context.Context, dst, src int, recs []fsm.Record) (uint64, error) {
	if sh := s.n.Shard(dst); sh != nil && sh.Ready() {
		return sh.Deliver(ctx, src, recs)
	}
	addr, ok := s.n.leaderAddr(dst)
	if !ok {
		return 0, s.n.elsewhere(dst)
	}
	req := wire.DeliverRequest{Dst: dst, Src: src, Records: make([]wire.Record, len(recs))}
	for i, r := range recs {
		req.Records[i] = wire.Record(r)
	}
	body, err := s.n.peers.Call(ctx, addr, wire.OpDeliver, func(b []byte) []byte { return wire.AppendDeliverRequest(b, req) })
	if err != nil {
		return 0, err
	}
	return wire.ParseUint64(body)
}

// HandOffLeaderships transfers the leadership of every shard this node
// leads to another replica, so that a planned shutdown costs no election
// timeout. It gives up on a shard after ctx ends.
func (n *Node) HandOffLeaderships(ctx context.Context) int {
	moved := 0
	for _, s := range n.localShards() {
		if s.raft.State() != raft.Leader {
			continue
		}
		done := make(chan error, 1)
		go func() { done <- s.transfer(s.raft.LeadershipTransfer) }()
		select {
		case err := <-done:
			if err == nil {
				moved++
			} else {
				n.log.Warn("leadership transfer failed", "shard", s.id, "error", err)
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
	n.log.Info("draining", "on", on)
	return n.members.Update(func(m *NodeMeta) { m.State = state })
}

// Healthy reports whether every local shard has a leader (here or on
// another node) and, if this node leads it, has caught up.
func (n *Node) Healthy() (bad []int) {
	if n.members != nil {
		n.mu.RLock()
		joined := n.meta.ClusterID != ""
		n.mu.RUnlock()
		if !joined {
			return []int{-1} // not in a cluster yet
		}
	}
	for _, s := range n.localShards() {
		if s.fsm.Failed() != nil {
			bad = append(bad, s.id)
			continue
		}
		if s.raft.State() == raft.Leader {
			if !s.Ready() {
				bad = append(bad, s.id)
			}
			continue
		}
		if addr, _ := s.raft.LeaderWithID(); addr == "" {
			bad = append(bad, s.id)
		}
	}
	return bad
}
