package cluster

import (
	"hash/fnv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

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
		p.key, p.leaders = key, Leaders(n.nshards, eligible, n.cfg.Membership.Replicas)
	}
	return p.leaders[i]
}

// reconciler runs the periodic duties of a cluster node: it drops replicas
// whose shard removed this node, and on each shard it leads, reconciles the
// replica set with the live membership (see reconcile).
func (n *Node) reconciler() {
	t := time.NewTicker(n.cfg.Membership.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		for _, r := range n.localReplicas() {
			if r.raft.State() == raft.Shutdown {
				n.dropReplica(r)
				continue
			}
			if r.Ready() {
				n.reconcile(r)
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
	byLeader := map[string][]*Replica{}
	leaders := map[string]Member{}
	for _, r := range n.localReplicas() {
		if r.raft.State() != raft.Follower {
			continue
		}
		if m, ok := n.Leader(r.id); ok && m.Meta.ID != n.cfg.NodeID {
			byLeader[m.Meta.ID] = append(byLeader[m.Meta.ID], r)
			leaders[m.Meta.ID] = m
		}
	}
	for id, reps := range byLeader {
		st, err := n.peerStatus(leaders[id])
		if err != nil {
			continue
		}
		for _, r := range reps {
			for _, rs := range st.Replicas {
				if rs.Shard == r.id && rs.Leader && len(rs.Voters) > 0 &&
					!slices.Contains(rs.Voters, n.cfg.NodeID) && !slices.Contains(rs.Nonvoters, n.cfg.NodeID) {
					n.log.Info("the shard's leader no longer lists this node", "shard", r.id, "leader", st.NodeID)
					n.dropReplica(r)
				}
			}
		}
	}
}

// dropReplica closes and deletes a replica this node no longer belongs to
// (its shard removed it, so its raft shut down): its raft log (its stream
// of the node's log, emptied first) and its directory. Until that is done
// the shard cannot be opened again here (openReplica), so that a later
// replica of the shard starts from nothing: no entries, term or snapshot.
func (n *Node) dropReplica(r *Replica) {
	select {
	case <-n.stop:
		return // shutting down: raft stopped for that reason
	default:
	}
	n.mu.Lock()
	if n.replicas[r.id] != r {
		n.mu.Unlock()
		return
	}
	n.replicas[r.id] = nil
	if n.dropping == nil {
		n.dropping = map[int]bool{}
	}
	n.dropping[r.id] = true
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.dropping, r.id)
		n.mu.Unlock()
	}()
	if err := r.close(); err != nil {
		n.log.Warn("closing a removed replica", "shard", r.id, "error", err)
	}
	r.fsm.Close()
	// The stream before the directory: a crash in between leaves a
	// replica with an empty log (dropped again, as its shard's leader does
	// not list this node), never entries without their directory. Should
	// emptying the stream fail, the next replica's newReplica does it.
	l, err := n.openRaftLog()
	if err == nil {
		err = emptyStream(l, uint32(r.id))
	}
	if err != nil {
		n.log.Warn("deleting a removed replica's raft log", "shard", r.id, "error", err)
	}
	if err := os.RemoveAll(filepath.Join(n.cfg.DataDir, shardDir(r.id))); err != nil {
		n.log.Warn("deleting a removed replica", "shard", r.id, "error", err)
	}
	n.members.Update(func(m *NodeMeta) { m.Hosts.Set(r.id, false); m.Leads.Set(r.id, false) })
	n.log.Info("removed from shard; replica deleted", "shard", r.id)
}

// reconcile runs on the leader of shard r and takes at most one step
// towards the desired replica set, the first of these that applies:
//
//  0. remove a voter that is alive but holds no replica (its data is gone);
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
func (n *Node) reconcile(r *Replica) {
	f := r.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	v := n.placementView(r, f.Configuration())
	for _, step := range []func(*Replica, *placementView) bool{
		n.removeLostVoter, n.promoteCaughtUp, n.addMissing, n.removeUndesired, n.spreadLeadership,
	} {
		if step(r, v) {
			return
		}
	}
}

// placementView is what reconcile decides from: the membership, the
// shard's desired replicas and its raft configuration.
type placementView struct {
	byID     map[string]Member
	eligible []string
	desired  []string
	conf     raft.Configuration
	inConf   map[string]raft.ServerSuffrage
}

func (v *placementView) alive(id string) bool { m, ok := v.byID[id]; return ok && m.Alive }

func (n *Node) placementView(r *Replica, conf raft.Configuration) *placementView {
	v := &placementView{byID: map[string]Member{}, conf: conf, inConf: map[string]raft.ServerSuffrage{}}
	now := time.Now()
	clusterID := n.ClusterID()
	for _, m := range n.members.Members() {
		v.byID[m.Meta.ID] = m
		gone := !m.Alive && now.Sub(m.Since) >= n.cfg.Membership.DeadTimeout
		if m.Meta.ClusterID == clusterID && m.Meta.State == NodeActive && !gone {
			v.eligible = append(v.eligible, m.Meta.ID)
		}
	}
	v.desired = Replicas(r.id, v.eligible, n.cfg.Membership.Replicas)
	for _, sv := range conf.Servers {
		v.inConf[string(sv.ID)] = sv.Suffrage
	}
	return v
}

// removeLostVoter (step 0) removes a voter that is alive but no longer
// holds the shard: it lost its data (a wiped disk, restarted under the
// same ID). With an empty log it would vote for any candidate, even one
// missing committed entries; step 2 adds it back as a non-voter, which
// catches up before it is promoted. Gossip can lag, so the node itself is
// asked before anything is removed.
func (n *Node) removeLostVoter(r *Replica, v *placementView) bool {
	for _, sv := range v.conf.Servers {
		id := string(sv.ID)
		if sv.Suffrage != raft.Voter || id == n.cfg.NodeID || !v.alive(id) || v.byID[id].Meta.Hosts.Has(r.id) {
			continue
		}
		if hosts, ok := n.hostsShard(r.id, v.byID[id]); ok && !hosts {
			n.log.Warn("voter lost its replica (its data is gone); removing it to add it back as a non-voter", "shard", r.id, "node", id)
			r.raft.RemoveServer(sv.ID, 0, 5*time.Second)
			return true
		}
	}
	return false
}

// promoteCaughtUp (step 1) promotes a desired non-voter that has caught up.
func (n *Node) promoteCaughtUp(r *Replica, v *placementView) bool {
	for _, id := range v.desired {
		if v.inConf[id] == raft.Nonvoter && v.alive(id) && n.caughtUp(r, v.byID[id]) {
			n.log.Info("promoting replica", "shard", r.id, "node", id)
			r.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(v.byID[id].Meta.RaftAddr), 0, 5*time.Second)
			return true
		}
	}
	return false
}

// addMissing (step 2) adds a missing desired node as a non-voter.
//
// raft refuses two servers at one address. A server listed at the new
// node's raft address under another ID is an earlier identity of the same
// machine (back under a new --node-id), gone for good: it is removed
// first, or the add fails forever and the shard stays a replica short
// (found by the chaos suite's wipe fault).
func (n *Node) addMissing(r *Replica, v *placementView) bool {
	for _, id := range v.desired {
		if _, ok := v.inConf[id]; ok || !v.alive(id) {
			continue
		}
		addr := v.byID[id].Meta.RaftAddr
		for _, sv := range v.conf.Servers {
			if string(sv.Address) == addr && string(sv.ID) != id && string(sv.ID) != n.cfg.NodeID && !v.alive(string(sv.ID)) {
				n.log.Info("removing replica of an earlier node ID at the same address", "shard", r.id, "node", sv.ID, "now", id)
				r.raft.RemoveServer(sv.ID, 0, 5*time.Second)
				return true
			}
		}
		n.log.Info("adding replica", "shard", r.id, "node", id)
		r.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 5*time.Second)
		return true
	}
	return false
}

// removeUndesired (step 3) removes a server that is not desired, once the
// desired voters are all in place (or as many as there are eligible
// nodes). Only live voters count: a node dead for less than the dead
// timeout is still desired, and counting it let a leader remove a healthy
// replica while keeping the dead one (found by the chaos suite: a node
// back under a new ID while its old ID was still desired; a second fault
// then left the shard without a quorum).
func (n *Node) removeUndesired(r *Replica, v *placementView) bool {
	voters := 0
	for _, id := range v.desired {
		if v.inConf[id] == raft.Voter && v.alive(id) {
			voters++
		}
	}
	if voters < len(v.desired) {
		return false
	}
	for _, sv := range v.conf.Servers {
		id := string(sv.ID)
		if slices.Contains(v.desired, id) {
			continue
		}
		if id == n.cfg.NodeID {
			n.handOff(r, v.desired, v.byID)
			return true
		}
		n.log.Info("removing replica", "shard", r.id, "node", id, "alive", v.alive(id))
		r.raft.RemoveServer(sv.ID, 0, 5*time.Second)
		return true
	}
	return false
}

// spreadLeadership (step 4) hands leadership to the shard's preferred
// leader; a draining node hands its leaderships over at once.
func (n *Node) spreadLeadership(r *Replica, v *placementView) bool {
	if n.members.Local().State == NodeDraining {
		n.handOff(r, v.desired, v.byID)
		return true
	}
	pref := n.preferredLeader(r.id, v.eligible)
	if pref != "" && pref != n.cfg.NodeID && v.inConf[pref] == raft.Voter && v.alive(pref) && n.caughtUp(r, v.byID[pref]) {
		n.handOff(r, []string{pref}, v.byID)
		return true
	}
	return false
}

// handOff transfers r's leadership to the first desired voter that is
// alive.
func (n *Node) handOff(r *Replica, desired []string, byID map[string]Member) {
	for _, id := range desired {
		if id == n.cfg.NodeID {
			continue
		}
		m, ok := byID[id]
		if !ok || !m.Alive {
			continue
		}
		n.log.Info("handing over leadership", "shard", r.id, "to", id)
		if err := r.transfer(func() raft.Future {
			return r.raft.LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(m.Meta.RaftAddr))
		}); err != nil {
			n.log.Warn("leadership transfer failed", "shard", r.id, "to", id, "error", err)
		}
		return
	}
}

// caughtUpLag is how far behind the leader's last index a replica may be
// and still count as caught up (entries are batches, so this is small).
const caughtUpLag = 64

// hostsShard asks node m whether it holds a replica of shard i; ok is
// false when it does not answer.
func (n *Node) hostsShard(i int, m Member) (hosts, ok bool) {
	st, err := n.peerStatus(m)
	if err != nil || st.NodeID != m.Meta.ID {
		return false, false
	}
	for _, rs := range st.Replicas {
		if rs.Shard == i {
			return true, true
		}
	}
	return false, true
}

// caughtUp asks node m whether it has applied shard r's log to within
// caughtUpLag of this leader's last index.
func (n *Node) caughtUp(r *Replica, m Member) bool {
	st, err := n.peerStatus(m)
	if err != nil {
		return false
	}
	last := r.raft.LastIndex()
	for _, rs := range st.Replicas {
		if rs.Shard == r.id {
			return rs.AppliedIndex+caughtUpLag >= last
		}
	}
	return false
}
