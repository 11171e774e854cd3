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
// A session is one TCP connection between two nodes. Without Config.Auth
// the node that dials writes a hello, the acceptor answers with a single
// byte, and from then on both sides speak yamux (the dialer is the yamux
// client, the acceptor the yamux server):
//
//	dialer  -> acceptor  "FGMUX1" | uint16 big-endian length N | N bytes advertised address
//	acceptor -> dialer   0x00 (accepted; any other outcome is a closed connection)
//
// With an Auth, the layers are, from the TCP connection up:
//
//	TCP
//	TLS 1.3 (both modes; the dialer is the TLS client)
//	secret mode only:
//	  dialer  -> acceptor  "FGAUTH1" | HMAC-SHA256(secret, "followgraph raftmux dialer" 0x00 | EKM)
//	  acceptor -> dialer   "FGAUTH1" | HMAC-SHA256(secret, "followgraph raftmux acceptor" 0x00 | EKM)
//	the hello and its answer, as above, inside TLS
//	yamux, inside TLS
//
// where EKM is 32 bytes of the TLS session's exported keying material
// (label "EXPORTER-followgraph-raftmux-v1", RFC 8446 section 7.5). The
// acceptor reads nothing in the clear: a peer that does not complete the
// TLS handshake with valid credentials (and, in secret mode, send a valid
// proof) has not had its hello parsed, and gets no byte of raft traffic,
// not even the 0x00. The acceptor proves the secret only after the dialer
// has, so an unauthenticated dialer learns nothing.
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
// # Authentication
//
// Mutual TLS (NewMutualTLSAuth): both sides present a node certificate of
// the cluster CA, whose URI SAN followgraph://node/ID names the node. The
// chain is verified against the cluster CA only (never the system roots),
// host names are not checked (nodes are named by their URI, not their
// DNS), and a certificate without a node URI is refused. Identities are
// pinned with Config.NodeAt, fed from gossip: a dialer refuses an acceptor
// whose certificate names another node than the one gossip has at the
// dialed address, and an acceptor refuses a dialer whose hello advertises
// an address gossip gives to another node than its certificate names. An
// address gossip does not know yet (a node joining) is accepted with any
// valid node certificate of the CA: the CA, not gossip, decides who is a
// member. The certificate files are re-read when they change.
//
// Cluster secret (NewSecretAuth): TLS 1.3 with throwaway self-signed
// certificates that nobody verifies, then the mutual proof above. The
// proofs are bound to the TLS session by its exported keying material, so
// a recorded proof cannot be replayed on another connection and a man in
// the middle, who necessarily runs two TLS sessions with different key
// material, cannot relay one; the direction labels keep a proof from being
// reflected back to its sender. MACs are compared in constant time.
//
// Every refusal is reported to Config.OnRefused with a stable reason
// (Refused*) and logged at Warn, at most once per reason per 10s with the
// count of lines suppressed meanwhile. A Dial refused by the peer fails
// with an error wrapping ErrRefusedByPeer; one whose peer had bad
// credentials wraps ErrPeerCertificate, ErrNoNodeID, ErrWrongNode or
// ErrBadSecret. The whole handshake (TLS, proofs, hello) runs under
// DialTimeout.
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
// goroutine per incoming TCP connection, which also runs its TLS
// handshake, one loop per session, one header
// reader per incoming stream) is tracked and has finished when Close returns;
// yamux's own goroutines stop when their session is closed. Layer.Close
// closes that shard's queued and open streams, which is what lets raft's
// per-connection handler goroutines exit when its transport is closed.
package raftmux
