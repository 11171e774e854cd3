package client

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/wire"
)

// ImportCommand is one actor's edges in an import (see Client.Import).
type ImportCommand = wire.ImportCommand

// ImportResult is the outcome of an import: edges added, edges already
// there (their followTime kept), and the edges that failed, by index.
type ImportResult = wire.ImportResult

// Import follows with given followTimes, in bulk: each command's actor
// follows Targets[i] since Times[i] (Unix ms). At most
// wire.MaxImportEdges edges in all. The commands go to their actors'
// shards' leaders, one request per shard, in parallel; with opts Sync, each
// returns once the reverse sides are applied too. An edge already there
// keeps its followTime, so an import can be retried, or run again, and
// changes nothing more. An error fails the whole call (some parts may
// have applied: retry it); per-edge failures are in the result, in index
// order (the edges' positions across the commands).
func (c *Client) Import(ctx context.Context, cmds []ImportCommand, opts ...WriteOption) (ImportResult, error) {
	var w wire.WriteRequest
	for _, o := range opts {
		o(&w)
	}
	q := wire.ImportRequest{Commands: cmds, Sync: w.Sync}
	if n := q.Edges(); n < 1 || n > wire.MaxImportEdges {
		return ImportResult{}, codes.New(codes.InvalidParam, "%d edges: want 1 to %d", n, wire.MaxImportEdges)
	}
	parts, _ := wire.SplitImport(q, func(actor string) (int, error) { return c.ShardOf(actor), nil })
	results := make([]wire.ImportResult, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Go(func() {
			body, err := c.do(ctx, p.Shard, wire.OpImport, func(b []byte) []byte { return wire.AppendImportRequest(b, p.Req) })
			if err == nil {
				results[i], err = wire.ParseImportResult(body)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	var res ImportResult
	for i, p := range parts {
		if errs[i] != nil {
			return ImportResult{}, errs[i]
		}
		p.Merge(&res, results[i])
	}
	slices.SortFunc(res.Failures, func(a, b wire.ImportFailure) int { return cmp.Compare(a.Index, b.Index) })
	return res, nil
}
