package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/wire"
)

// Export types, shared with the protocol.
type (
	// ExportEdge is one exported follow edge; its bytes are only valid
	// during the callback that receives it.
	ExportEdge = wire.ExportEdge
	// ExportPage describes a page of an export: its session, where the
	// next page starts, whether the shard is done, and the number of
	// edges in the shard's view, for progress.
	ExportPage = wire.ExportPage
)

// ErrExportExpired matches an export whose session the server no longer
// holds (codes.ExportExpired).
var ErrExportExpired = codes.ErrExportExpired

// exportRestarts bounds how often ExportShard starts a shard again from a
// new point in time when its session is lost before any page was handed
// out.
const exportRestarts = 3

// ExportShard exports every follow edge of shard (each edge once, from its
// actor's shard) from one point-in-time view of the shard's leader, taken
// by the first request: writes made meanwhile do not show, and writes
// continue. fn receives the pages in order; an error from it ends the
// export. Each page is bounded by the client's frame size, not by a time:
// the call takes as long as the shard needs, and ctx bounds it.
//
// The session lives on the node that took the view, and later pages are
// read there, also after a leader change. If the session is lost (the node
// restarted or became unreachable, or the export stalled past the
// server's idle timeout) before fn received a page, the shard starts again
// from a new view; after, the export fails with an error matching
// ErrExportExpired, since the pages already handed out came from the lost
// view and mixing two points in time would not be a consistent export.
func (c *Client) ExportShard(ctx context.Context, shard int, fn func(p ExportPage, edges []ExportEdge) error) error {
	var edges []ExportEdge
	for attempt := 0; ; attempt++ {
		delivered, err := c.exportOnce(ctx, shard, &edges, fn)
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, ErrExportExpired) || attempt >= exportRestarts:
			return err
		case delivered > 0:
			return fmt.Errorf("export of shard %d lost its session after %d edges: %w", shard, delivered, err)
		}
	}
}

// exportOnce runs one export of shard from a new view and returns how many
// edges it handed to fn.
func (c *Client) exportOnce(ctx context.Context, shard int, edges *[]ExportEdge, fn func(ExportPage, []ExportEdge) error) (int64, error) {
	q := wire.ExportRequest{Shard: shard, MaxBytes: c.cfg.MaxFrame - 64}
	var delivered int64
	var addr string
	for {
		var body []byte
		var err error
		if q.Session == 0 {
			body, addr, err = c.doAt(ctx, shard, wire.OpExport, func(b []byte) []byte { return wire.AppendExportRequest(b, q) })
		} else {
			body, err = c.exportPage(ctx, addr, q)
		}
		if err != nil {
			return delivered, err
		}
		p, es, err := wire.ParseExportPage(body, (*edges)[:0])
		*edges = es
		if err != nil {
			return delivered, err
		}
		if err := fn(p, es); err != nil {
			return delivered, err
		}
		delivered += int64(len(es))
		if p.Done {
			return delivered, nil
		}
		q.Session, q.Position = p.Session, p.Next
	}
}

// exportPage asks the node holding an export session for a page, retrying
// what may pass (a lost connection, a timeout, an overloaded node) within
// the request timeout. A node that stays unreachable, or is shutting down,
// has lost the session: that is ErrExportExpired.
func (c *Client) exportPage(ctx context.Context, addr string, q wire.ExportRequest) ([]byte, error) {
	pctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	backoff := c.cfg.RetryBackoff
	for {
		resp, _, err := c.attempt(pctx, addr, wire.OpExport, func(b []byte) []byte { return wire.AppendExportRequest(b, q) })
		switch {
		case err == nil:
			return resp, nil
		case ctx.Err() != nil:
			return nil, err
		case codes.Of(err) == codes.ShuttingDown:
			return nil, codes.New(codes.ExportExpired, "export session %d: %s is shutting down: %v", q.Session, addr, err)
		case !retryable(err):
			return nil, err
		}
		select {
		case <-time.After(backoff + time.Duration(rand.Int64N(int64(backoff)/2+1))):
		case <-pctx.Done():
			return nil, codes.New(codes.ExportExpired, "export session %d: %s did not answer within %v: %v", q.Session, addr, c.cfg.RequestTimeout, err)
		}
		backoff = min(2*backoff, c.cfg.MaxRetryBackoff)
	}
}
