package router_test

import (
	"context"
	"errors"
	"testing"

	"github.com/followgraph/followgraph/cluster/clustertest"
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/wire"
)

// appliedIndexes returns every replica's applied raft index.
func appliedIndexes(n *clustertest.Node) map[int]uint64 {
	out := map[int]uint64{}
	for _, rs := range n.Node.Status().Replicas {
		out[rs.Shard] = rs.AppliedIndex
	}
	return out
}

// Invalid requests are refused where they enter the node, before routing:
// they never reach a replica's log.
func TestInvalidRequestsStopAtTheRouter(t *testing.T) {
	n := clustertest.Start(t, clustertest.Options{})
	r := n.Router
	ctx := context.Background()
	before := appliedIndexes(n)
	many := make([]string, 21)
	for i := range many {
		many[i] = "x"
	}
	for name, req := range map[string]wire.WriteRequest{
		"empty actor":   {Actor: "", Targets: []string{"x"}},
		"control char":  {Actor: "a\x01", Targets: []string{"x"}},
		"bad utf-8":     {Actor: "a\xff", Targets: []string{"x"}},
		"65 bytes":      {Actor: string(make([]byte, 65)), Targets: []string{"x"}},
		"no targets":    {Actor: "a", Targets: nil},
		"21 targets":    {Actor: "a", Targets: many},
		"unfollow, bad": {Actor: "", Targets: []string{"x"}},
	} {
		op := wire.OpFollow
		if name == "unfollow, bad" {
			op = wire.OpUnfollow
		}
		if _, err := r.Write(ctx, op, req); !errors.Is(err, codes.ErrInvalidParam) {
			t.Errorf("%s: %v, want invalid parameter", name, err)
		}
	}
	if _, err := r.List(ctx, wire.OpFollowers, wire.ListRequest{User: ""}, func([]byte, int64) {}); !errors.Is(err, codes.ErrInvalidParam) {
		t.Errorf("list of an invalid user: %v", err)
	}
	if _, err := r.Check(ctx, wire.CheckRequest{Actor: "\x00", Targets: []string{"b"}}); !errors.Is(err, codes.ErrInvalidParam) {
		t.Errorf("check by an invalid actor: %v", err)
	}
	if _, err := r.Info(ctx, wire.UsersRequest{}); !errors.Is(err, codes.ErrInvalidParam) {
		t.Errorf("info of no users: %v", err)
	}
	after := appliedIndexes(n)
	for i, idx := range before {
		if after[i] != idx {
			t.Errorf("shard %d applied %d entries for invalid requests", i, after[i]-idx)
		}
	}
}

// A valid request is served by the local replica; an invalid ID among
// Info's users gets its item's code, and the others their counts.
func TestServesLocally(t *testing.T) {
	n := clustertest.Start(t, clustertest.Options{})
	r := n.Router
	ctx := context.Background()
	res, err := r.Write(ctx, wire.OpFollow, wire.WriteRequest{Actor: "a", Targets: []string{"b", "a"}, Sync: true})
	if err != nil || len(res) != 2 || res[0].Code != codes.OK || res[1].Code != codes.InvalidParam {
		t.Fatalf("follow: %+v %v", res, err)
	}
	var got []string
	next, err := r.List(ctx, wire.OpFollowers, wire.ListRequest{User: "b"}, func(id []byte, _ int64) { got = append(got, string(id)) })
	if err != nil || next != "" || len(got) != 1 || got[0] != "a" {
		t.Fatalf("followers of b: %v %q %v", got, next, err)
	}
	infos, err := r.Info(ctx, wire.UsersRequest{Users: []string{"a", "", "b"}})
	if err != nil || infos[0].Following != 1 || infos[1].Code != codes.InvalidParam || infos[2].Followers != 1 {
		t.Fatalf("info: %+v %v", infos, err)
	}
	cs, err := r.Check(ctx, wire.CheckRequest{Actor: "b", Targets: []string{"a"}})
	if err != nil || cs[0].FollowType != 1 {
		t.Fatalf("check: %+v %v", cs, err)
	}
}

// The cluster operations check their shards, and a single node cannot be
// drained.
func TestClusterOperationsOnASingleNode(t *testing.T) {
	n := clustertest.Start(t, clustertest.Options{Shards: 2})
	r := n.Router
	ctx := context.Background()
	for _, req := range []wire.DeliverRequest{{Dst: 2, Src: 0}, {Dst: 0, Src: 2}, {Dst: -1, Src: 0}} {
		if _, err := r.Deliver(ctx, req); !errors.Is(err, codes.ErrInvalidParam) {
			t.Errorf("deliver %d -> %d: %v", req.Src, req.Dst, err)
		}
	}
	if _, err := r.ScanUsers(ctx, wire.ScanRequest{Shard: 2}); !errors.Is(err, codes.ErrInvalidParam) {
		t.Errorf("scan of shard 2: %v", err)
	}
	if err := r.Drain(ctx, wire.DrainRequest{Node: n.Node.ID(), On: true}); !errors.Is(err, codes.ErrInvalidParam) {
		t.Errorf("drain a single node: %v", err)
	}
	if err := r.Drain(ctx, wire.DrainRequest{Node: "elsewhere", On: true}); !errors.Is(err, codes.ErrInvalidParam) {
		t.Errorf("drain an unknown node: %v", err)
	}
}

// The shard map's version changes only when the map does.
func TestShardMapVersion(t *testing.T) {
	n := clustertest.Start(t, clustertest.Options{})
	ctx := context.Background()
	m1, err := n.Router.ShardMap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := n.Router.ShardMap(ctx)
	if m1.Version == 0 || m2.Version != m1.Version || m1.Shards != 4 || len(m1.Leaders) != 4 {
		t.Fatalf("maps %+v and %+v", m1, m2)
	}
	for _, l := range m1.Leaders {
		if l.LeaderID != n.Node.ID() || l.Addr != n.Addr {
			t.Fatalf("leader %+v, want %s at %s", l, n.Node.ID(), n.Addr)
		}
	}
}
