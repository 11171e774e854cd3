package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/cluster/clustertest"
	"github.com/followgraph/followgraph/shard"
	"github.com/followgraph/followgraph/wire"
	"github.com/hashicorp/raft"
)

// These tests run clusters of nodes behind the router, as followd does
// (package clustertest), and use the accessors of export_test.go.

var waitFor = clustertest.WaitFor

// newTestCluster starts n nodes of a new cluster of shards shards.
func newTestCluster(t *testing.T, n, shards int) *clustertest.Cluster {
	return clustertest.NewCluster(t, n, shards, nil)
}

func TestClusterBootstrapAndServe(t *testing.T) {
	const shards = 8
	tc := newTestCluster(t, 3, shards)
	tc.WaitLeaders(90 * time.Second)
	// Every shard has three replicas, and exactly one bootstrap happened:
	// every replica ends up with the same three-server configuration (a
	// replica that was not the bootstrapper learns it from the leader).
	waitFor(t, "every replica to know its configuration", 30*time.Second, func() bool {
		for i := range shards {
			var replicas int
			for _, m := range tc.Nodes {
				s := m.Node.Replica(i)
				if s == nil {
					continue
				}
				replicas++
				cf := s.Raft().GetConfiguration()
				if cf.Error() != nil || len(cf.Configuration().Servers) != 3 {
					return false
				}
			}
			if replicas != 3 {
				return false
			}
		}
		return true
	})
	// Leaderships spread evenly (8 shards on 3 nodes: 3, 3 and 2), by
	// leadership transfers towards each shard's preferred leader.
	waitFor(t, "leaderships to spread evenly", 60*time.Second, func() bool {
		for _, m := range tc.Nodes {
			led := 0
			for i := range shards {
				if s := m.Node.Replica(i); s != nil && s.Raft().State() == raft.Leader {
					led++
				}
			}
			if led < 2 || led > 3 {
				return false
			}
		}
		return true
	})
	// The cluster ID and the cursor key agree.
	for _, m := range tc.Nodes[1:] {
		if m.Node.ClusterID() != tc.Nodes[0].Node.ClusterID() || string(m.Node.CursorKey()) != string(tc.Nodes[0].Node.CursorKey()) {
			t.Fatalf("%s: cluster %s, %s: cluster %s", m.ID, m.Node.ClusterID(), tc.Nodes[0].ID, tc.Nodes[0].Node.ClusterID())
		}
	}
	ctx := context.Background()
	// A client of a single node reaches every shard through forwarding.
	for _, m := range tc.Nodes {
		c := tc.Client(m.Addr)
		actor := "fan-of-" + m.ID
		var targets []string
		for i := range 12 {
			targets = append(targets, fmt.Sprintf("star%d", i))
		}
		res, err := c.Follow(ctx, actor, targets, client.Sync())
		if err != nil {
			t.Fatalf("via %s: %v", m.ID, err)
		}
		for _, r := range res {
			if r.Code != 0 {
				t.Fatalf("via %s: %+v", m.ID, r)
			}
		}
		for _, tg := range targets {
			p, err := c.Followers(ctx, tg)
			if err != nil {
				t.Fatalf("followers of %s via %s: %v", tg, m.ID, err)
			}
			found := false
			for _, it := range p.Items {
				found = found || it.UserID == actor
			}
			if !found {
				t.Fatalf("%s not among the followers of %s (via %s): %+v", actor, tg, m.ID, p)
			}
		}
	}
	// Info spans shards.
	c := tc.Client()
	infos, err := c.Info(ctx, "star0", "star1", "fan-of-n1")
	if err != nil || infos[0].Followers != 3 || infos[2].Following != 12 {
		t.Fatalf("info: %+v %v", infos, err)
	}
	// Through a single node, which forwards the users of shards it does not
	// lead in one request per leader node, and keeps the order.
	users := []string{"fan-of-n1", "fan-of-n2", "fan-of-n3"}
	for i := range 12 {
		users = append(users, fmt.Sprintf("star%d", i))
	}
	for _, m := range tc.Nodes {
		infos, err := m.Router.Info(ctx, wire.UsersRequest{Users: users})
		if err != nil || len(infos) != len(users) {
			t.Fatalf("info via %s: %+v %v", m.ID, infos, err)
		}
		for i, in := range infos {
			want := uint64(3)
			if i < 3 {
				want = 12
			}
			if in.UserID != users[i] || in.Code != 0 || in.Following+in.Followers != want {
				t.Fatalf("info via %s, user %d: %+v, want %s with %d", m.ID, i, in, users[i], want)
			}
		}
	}
}

// writeAll follows through every shard and returns the actors used.
func writeAll(t *testing.T, c *client.Client, tag string, n int) []string {
	t.Helper()
	var actors []string
	for i := range n {
		a := fmt.Sprintf("%s-%d", tag, i)
		if _, err := c.Follow(context.Background(), a, []string{"hub-" + tag}, client.Sync()); err != nil {
			t.Fatalf("follow %s: %v", a, err)
		}
		actors = append(actors, a)
	}
	return actors
}

func TestClusterLeaderFailover(t *testing.T) {
	const shards = 4
	tc := newTestCluster(t, 3, shards)
	tc.WaitLeaders(90 * time.Second)
	c := tc.Client()
	before := writeAll(t, c, "before", 40)
	// Kill the leader of shard 0.
	victim := tc.Leaders()[0]
	var m *clustertest.Member
	for _, x := range tc.Nodes {
		if x.ID == victim {
			m = x
		}
	}
	start := time.Now()
	tc.Stop(m)
	tc.WaitLeaders(90 * time.Second)
	t.Logf("every shard led again %v after stopping %s", time.Since(start).Round(time.Millisecond), victim)
	// Writes and reads work through the survivors, and nothing was lost.
	c2 := tc.Client()
	writeAll(t, c2, "after", 40)
	info, err := c2.Info(context.Background(), "hub-before", "hub-after")
	if err != nil || info[0].Followers != uint64(len(before)) || info[1].Followers != 40 {
		t.Fatalf("after failover: %+v %v", info, err)
	}
}

func TestClusterJoinAndRebalance(t *testing.T) {
	const shards = 8
	tc := newTestCluster(t, 3, shards)
	tc.WaitLeaders(90 * time.Second)
	c := tc.Client()
	writeAll(t, c, "pre", 30)
	n4 := tc.AddNode()
	// The new node gets the replicas that rendezvous hashing gives it,
	// caught up and promoted to voter; every shard keeps 3 voters.
	var eligible []string
	for _, m := range tc.Nodes {
		eligible = append(eligible, m.ID)
	}
	waitFor(t, "rebalanced replicas", 60*time.Second, func() bool {
		reps := tc.Voters()
		for i := range shards {
			want := cluster.Replicas(i, eligible, 3)
			got := reps[i]
			if len(got) != 3 {
				return false
			}
			for _, id := range want {
				if !slices.Contains(got, id) {
					return false
				}
			}
		}
		return true
	})
	if n4.Node.Replica(0) == nil && len(n4.Node.LocalReplicas()) == 0 {
		t.Fatal("the new node hosts nothing")
	}
	// Its data is complete: read through it.
	c4 := tc.Client(n4.Addr)
	info, err := c4.Info(context.Background(), "hub-pre")
	if err != nil || info[0].Followers != 30 {
		t.Fatalf("through the new node: %+v %v", info, err)
	}
}

func TestClusterDeadNodeReplaced(t *testing.T) {
	const shards = 8
	tc := newTestCluster(t, 4, shards)
	tc.WaitLeaders(90 * time.Second)
	c := tc.Client()
	writeAll(t, c, "x", 20)
	dead := tc.Nodes[3]
	tc.Stop(dead)
	// After DeadTimeout (3s here), every shard has 3 voters, none of them
	// the dead node.
	waitFor(t, "re-replication", 60*time.Second, func() bool {
		reps := tc.Voters()
		for i := range shards {
			if len(reps[i]) != 3 || slices.Contains(reps[i], dead.ID) {
				return false
			}
		}
		return true
	})
	info, err := tc.Client().Info(context.Background(), "hub-x")
	if err != nil || info[0].Followers != 20 {
		t.Fatalf("after re-replication: %+v %v", info, err)
	}
}

func TestClusterDrain(t *testing.T) {
	const shards = 8
	tc := newTestCluster(t, 4, shards)
	tc.WaitLeaders(90 * time.Second)
	writeAll(t, tc.Client(), "d", 20)
	target := tc.Nodes[1]
	drain(t, tc, target, shards)
	tc.Stop(target)
	info, err := tc.Client().Info(context.Background(), "hub-d")
	if err != nil || info[0].Followers != 20 {
		t.Fatalf("after drain: %+v %v", info, err)
	}
}

// acked records acknowledged follows and checks both sides of each later.
type acked struct {
	mu    sync.Mutex
	edges [][2]string
}

func (a *acked) add(actor, target string) {
	a.mu.Lock()
	a.edges = append(a.edges, [2]string{actor, target})
	a.mu.Unlock()
}

func (a *acked) check(t *testing.T, c *client.Client) {
	t.Helper()
	ctx := context.Background()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range a.edges {
		waitFor(t, "both sides of "+e[0]+"->"+e[1], 30*time.Second, func() bool {
			fwd, err1 := c.Check(ctx, e[0], e[1])
			rev, err2 := c.Check(ctx, e[1], e[0])
			return err1 == nil && err2 == nil && fwd[0].FollowType&2 != 0 && rev[0].FollowType&1 != 0
		})
	}
}

// writer follows continuously through a retrying client until stopped,
// failing the test on any error that reaches it.
func writer(t *testing.T, c *client.Client, tag string, a *acked, stop chan struct{}, wg *sync.WaitGroup) {
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			actor, target := fmt.Sprintf("%s-a%d", tag, i%37), fmt.Sprintf("%s-t%d", tag, i)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			res, err := c.Follow(ctx, actor, []string{target})
			cancel()
			if err != nil {
				t.Errorf("a write failed during the disruption: %v", err)
				return
			}
			if res[0].Code == 0 {
				a.add(actor, target)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// Every node is restarted in turn (leaderships handed over first, as
// followd does on SIGTERM) while a client writes: no error reaches the
// client, and every acknowledged write is there at the end, on both sides.
func TestClusterRollingRestart(t *testing.T) {
	const shards = 8
	tc := newTestCluster(t, 3, shards)
	tc.WaitLeaders(90 * time.Second)
	c, err := client.New(context.Background(), client.Config{Addrs: []string{tc.Nodes[0].Addr, tc.Nodes[1].Addr, tc.Nodes[2].Addr}, Retries: 100, RetryBackoff: 20 * time.Millisecond, RequestTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var a acked
	stop := make(chan struct{})
	var wg sync.WaitGroup
	writer(t, c, "roll", &a, stop, &wg)
	for _, m := range tc.Nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		m.Node.HandOffLeaderships(ctx)
		cancel()
		tc.Stop(m)
		time.Sleep(500 * time.Millisecond)
		tc.Start(m)
		tc.WaitLeaders(90 * time.Second)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if len(a.edges) < 20 {
		t.Fatalf("only %d writes acknowledged", len(a.edges))
	}
	a.check(t, c)
	t.Logf("%d writes acknowledged across the rolling restart, all present on both sides", len(a.edges))
}

// A follower's raft traffic is cut off (in the raft transport, both ways)
// while writes continue on the majority; after healing it catches up.
func TestClusterPartitionedFollowerHeals(t *testing.T) {
	const shards = 4
	tc := newTestCluster(t, 3, shards)
	tc.WaitLeaders(90 * time.Second)
	c := tc.Client(tc.Nodes[0].Addr, tc.Nodes[1].Addr, tc.Nodes[2].Addr)
	// Cut off the node that leads the fewest shards.
	leads := map[string]int{}
	for _, id := range tc.Leaders() {
		leads[id]++
	}
	iso := tc.Nodes[0]
	for _, m := range tc.Nodes {
		if leads[m.ID] < leads[iso.ID] {
			iso = m
		}
	}
	block := func(on bool) {
		for _, m := range tc.Nodes {
			if m == iso {
				continue
			}
			m.Node.RaftMux().Block(iso.Node.RaftMux().Addr(), on)
			iso.Node.RaftMux().Block(m.Node.RaftMux().Addr(), on)
		}
	}
	block(true)
	var a acked
	stop := make(chan struct{})
	var wg sync.WaitGroup
	writer(t, c, "part", &a, stop, &wg)
	// Every shard is led on the majority side and keeps taking writes.
	waitFor(t, "majority leaders", 30*time.Second, func() bool {
		l := tc.Leaders()
		for i := range shards {
			if l[i] == "" || l[i] == iso.ID {
				return false
			}
		}
		return true
	})
	time.Sleep(2 * time.Second)
	block(false)
	close(stop)
	wg.Wait()
	// The healed node catches up: its replicas apply up to the leaders.
	waitFor(t, "the healed node to catch up", 30*time.Second, func() bool {
		for _, s := range iso.Node.LocalReplicas() {
			var leaderIdx uint64
			for _, m := range tc.Nodes {
				if ls := m.Node.Replica(s.Shard()); ls != nil && ls.Ready() {
					leaderIdx = ls.FSM().Index()
				}
			}
			if leaderIdx == 0 || s.FSM().Index() < leaderIdx {
				return false
			}
		}
		return true
	})
	a.check(t, c)
	t.Logf("%d writes during the partition; %s caught up", len(a.edges), iso.ID)
}

// Reads at each consistency level: linearizable and leader reads go to
// the leader (forwarded by any node); "any" reads are served by whatever
// replica the node holds, possibly behind, and catch up.
func TestClusterReadConsistency(t *testing.T) {
	const shards = 4
	tc := newTestCluster(t, 3, shards)
	tc.WaitLeaders(90 * time.Second)
	ctx := context.Background()
	if _, err := tc.Client().Follow(ctx, "reader-a", []string{"star-c"}, client.Sync()); err != nil {
		t.Fatal(err)
	}
	for _, m := range tc.Nodes {
		c := tc.Client(m.Addr)
		for _, cons := range []wire.Consistency{client.Leader, client.Linearizable} {
			p, err := c.Followers(ctx, "star-c", client.ReadConsistency(cons))
			if err != nil || len(p.Items) != 1 {
				t.Fatalf("via %s at %v: %+v %v", m.ID, cons, p, err)
			}
		}
		// Every node holds a replica of every shard (3 nodes, 3 replicas),
		// so an "any" read is local: it converges to the leader's state.
		waitFor(t, "follower read on "+m.ID, 10*time.Second, func() bool {
			p, err := c.Followers(ctx, "star-c", client.ReadConsistency(client.Any))
			return err == nil && len(p.Items) == 1
		})
		cs, err := c.CheckAt(ctx, client.Linearizable, "star-c", "reader-a")
		if err != nil || cs[0].FollowType != 1 {
			t.Fatalf("linearizable check via %s: %+v %v", m.ID, cs, err)
		}
		// The follow's own shard is another raft group: its followers
		// learn the commit index with the leader's next AppendEntries
		// (at the latest CommitTimeout later), independently of the
		// followee's shard.
		waitFor(t, "follower info on "+m.ID, 10*time.Second, func() bool {
			in, err := c.InfoAt(ctx, client.Any, "reader-a")
			return err == nil && in[0].Following == 1
		})
	}
}

// A drained node drops its replicas: each one's raft log stream is emptied
// in the node's shared log, and its directory removed. Made active again,
// the node is given replicas back, of the same shards among others; they
// start from nothing (no stale entries under a fresh raft), catch up from
// the leaders, and hold the same graph as the leaders.
func TestClusterReplicaDroppedAndReadopted(t *testing.T) {
	const shards = 4
	tc := newTestCluster(t, 4, shards)
	tc.WaitLeaders(90 * time.Second)
	writeAll(t, tc.Client(), "before", 20)
	target := tc.Nodes[1]
	var hosted []int
	for _, s := range target.Node.LocalReplicas() {
		hosted = append(hosted, s.Shard())
	}
	if len(hosted) == 0 {
		t.Fatal("the target hosts no replica")
	}
	drain(t, tc, target, shards)
	// dropReplica runs on the reconciler: wait for it to be done with
	// each replica, then look at what is left of them.
	waitFor(t, "dropped replicas deleted", 10*time.Second, func() bool {
		return target.Node.Dropping() == 0
	})
	sh, err := target.Node.RaftLog()
	if err != nil || sh == nil {
		t.Fatalf("shared log: %v %v", sh, err)
	}
	for _, id := range hosted {
		st, err := sh.Stream(uint32(id))
		if err != nil {
			t.Fatal(err)
		}
		if last, _ := st.LastIndex(); last != 0 {
			t.Fatalf("the dropped replica of shard %d left entries up to %d in the shared log", id, last)
		}
		if _, err := os.Stat(filepath.Join(target.Dir, cluster.ShardDir(id))); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the dropped replica of shard %d left its directory: %v", id, err)
		}
	}
	if ids := sh.Streams(); len(ids) != 0 {
		t.Fatalf("streams with entries after every replica was dropped: %v", ids)
	}
	writeAll(t, tc.Client(), "away", 20)

	if err := target.Node.SetDraining(false); err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, m := range tc.Nodes {
		all = append(all, m.ID)
	}
	waitFor(t, "replicas back on "+target.ID, 60*time.Second, func() bool {
		reps := tc.Voters()
		for i := range shards {
			want := cluster.Replicas(i, all, 3)
			if len(reps[i]) != 3 {
				return false
			}
			for _, id := range want {
				if !slices.Contains(reps[i], id) {
					return false
				}
			}
		}
		return true
	})
	back := target.Node.LocalReplicas()
	readopted := 0
	for _, s := range back {
		if slices.Contains(hosted, s.Shard()) {
			readopted++
		}
	}
	if readopted == 0 {
		t.Fatalf("none of shards %v came back to %s", hosted, target.ID)
	}
	writeAll(t, tc.Client(), "after", 20)
	// Each replica on the target converges to its leader's state.
	stats := func(s *cluster.Replica) shard.Stats {
		var st shard.Stats
		s.FSM().ReadAny(func(store *shard.Store) { st = store.Stats() })
		st.BlockBytes, st.IndexBytes = 0, 0 // layout, not content
		return st
	}
	for _, s := range back {
		waitFor(t, fmt.Sprintf("shard %d on %s to catch up", s.Shard(), target.ID), 30*time.Second, func() bool {
			for _, m := range tc.Nodes {
				if ls := m.Node.Replica(s.Shard()); ls != nil && ls.Ready() {
					return s.FSM().Index() >= ls.FSM().Index() && stats(s) == stats(ls)
				}
			}
			return false
		})
	}
	info, err := tc.Client(target.Addr).Info(context.Background(), "hub-before", "hub-away", "hub-after")
	if err != nil || info[0].Followers != 20 || info[1].Followers != 20 || info[2].Followers != 20 {
		t.Fatalf("through %s: %+v %v", target.ID, info, err)
	}
	t.Logf("%s dropped shards %v and got %d of them back, among %d replicas", target.ID, hosted, readopted, len(back))
}

// A node that comes back under its old ID with an empty data directory (a
// replaced disk) must not rejoin its shards as a voter: with an empty log
// it would vote for any candidate, even one missing committed entries.
// It joins as an empty node; each shard's leader removes it and adds it
// back as a non-voter, which catches up before it is promoted (found by
// the chaos suite's wipe-same-id fault: the node used to redo its part of
// the bootstrap and open every replica as an empty voter).
func TestClusterNodeBackWithoutItsData(t *testing.T) {
	const shards = 4
	tc := newTestCluster(t, 3, shards)
	tc.WaitLeaders(90 * time.Second)
	writeAll(t, tc.Client(), "x", 20)
	lost := tc.Nodes[2]
	tc.Stop(lost)
	if err := os.RemoveAll(lost.Dir); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(lost.Dir, 0o755)
	tc.Start(lost)
	// Every shard's configuration must pass through a state without the
	// node as a voter (re-added as a non-voter), then end with it as one.
	demoted := map[int]bool{}
	waitFor(t, "the node re-added to every shard", 90*time.Second, func() bool {
		done := 0
		for _, m := range tc.Nodes[:2] {
			for _, s := range m.Node.LocalReplicas() {
				if !s.Ready() {
					continue
				}
				cf := s.Raft().GetConfiguration()
				if cf.Error() != nil {
					continue
				}
				voter := false
				for _, sv := range cf.Configuration().Servers {
					voter = voter || sv.ID == raft.ServerID(lost.ID) && sv.Suffrage == raft.Voter
				}
				if !voter {
					demoted[s.Shard()] = true
				} else if demoted[s.Shard()] {
					done++
				}
			}
		}
		return done == shards
	})
	// And it holds the data again.
	waitFor(t, "the node's replicas caught up", 30*time.Second, func() bool {
		if len(lost.Node.LocalReplicas()) != shards {
			return false
		}
		for _, s := range lost.Node.LocalReplicas() {
			if s.Raft().AppliedIndex() < 3 {
				return false
			}
		}
		return true
	})
}

// A node back without its data under a new ID at the same addresses (the
// documented procedure for a new disk) must get the replicas of its old
// ID. raft refuses two servers at one address, so adding the new ID used
// to fail for ever while the old ID stayed listed (found by the chaos
// suite's wipe fault).
func TestClusterNodeBackUnderANewID(t *testing.T) {
	const shards = 4
	tc := newTestCluster(t, 3, shards)
	tc.WaitLeaders(90 * time.Second)
	writeAll(t, tc.Client(), "x", 20)
	old := tc.Nodes[2]
	tc.Stop(old)
	if err := os.RemoveAll(old.Dir); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(old.Dir, 0o755)
	old.Config.NodeID = "n3b"
	old.ID = "n3b"
	tc.Start(old)
	waitFor(t, "n3b replacing n3 in every shard", 90*time.Second, func() bool {
		reps := tc.Voters()
		// The healthy nodes' replicas must never be removed on the way
		// (a dead node still within its dead timeout used to count as
		// a voter in place, and a live one was dropped instead).
		for i, r := range reps {
			for _, live := range []string{"n1", "n2"} {
				if !slices.Contains(r, live) {
					t.Fatalf("shard %d dropped healthy %s: voters %v", i, live, r)
				}
			}
		}
		for i := range shards {
			if len(reps[i]) != 3 || !slices.Contains(reps[i], "n3b") || slices.Contains(reps[i], "n3") {
				return false
			}
		}
		return true
	})
}

// drain drains target and waits until every one of the shards has three
// voters, none of them on target, and target hosts no replica.
func drain(t *testing.T, tc *clustertest.Cluster, target *clustertest.Member, shards int) {
	t.Helper()
	if err := target.Node.SetDraining(true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "drain", 60*time.Second, func() bool {
		reps := tc.Voters()
		for i := range shards {
			if len(reps[i]) != 3 || slices.Contains(reps[i], target.ID) {
				return false
			}
		}
		return len(target.Node.LocalReplicas()) == 0
	})
}

// A drained node stays drained when it restarts: it takes no replicas
// back until it is made active again, which also survives a restart.
func TestDrainSurvivesRestart(t *testing.T) {
	const shards = 4
	tc := newTestCluster(t, 4, shards)
	tc.WaitLeaders(90 * time.Second)
	writeAll(t, tc.Client(), "before", 10)
	target := tc.Nodes[1]
	drain(t, tc, target, shards)
	tc.Stop(target)
	tc.Start(target)
	if !target.Node.Draining() {
		t.Fatal("the drained node is active again after a restart")
	}
	// Other nodes see it draining, and place nothing on it.
	waitFor(t, "the others to see the drain", 20*time.Second, func() bool {
		for _, mb := range tc.Nodes[0].Node.Members() {
			if mb.Meta.ID == target.ID {
				return mb.Alive && mb.Meta.State == cluster.NodeDraining
			}
		}
		return false
	})
	time.Sleep(2 * time.Second) // several reconcile rounds
	if n := len(target.Node.LocalReplicas()); n != 0 {
		t.Fatalf("the drained node got %d replicas back after its restart", n)
	}
	if err := target.Node.SetDraining(false); err != nil {
		t.Fatal(err)
	}
	tc.Stop(target)
	tc.Start(target)
	if target.Node.Draining() {
		t.Fatal("the node is draining again after drain --off and a restart")
	}
	waitFor(t, "replicas back on the active node", 60*time.Second, func() bool {
		return len(target.Node.LocalReplicas()) > 0
	})
}

// A node dead for longer than ReapAfter is forgotten by the others (member
// table, status); started again, it rejoins.
func TestDeadMemberReaped(t *testing.T) {
	const shards = 2
	tc := clustertest.NewCluster(t, 3, shards, func(c *cluster.Config) { c.Membership.ReapAfter = 4 * time.Second })
	tc.WaitLeaders(90 * time.Second)
	victim := tc.Nodes[2]
	known := func() (listed, alive bool) {
		for _, mb := range tc.Nodes[0].Node.Members() {
			if mb.Meta.ID == victim.ID {
				return true, mb.Alive
			}
		}
		return false, false
	}
	tc.Stop(victim)
	waitFor(t, "the stopped node marked dead", 20*time.Second, func() bool {
		l, a := known()
		return l && !a
	})
	waitFor(t, "the dead node forgotten", 30*time.Second, func() bool {
		l, _ := known()
		return !l
	})
	tc.Start(victim)
	waitFor(t, "the node back", 30*time.Second, func() bool {
		_, a := known()
		return a
	})
}
