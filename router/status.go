package router

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/shard"
	"github.com/followgraph/followgraph/wire"
)

// Status describes this node: its replicas and gossip's members.
func (r *Router) Status(ctx context.Context) (wire.Status, error) {
	ns := r.node.Status()
	st := wire.Status{NodeID: ns.NodeID, Server: r.cfg.Version, ClusterID: ns.ClusterID,
		UptimeSec: uint64(time.Since(r.started).Seconds()), Addr: r.cfg.Addr}
	for _, rs := range ns.Replicas {
		ss := shardStatusOf(rs)
		if rs.Leader {
			ss.LeaderAddr = r.cfg.Addr
		}
		st.Shards = append(st.Shards, ss)
	}
	for _, m := range r.node.Members() {
		st.Members = append(st.Members, wire.MemberStatus{NodeID: m.Meta.ID, ClientAddr: m.Meta.ClientAddr, RaftAddr: m.Meta.RaftAddr,
			Alive: m.Alive, Draining: m.Meta.State == cluster.NodeDraining, Leads: m.Meta.Leads.Count(), Hosts: m.Meta.Hosts.Count()})
	}
	return st, nil
}

// shardStatusOf is the wire form of a replica's status.
func shardStatusOf(rs cluster.ReplicaStatus) wire.ShardStatus {
	var removals []wire.Removal
	for _, rm := range rs.Removals {
		removals = append(removals, wire.Removal{User: rm.User, Removed: rm.Removed, Remaining: uint64(rm.Remaining)})
	}
	return wire.ShardStatus{Removals: removals,
		Shard: rs.Shard, Ready: rs.Ready, Leader: rs.Leader, LeaderID: rs.LeaderID, LeaderAddr: rs.LeaderAddr,
		AppliedIndex: rs.AppliedIndex, Halted: rs.Halted, Recovered: rs.Recovered, Voters: rs.Voters, Nonvoters: rs.Nonvoters,
		Users: uint64(rs.Store.Users), Following: uint64(rs.Store.Following), Followers: uint64(rs.Store.Followers), Mutual: uint64(rs.Store.Mutual),
		LagRecords: uint64(rs.Lag.Records), LagOldestMs: uint64(rs.Lag.Oldest.Milliseconds()), HookLag: uint64(rs.HookLag),
	}
}

// nodeStatusOf is the cluster's form of another node's status.
func nodeStatusOf(st wire.Status) cluster.NodeStatus {
	ns := cluster.NodeStatus{NodeID: st.NodeID, ClusterID: st.ClusterID}
	for _, ss := range st.Shards {
		ns.Replicas = append(ns.Replicas, cluster.ReplicaStatus{
			Shard: ss.Shard, Ready: ss.Ready, Leader: ss.Leader, LeaderID: ss.LeaderID, LeaderAddr: ss.LeaderAddr,
			AppliedIndex: ss.AppliedIndex, Halted: ss.Halted, Recovered: ss.Recovered, Voters: ss.Voters, Nonvoters: ss.Nonvoters,
			Store: shard.Stats{Users: int(ss.Users), Following: int64(ss.Following), Followers: int64(ss.Followers), Mutual: int64(ss.Mutual)},
			Lag:   cluster.Lag{Records: int(ss.LagRecords), Oldest: time.Duration(ss.LagOldestMs) * time.Millisecond}, HookLag: int(ss.HookLag),
			Removals: removalsOf(ss.Removals),
		})
	}
	return ns
}

func removalsOf(rs []wire.Removal) []cluster.RemovalProgress {
	var out []cluster.RemovalProgress
	for _, rm := range rs {
		out = append(out, cluster.RemovalProgress{User: rm.User, Removed: rm.Removed, Remaining: int(rm.Remaining)})
	}
	return out
}

// ShardMap names every shard's leader, as this node knows it.
func (r *Router) ShardMap(ctx context.Context) (wire.ShardMap, error) {
	m := wire.ShardMap{Shards: r.node.Shards()}
	for i := range r.node.Shards() {
		l := wire.ShardLeader{Shard: i}
		if rep := r.node.Replica(i); rep != nil && rep.Ready() {
			l.LeaderID, l.Addr = r.node.ID(), r.cfg.Addr
		} else if mb, ok := r.node.Leader(i); ok {
			l.LeaderID, l.Addr = mb.Meta.ID, mb.Meta.ClientAddr
		}
		m.Leaders = append(m.Leaders, l)
	}
	m.Version = r.maps.version(m)
	return m, nil
}

// mapVersions numbers shard maps: the version grows whenever this node
// builds one that differs from the last. Clients compare versions from one
// node only, and refresh on "not leader" anyway.
type mapVersions struct {
	mu   sync.Mutex
	hash uint64
	ver  uint64
}

func (v *mapVersions) version(m wire.ShardMap) uint64 {
	h := fnv.New64a()
	for _, l := range m.Leaders {
		fmt.Fprintf(h, "%d %s %s;", l.Shard, l.LeaderID, l.Addr)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if sum := h.Sum64(); sum != v.hash || v.ver == 0 {
		v.hash = sum
		v.ver++
	}
	return v.ver
}
