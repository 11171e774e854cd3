package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/cluster/clustertest"
	"github.com/followgraph/followgraph/shard"
)

// replicaSums sums, over the running nodes' replicas of shard s, the
// records still in the outbox, the redelivered records skipped, and the
// entries of acknowledgements alone.
func replicaSums(tc *clustertest.Cluster, s int) (pending int, redelivered, acks uint64) {
	for _, m := range tc.Running() {
		if r := m.Node.Replica(s); r != nil {
			pending += r.Lag().Records
			redelivered += r.FSM().Redelivered()
			acks += r.Entries().Acks
		}
	}
	return pending, redelivered, acks
}

// TestRedeliveryAfterFailover: the leader of a shard has delivered a
// record and the destination applied it, but no entry acknowledged it yet
// when that leader stops. The new leader sends it again, the destination
// skips it, and the next client write on the shard carries the
// acknowledgement: no entry of its own, and the edge exactly as written.
func TestRedeliveryAfterFailover(t *testing.T) {
	const shards = 4
	tc := clustertest.NewCluster(t, 3, shards, func(c *cluster.Config) {
		// Only an entry written anyway acknowledges a delivery here.
		c.Relay.AckAfter = time.Hour
	})
	tc.WaitLeaders(90 * time.Second)
	c := tc.Client()
	ctx := context.Background()
	actor := "redeliver-actor"
	src := shard.Of(actor, shards)
	var target, local string
	for i := 0; target == "" || local == ""; i++ {
		u := fmt.Sprintf("redeliver-%d", i)
		if shard.Of(u, shards) != src {
			target = orElse(target, u)
		} else {
			local = orElse(local, u)
		}
	}
	dst := shard.Of(target, shards)
	if _, err := c.Follow(ctx, actor, []string{target}, client.Sync()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the record on every replica of the source", 10*time.Second, func() bool {
		p, _, _ := replicaSums(tc, src)
		return p == 3
	})
	_, before, _ := replicaSums(tc, dst)

	victim := tc.Leaders()[src]
	for _, m := range tc.Nodes {
		if m.ID == victim {
			tc.Stop(m)
		}
	}
	tc.WaitLeaders(90 * time.Second)
	waitFor(t, "the new leader's redelivery skipped by the destination", 20*time.Second, func() bool {
		_, r, _ := replicaSums(tc, dst)
		return r > before
	})
	if p, _, _ := replicaSums(tc, src); p != 2 {
		t.Fatalf("%d records in the survivors' outboxes before the next write, want 1 each", p)
	}
	// Writes on the source shard carry the acknowledgement (the first
	// one may race with the redelivery's confirmation).
	c2 := tc.Client()
	waitFor(t, "a write on the source to trim the outbox", 20*time.Second, func() bool {
		if _, err := c2.Follow(ctx, actor, []string{local}); err != nil {
			t.Logf("write: %v", err)
		}
		p, _, _ := replicaSums(tc, src)
		return p == 0
	})
	if _, _, acks := replicaSums(tc, src); acks != 0 {
		t.Fatalf("%d entries of acknowledgements alone on the source; writes should have carried them", acks)
	}
	fwd, err := c2.Following(ctx, actor)
	if err != nil {
		t.Fatal(err)
	}
	var at int64
	for _, it := range fwd.Items {
		if it.UserID == target {
			at = it.FollowTime
		}
	}
	page, err := c2.Followers(ctx, target)
	if err != nil || at == 0 || len(page.Items) != 1 || page.Items[0].UserID != actor || page.Items[0].FollowTime != at {
		t.Fatalf("%s's followers after the redelivery: %+v %v (want %s at %d)", target, page, err, actor, at)
	}
}

// orElse returns s if it is set, else u.
func orElse(s, u string) string {
	if s != "" {
		return s
	}
	return u
}
