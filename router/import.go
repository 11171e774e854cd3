package router

import (
	"context"
	"slices"
	"sync"

	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/fsm"
	"github.com/followgraph/followgraph/shard"
	"github.com/followgraph/followgraph/wire"
)

// Import applies a bulk import. The commands are split by their actor's
// shard; each shard's part commits as one proposal (one log entry) on
// that shard's leader, here or forwarded, all shards at once. An error
// from any part fails the whole request: parts may have applied, and
// since an import of edges already there changes nothing, the caller
// retries it whole.
func (r *Router) Import(ctx context.Context, req wire.ImportRequest) (wire.ImportResult, error) {
	var res wire.ImportResult
	if n := req.Edges(); n < 1 || n > wire.MaxImportEdges {
		return res, codes.New(codes.InvalidParam, "%d edges: want 1 to %d", n, wire.MaxImportEdges)
	}
	parts, failed := wire.SplitImport(req, func(actor string) (int, error) {
		if err := shard.ValidateUserID(actor); err != nil {
			return -1, err
		}
		return r.node.ShardOf(actor), nil
	})
	res.Failures = failed
	results := make([]wire.ImportResult, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Go(func() {
			errs[i] = r.retrying(ctx, func() (err error) {
				results[i], err = r.importShard(ctx, p.Shard, p.Req)
				return err
			})
		})
	}
	wg.Wait()
	for i, p := range parts {
		if errs[i] != nil {
			return wire.ImportResult{}, errs[i]
		}
		p.Merge(&res, results[i])
	}
	slices.SortFunc(res.Failures, func(a, b wire.ImportFailure) int { return a.Index - b.Index })
	return res, nil
}

// importShard applies one shard's part on its leader.
func (r *Router) importShard(ctx context.Context, d int, req wire.ImportRequest) (wire.ImportResult, error) {
	rep, addr, err := r.routeShard(ctx, d, wire.Leader)
	if err != nil {
		return wire.ImportResult{}, err
	}
	if addr != "" {
		return r.peers.forwardImport(ctx, addr, req)
	}
	cmds := make([]fsm.Command, len(req.Commands))
	for i, c := range req.Commands {
		cmds[i] = fsm.Command{Op: fsm.OpImport, Actor: c.Actor, Targets: c.Targets, Times: c.Times}
	}
	crs, err := rep.WriteCommands(ctx, cmds, cluster.WriteOptions{Sync: req.Sync})
	if err != nil {
		return wire.ImportResult{}, err
	}
	var res wire.ImportResult
	first := 0
	for i, cr := range crs {
		n := len(req.Commands[i].Targets)
		if cr.Err != nil {
			for k := range n {
				res.Failures = append(res.Failures, wire.ImportFailure{Index: first + k, Code: codes.Of(cr.Err), Info: cr.Err.Error()})
			}
		}
		for k, x := range cr.Results {
			switch {
			case x.Code != codes.OK:
				res.Failures = append(res.Failures, wire.ImportFailure{Index: first + k, Code: x.Code, Info: x.Info})
			case x.Changed:
				res.Added++
			default:
				res.Existing++
			}
		}
		first += n
	}
	return res, nil
}
