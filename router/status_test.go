package router

import (
	"reflect"
	"testing"
	"time"

	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/shard"
	"github.com/followgraph/followgraph/wire"
	"pgregory.net/rapid"
)

// A replica's status survives the trip to another node: converted to the
// wire form, encoded, parsed and converted back, every field that crosses
// the wire is unchanged (placement decides from them).
func TestStatusRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ids := rapid.SliceOfN(rapid.StringMatching(`n[0-9]{1,2}`), 0, 5)
		var in []cluster.ReplicaStatus
		for i := range rapid.IntRange(0, 8).Draw(t, "replicas") {
			in = append(in, cluster.ReplicaStatus{
				Shard: i, Ready: rapid.Bool().Draw(t, "ready"), Leader: rapid.Bool().Draw(t, "leader"),
				LeaderID: rapid.StringMatching(`(n[0-9])?`).Draw(t, "leaderID"), LeaderAddr: rapid.StringMatching(`(127\.0\.0\.1:[0-9]{4})?`).Draw(t, "addr"),
				AppliedIndex: rapid.Uint64().Draw(t, "applied"), Halted: rapid.StringMatching(`(halted: [a-z ]{0,20})?`).Draw(t, "halted"),
				Voters: ids.Draw(t, "voters"), Nonvoters: ids.Draw(t, "nonvoters"),
				Store: shard.Stats{Users: rapid.IntRange(0, 1<<30).Draw(t, "users"), Following: rapid.Int64Range(0, 1<<40).Draw(t, "following"),
					Followers: rapid.Int64Range(0, 1<<40).Draw(t, "followers"), Mutual: rapid.Int64Range(0, 1<<40).Draw(t, "mutual")},
				Lag: cluster.Lag{Records: rapid.IntRange(0, 1<<30).Draw(t, "lag"), Oldest: time.Duration(rapid.Int64Range(0, 1<<30).Draw(t, "oldest")) * time.Millisecond},
			})
		}
		st := wire.Status{NodeID: "n1", ClusterID: "c"}
		for _, rs := range in {
			st.Shards = append(st.Shards, shardStatusOf(rs))
		}
		parsed, err := wire.ParseStatus(wire.AppendStatus(nil, st))
		if err != nil {
			t.Fatal(err)
		}
		out := nodeStatusOf(parsed)
		if out.NodeID != "n1" || out.ClusterID != "c" || len(out.Replicas) != len(in) {
			t.Fatalf("node status %+v", out)
		}
		for i := range in {
			norm := func(rs cluster.ReplicaStatus) cluster.ReplicaStatus {
				if len(rs.Voters) == 0 {
					rs.Voters = nil
				}
				if len(rs.Nonvoters) == 0 {
					rs.Nonvoters = nil
				}
				return rs
			}
			if a, b := norm(in[i]), norm(out.Replicas[i]); !reflect.DeepEqual(a, b) {
				t.Fatalf("replica %d:\n sent %+v\n  got %+v", i, a, b)
			}
		}
	})
}
