package cluster

import (
	"fmt"
	"slices"
	"testing"
)

func TestReplicasAreDeterministicAndBalanced(t *testing.T) {
	nodes := []string{"n1", "n2", "n3", "n4", "n5"}
	shuffled := []string{"n4", "n1", "n5", "n3", "n2"}
	count := map[string]int{}
	first := map[string]int{}
	for s := range 1000 {
		a, b := Replicas(s, nodes, 3), Replicas(s, shuffled, 3)
		if !slices.Equal(a, b) {
			t.Fatalf("shard %d: order of the member list changed the replicas: %v vs %v", s, a, b)
		}
		seen := map[string]bool{}
		for _, n := range a {
			if seen[n] {
				t.Fatalf("shard %d: duplicate replica %v", s, a)
			}
			seen[n] = true
			count[n]++
		}
		first[a[0]]++
	}
	for _, n := range nodes {
		// 3000 replicas over 5 nodes: 600 each, give or take.
		if c := count[n]; c < 500 || c > 700 {
			t.Errorf("%s holds %d replicas", n, c)
		}
		if f := first[n]; f < 150 || f > 250 {
			t.Errorf("%s is first choice for %d shards", n, f)
		}
	}
}

// Adding a node moves only the shards that now prefer it.
func TestReplicasMoveLittleOnJoin(t *testing.T) {
	nodes := []string{"n1", "n2", "n3", "n4"}
	moved := 0
	for s := range 1000 {
		before := Replicas(s, nodes, 3)
		after := Replicas(s, append(slices.Clone(nodes), "n5"), 3)
		for _, n := range after {
			if !slices.Contains(before, n) {
				moved++
				if n != "n5" {
					t.Fatalf("shard %d: joining n5 moved a replica to %s", s, n)
				}
			}
		}
	}
	// Expected: 3/5 of shards gain n5.
	if moved < 500 || moved > 700 {
		t.Fatalf("%d of 1000 shards changed", moved)
	}
}

// Preferred leaders are deterministic, lie within each shard's replica set,
// and spread evenly.
func TestLeadersAreBalanced(t *testing.T) {
	cases := []struct{ shards, nodes, replicas, maxSpread int }{
		{16, 3, 3, 1},
		{64, 3, 3, 1},
		{64, 5, 3, 2},
		{1024, 7, 3, 2},
		{8, 1, 3, 0},
	}
	for _, c := range cases {
		var nodes []string
		for i := range c.nodes {
			nodes = append(nodes, fmt.Sprintf("node-%d", i))
		}
		leaders := Leaders(c.shards, nodes, c.replicas)
		shuffled := slices.Clone(nodes)
		slices.Reverse(shuffled)
		if again := Leaders(c.shards, shuffled, c.replicas); !slices.Equal(leaders, again) {
			t.Fatalf("%+v: the plan depends on the order of the nodes", c)
		}
		led := map[string]int{}
		for i, l := range leaders {
			if !slices.Contains(Replicas(i, nodes, c.replicas), l) {
				t.Fatalf("%+v: shard %d's leader %s holds no replica", c, i, l)
			}
			led[l]++
		}
		lo, hi := c.shards, 0
		for _, id := range nodes {
			lo, hi = min(lo, led[id]), max(hi, led[id])
		}
		if hi-lo > c.maxSpread {
			t.Fatalf("%+v: leaderships per node range from %d to %d: %v", c, lo, hi, led)
		}
	}
}
