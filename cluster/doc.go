// Package cluster runs the replicas of one followgraph node: per shard a
// raft group (hashicorp/raft) over the shard's FSM (package fsm), with a
// group-commit batcher and, while the node leads the shard, the relay of
// reverse edges to other shards; the node's write-ahead log holding every
// replica's raft log (internal/wal); and, in a cluster, membership
// (gossip), placement of replicas, bootstrap, and the multiplexed raft
// port (internal/raftmux). It knows no client protocol: requests come in
// through the router (package router), which validates and routes them,
// and calls to other nodes go out through Config.Peers.
//
// # The write pipeline
//
//	wire read loop ─► request goroutine: router.Write ─► Replica.Write
//	    │                                                    │ proposal
//	    │                                                    ▼
//	    │                                   props (QueueDepth; full: 40003)
//	    │                                                    │
//	    │                      batcher: one log entry of what is queued,
//	    │                      followTime stamped, raft.Apply ─► inflight
//	    │                                                    │ (MaxInflight)
//	    │     raft: replicate, append to the node's raft log (one
//	    │     fdatasync shared by every shard's appends), commit,
//	    │     FSM.ApplyBatch ─► shard.Store, outbox ─► relay.kick
//	    │                                                    │
//	    │                      completer: waits for each entry in order,
//	    │                      hands every proposal its result
//	    ▼                                                    │
//	wire writer ◄── response ◄── router converts ◄───────────┘
//
// Deliveries of the relay are proposals too: they share entries (and
// fsyncs) with client writes. Acknowledgements of the shard's own
// deliveries ride in whatever entry the batcher writes next (see
// relay.go); only a shard that stopped writing gets an entry for them.
//
// # The read pipeline
//
//	wire read loop ─► router.List/Info/Check ─► Replica.Read (read lease;
//	a raft round renews it when it has run out) ─► FSM read lock ─►
//	shard.Store ─► entries encoded straight into the response ─► writer
//
// On a single node reads run in the connection's read loop (they take
// microseconds); in a cluster, beside it, as they may be forwarded or wait
// for a quorum.
//
// # Goroutines and who owns them
//
// Each Replica runs its batcher, completer and leadership watcher from
// start until close; while it leads, the watcher runs its relay: one
// sender per destination shard and an acker, stopped when leadership is
// lost. hashicorp/raft runs its own goroutines per replica, stopped by
// close. The Node owns its replicas, the raft log (whose writer and
// completer goroutines do the group commit), and in a cluster the
// reconciler, the bootstrapper, gossip (Membership), the beats of quiet
// shards (beats.go: a ticker, one sender per peer, an accept loop and one
// server per peer's stream) and the raft port; Node.Close stops them all,
// gossip first, the beats after the replicas, and the raft log and port
// last.
//
// # Quiet shards
//
// A shard idle for Raft.QuietAfter is quiet: its leader's transport
// answers followers' idle RPCs from the node's coalesced beats instead
// of sending them (quiet.go).
package cluster
