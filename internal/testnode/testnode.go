// Package testnode starts a real single-node followgraph (cluster.Node and
// wire.Server on a loopback port) for tests of the packages above them.
package testnode

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/wire"
	"github.com/hashicorp/go-hclog"
)

// Options configure a test node. The zero value is a 4-shard node without
// a token.
type Options struct {
	Shards int
	Token  string
	// Dir is the data directory; empty means a fresh temporary one.
	Dir string
	// Cluster and Server adjust the configurations before start.
	Cluster func(*cluster.Config)
	Server  func(*wire.ServerConfig)
	// Listen is the address to listen on (default 127.0.0.1:0).
	Listen string
}

// Node is a running test node.
type Node struct {
	Node   *cluster.Node
	Server *wire.Server
	Addr   string
}

// Start starts a node and stops it when the test ends.
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

// StartWith starts a node without a testing.TB (for TestMain and
// examples); logs go to logOut.
func StartWith(o Options, logOut io.Writer) (*Node, error) {
	if o.Shards == 0 {
		o.Shards = 4
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	cfg := cluster.DefaultConfig()
	cfg.DataDir = o.Dir
	cfg.Shards = o.Shards
	cfg.HeartbeatTimeout = 100 * time.Millisecond
	cfg.ElectionTimeout = 100 * time.Millisecond
	cfg.LeaderLeaseTimeout = 50 * time.Millisecond
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: logOut})
	if o.Cluster != nil {
		o.Cluster(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := cluster.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		n.Close()
		return nil, err
	}
	svc := cluster.NewService(n, ln.Addr().String(), "test")
	scfg := wire.DefaultServerConfig()
	scfg.Token = o.Token
	scfg.Welcome = svc.Welcome()
	if o.Server != nil {
		o.Server(&scfg)
	}
	srv, err := wire.NewServer(scfg, svc)
	if err != nil {
		n.Close()
		ln.Close()
		return nil, err
	}
	go srv.Serve(ln)
	return &Node{Node: n, Server: srv, Addr: ln.Addr().String()}, nil
}

// Stop shuts the server and the node down.
func (n *Node) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n.Server.Shutdown(ctx)
	n.Node.Close()
}
