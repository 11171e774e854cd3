package router

import (
	"context"

	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/shard"
	"github.com/followgraph/followgraph/wire"
)

// Export serves a page of a shard's export (op 17). The first request
// (session 0) must reach the shard's leader, which takes the View; it is
// not forwarded, like a user scan: the client routes by shard and follows
// the 40001 redirect. Later pages are read from the session on whichever
// node holds it, leader or not (cluster/exportsession.go).
func (r *Router) Export(ctx context.Context, req wire.ExportRequest, fn func(actor, target []byte, followTime int64) bool) (wire.ExportPage, error) {
	if req.Shard < 0 || req.Shard >= r.node.Shards() {
		return wire.ExportPage{}, codes.New(codes.InvalidParam, "no shard %d (there are %d)", req.Shard, r.node.Shards())
	}
	var s *cluster.ExportSession
	var err error
	if req.Session == 0 {
		if req.Position != shard.StartPosition {
			return wire.ExportPage{}, codes.New(codes.InvalidParam, "an export starts (session 0) at position 0, not %d", req.Position)
		}
		s, err = r.node.StartExport(req.Shard)
	} else {
		s, err = r.node.ResumeExport(req.Shard, req.Session)
	}
	if err != nil {
		return wire.ExportPage{}, err
	}
	max := req.MaxEdges
	if max <= 0 {
		max = wire.MaxExportEdges
	}
	done := false
	defer func() { r.node.EndExport(s, done) }() // also if fn panics
	v := s.View()
	var next uint64
	next, done = v.Following(req.Position, max, fn)
	return wire.ExportPage{Session: s.ID(), Next: next, Done: done, Edges: v.Edges()}, nil
}
