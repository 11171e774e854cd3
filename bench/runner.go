package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/internal/graphgen"
)

// RunParams are a run's parameters, recorded in its report.
type RunParams struct {
	Preset   string          `json:"preset"`
	Mix      Mix             `json:"mix"`
	Graph    graphgen.Config `json:"graph"`
	Duration time.Duration   `json:"duration"`
	Warmup   time.Duration   `json:"warmup"`
	// Clients is the closed loop's concurrency, or the open loop's number
	// of workers.
	Clients int `json:"clients"`
	// Rate, when positive, runs an open loop at this many ops/s: each
	// operation has an intended send time on a fixed schedule, and its
	// latency counts from then, so a stalled target shows as queueing
	// delay instead of fewer samples (no coordinated omission).
	Rate     float64 `json:"rate"`
	PageSize int     `json:"pageSize"`
	Seed     uint64  `json:"seed"`
	// LagProbe, when positive, measures the reverse-side lag this many
	// times a second: a follow, then polling the followee's side until
	// the edge shows, reported as the "reverse-lag" operation (time from
	// the follow's acknowledgement to visibility).
	LagProbe float64 `json:"lagProbe"`
}

// ParamsFor returns the parameters of a preset.
func ParamsFor(preset string) (RunParams, error) {
	p, ok := Presets[preset]
	if !ok {
		return RunParams{}, fmt.Errorf("unknown preset %q (have %v)", preset, PresetNames())
	}
	return RunParams{Preset: p.Name, Mix: p.Mix, Graph: p.Graph, Duration: p.Duration, Warmup: p.Warmup, Clients: p.Clients, PageSize: 100, Seed: 1}, nil
}

// Progress receives a line now and then during long phases.
type Progress func(format string, args ...any)

// ProgressTo writes progress lines to w.
func ProgressTo(w io.Writer) Progress {
	return func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
}

// Run runs a workload against t and returns its report (without verify or
// memory figures; see Verify and MemoryOf).
func Run(ctx context.Context, t Target, p RunParams, progress Progress) (*Report, error) {
	g, err := graphgen.New(p.Graph)
	if err != nil {
		return nil, err
	}
	pk, err := newPicker(p.Mix)
	if err != nil {
		return nil, err
	}
	if p.Clients < 1 {
		return nil, fmt.Errorf("clients must be at least 1")
	}
	if p.PageSize <= 0 {
		p.PageSize = 100
	}
	if progress == nil {
		progress = func(string, ...any) {}
	}
	rep := &Report{Tool: "followbench", Command: "run", StartedAt: time.Now().UTC(), Params: p, Machine: MachineInfo()}
	if info, err := t.Info(ctx); err == nil {
		rep.Target = info
	}
	ops := append(slices.Clone(AllOps), OpReverseLag)
	index := map[string]int{}
	for i, op := range ops {
		index[op] = i
	}
	rec := newRecorder(ops, int(p.Duration/time.Second)+2)
	begin := time.Now()
	rec.start = begin.Add(p.Warmup)
	end := rec.start.Add(p.Duration)
	var done, errs atomic.Int64
	var wg sync.WaitGroup
	for w := range p.Clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(p.Seed, uint64(w)+1))
			gen := newOpGen(g)
			deep := &deepCursor{}
			var interval time.Duration
			next := begin
			if p.Rate > 0 {
				interval = time.Duration(float64(time.Second) * float64(p.Clients) / p.Rate)
				next = begin.Add(time.Duration(rng.Int64N(int64(interval) + 1)))
			}
			for {
				if p.Rate > 0 {
					if now := time.Now(); next.After(now) {
						select {
						case <-time.After(next.Sub(now)):
						case <-ctx.Done():
							return
						}
					}
				}
				start := time.Now()
				if p.Rate > 0 {
					start = next // latency from the intended send time
					next = next.Add(interval)
				}
				if start.After(end) || ctx.Err() != nil {
					return
				}
				op := pk.pick(rng)
				err := doOp(ctx, t, op, rng, gen, deep, p.PageSize)
				finish := time.Now()
				if finish.Before(rec.start) {
					continue // warm-up
				}
				code := ""
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					code = strconv.Itoa(int(codes.Of(err)))
					errs.Add(1)
				}
				rec.record(w, index[op], finish.Sub(start), code, finish)
				done.Add(1)
			}
		})
	}
	if p.LagProbe > 0 {
		wg.Go(func() { lagProbe(ctx, t, p, g, rec, index[OpReverseLag], end) })
	}
	// Progress while running.
	stop := make(chan struct{})
	go func() {
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		var last int64
		for {
			select {
			case <-stop:
				return
			case now := <-tk.C:
				n := done.Load()
				phase := "run"
				if now.Before(rec.start) {
					phase = "warm-up"
				}
				progress("  %-7s %5.0fs  %8d ops/s  %d errors", phase, now.Sub(begin).Seconds(), n-last, errs.Load())
				last = n
			}
		}
	}()
	wg.Wait()
	close(stop)
	elapsed := min(time.Since(rec.start), p.Duration)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	rec.fill(rep, elapsed)
	return rep, nil
}

// deepCursor walks a celebrity's followers page after page.
type deepCursor struct {
	user   string
	cursor string
}

func doOp(ctx context.Context, t Target, op string, rng *rand.Rand, g *opGen, deep *deepCursor, pageSize int) error {
	switch op {
	case OpFollow:
		u := rng.IntN(g.users)
		target := g.popular(rng)
		if target == graphgen.UserID(u) {
			target = g.user(rng) // a self-follow is a client bug, not load
		}
		return t.Follow(ctx, graphgen.UserID(u), []string{target})
	case OpUnfollow:
		u := rng.IntN(g.users)
		return t.Unfollow(ctx, graphgen.UserID(u), []string{g.followee(rng, u)})
	case OpCheck:
		u := rng.IntN(g.users)
		_, err := t.Check(ctx, graphgen.UserID(u), []string{g.followee(rng, u), g.user(rng)})
		return err
	case OpInfo:
		_, err := t.Counts(ctx, []string{g.popular(rng)})
		return err
	case OpFollowers:
		_, err := t.List(ctx, Followers, g.popular(rng), "", pageSize)
		return err
	case OpFollowing:
		_, err := t.List(ctx, Following, g.user(rng), "", pageSize)
		return err
	case OpMutual:
		_, err := t.List(ctx, Mutual, g.user(rng), "", pageSize)
		return err
	case OpDeepPage:
		if deep.user == "" {
			deep.user = g.celebs[rng.IntN(len(g.celebs))]
			deep.cursor = ""
		}
		p, err := t.List(ctx, Followers, deep.user, deep.cursor, pageSize)
		if err != nil {
			deep.user = ""
			return err
		}
		deep.cursor = p.Next
		if p.Next == "" {
			deep.user = ""
		}
		return nil
	}
	return fmt.Errorf("unknown op %q", op)
}

// OpReverseLag is the pseudo-operation lag probes are reported as.
const OpReverseLag = "reverse-lag"

// lagProbe follows, then polls the followee's side until the edge is
// visible there, and records the delay from the acknowledgement.
func lagProbe(ctx context.Context, t Target, p RunParams, g *graphgen.Graph, rec *recorder, op int, end time.Time) {
	rng := rand.New(rand.NewPCG(p.Seed, 7777))
	tick := time.NewTicker(time.Duration(float64(time.Second) / p.LagProbe))
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
		if time.Now().After(end) {
			return
		}
		actor := fmt.Sprintf("lagprobe-%d-%d", p.Seed, i)
		target := graphgen.UserID(rng.IntN(g.Config().Users))
		if err := t.Follow(ctx, actor, []string{target}); err != nil {
			continue
		}
		acked := time.Now()
		code := ""
		for {
			ft, err := t.Check(ctx, target, []string{actor})
			if err == nil && ft[0]&1 != 0 {
				break
			}
			if time.Since(acked) > 10*time.Second {
				code = strconv.Itoa(int(codes.Timeout))
				break
			}
			time.Sleep(200 * time.Microsecond)
		}
		done := time.Now()
		if done.After(rec.start) {
			rec.record(0, op, done.Sub(acked), code, done)
		}
	}
}
