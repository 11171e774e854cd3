package cluster

import (
	"hash/fnv"
	"slices"
)

// Placement: where a shard's replicas should live.
//
// A shard's preferred replicas are the nodes with the highest rendezvous
// (highest random weight) score for it: score(shard, node) is a hash of
// both. Every node computes the same answer from the same member list,
// without coordination, and when a node joins or leaves only the shards
// that ranked it among their top choices move: about replicas/nodes of
// them, not all.

// rendezvous is the score of node for shard.
func rendezvous(shard int, node string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(node))
	x := h.Sum64() ^ (uint64(shard)+1)*0x9e3779b97f4a7c15
	// splitmix64 finalizer: spreads the combined bits evenly.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Preferred returns nodes in preference order for shard (all of them;
// the first replicas are the shard's preferred replica set).
func Preferred(shard int, nodes []string) []string {
	out := slices.Clone(nodes)
	slices.SortFunc(out, func(a, b string) int {
		sa, sb := rendezvous(shard, a), rendezvous(shard, b)
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	})
	return out
}

// Replicas returns the preferred replica set of shard: the first n of
// Preferred.
func Replicas(shard int, nodes []string, n int) []string {
	p := Preferred(shard, nodes)
	return p[:min(n, len(p))]
}
