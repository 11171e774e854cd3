package cluster_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/cluster/clustertest"
	"github.com/followgraph/followgraph/shard"
)

// quietStats sums, over the running nodes, the shards they lead that are
// quiet, and the idle RPCs their transports answered from beats.
func quietStats(tc *clustertest.Cluster) (quiet int, answers uint64) {
	for _, m := range tc.Running() {
		for _, rs := range m.Node.Status().Replicas {
			if rs.Quiet {
				quiet++
			}
			answers += rs.QuietAnswers
		}
	}
	return quiet, answers
}

// terms returns every running replica's raft term.
func terms(tc *clustertest.Cluster) map[string]string {
	out := map[string]string{}
	for _, m := range tc.Running() {
		for _, r := range m.Node.LocalReplicas() {
			out[fmt.Sprintf("%s/%d", m.ID, r.Status().Shard)] = r.Raft().Stats()["term"]
		}
	}
	return out
}

// TestQuietShards: idle shards go quiet and stay led without a single
// election (followers hear from the leader through the nodes' beats),
// writes and reads on quiet shards work, and when the leader of a quiet
// shard stops, writes to the shard resume within 3 s.
func TestQuietShards(t *testing.T) {
	const shards = 4
	tc := clustertest.NewCluster(t, 3, shards, func(c *cluster.Config) {
		c.Raft.QuietAfter = 300 * time.Millisecond
		c.Raft.HeartbeatTimeout, c.Raft.ElectionTimeout, c.Raft.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
	})
	tc.WaitLeaders(90 * time.Second)
	c := tc.Client()
	writeAll(t, c, "pre", 20)

	waitFor(t, "every shard quiet", 30*time.Second, func() bool {
		q, _ := quietStats(tc)
		return q == shards
	})
	leaders, before := tc.Leaders(), terms(tc)
	_, answered := quietStats(tc)
	// Eight heartbeat timeouts: without beats, every follower would have
	// started an election.
	time.Sleep(4 * time.Second)
	if got := tc.Leaders(); !maps.Equal(got, leaders) {
		t.Fatalf("leaders changed while quiet: %v, then %v", leaders, got)
	}
	if got := terms(tc); !maps.Equal(got, before) {
		t.Fatalf("terms changed while quiet (an election ran): %v, then %v", before, got)
	}
	if q, a := quietStats(tc); q != shards || a <= answered {
		t.Fatalf("after 4 s: %d quiet shards, %d answers (was %d)", q, a, answered)
	}

	// Quiet shards serve writes and reads (a read renews the lease, which
	// wakes the shard first).
	writeAll(t, c, "post", 20)
	info, err := c.Info(context.Background(), "hub-pre", "hub-post")
	if err != nil || info[0].Followers != 20 || info[1].Followers != 20 {
		t.Fatalf("info after quiet: %+v %v", info, err)
	}
	waitFor(t, "every shard quiet again", 30*time.Second, func() bool {
		q, _ := quietStats(tc)
		return q == shards
	})
	if got := terms(tc); !maps.Equal(got, before) {
		t.Fatalf("terms changed across wake and quiet: %v, then %v", before, got)
	}

	// The leader of quiet shard 0 stops.
	var victim *clustertest.Member
	for _, m := range tc.Nodes {
		if m.ID == tc.Leaders()[0] {
			victim = m
		}
	}
	var actor string
	for i := 0; actor == ""; i++ {
		if a := fmt.Sprintf("a%d", i); shard.Of(a, shards) == 0 {
			actor = a
		}
	}
	tc.Stop(victim)
	stopped := time.Now()
	c2 := tc.Client()
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c2.Follow(ctx, actor, []string{fmt.Sprintf("t%d", i)}, client.Sync())
		cancel()
		if err == nil {
			break
		}
		if time.Since(stopped) > 10*time.Second {
			t.Fatalf("no write to quiet shard 0 succeeded within 10 s of stopping its leader %s: %v", victim.ID, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	gap := time.Since(stopped)
	t.Logf("writes to quiet shard 0 resumed %v after its leader %s stopped", gap.Round(time.Millisecond), victim.ID)
	if gap > 3*time.Second {
		t.Fatalf("writes to a quiet shard resumed %v after its leader stopped, want within 3 s", gap)
	}
}
