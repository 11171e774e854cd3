package shard

import "hash/fnv"

// Of returns the shard of a user ID among shards: FNV-1a (64-bit) of the
// ID's bytes, modulo the shard count.
//
// It is part of the data format: every replica, every router and every
// client must place a user on the same shard, and a cluster's shard count
// is fixed when it is created, so neither the function nor the count may
// ever change under existing data.
func Of(user string, shards int) int {
	h := fnv.New64a()
	h.Write([]byte(user))
	return int(h.Sum64() % uint64(shards))
}
