package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/internal/graphgen"
)

// LoadParams configure a graph load.
type LoadParams struct {
	Graph graphgen.Config
	// Workers send batches concurrently; each batch holds up to Batch
	// follow requests of up to 20 targets.
	Workers int
	Batch   int
}

// Load writes the graph into t and reports edges per second. Users are
// generated in order; each user's follows go in requests of 20 targets.
func Load(ctx context.Context, t Target, p LoadParams, progress Progress) (*LoadReport, error) {
	g, err := graphgen.New(p.Graph)
	if err != nil {
		return nil, err
	}
	if p.Workers <= 0 {
		p.Workers = 16
	}
	if p.Batch <= 0 {
		p.Batch = 64
	}
	if progress == nil {
		progress = func(string, ...any) {}
	}
	batches := make(chan []FollowBatch, p.Workers*2)
	var edges, errs atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range p.Workers {
		wg.Go(func() {
			for b := range batches {
				n := 0
				for _, fb := range b {
					n += len(fb.Targets)
				}
				// Bulk loads retry transient failures (a queue that is
				// momentarily full) with a short pause.
				var err error
				for attempt := 0; attempt < 20; attempt++ {
					if err = t.Load(ctx, b); err == nil || !codes.Of(err).Retryable() || ctx.Err() != nil {
						break
					}
					time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond)
				}
				if err != nil {
					errs.Add(1)
					errOnce.Do(func() { firstErr = err })
					continue
				}
				edges.Add(int64(n))
			}
		})
	}
	start := time.Now()
	stop := make(chan struct{})
	go func() {
		tk := time.NewTicker(2 * time.Second)
		defer tk.Stop()
		var last int64
		for {
			select {
			case <-stop:
				return
			case now := <-tk.C:
				e := edges.Load()
				progress("  load %5.0fs  %10d edges  %9.0f edges/s  %d failed batches", now.Sub(start).Seconds(), e, float64(e-last)/2, errs.Load())
				last = e
			}
		}
	}()
	var fl []int
	cur := make([]FollowBatch, 0, p.Batch)
produce:
	for u := range p.Graph.Users {
		fl = g.Following(u, fl)
		actor := graphgen.UserID(u)
		for len(fl) > 0 {
			k := min(20, len(fl))
			targets := make([]string, k)
			for i, v := range fl[:k] {
				targets[i] = graphgen.UserID(v)
			}
			fl = fl[k:]
			cur = append(cur, FollowBatch{Actor: actor, Targets: targets})
			if len(cur) == p.Batch {
				select {
				case batches <- cur:
				case <-ctx.Done():
					break produce
				}
				cur = make([]FollowBatch, 0, p.Batch)
			}
		}
	}
	if len(cur) > 0 && ctx.Err() == nil {
		batches <- cur
	}
	close(batches)
	wg.Wait()
	close(stop)
	secs := time.Since(start).Seconds()
	rep := &LoadReport{Users: p.Graph.Users, Edges: edges.Load(), Seconds: secs, EdgesPerSec: float64(edges.Load()) / secs, Errors: errs.Load()}
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	if firstErr != nil {
		return rep, firstErr
	}
	return rep, nil
}

// MemoryOf reads the target's memory and divides by the edges it holds
// (or, when it cannot count them, by edges).
func MemoryOf(ctx context.Context, t Target, edges int64) (*MemoryReport, error) {
	m, err := t.Memory(ctx)
	if err != nil {
		return nil, err
	}
	r := &MemoryReport{RSSBytes: m.RSSBytes, Edges: m.Edges, Source: m.Source}
	if r.Edges == 0 {
		r.Edges = edges
	}
	if r.Edges > 0 {
		r.BytesPerEdge = float64(r.RSSBytes) / float64(r.Edges)
	}
	return r, nil
}
