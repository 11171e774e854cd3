// Package clustertest starts real followgraph nodes in the test's process,
// as followd runs them (cluster.Node, router.Router and wire.Server, on
// loopback), for tests of the packages above cluster: a single node
// (Start), or a cluster of several (NewCluster), like net/http/httptest
// for HTTP servers.
package clustertest

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/router"
	"github.com/followgraph/followgraph/wire"
	"github.com/hashicorp/go-hclog"
)

// Options configure a single node. The zero value is a 4-shard node
// without a token, with elections quick enough for tests.
type Options struct {
	Shards int
	Token  string
	// Dir is the data directory; empty means a fresh temporary one.
	Dir string
	// Listen is the address to listen on (default 127.0.0.1:0).
	Listen string
	// Cluster and Server adjust the configurations before start.
	Cluster func(*cluster.Config)
	Server  func(*wire.ServerConfig)
	// Wrap, if set, puts a handler in front of the router (tests inject
	// faults with it).
	Wrap func(*router.Router) wire.Handler
}

// Node is a running node.
type Node struct {
	Node      *cluster.Node
	Router    *router.Router
	Server    *wire.Server
	Addr      string
	peers     *router.Peers
	served    chan error // one end per listener served
	listeners int
}

// Start starts a single node and stops it when the test ends.
func Start(t testing.TB, o Options) *Node {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	n, err := StartWith(o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}

// StartWith starts a single node without a testing.TB (for TestMain and
// examples); logs go to logOut. The caller stops it.
func StartWith(o Options, logOut io.Writer) (*Node, error) {
	if o.Shards == 0 {
		o.Shards = 4
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.Dir == "" {
		return nil, errors.New("clustertest: Options.Dir is empty")
	}
	cfg := cluster.DefaultConfig()
	cfg.DataDir = o.Dir
	cfg.Shards = o.Shards
	cfg.Raft.HeartbeatTimeout = 100 * time.Millisecond
	cfg.Raft.ElectionTimeout = 100 * time.Millisecond
	cfg.Raft.LeaderLeaseTimeout = 50 * time.Millisecond
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: logOut})
	if o.Cluster != nil {
		o.Cluster(&cfg)
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, err
	}
	return serve(cfg, ln, o)
}

// serve opens a node with cfg and serves it on ln, and in a cluster its
// peers on the raft port.
func serve(cfg cluster.Config, ln net.Listener, o Options) (*Node, error) {
	n := &Node{Addr: ln.Addr().String(), served: make(chan error, 2)}
	if cfg.Membership.RaftAddr != "" {
		var err error
		cfg.PeerDialer = new(cluster.PeerDialer)
		if n.peers, err = router.NewPeers(cfg.PeerDialer.Dial); err != nil {
			ln.Close()
			return nil, err
		}
		cfg.Peers = n.peers
	}
	fail := func(err error) (*Node, error) {
		n.closeNode()
		ln.Close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	if n.Node, err = cluster.Open(ctx, cfg); err != nil {
		return fail(err)
	}
	rcfg := router.DefaultConfig()
	rcfg.Addr, rcfg.Version = n.Addr, "test"
	if n.Router, err = router.New(n.Node, n.peers, rcfg); err != nil {
		return fail(err)
	}
	scfg := wire.DefaultServerConfig()
	scfg.Token = o.Token
	scfg.WelcomeFunc = n.Router.Welcome
	scfg.Forwards = n.Node.Clustered()
	if o.Server != nil {
		o.Server(&scfg)
	}
	var h wire.Handler = n.Router
	if o.Wrap != nil {
		h = o.Wrap(n.Router)
	}
	if n.Server, err = wire.NewServer(scfg, h, n.Router); err != nil {
		return fail(err)
	}
	n.listeners = 1
	go func() { n.served <- n.Server.Serve(ln); ln.Close() }()
	if pl := n.Node.PeerListener(); pl != nil {
		n.listeners++
		go func() { n.served <- n.Server.ServePeers(pl) }()
	}
	return n, nil
}

// closeTimeout bounds the wait for a node to close: one that does not is
// abandoned (it has left gossip by then), so that a hang in raft's
// shutdown fails the test's checks rather than hanging it.
const closeTimeout = 30 * time.Second

// Stop shuts the server down, then the node.
func (n *Node) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n.Server.Shutdown(ctx)
	for range n.listeners {
		<-n.served
	}
	n.closeNode()
}

// closeNode closes the node, within closeTimeout, and its peer
// connections.
func (n *Node) closeNode() {
	if n.Node != nil {
		closed := make(chan struct{})
		go func() { n.Node.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(closeTimeout):
		}
	}
	if n.peers != nil {
		n.peers.Close()
	}
}
