package cluster

import (
	"context"
	"hash/fnv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/followgraph/followgraph/wire"
	"github.com/hashicorp/raft"
)

// Placement: where a shard's replicas should live.
//
// A shard's preferred replicas are the nodes with the highest rendezvous
// (highest random weight) score for it: score(shard, node) is a hash of
// both. Every node computes the same answer from the same member list,
// without coordination, and when a node joins or leaves only the shards
// that ranked it among their top choices move: about replicas/nodes of
// them, not all.

// rendezvous is the score of node for shard.
func rendezvous(shard int, node string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(node))
	x := h.Sum64() ^ (uint64(shard)+1)*0x9e3779b97f4a7c15
	// splitmix64 finalizer: spreads the combined bits evenly.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Preferred returns nodes in preference order for shard (all of them;
// the first replicas are the shard's preferred replica set).
func Preferred(shard int, nodes []string) []string {
	out := slices.Clone(nodes)
	slices.SortFunc(out, func(a, b string) int {
		sa, sb := rendezvous(shard, a), rendezvous(shard, b)
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	})
	return out
}

// Replicas returns the preferred replica set of shard: the first n of
// Preferred.
func Replicas(shard int, nodes []string, n int) []string {
	p := Preferred(shard, nodes)
	return p[:min(n, len(p))]
}

// Leaders returns the preferred leader of every shard: among each shard's
// replica set (Replicas), the node that has been given the fewest
// leaderships so far, shards taken in order, ties going to the shard's
// rendezvous order. Every node computes the same plan from the same
// membership, and leaderships come out even: within one of each other
// when every node holds every shard (3 nodes, 3 replicas), and close to it
// otherwise. (The first choice of each shard alone, as rendezvous ranks
// them, is a binomial draw: 7/5/4 for 16 shards on 3 nodes.)
func Leaders(shards int, nodes []string, replicas int) []string {
	out := make([]string, shards)
	led := make(map[string]int, len(nodes))
	for i := range shards {
		for _, id := range Replicas(i, nodes, replicas) {
			if out[i] == "" || led[id] < led[out[i]] {
				out[i] = id
			}
		}
		if out[i] != "" {
			led[out[i]]++
		}
	}
	return out
}

// leaderPlan caches Leaders for one membership: it costs shards × nodes
// hashes, and every shard's reconcile needs it.
type leaderPlan struct {
	mu      sync.Mutex
	key     string
	leaders []string
}

// preferredLeader returns shard i's preferred leader for the eligible
// nodes.
func (n *Node) preferredLeader(i int, eligible []string) string {
	key := strings.Join(slices.Sorted(slices.Values(eligible)), ",")
	p := &n.leaders
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.leaders == nil || p.key != key {
		p.key, p.leaders = key, Leaders(n.nshards, eligible, n.cfg.Replicas)
	}
	return p.leaders[i]
}

// reconciler runs the periodic duties of a cluster node: it drops replicas
// whose shard removed this node, and on each shard it leads, reconciles the
// replica set with the live membership (see reconcile).
func (n *Node) reconciler() {
	t := time.NewTicker(n.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		for _, s := range n.localShards() {
			if s.raft.State() == raft.Shutdown {
				n.dropReplica(s)
				continue
			}
			if s.Ready() {
				n.reconcile(s)
			}
		}
		n.dropRemoved()
	}
}

// dropRemoved deletes the follower replicas whose shard's leader no
// longer lists this node. A follower removed from a configuration often
// never receives the entry that removes it (the leader stops sending to
// it), so it asks the leaders.
func (n *Node) dropRemoved() {
	byLeader := map[string][]*Shard{}
	for _, s := range n.localShards() {
		if s.raft.State() != raft.Follower {
			continue
		}
		if m, ok := n.leaderOf(s.id); ok && m.Meta.ID != n.cfg.NodeID {
			byLeader[m.Meta.ClientAddr] = append(byLeader[m.Meta.ClientAddr], s)
		}
	}
	for addr, shards := range byLeader {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		body, err := n.peers.Call(ctx, addr, wire.OpStatus, wire.AppendEmpty)
		cancel()
		if err != nil {
			continue
		}
		st, err := wire.ParseStatus(body)
		if err != nil {
			continue
		}
		for _, s := range shards {
			for _, ss := range st.Shards {
				if ss.Shard == s.id && ss.Leader && len(ss.Voters) > 0 &&
					!slices.Contains(ss.Voters, n.cfg.NodeID) && !slices.Contains(ss.Nonvoters, n.cfg.NodeID) {
					n.log.Info("the shard's leader no longer lists this node", "shard", s.id, "leader", st.NodeID)
					n.dropReplica(s)
				}
			}
		}
	}
}

// dropReplica closes and deletes a replica this node no longer belongs to
// (its shard removed it, so its raft shut down): its raft log (its stream
// of the shared log, emptied first) and its directory. Until that is done
// the shard cannot be opened again here (openReplica), so that a later
// replica of the shard starts from nothing: no entries, term or snapshot.
func (n *Node) dropReplica(s *Shard) {
	select {
	case <-n.stop:
		return // shutting down: raft stopped for that reason
	default:
	}
	n.mu.Lock()
	if n.shards[s.id] != s {
		n.mu.Unlock()
		return
	}
	n.shards[s.id] = nil
	if n.dropping == nil {
		n.dropping = map[int]bool{}
	}
	n.dropping[s.id] = true
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.dropping, s.id)
		n.mu.Unlock()
	}()
	if err := s.close(); err != nil {
		n.log.Warn("closing a removed replica", "shard", s.id, "error", err)
	}
	// The stream before the directory: a crash in between leaves a
	// replica with an empty log (dropped again, as its shard's leader does
	// not list this node), never entries without their directory. Should
	// emptying the stream fail, the next replica's openShard does it.
	if sh, err := n.sharedLog(); err != nil || sh != nil {
		if err == nil {
			err = emptyStream(sh, uint32(s.id))
		}
		if err != nil {
			n.log.Warn("deleting a removed replica's raft log", "shard", s.id, "error", err)
		}
	}
	if err := os.RemoveAll(filepath.Join(n.cfg.DataDir, shardDir(s.id))); err != nil {
		n.log.Warn("deleting a removed replica", "shard", s.id, "error", err)
	}
	n.members.Update(func(m *NodeMeta) { m.Hosts.Set(s.id, false); m.Leads.Set(s.id, false) })
	n.log.Info("removed from shard; replica deleted", "shard", s.id)
}

// reconcile runs on the leader of shard s and takes at most one step
// towards the desired replica set:
//
//  1. promote a non-voter that has caught up;
//  2. add, as a non-voter, a desired node that is missing (raft sends it a
//     snapshot and the log; quorum does not depend on it meanwhile);
//  3. once the desired voters are in place, remove servers that are not
//     desired: nodes gone for longer than DeadTimeout, draining nodes,
//     surplus replicas (the leader hands over leadership before it would
//     remove itself);
//  4. hand leadership to the shard's preferred leader (see Leaders), so
//     that leaderships spread evenly.
//
// The desired set is the shard's top Replicas nodes by rendezvous hash
// among eligible nodes: active members of this cluster that are alive or
// have been gone for less than DeadTimeout (a single suspicion never moves
// a replica).
func (n *Node) reconcile(s *Shard) {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	conf := f.Configuration()
	now := time.Now()
	byID := map[string]Member{}
	var eligible []string
	for _, m := range n.members.Members() {
		byID[m.Meta.ID] = m
		gone := !m.Alive && now.Sub(m.Since) >= n.cfg.DeadTimeout
		if m.Meta.ClusterID == n.meta.ClusterID && m.Meta.State == NodeActive && !gone {
			eligible = append(eligible, m.Meta.ID)
		}
	}
	desired := Replicas(s.id, eligible, n.cfg.Replicas)
	inConf := map[string]raft.ServerSuffrage{}
	for _, sv := range conf.Servers {
		inConf[string(sv.ID)] = sv.Suffrage
	}
	self := n.cfg.NodeID
	alive := func(id string) bool { m, ok := byID[id]; return ok && m.Alive }

	// 0. A voter that is alive but no longer holds the shard lost its
	// data (a wiped disk, restarted under the same ID). It must not stay
	// a voter: with an empty log it would vote for any candidate, even
	// one missing committed entries. Remove it; step 2 adds it back as a
	// non-voter, which catches up before it is promoted. Gossip can lag,
	// so the node itself is asked before anything is removed.
	for _, sv := range conf.Servers {
		id := string(sv.ID)
		if sv.Suffrage != raft.Voter || id == self || !alive(id) || byID[id].Meta.Hosts.Has(s.id) {
			continue
		}
		if hosts, ok := n.hostsShard(s.id, byID[id]); ok && !hosts {
			n.log.Warn("voter lost its replica (its data is gone); removing it to add it back as a non-voter", "shard", s.id, "node", id)
			s.raft.RemoveServer(sv.ID, 0, 5*time.Second)
			return
		}
	}
	// 1. Promote a caught-up non-voter that is desired.
	for _, id := range desired {
		if inConf[id] == raft.Nonvoter && alive(id) && n.caughtUp(s, byID[id]) {
			n.log.Info("promoting replica", "shard", s.id, "node", id)
			s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(byID[id].Meta.RaftAddr), 0, 5*time.Second)
			return
		}
	}
	// 2. Add a missing desired node as a non-voter.
	for _, id := range desired {
		if _, ok := inConf[id]; !ok && alive(id) {
			// raft refuses two servers at one address. A server listed
			// at the new node's raft address under another ID is an
			// earlier identity of the same machine (back under a new
			// --node-id), gone for good: remove it first, or the add
			// fails forever and the shard stays a replica short (found
			// by the chaos suite's wipe fault).
			addr := byID[id].Meta.RaftAddr
			for _, sv := range conf.Servers {
				if string(sv.Address) == addr && string(sv.ID) != id && string(sv.ID) != self && !alive(string(sv.ID)) {
					n.log.Info("removing replica of an earlier node ID at the same address", "shard", s.id, "node", sv.ID, "now", id)
					s.raft.RemoveServer(sv.ID, 0, 5*time.Second)
					return
				}
			}
			n.log.Info("adding replica", "shard", s.id, "node", id)
			s.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(byID[id].Meta.RaftAddr), 0, 5*time.Second)
			return
		}
	}
	// 3. Remove servers that are not desired, once the desired voters are
	// all in place (or as many as there are eligible nodes).
	// Only live voters count: a node dead for less than the dead timeout
	// is still desired, and counting it let a leader remove a healthy
	// replica while keeping the dead one (found by the chaos suite: a
	// node back under a new ID while its old ID was still desired; a
	// second fault then left the shard without a quorum).
	voters := 0
	for _, id := range desired {
		if inConf[id] == raft.Voter && alive(id) {
			voters++
		}
	}
	if voters >= len(desired) {
		for _, sv := range conf.Servers {
			id := string(sv.ID)
			if slices.Contains(desired, id) {
				continue
			}
			if id == self {
				n.handOff(s, desired, byID)
				return
			}
			n.log.Info("removing replica", "shard", s.id, "node", id, "alive", alive(id))
			s.raft.RemoveServer(sv.ID, 0, 5*time.Second)
			return
		}
	}
	// 4. Spread leaderships: the shard's preferred leader should lead. A
	// draining node hands its leaderships over at once.
	if n.members.Local().State == NodeDraining {
		n.handOff(s, desired, byID)
		return
	}
	pref := n.preferredLeader(s.id, eligible)
	if pref != "" && pref != self && inConf[pref] == raft.Voter && alive(pref) && n.caughtUp(s, byID[pref]) {
		n.handOff(s, []string{pref}, byID)
	}
}

// handOff transfers s's leadership to the first desired voter that is
// alive.
func (n *Node) handOff(s *Shard, desired []string, byID map[string]Member) {
	for _, id := range desired {
		if id == n.cfg.NodeID {
			continue
		}
		m, ok := byID[id]
		if !ok || !m.Alive {
			continue
		}
		n.log.Info("handing over leadership", "shard", s.id, "to", id)
		if err := s.transfer(func() raft.Future {
			return s.raft.LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(m.Meta.RaftAddr))
		}); err != nil {
			n.log.Warn("leadership transfer failed", "shard", s.id, "to", id, "error", err)
		}
		return
	}
}

// caughtUpLag is how far behind the leader's last index a replica may be
// and still count as caught up (entries are batches, so this is small).
const caughtUpLag = 64

// caughtUp asks node m how far it has applied shard s.
// hostsShard asks node m whether it holds a replica of shard i; ok is
// false when it does not answer.
func (n *Node) hostsShard(i int, m Member) (hosts, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	body, err := n.peers.Call(ctx, m.Meta.ClientAddr, wire.OpStatus, wire.AppendEmpty)
	if err != nil {
		return false, false
	}
	st, err := wire.ParseStatus(body)
	if err != nil || st.NodeID != m.Meta.ID {
		return false, false
	}
	for _, sh := range st.Shards {
		if sh.Shard == i {
			return true, true
		}
	}
	return false, true
}

func (n *Node) caughtUp(s *Shard, m Member) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	body, err := n.peers.Call(ctx, m.Meta.ClientAddr, wire.OpStatus, wire.AppendEmpty)
	if err != nil {
		return false
	}
	st, err := wire.ParseStatus(body)
	if err != nil {
		return false
	}
	last := s.raft.LastIndex()
	for _, sh := range st.Shards {
		if sh.Shard == s.id {
			return sh.AppliedIndex+caughtUpLag >= last
		}
	}
	return false
}
