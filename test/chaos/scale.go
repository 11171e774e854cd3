package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/followgraph/followgraph/bench"
	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/internal/graphgen"
	"github.com/followgraph/followgraph/wire"
)

// Scale mode: before the faulty part the cluster is loaded with a
// power-law graph of Config.Background users, and a bounded background
// load runs over it while the faults hit, so that they land on a cluster
// with real shard sizes (snapshots, catch-up, verify) rather than on the
// few dozen edges of the checked pool. Background operations are counted,
// not checked: the checked pool keeps its own user IDs.

// bgPrefix is put in front of every background user ID (graphgen's "u12")
// so that none equals a checked user's ("u12" is userID(12)).
const bgPrefix = "bg-"

// ScaleResult is what the scale mode loaded and did.
type ScaleResult struct {
	Users       int     `json:"users"`
	Edges       int64   `json:"edges"`
	LoadSeconds float64 `json:"loadSeconds"`
	EdgesPerSec float64 `json:"edgesPerSec"`
	LoadErrors  int64   `json:"loadErrors"` // batches that failed
	// Background operations during the run, by outcome.
	BackgroundOK     int64 `json:"backgroundOK"`
	BackgroundFailed int64 `json:"backgroundFailed"`
}

// backgroundGraph is the preloaded graph's configuration: a Twitter-like
// skew (Zipf 0.9), BackgroundMean follows per user on average.
func (c *Config) backgroundGraph() graphgen.Config {
	g := graphgen.DefaultConfig()
	g.Users, g.MeanFollowing, g.Seed = c.Background, c.BackgroundMean, c.Seed
	return g
}

// prefixed renames the users of a bulk load into the background's range.
type prefixed struct{ bench.Target }

func (p prefixed) Load(ctx context.Context, batch []bench.FollowBatch) error {
	out := make([]bench.FollowBatch, len(batch))
	for i, b := range batch {
		ts := make([]string, len(b.Targets))
		for j, t := range b.Targets {
			ts[j] = bgPrefix + t
		}
		out[i] = bench.FollowBatch{Actor: bgPrefix + b.Actor, Targets: ts}
	}
	return p.Target.Load(ctx, out)
}

// loadBackground writes the background graph through one node (the
// client finds every shard's leader) with followbench's loader, and
// waits until the reverse edges are delivered.
func (h *Harness) loadBackground(ctx context.Context, res *Result) error {
	t, err := bench.OpenFollowd(ctx, h.nodes[0].Addr, bench.TargetOptions{Conns: 4, MetricsURL: "http://" + h.nodes[0].HTTP})
	if err != nil {
		return err
	}
	defer t.Close()
	g := h.cfg.backgroundGraph()
	h.logf("loading the background graph: %d users, %.0f follows each on average (Zipf %.1f)", g.Users, g.MeanFollowing, g.ZipfS)
	rep, err := bench.Load(ctx, prefixed{t}, bench.LoadParams{Graph: g, Workers: 8, Batch: 64}, func(f string, a ...any) { h.logf(f, a...) })
	if rep != nil {
		res.Scale = &ScaleResult{Users: rep.Users, Edges: rep.Edges, LoadSeconds: rep.Seconds, EdgesPerSec: rep.EdgesPerSec, LoadErrors: rep.Errors}
		h.logf("loaded %d edges in %.1fs (%.0f edges/s), %d failed batches", rep.Edges, rep.Seconds, rep.EdgesPerSec, rep.Errors)
	}
	if err != nil {
		return fmt.Errorf("loading the background graph: %w", err)
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	return t.Quiesce(qctx)
}

// startBackground starts BackgroundClients clients, each issuing
// BackgroundRate operations a second over the background graph until
// stop is called: follows and unfollows of popular users (the graph's
// skew), checks, and first pages of following and followers lists.
func (h *Harness) startBackground(ctx context.Context, res *Result) (stop func(), err error) {
	g, err := graphgen.New(h.cfg.backgroundGraph())
	if err != nil {
		return nil, err
	}
	bctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var ok, bad atomic.Int64
	stop = func() {
		cancel()
		wg.Wait()
		res.Scale.BackgroundOK, res.Scale.BackgroundFailed = ok.Load(), bad.Load()
		h.logf("background load stopped: %d operations ok, %d failed", ok.Load(), bad.Load())
	}
	for i := range h.cfg.BackgroundClients {
		c, err := h.newClient(ctx, fmt.Sprintf("chaos-bg-%d", i))
		if err != nil {
			stop()
			return nil, err
		}
		rng := rand.New(rand.NewPCG(h.cfg.Seed, 1000+uint64(i)))
		wg.Go(func() {
			defer c.Close()
			tick := time.NewTicker(time.Duration(float64(time.Second) / h.cfg.BackgroundRate))
			defer tick.Stop()
			for {
				select {
				case <-bctx.Done():
					return
				case <-tick.C:
				}
				if err := h.backgroundOp(bctx, c, g, rng); err == nil {
					ok.Add(1)
				} else if bctx.Err() == nil {
					bad.Add(1)
				}
			}
		})
	}
	return stop, nil
}

// backgroundOp runs one random background operation: 20% follow, 10%
// unfollow, 40% check, 30% list.
func (h *Harness) backgroundOp(ctx context.Context, c *client.Client, g *graphgen.Graph, rng *rand.Rand) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.OpTimeout)
	defer cancel()
	actor := bgPrefix + graphgen.UserID(rng.IntN(h.cfg.Background))
	target := bgPrefix + graphgen.UserID(g.Followee(rng))
	var err error
	switch r := rng.IntN(100); {
	case r < 20:
		_, err = c.Follow(ctx, actor, []string{target})
	case r < 30:
		_, err = c.Unfollow(ctx, actor, []string{target})
	case r < 70:
		_, err = c.CheckAt(ctx, wire.Leader, actor, target)
	case r < 85:
		_, err = c.Following(ctx, actor, client.Limit(50))
	default:
		_, err = c.Followers(ctx, target, client.Limit(50))
	}
	return err
}

// startScale loads the background graph and starts the background load,
// if the run has one; stop ends the load (a no-op without one).
func (h *Harness) startScale(ctx context.Context, res *Result) (stop func(), err error) {
	if h.cfg.Background == 0 {
		return func() {}, nil
	}
	if err := h.loadBackground(ctx, res); err != nil {
		return nil, err
	}
	return h.startBackground(ctx, res)
}
