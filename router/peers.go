package router

import (
	"context"
	"net"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/fsm"
	"github.com/followgraph/followgraph/wire"
)

// Peers makes this node's calls to other nodes over the client protocol:
// requests the router forwards to a shard's leader, and, as the cluster
// package's cluster.Peers, relay deliveries and peer status. Its
// connections go over the nodes' raft ports (cluster.Node.DialPeer), whose
// peer authentication makes the other node serve them as a peer's: itself,
// never forwarded again, with no client token. It is safe for concurrent
// use.
type Peers struct {
	c *client.Client
}

// PeerRequestTimeout bounds a call to another node whose context has no
// deadline of its own.
const PeerRequestTimeout = 10 * time.Second

// NewPeers returns a Peers that connects to nodes, as they are first
// called, with dial (cluster.PeerDialer.Dial).
func NewPeers(dial func(ctx context.Context, addr string) (net.Conn, error)) (*Peers, error) {
	c, err := client.NewLazy(client.Config{Dial: dial, Name: wire.PeerName, ConnsPerNode: 2, Retries: -1, RequestTimeout: PeerRequestTimeout})
	if err != nil {
		return nil, err
	}
	return &Peers{c: c}, nil
}

// Close closes the connections.
func (p *Peers) Close() error { return p.c.Close() }

// Deliver implements cluster.Peers.
func (p *Peers) Deliver(ctx context.Context, addr string, dst, src int, recs []fsm.Record) (uint64, error) {
	req := wire.DeliverRequest{Dst: dst, Src: src, Records: make([]wire.Record, len(recs))}
	for i, r := range recs {
		req.Records[i] = wire.Record(r)
	}
	body, err := p.c.Call(ctx, addr, wire.OpDeliver, func(b []byte) []byte { return wire.AppendDeliverRequest(b, req) })
	if err != nil {
		return 0, err
	}
	return wire.ParseUint64(body)
}

// Status implements cluster.Peers.
func (p *Peers) Status(ctx context.Context, addr string) (cluster.NodeStatus, error) {
	body, err := p.c.Call(ctx, addr, wire.OpStatus, wire.AppendEmpty)
	if err != nil {
		return cluster.NodeStatus{}, err
	}
	st, err := wire.ParseStatus(body)
	if err != nil {
		return cluster.NodeStatus{}, err
	}
	return nodeStatusOf(st), nil
}

// ForwardTimeout bounds a forward of a client's request to the shard's
// leader. It is shorter than the Go client's attempt timeout, so a leader
// that does not answer (stopped, frozen) costs the client a 30007 from
// this node, which it retries, rather than its attempt's time with this
// (healthy) node blamed for it.
const ForwardTimeout = time.Second

// forward sends a client's request on to addr within ForwardTimeout.
func (p *Peers) forward(ctx context.Context, addr string, op wire.Op, body func([]byte) []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, ForwardTimeout)
	defer cancel()
	return p.c.Call(ctx, addr, op, body)
}

func (p *Peers) forwardWrite(ctx context.Context, addr string, op wire.Op, req wire.WriteRequest) ([]wire.Result, error) {
	body, err := p.forward(ctx, addr, op, func(b []byte) []byte { return wire.AppendWriteRequest(b, req) })
	if err != nil {
		return nil, err
	}
	return wire.ParseResults(body)
}

func (p *Peers) forwardList(ctx context.Context, addr string, op wire.Op, req wire.ListRequest, fn func(id []byte, t int64)) (string, error) {
	body, err := p.forward(ctx, addr, op, func(b []byte) []byte { return wire.AppendListRequest(b, req) })
	if err != nil {
		return "", err
	}
	page, err := wire.ParsePage(body)
	if err != nil {
		return "", err
	}
	for _, it := range page.Items {
		fn([]byte(it.UserID), it.FollowTime)
	}
	return page.NextCursor, nil
}

func (p *Peers) forwardCheck(ctx context.Context, addr string, req wire.CheckRequest) ([]wire.Check, error) {
	body, err := p.forward(ctx, addr, wire.OpCheck, func(b []byte) []byte { return wire.AppendCheckRequest(b, req) })
	if err != nil {
		return nil, err
	}
	return wire.ParseChecks(body)
}

// forwardInfos asks each node of remote (client address -> indexes into
// out) for the counts of its users, all nodes at once, and fills them in.
func (p *Peers) forwardInfos(ctx context.Context, remote map[string][]int, c wire.Consistency, out []wire.Info) error {
	errs := make(chan error, len(remote))
	for addr, idx := range remote {
		go func() { errs <- p.forwardInfo(ctx, addr, c, out, idx) }()
	}
	var first error
	for range remote {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// forwardInfo asks the node at addr for the counts of out[i] for each i in
// idx, and fills them in.
func (p *Peers) forwardInfo(ctx context.Context, addr string, c wire.Consistency, out []wire.Info, idx []int) error {
	users := make([]string, len(idx))
	for k, i := range idx {
		users[k] = out[i].UserID
	}
	body, err := p.forward(ctx, addr, wire.OpInfo, func(b []byte) []byte {
		return wire.AppendInfoRequest(b, wire.UsersRequest{Users: users, Consistency: c})
	})
	if err != nil {
		return err
	}
	is, err := wire.ParseInfos(body)
	if err != nil || len(is) != len(idx) {
		return codes.New(codes.Internal, "forwarded info: %d results for %d users: %v", len(is), len(idx), err)
	}
	for k, i := range idx {
		out[i] = is[k]
	}
	return nil
}

func (p *Peers) forwardDrain(ctx context.Context, addr string, req wire.DrainRequest) error {
	_, err := p.c.Call(ctx, addr, wire.OpDrain, func(b []byte) []byte { return wire.AppendDrainRequest(b, req) })
	return err
}

func (p *Peers) forwardRecover(ctx context.Context, addr string, req wire.RecoverRequest) ([]wire.Recovered, error) {
	body, err := p.c.Call(ctx, addr, wire.OpRecover, func(b []byte) []byte { return wire.AppendRecoverRequest(b, req) })
	if err != nil {
		return nil, err
	}
	return wire.ParseRecovered(body)
}

func (p *Peers) forwardWatch(ctx context.Context, addr string, req wire.WatchRequest) (wire.WatchPage, error) {
	body, err := p.forward(ctx, addr, wire.OpWatch, func(b []byte) []byte { return wire.AppendWatchRequest(b, req) })
	if err != nil {
		return wire.WatchPage{}, err
	}
	return wire.ParseWatchPage(body)
}

func (p *Peers) forwardImport(ctx context.Context, addr string, req wire.ImportRequest) (wire.ImportResult, error) {
	body, err := p.forward(ctx, addr, wire.OpImport, func(b []byte) []byte { return wire.AppendImportRequest(b, req) })
	if err != nil {
		return wire.ImportResult{}, err
	}
	return wire.ParseImportResult(body)
}

func (p *Peers) forwardRemoveUser(ctx context.Context, addr string, req wire.RemoveUserRequest) (wire.RemovalProgress, error) {
	body, err := p.forward(ctx, addr, wire.OpRemoveUser, func(b []byte) []byte { return wire.AppendRemoveUserRequest(b, req) })
	if err != nil {
		return wire.RemovalProgress{}, err
	}
	return wire.ParseRemovalProgress(body)
}
