// Package router serves the client protocol from a cluster.Node: it is the
// wire.Handler and wire.ClusterHandler of followd, between the protocol
// (package wire) and the replicas (package cluster).
//
// It owns, for every request that enters the node:
//   - validation: user IDs and request limits are checked here, before
//     routing (an invalid ID has no shard), so the layers below trust them;
//   - routing: a request for a shard this node leads goes to the local
//     replica; in a cluster, any other goes to the shard's leader (once: a
//     request that arrives from another node is not forwarded again), so a
//     simple client may talk to any node;
//   - the conversions between wire messages and the cluster's types;
//   - the node-to-node calls (Peers): forwarding, and, for the cluster
//     package, relay deliveries and peer status, over the client protocol.
package router

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/wire"
)

// Config configures a Router. Start from DefaultConfig.
type Config struct {
	// Addr is this node's client address as clients and other nodes
	// should use it (status, shard maps); empty on a node nobody else
	// reaches.
	Addr string
	// Version names the build in handshakes and status.
	Version string
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{Version: "dev"} }

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			return errors.New("router: Addr must be host:port: " + err.Error())
		}
	}
	if c.Version == "" {
		return errors.New("router: Version is empty")
	}
	return nil
}

// Router serves the protocol from a node. It is safe for concurrent use.
type Router struct {
	node    *cluster.Node
	peers   *Peers // nil on a single node: nothing is forwarded
	cfg     Config
	started time.Time
	maps    mapVersions
}

// New returns the router of node. peers reaches the other nodes of a
// cluster (nil on a single node).
func New(node *cluster.Node, peers *Peers, cfg Config) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Router{node: node, peers: peers, cfg: cfg, started: time.Now()}, nil
}

// Welcome is the handshake response of this node (a cluster node learns
// its cluster ID only when it joins one, so it is asked at every
// handshake).
func (r *Router) Welcome() wire.Welcome {
	return wire.Welcome{Server: r.cfg.Version, NodeID: r.node.ID(), Shards: r.node.Shards(), ClusterID: r.node.ClusterID()}
}

// route returns the local replica that serves user's shard, or the client
// address of the node to forward to, or an error. With consistency Any,
// any local replica serves.
func (r *Router) route(ctx context.Context, user string, c wire.Consistency) (*cluster.Replica, string, error) {
	return r.routeShard(ctx, r.node.ShardOf(user), c)
}

func (r *Router) routeShard(ctx context.Context, i int, c wire.Consistency) (*cluster.Replica, string, error) {
	return r.routeShardVia(i, c, !wire.FromPeer(ctx))
}

// routeShardVia is routeShard, forwarding to the leader only if forward
// is set.
func (r *Router) routeShardVia(i int, c wire.Consistency, forward bool) (*cluster.Replica, string, error) {
	rep := r.node.Replica(i)
	switch {
	case rep != nil && rep.Ready():
		return rep, "", nil
	case rep != nil && c == wire.Any:
		return rep, "", nil
	case rep != nil && !r.node.Clustered():
		return rep, "", nil // single node: the replica says why it is not ready
	}
	if m, ok := r.node.Leader(i); ok && m.Meta.ID != r.node.ID() && forward && r.peers != nil {
		return nil, m.Meta.ClientAddr, nil
	}
	return nil, "", r.node.NotLeaderError(i)
}
