// Package raftmux multiplexes the raft traffic of every shard a node hosts
// over one TCP listener and one TCP connection per remote node.
//
// # Why
//
// Each shard runs its own hashicorp/raft group, and each group's
// NetworkTransport wants a raft.StreamLayer: a net.Listener plus a Dial
// function. Handing every shard its own TCP port would need one listener per
// shard per node and, worse, up to MaxPool connections per (shard × peer),
// so file descriptors and ports would grow with the number of shards. A Mux
// instead owns the node's single raft port and gives every shard a Layer,
// a virtual StreamLayer whose connections are yamux streams. The number of
// TCP connections a node holds therefore depends only on the number of peer
// nodes (at most one outgoing and one incoming per peer), never on the number
// of shards, and firewalls and service discovery deal with one raft port.
//
// # Wire format
//
// A session is one TCP connection between two nodes. The node that dials
// writes a hello, the acceptor answers with a single byte, and from then on
// both sides speak yamux (the dialer is the yamux client, the acceptor the
// yamux server):
//
//	dialer  -> acceptor  "FGMUX1" | uint16 big-endian length N | N bytes advertised address
//	acceptor -> dialer   0x00 (accepted; any other outcome is a closed connection)
//
// The hello tells the acceptor which node is on the other end: the remote
// address of a TCP connection is an ephemeral port, useless for Block (test
// partitions) or for recognising that a peer has reconnected. The one-byte
// answer is an addition to a plain "hello then yamux" design: without it a
// dialer whose hello was rejected (blocked peer, wrong port, not a raftmux
// peer) would only notice on its first raft RPC; with it, Dial fails with a
// clear error and raft backs off straight away.
//
// Only the dialer opens streams on a session (a stream opened by the acceptor
// is reset), so each node sends over the session it dialed and receives over
// the sessions it accepted. Concurrent dials from both ends therefore never
// have to be reconciled: there is simply one session per ordered node pair,
// at most two TCP connections per pair of nodes.
//
// Every stream starts with the shard id as a 4-byte big-endian integer,
// written by the opener. The acceptor reads it (under a deadline) and queues
// the stream on that shard's Layer, whose Accept hands it to raft. After the
// four bytes the stream carries raft's own NetworkTransport protocol
// untouched, so one stream corresponds to one raft connection.
//
// # Streams for shards without a Layer
//
// A peer may already be sending to a shard this node has not opened yet (nodes
// start shards at different moments) or has just closed. Such streams are
// held for Config.HoldTimeout (default 5s, at most 256 streams for the whole
// Mux) and handed over if Layer(shard) is called in time; otherwise they are
// closed. Raft would survive a plain close, since it treats it as a failed
// RPC and retries, but every failure grows the leader's replication backoff
// for that follower (up to about 10s in raft v1.8), so a shard that opens a
// moment late would otherwise catch up noticeably late.
//
// # Usage
//
//	ln, _ := net.Listen("tcp", ":7001")
//	mux, _ := raftmux.New(raftmux.Config{Listener: ln, Advertise: "10.0.0.5:7001"})
//	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
//		Stream: mux.Layer(shardID), MaxPool: 3, Timeout: 10 * time.Second,
//	})
//	// Every node's raft.ServerAddress is its mux.Addr(), for all shards.
//	// raft.Shutdown closes the transport and with it the shard's Layer;
//	// close the Mux after the node's rafts.
//
// # Lifetimes
//
// Every goroutine the Mux starts (the listener accept loop, one handshake
// goroutine per incoming TCP connection, one loop per session, one header
// reader per incoming stream) is tracked and has finished when Close returns;
// yamux's own goroutines stop when their session is closed. Layer.Close
// closes that shard's queued and open streams, which is what lets raft's
// per-connection handler goroutines exit when its transport is closed.
package raftmux
