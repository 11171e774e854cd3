package cluster

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/wire"
	"github.com/hashicorp/go-hclog"
)

// testCluster runs several cluster-mode nodes in this process, each with
// its raft port, gossip port and client protocol server on loopback.
type testCluster struct {
	t     *testing.T
	nodes []*testMember
	join  []string
}

type testMember struct {
	id      string
	dir     string
	cfg     Config
	node    *Node
	server  *wire.Server
	addr    string
	stopped bool
}

var testLogLevel = "warn"

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func newTestCluster(t *testing.T, n, shards int) *testCluster {
	tc := &testCluster{t: t}
	for i := range n {
		m := &testMember{id: fmt.Sprintf("n%d", i+1), dir: t.TempDir(), addr: freePort(t)}
		cfg := DefaultConfig()
		cfg.NodeID = m.id
		cfg.DataDir = m.dir
		cfg.Shards = shards
		cfg.RaftAddr = freePort(t)
		cfg.GossipAddr = freePort(t)
		cfg.ClientAddr = m.addr
		cfg.BootstrapExpect = n
		cfg.FastGossip = true
		cfg.HeartbeatTimeout = 300 * time.Millisecond
		cfg.ElectionTimeout = 300 * time.Millisecond
		cfg.LeaderLeaseTimeout = 150 * time.Millisecond
		cfg.ReconcileInterval = 200 * time.Millisecond
		cfg.DeadTimeout = 3 * time.Second
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: m.id, Level: hclog.LevelFromString(testLogLevel), Output: testWriter{t}})
		m.cfg = cfg
		tc.join = append(tc.join, cfg.GossipAddr)
		tc.nodes = append(tc.nodes, m)
	}
	for _, m := range tc.nodes {
		m.cfg.Join = tc.join
		tc.start(m)
	}
	t.Cleanup(tc.stopAll)
	return tc
}

func (tc *testCluster) start(m *testMember) {
	tc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Open(ctx, m.cfg)
	if err != nil {
		tc.t.Fatalf("%s: %v", m.id, err)
	}
	ln, err := net.Listen("tcp", m.addr)
	if err != nil {
		n.Close()
		tc.t.Fatal(err)
	}
	svc := NewService(n, m.addr, "test")
	scfg := wire.DefaultServerConfig()
	scfg.Welcome = svc.Welcome()
	scfg.Forwards = true
	srv, err := wire.NewServer(scfg, svc)
	if err != nil {
		tc.t.Fatal(err)
	}
	go srv.Serve(ln)
	m.node, m.server, m.stopped = n, srv, false
}

func (tc *testCluster) stop(m *testMember) {
	if m.stopped {
		return
	}
	m.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m.server.Shutdown(ctx)
	m.node.Close()
}

func (tc *testCluster) stopAll() {
	for _, m := range tc.nodes {
		tc.stop(m)
	}
}

// leaders returns, per shard, the ID of the node that serves it as leader.
func (tc *testCluster) leaders(shards int) map[int]string {
	out := map[int]string{}
	for _, m := range tc.nodes {
		if m.stopped {
			continue
		}
		for _, s := range m.node.localShards() {
			if s.Ready() {
				out[s.id] = m.id
			}
		}
	}
	return out
}

// waitLeaders waits until every shard has a leader, known to every
// running node's gossip.
func (tc *testCluster) waitLeaders(shards int, d time.Duration) {
	tc.t.Helper()
	defer func() {
		if tc.t.Failed() {
			tc.dump()
		}
	}()
	waitFor(tc.t, "a leader for every shard", d, func() bool {
		if len(tc.leaders(shards)) != shards {
			return false
		}
		for _, m := range tc.nodes {
			if m.stopped {
				continue
			}
			for i := range shards {
				if _, ok := m.node.leaderOf(i); !ok {
					return false
				}
			}
		}
		return true
	})
}

func (tc *testCluster) client(addrs ...string) *client.Client {
	tc.t.Helper()
	if len(addrs) == 0 {
		for _, m := range tc.nodes {
			if !m.stopped {
				addrs = append(addrs, m.addr)
			}
		}
	}
	c, err := client.New(context.Background(), client.Config{Addrs: addrs})
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.t.Cleanup(func() { c.Close() })
	return c
}

func TestClusterBootstrapAndServe(t *testing.T) {
	const shards = 8
	tc := newTestCluster(t, 3, shards)
	tc.waitLeaders(shards, 30*time.Second)
	// Every shard has three voters, one of them leading, and exactly one
	// bootstrap happened: the configurations agree.
	for i := range shards {
		var voters int
		for _, m := range tc.nodes {
			if s := m.node.Shard(i); s != nil {
				voters++
				cf := s.raft.GetConfiguration()
				if err := cf.Error(); err != nil || len(cf.Configuration().Servers) != 3 {
					t.Fatalf("shard %d on %s: configuration %v %v", i, m.id, cf.Configuration().Servers, err)
				}
			}
		}
		if voters != 3 {
			t.Fatalf("shard %d has %d replicas", i, voters)
		}
	}
	// The cluster ID and the cursor key agree.
	for _, m := range tc.nodes[1:] {
		if m.node.meta.ClusterID != tc.nodes[0].node.meta.ClusterID || string(m.node.cfg.Store.CursorKey) != string(tc.nodes[0].node.cfg.Store.CursorKey) {
			t.Fatalf("%s: cluster %s, %s: cluster %s", m.id, m.node.meta.ClusterID, tc.nodes[0].id, tc.nodes[0].node.meta.ClusterID)
		}
	}
	ctx := context.Background()
	// A client of a single node reaches every shard through forwarding.
	for _, m := range tc.nodes {
		c := tc.client(m.addr)
		actor := "fan-of-" + m.id
		var targets []string
		for i := range 12 {
			targets = append(targets, fmt.Sprintf("star%d", i))
		}
		res, err := c.Follow(ctx, actor, targets, client.Sync())
		if err != nil {
			t.Fatalf("via %s: %v", m.id, err)
		}
		for _, r := range res {
			if r.Code != 0 {
				t.Fatalf("via %s: %+v", m.id, r)
			}
		}
		for _, tg := range targets {
			p, err := c.Followers(ctx, tg)
			if err != nil {
				t.Fatalf("followers of %s via %s: %v", tg, m.id, err)
			}
			found := false
			for _, it := range p.Items {
				found = found || it.UserID == actor
			}
			if !found {
				t.Fatalf("%s not among the followers of %s (via %s): %+v", actor, tg, m.id, p)
			}
		}
	}
	// Info spans shards.
	c := tc.client()
	infos, err := c.Info(ctx, "star0", "star1", "fan-of-n1")
	if err != nil || infos[0].Followers != 3 || infos[2].Following != 12 {
		t.Fatalf("info: %+v %v", infos, err)
	}
}

// dump logs every node's view, to diagnose a failure.
func (tc *testCluster) dump() {
	for _, m := range tc.nodes {
		if m.stopped {
			continue
		}
		for _, s := range m.node.localShards() {
			addr, id := s.raft.LeaderWithID()
			tc.t.Logf("%s shard %d: state %v ready %v leader %s@%s last %d", m.id, s.id, s.raft.State(), s.Ready(), id, addr, s.raft.LastIndex())
		}
		for _, mb := range m.node.Members() {
			tc.t.Logf("%s sees %s alive=%v leads=%d hosts=%d", m.id, mb.Meta.ID, mb.Alive, mb.Meta.Leads.Count(), mb.Meta.Hosts.Count())
		}
	}
}
