// Package shard holds one shard's part of the follow graph in memory, and
// owns the placement of users on shards: Of is the shard of a user, part
// of the data format.
//
// A Store keeps, for each user whose home is the shard, three lists:
// following (users it follows), followers (users following it) and mutual
// (users it follows that follow it back), each with a followTime per entry,
// and their counts. The rules it keeps: a Follow or Unfollow names 1 to
// MaxTargets targets and gets a result code for each; a user follows at
// most MaxFollowing users; following someone already followed keeps the
// first followTime, and unfollowing someone not followed changes nothing;
// lists page newest first (ties by user ID), and a cursor resumes strictly
// after the last entry returned, so an entry that stays in the list is
// returned exactly once; every count equals its list's length; mutual(A)
// is following(A) ∩ followers(A), at the later of the two followTimes.
//
// The forward and reverse sides of an edge are separate calls: Follow and
// Unfollow change the actor's side on the actor's Store and report which
// edges changed; the caller (the replication layer) delivers AddFollower or
// RemoveFollower to the target's Store, which may be another shard. Both
// reverse calls are idempotent.
//
// The Store has no goroutines, I/O or clock: followTime comes from the
// caller, so replicas that apply the same operations end in the same state.
// View captures a point-in-time copy cheaply (copy-on-write by generation)
// for snapshots, streamed by View.WriteTo and rebuilt by ReadFrom.
//
// Memory layout (see docs/ARCHITECTURE.md): user IDs are interned to
// 32-bit uids in a Users table that every Store of a node shares, so each
// ID is stored once per node; lists live in headerless blocks of 10-byte
// entries carved from large pointer-free chunks in size classes; large
// lists are paged with a time index and a uid index. The garbage collector
// sees a few thousand pointers whatever the graph's size.
package shard
