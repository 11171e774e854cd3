package wire

import (
	"context"
	"encoding/binary"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/internal/tokens"
)

// Handler serves the client operations: the graph's reads and writes, and
// the node's status and shard map. The router (package router) is the real
// one. Implementations must be safe for concurrent use. Strings passed to
// List, Info and Check may share a frame buffer: they must not be kept
// after the call returns.
type Handler interface {
	Write(ctx context.Context, op Op, req WriteRequest) ([]Result, error)
	// List calls fn for each entry of the page, in order, and returns the
	// next cursor. id is only valid during fn.
	List(ctx context.Context, op Op, req ListRequest, fn func(id []byte, t int64)) (next string, err error)
	Info(ctx context.Context, req UsersRequest) ([]Info, error)
	Check(ctx context.Context, req CheckRequest) ([]Check, error)
	Status(ctx context.Context) (Status, error)
	ShardMap(ctx context.Context) (ShardMap, error)
	// Watch reads a shard's change feed, waiting up to req.Wait (or
	// until ctx ends) when there is nothing to return yet.
	Watch(ctx context.Context, req WatchRequest) (WatchPage, error)
	// Import follows with given followTimes, in bulk.
	Import(ctx context.Context, req ImportRequest) (ImportResult, error)
	// RemoveUser starts removing a user's whole graph, or reports how far
	// the removal is.
	RemoveUser(ctx context.Context, req RemoveUserRequest) (RemovalProgress, error)
	// KnownFollowers returns a page of req.User's followers whom
	// req.Viewer follows, with the size of that whole set.
	KnownFollowers(ctx context.Context, req KnownFollowersRequest) (SetPage, error)
	// CommonFollowing returns a page of the users both req.A and req.B
	// follow, with the size of that whole set.
	CommonFollowing(ctx context.Context, req CommonFollowingRequest) (SetPage, error)
	// Relationships returns the relation of each pair, in order.
	Relationships(ctx context.Context, req RelationshipsRequest) ([]Relationship, error)
}

// ClusterHandler serves the operations that keep a cluster running rather
// than serve the graph: the relay's deliveries between nodes, which the
// server accepts only from other nodes (see ServePeers), and the maintenance
// operations drain and user scan, which followctl and other nodes send.
// Implementations must be safe for concurrent use.
type ClusterHandler interface {
	// Deliver applies relayed reverse edges and returns the highest
	// sequence from the source shard applied.
	Deliver(ctx context.Context, req DeliverRequest) (uint64, error)
	// Drain marks a node as draining (or active again).
	Drain(ctx context.Context, req DrainRequest) error
	// ScanUsers lists the users of a shard this node leads.
	ScanUsers(ctx context.Context, req ScanRequest) (UserPage, error)
	// Recover makes shards that lost their quorum serve again from one
	// node's replica, losing what only the other replicas held.
	Recover(ctx context.Context, req RecoverRequest) ([]Recovered, error)
	// Export serves one page of a shard's export: it calls fn with each
	// edge in order, actor by actor, until fn returns false (the page is
	// full: that edge starts the next page) or the page has req.MaxEdges
	// edges. actor and target are only valid during fn.
	Export(ctx context.Context, req ExportRequest, fn func(actor, target []byte, followTime int64) bool) (ExportPage, error)
	// GossipKeys applies a gossip keyring action to this node (never
	// forwarded) and returns the node's keys after it.
	GossipKeys(ctx context.Context, req GossipKeysRequest) (GossipKeyring, error)
	// Probe returns, for each of req.IDs, its followTime in req.Owner's
	// list req.Kind, or -1 where it is absent, read on this node (never
	// forwarded).
	Probe(ctx context.Context, req ProbeRequest) ([]int64, error)
}

type peerKey struct{}

// FromPeer reports whether a request came from another node (over a
// listener given to ServePeers): such requests are not forwarded again.
func FromPeer(ctx context.Context) bool {
	v, _ := ctx.Value(peerKey{}).(bool)
	return v
}

// opSpec says how the server runs one operation.
type opSpec struct {
	// peerOnly operations are refused unless the connection came from
	// another node (ServePeers). Deliveries write reverse edges with no
	// check of their forward side: only another node's relay may send
	// them, and no client token, admin included, grants them.
	peerOnly bool
	// role is the least role a client token needs for the operation
	// (docs/PROTOCOL.md lists them). Other nodes' connections are not
	// checked; neither is anyone when the server has no tokens.
	role tokens.Role
	// waits: the operation waits for a raft commit, so it always runs
	// beside the read loop, with a deadline. Other operations run in the
	// read loop on a single node (they take microseconds, and the frame
	// buffer they may point into is reused only after they return) and
	// beside it in a cluster, where they may be forwarded or wait for a
	// quorum.
	waits bool
	// slow: the operation takes milliseconds of CPU (the set queries and
	// their probes: up to 5,000 membership probes), so it runs beside the
	// read loop too, lest the requests pipelined behind it wait for it.
	slow bool
	// serve parses the request body, calls the handler and appends the
	// response body to b.
	serve func(s *Server, ctx context.Context, op Op, body, b []byte) ([]byte, error)
}

// ops is the operation table; nil entries are unknown operations.
var ops [256]*opSpec

func init() {
	const r, w, a = tokens.RoleRead, tokens.RoleWrite, tokens.RoleAdmin
	ops[OpFollow] = &opSpec{role: w, waits: true, serve: serveWrite}
	ops[OpUnfollow] = &opSpec{role: w, waits: true, serve: serveWrite}
	ops[OpFollowers] = &opSpec{role: r, serve: serveList}
	ops[OpFollowing] = &opSpec{role: r, serve: serveList}
	ops[OpMutual] = &opSpec{role: r, serve: serveList}
	ops[OpInfo] = &opSpec{role: r, serve: serveInfo}
	ops[OpCheck] = &opSpec{role: r, serve: serveCheck}
	ops[OpStatus] = &opSpec{role: r, serve: serveStatus}
	ops[OpShardMap] = &opSpec{role: r, serve: serveShardMap}
	ops[OpPing] = &opSpec{role: r, serve: servePing}
	ops[OpKnownFollowers] = &opSpec{role: r, slow: true, serve: serveKnownFollowers}
	ops[OpCommonFollowing] = &opSpec{role: r, slow: true, serve: serveCommonFollowing}
	ops[OpRelationships] = &opSpec{role: r, serve: serveRelationships}
	// Everything below changes or reveals the whole node: admin only.
	// Operations added later (op 19, the gossip keyring) must say admin
	// too: an entry without a role is refused to every client token.
	ops[OpDeliver] = &opSpec{role: a, peerOnly: true, waits: true, serve: serveDeliver}
	ops[OpDrain] = &opSpec{role: a, serve: serveDrain}
	ops[OpScanUsers] = &opSpec{role: a, serve: serveScanUsers}
	ops[OpRecover] = &opSpec{role: a, waits: true, serve: serveRecover}
	ops[OpWatch] = &opSpec{role: a, waits: true, serve: serveWatch}
	ops[OpImport] = &opSpec{role: a, waits: true, serve: serveImport}
	ops[OpRemoveUser] = &opSpec{role: a, waits: true, serve: serveRemoveUser}
	ops[OpExport] = &opSpec{role: a, waits: true, serve: serveExport}
	// waits: a change fsyncs the keyring file.
	ops[OpGossipKeys] = &opSpec{role: a, waits: true, serve: serveGossipKeys}
	// Probes are the inside of ops 20 and 21 between nodes: only other
	// nodes send them.
	ops[OpProbe] = &opSpec{role: a, peerOnly: true, slow: true, serve: serveProbe}
}

// admit returns the table entry of op for this connection, or the error
// that refuses it. Client requests of a server with tokens are checked
// against the token's role, then its rate limit (AdmitClient): one frame
// is one request, and one refused for its role takes nothing from the
// budget. Other nodes' connections are checked for none of this.
func (c *conn) admit(op Op) (*opSpec, error) {
	spec := ops[op]
	if c.peer && op != OpHello {
		if spec == nil {
			return nil, codes.New(codes.UnknownOp, "unknown operation %d", op)
		}
		return spec, nil
	}
	checked, err := AdmitClient(c.tok, op)
	if checked {
		c.s.obs.TokenRequest(c.tok.Name, op, codes.Of(err))
	}
	if err != nil {
		return nil, err
	}
	return spec, nil
}

func serveWrite(s *Server, ctx context.Context, op Op, body, b []byte) ([]byte, error) {
	req, err := ParseWriteRequest(body)
	if err != nil {
		return b, err
	}
	res, err := s.handler.Write(ctx, op, req)
	if err != nil {
		return b, err
	}
	return AppendResults(b, res), nil
}

// serveList encodes the page's entries straight into the response as the
// handler produces them.
func serveList(s *Server, ctx context.Context, op Op, body, b []byte) ([]byte, error) {
	req, err := ParseListRequest(body)
	if err != nil {
		return b, err
	}
	b = appendArray(b, 2)
	at := len(b)
	b = append(b, 0xdd, 0, 0, 0, 0) // item count, patched below
	n := 0
	next, err := s.handler.List(ctx, op, req, func(id []byte, t int64) {
		b = AppendItem(b, id, t)
		n++
	})
	binary.BigEndian.PutUint32(b[at+1:], uint32(n))
	return AppendPageEnd(b, next), err
}

func serveInfo(s *Server, ctx context.Context, _ Op, body, b []byte) ([]byte, error) {
	req, err := ParseUsersRequest(body)
	if err != nil {
		return b, err
	}
	is, err := s.handler.Info(ctx, req)
	if err != nil {
		return b, err
	}
	return AppendInfos(b, is), nil
}

func serveCheck(s *Server, ctx context.Context, _ Op, body, b []byte) ([]byte, error) {
	req, err := ParseCheckRequest(body)
	if err != nil {
		return b, err
	}
	cs, err := s.handler.Check(ctx, req)
	if err != nil {
		return b, err
	}
	return AppendChecks(b, cs), nil
}

func serveStatus(s *Server, ctx context.Context, _ Op, body, b []byte) ([]byte, error) {
	if err := ParseEmpty(body); err != nil {
		return b, err
	}
	st, err := s.handler.Status(ctx)
	if err != nil {
		return b, err
	}
	return AppendStatus(b, st), nil
}

func serveShardMap(s *Server, ctx context.Context, _ Op, body, b []byte) ([]byte, error) {
	if err := ParseEmpty(body); err != nil {
		return b, err
	}
	m, err := s.handler.ShardMap(ctx)
	if err != nil {
		return b, err
	}
	return AppendShardMap(b, m), nil
}

func servePing(_ *Server, _ context.Context, _ Op, body, b []byte) ([]byte, error) {
	if err := ParseEmpty(body); err != nil {
		return b, err
	}
	return AppendEmpty(b), nil
}

func serveDeliver(s *Server, ctx context.Context, _ Op, body, b []byte) ([]byte, error) {
	req, err := ParseDeliverRequest(body)
	if err != nil {
		return b, err
	}
	ch, err := s.clusterHandler()
	if err != nil {
		return b, err
	}
	applied, err := ch.Deliver(ctx, req)
	if err != nil {
		return b, err
	}
	return AppendUint64(b, applied), nil
}

func serveDrain(s *Server, ctx context.Context, _ Op, body, b []byte) ([]byte, error) {
	req, err := ParseDrainRequest(body)
	if err != nil {
		return b, err
	}
	ch, err := s.clusterHandler()
	if err != nil {
		return b, err
	}
	if err := ch.Drain(ctx, req); err != nil {
		return b, err
	}
	return AppendEmpty(b), nil
}

func serveRecover(s *Server, ctx context.Context, _ Op, body, b []byte) ([]byte, error) {
	req, err := ParseRecoverRequest(body)
	if err != nil {
		return b, err
	}
	ch, err := s.clusterHandler()
	if err != nil {
		return b, err
	}
	rs, err := ch.Recover(ctx, req)
	if err != nil {
		return b, err
	}
	return AppendRecovered(b, rs), nil
}

func serveScanUsers(s *Server, ctx context.Context, _ Op, body, b []byte) ([]byte, error) {
	req, err := ParseScanRequest(body)
	if err != nil {
		return b, err
	}
	ch, err := s.clusterHandler()
	if err != nil {
		return b, err
	}
	p, err := ch.ScanUsers(ctx, req)
	if err != nil {
		return b, err
	}
	return AppendUserPage(b, p), nil
}

// clusterHandler returns the server's ClusterHandler, or the error for a
// server that has none.
func (s *Server) clusterHandler() (ClusterHandler, error) {
	if s.cluster == nil {
		return nil, codes.New(codes.UnknownOp, "this server does not serve cluster operations")
	}
	return s.cluster, nil
}
