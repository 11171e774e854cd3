package router

import (
	"context"

	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/fsm"
	"github.com/followgraph/followgraph/shard"
	"github.com/followgraph/followgraph/wire"
)

// The cluster operations (wire.ClusterHandler). None is forwarded: a
// delivery or scan for a shard this node does not lead is refused with the
// leader's name, and drain goes to the node it names.

// Deliver applies relayed records to a shard this node leads.
func (r *Router) Deliver(ctx context.Context, req wire.DeliverRequest) (uint64, error) {
	if req.Dst < 0 || req.Dst >= r.node.Shards() || req.Src < 0 || req.Src >= r.node.Shards() {
		return 0, codes.New(codes.InvalidParam, "delivery from shard %d to shard %d: there are %d shards", req.Src, req.Dst, r.node.Shards())
	}
	rep := r.node.Replica(req.Dst)
	if rep == nil || !rep.Ready() {
		return 0, r.node.NotLeaderError(req.Dst)
	}
	recs := make([]fsm.Record, len(req.Records))
	for i, x := range req.Records {
		recs[i] = fsm.Record(x)
	}
	return rep.Deliver(ctx, req.Src, recs)
}

// Drain marks req.Node as draining (forwarding to it if it is another
// node).
func (r *Router) Drain(ctx context.Context, req wire.DrainRequest) error {
	if req.Node == r.node.ID() {
		return r.node.SetDraining(req.On)
	}
	if wire.FromPeer(ctx) || r.peers == nil {
		return codes.New(codes.InvalidParam, "node %q is not this node", req.Node)
	}
	for _, m := range r.node.Members() {
		if m.Meta.ID == req.Node {
			return r.peers.forwardDrain(ctx, m.Meta.ClientAddr, req)
		}
	}
	return codes.New(codes.InvalidParam, "no node %q in the cluster", req.Node)
}

// defaultScanLimit is the page of a user scan that asks for none.
const defaultScanLimit = 1000

// ScanUsers lists users of a shard this node leads.
func (r *Router) ScanUsers(ctx context.Context, req wire.ScanRequest) (wire.UserPage, error) {
	if req.Shard < 0 || req.Shard >= r.node.Shards() {
		return wire.UserPage{}, codes.New(codes.InvalidParam, "no shard %d", req.Shard)
	}
	rep := r.node.Replica(req.Shard)
	if rep == nil || !rep.Ready() {
		return wire.UserPage{}, r.node.NotLeaderError(req.Shard)
	}
	limit := req.Limit
	if limit <= 0 {
		limit = defaultScanLimit
	}
	var p wire.UserPage
	err := rep.Read(func(st *shard.Store) error {
		p.Next = uint64(st.ScanUsers(uint32(req.From), limit, func(id string) { p.Users = append(p.Users, id) }))
		return nil
	})
	return p, err
}

// Recover runs an unsafe recovery on req.Node (forwarding to it if it is
// another node): only with AcceptDataLoss, which the caller must have
// asked for in so many words.
func (r *Router) Recover(ctx context.Context, req wire.RecoverRequest) ([]wire.Recovered, error) {
	if !req.AcceptDataLoss {
		return nil, codes.New(codes.InvalidParam, "unsafe recovery loses what only the lost replicas held: it must be asked for with accept-data-loss")
	}
	if req.Node != r.node.ID() {
		if wire.FromPeer(ctx) || r.peers == nil {
			return nil, codes.New(codes.InvalidParam, "node %q is not this node", req.Node)
		}
		for _, m := range r.node.Members() {
			if m.Meta.ID == req.Node && m.Alive {
				return r.peers.forwardRecover(ctx, m.Meta.ClientAddr, req)
			}
		}
		return nil, codes.New(codes.InvalidParam, "no live node %q in the cluster", req.Node)
	}
	var recs []cluster.Recovery
	if req.Shard < 0 {
		var err error
		recs, err = r.node.RecoverAll()
		if err != nil && len(recs) == 0 {
			return nil, err
		}
		if err != nil {
			var ok []int
			for _, rc := range recs {
				ok = append(ok, rc.Shard)
			}
			return nil, codes.New(codes.Internal, "recovered shards %v, but not every shard: %v", ok, err)
		}
	} else {
		rec, err := r.node.Recover(req.Shard)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	out := make([]wire.Recovered, 0, len(recs))
	for _, rc := range recs {
		out = append(out, wire.Recovered{Shard: rc.Shard, Index: rc.Index, Term: rc.Term, Lost: rc.Lost})
	}
	return out, nil
}

// GossipKeys applies a gossip keyring action to this node alone: each
// node holds its own keyring, and followctl sends the action to every
// node itself, so that it reports each node's outcome.
func (r *Router) GossipKeys(_ context.Context, req wire.GossipKeysRequest) (wire.GossipKeyring, error) {
	var err error
	switch req.Action {
	case wire.GossipKeysList:
	case wire.GossipKeysInstall:
		err = r.node.InstallGossipKey(req.Key)
	case wire.GossipKeysUse:
		err = r.node.UseGossipKey(req.Key)
	case wire.GossipKeysRemove:
		err = r.node.RemoveGossipKey(req.Key)
	default:
		err = codes.New(codes.InvalidParam, "unknown gossip-keys action %d", req.Action)
	}
	if err != nil {
		return wire.GossipKeyring{}, err
	}
	keys, err := r.node.GossipKeys()
	if err != nil {
		return wire.GossipKeyring{}, err
	}
	out := wire.GossipKeyring{Node: r.node.ID(), Keys: make([]wire.GossipKey, len(keys))}
	for i, k := range keys {
		out.Keys[i] = wire.GossipKey{Fingerprint: k.Fingerprint, Primary: k.Primary}
	}
	return out, nil
}
