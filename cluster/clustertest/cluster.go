package clustertest

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/internal/testlog"
	"github.com/followgraph/followgraph/internal/testport"
	"github.com/followgraph/followgraph/router"
	"github.com/hashicorp/raft"
)

// Cluster is several cluster-mode nodes in this process, each with its
// raft port, gossip port and client server on loopback.
type Cluster struct {
	T     testing.TB
	Nodes []*Member
	Join  []string // every node's gossip address
	// LogLevel is the nodes' log level (into the test's log).
	LogLevel string
}

// Member is one node of a Cluster. Node and Router are those of its
// current run (replaced by a restart).
type Member struct {
	ID, Dir, Addr string
	Config        cluster.Config
	Node          *cluster.Node
	Router        *router.Router
	Stopped       bool
	run           *Node
}

// NewCluster starts n nodes of a new cluster of shards shards, which
// bootstrap it together, and stops them when the test ends. tune, if not
// nil, adjusts each node's configuration (after the test defaults). It
// returns once the nodes are open; elections go on in the background (see
// WaitLeaders).
func NewCluster(t testing.TB, n, shards int, tune func(*cluster.Config)) *Cluster {
	c := &Cluster{T: t, LogLevel: "warn"}
	for i := range n {
		m := &Member{ID: fmt.Sprintf("n%d", i+1), Dir: t.TempDir(), Addr: testport.Addr(t)}
		cfg := cluster.DefaultConfig()
		cfg.NodeID, cfg.DataDir, cfg.Shards = m.ID, m.Dir, shards
		mc := &cfg.Membership
		mc.RaftAddr, mc.GossipAddr, mc.ClientAddr = testport.Addr(t), testport.Addr(t), m.Addr
		mc.BootstrapExpect = n
		mc.FastGossip = true
		mc.ReconcileInterval = 200 * time.Millisecond
		mc.DeadTimeout = 3 * time.Second
		// Generous for a loaded 2-core machine running -race: a leader
		// that misses its lease steps down, and tests want stable leaders.
		cfg.Raft.HeartbeatTimeout, cfg.Raft.ElectionTimeout, cfg.Raft.LeaderLeaseTimeout = time.Second, time.Second, time.Second
		if tune != nil {
			tune(&cfg)
		}
		m.Config = cfg
		c.Join = append(c.Join, mc.GossipAddr)
		c.Nodes = append(c.Nodes, m)
	}
	t.Cleanup(c.StopAll)
	for _, m := range c.Nodes {
		m.Config.Membership.Join = c.Join
		c.Start(m)
	}
	return c
}

// Start starts (or restarts) m on its configuration and data directory.
func (c *Cluster) Start(m *Member) {
	c.T.Helper()
	cfg := m.Config
	cfg.Logger = testlog.Logger(c.T, m.ID, c.LogLevel)
	ln, err := net.Listen("tcp", m.Addr)
	if err != nil {
		c.T.Fatal(err)
	}
	run, err := serve(cfg, ln, Options{})
	if err != nil {
		c.T.Fatalf("%s: %v", m.ID, err)
	}
	m.run, m.Node, m.Router, m.Stopped = run, run.Node, run.Router, false
}

// Stop stops m (its server, then its node).
func (c *Cluster) Stop(m *Member) { m.Stop() }

// Stop stops the member's server, then its node; it can be started again
// with Cluster.Start.
func (m *Member) Stop() {
	if m.Stopped {
		return
	}
	m.Stopped = true
	m.run.Stop()
}

// StopAll stops every running node, all at once: stopped one by one, the
// others would start moving replicas around.
func (c *Cluster) StopAll() {
	var wg sync.WaitGroup
	for _, m := range c.Nodes {
		wg.Go(func() { c.Stop(m) })
	}
	wg.Wait()
}

// Running returns the members that run.
func (c *Cluster) Running() []*Member {
	var out []*Member
	for _, m := range c.Nodes {
		if !m.Stopped {
			out = append(out, m)
		}
	}
	return out
}

// AddNode starts one more node, configured as the first one, that joins
// the running cluster.
func (c *Cluster) AddNode() *Member {
	m := &Member{ID: fmt.Sprintf("n%d", len(c.Nodes)+1), Dir: c.T.TempDir(), Addr: testport.Addr(c.T)}
	cfg := c.Nodes[0].Config
	cfg.NodeID, cfg.DataDir = m.ID, m.Dir
	mc := &cfg.Membership
	mc.ClientAddr, mc.RaftAddr, mc.GossipAddr = m.Addr, testport.Addr(c.T), testport.Addr(c.T)
	mc.Join = c.Join
	m.Config = cfg
	c.Nodes = append(c.Nodes, m)
	c.Start(m)
	return m
}

// Client returns a client of addrs (default: every running node), with
// retries that ride out elections on a loaded machine, closed when the
// test ends.
func (c *Cluster) Client(addrs ...string) *client.Client {
	c.T.Helper()
	if len(addrs) == 0 {
		for _, m := range c.Running() {
			addrs = append(addrs, m.Addr)
		}
	}
	cl, err := client.New(context.Background(), client.Config{Addrs: addrs, Retries: 60, RetryBackoff: 20 * time.Millisecond, RequestTimeout: 30 * time.Second})
	if err != nil {
		c.T.Fatal(err)
	}
	c.T.Cleanup(func() { cl.Close() })
	return cl
}

// Leaders returns, per shard, the ID of the node that serves it as leader.
func (c *Cluster) Leaders() map[int]string {
	out := map[int]string{}
	for _, m := range c.Running() {
		for _, rs := range m.Node.Status().Replicas {
			if rs.Ready {
				out[rs.Shard] = m.ID
			}
		}
	}
	return out
}

// WaitLeaders waits until every shard has a leader, known to every
// running node.
func (c *Cluster) WaitLeaders(d time.Duration) {
	c.T.Helper()
	defer func() {
		if c.T.Failed() {
			c.Dump()
		}
	}()
	WaitFor(c.T, "a leader for every shard", d, func() bool {
		shards := c.Nodes[0].Config.Shards
		if len(c.Leaders()) != shards {
			return false
		}
		for _, m := range c.Running() {
			for i := range shards {
				if _, ok := m.Node.Leader(i); !ok {
					return false
				}
			}
		}
		return true
	})
}

// Voters returns, per shard, the voters in its leader's configuration.
func (c *Cluster) Voters() map[int][]string {
	out := map[int][]string{}
	for _, m := range c.Running() {
		for _, rs := range m.Node.Status().Replicas {
			if rs.Ready {
				out[rs.Shard] = rs.Voters
			}
		}
	}
	return out
}

// Dump logs every running node's view, to diagnose a failure.
func (c *Cluster) Dump() {
	for _, m := range c.Running() {
		for _, rs := range m.Node.Status().Replicas {
			c.T.Logf("%s shard %d: leader %v ready %v leader-id %s applied %d voters %v", m.ID, rs.Shard, rs.Leader, rs.Ready, rs.LeaderID, rs.AppliedIndex, rs.Voters)
		}
		for _, mb := range m.Node.Members() {
			c.T.Logf("%s sees %s alive=%v leads=%d hosts=%d", m.ID, mb.Meta.ID, mb.Alive, mb.Meta.Leads.Count(), mb.Meta.Hosts.Count())
		}
	}
}

// WaitFor polls cond until it holds, failing the test after d.
func WaitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ServerIDs returns the IDs in a raft configuration with suffrage s.
func ServerIDs(conf raft.Configuration, s raft.ServerSuffrage) []string {
	var out []string
	for _, sv := range conf.Servers {
		if sv.Suffrage == s {
			out = append(out, string(sv.ID))
		}
	}
	return out
}
