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
	var lc loadCounts
	var wg sync.WaitGroup
	for range p.Workers {
		wg.Go(func() { lc.send(ctx, t, batches) })
	}
	start := time.Now()
	stop := lc.showProgress(start, progress)
	produceBatches(ctx, g, p.Graph.Users, p.Batch, batches)
	close(batches)
	wg.Wait()
	stop()
	secs := time.Since(start).Seconds()
	rep := &LoadReport{Users: p.Graph.Users, Edges: lc.edges.Load(), Seconds: secs, EdgesPerSec: float64(lc.edges.Load()) / secs, Errors: lc.errs.Load()}
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	if lc.firstErr != nil {
		return rep, lc.firstErr
	}
	return rep, nil
}

// loadCounts is what the load workers have done so far.
type loadCounts struct {
	edges, errs atomic.Int64 // edges written, batches failed
	errOnce     sync.Once
	firstErr    error
}

// send writes each batch from batches to t until batches is closed,
// counting the edges written and the batches that failed (keeping the
// first failure).
func (lc *loadCounts) send(ctx context.Context, t Target, batches <-chan []FollowBatch) {
	for b := range batches {
		n := 0
		for _, fb := range b {
			n += len(fb.Targets)
		}
		if err := loadBatch(ctx, t, b); err != nil {
			lc.errs.Add(1)
			lc.errOnce.Do(func() { lc.firstErr = err })
			continue
		}
		lc.edges.Add(int64(n))
	}
}

// showProgress prints the edges written and the rate since the last line,
// every 2 s until stop is called.
func (lc *loadCounts) showProgress(start time.Time, progress Progress) (stop func()) {
	var last int64
	return tickEvery(2*time.Second, func(now time.Time) {
		e := lc.edges.Load()
		progress("  load %5.0fs  %10d edges  %9.0f edges/s  %d failed batches", now.Sub(start).Seconds(), e, float64(e-last)/2, lc.errs.Load())
		last = e
	})
}

// loadBatch writes one batch. A bulk load retries a transient failure (a
// queue that is momentarily full) up to 20 times, with a pause growing by
// 10 ms each time, so that a busy target slows the load rather than
// failing it.
func loadBatch(ctx context.Context, t Target, b []FollowBatch) error {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = t.Load(ctx, b); err == nil || !codes.Of(err).Retryable() || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond)
	}
	return err
}

// produceBatches sends the graph's follows to batches: users in order,
// each user's follows in requests of up to 20 targets (the most a request
// takes), up to size requests a batch. It stops early if ctx ends.
func produceBatches(ctx context.Context, g *graphgen.Graph, users, size int, batches chan<- []FollowBatch) {
	var fl []int
	cur := make([]FollowBatch, 0, size)
	for u := range users {
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
			if len(cur) == size {
				select {
				case batches <- cur:
				case <-ctx.Done():
					return
				}
				cur = make([]FollowBatch, 0, size)
			}
		}
	}
	if len(cur) > 0 && ctx.Err() == nil {
		batches <- cur
	}
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
