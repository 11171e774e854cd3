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

// tickEvery calls fn with the time of each tick, every d, from its own
// goroutine, until the returned stop is called: the progress lines of a
// long phase. stop does not wait for a call under way.
func tickEvery(d time.Duration, fn func(now time.Time)) (stop func()) {
	done := make(chan struct{})
	go func() {
		tk := time.NewTicker(d)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-tk.C:
				fn(now)
			}
		}
	}()
	return func() { close(done) }
}

// Run runs a workload against t and returns its report (without verify or
// memory figures; see Verify and MemoryOf).
func Run(ctx context.Context, t Target, p RunParams, progress Progress) (*Report, error) {
	r, err := newRun(t, p, progress)
	if err != nil {
		return nil, err
	}
	rep := &Report{Tool: "followbench", Command: "run", StartedAt: time.Now().UTC(), Params: r.p, Machine: MachineInfo()}
	if info, err := t.Info(ctx); err == nil {
		rep.Target = info
	}
	elapsed := r.measure(ctx)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	rep.CPU = r.cpu
	r.rec.fill(rep, elapsed)
	return rep, nil
}

// run is one Run under way: what its workers, lag probe and progress
// lines share.
type run struct {
	t        Target
	p        RunParams
	g        *graphgen.Graph
	pk       *picker
	rec      *recorder
	index    map[string]int // operation -> its column in rec
	progress Progress

	begin, end time.Time // of the warm-up, and of the measured period
	cpu        *CPUReport
	done, errs atomic.Int64
}

// newRun checks p, fills in its defaults and prepares the recorder, with a
// column per operation and one for the lag probes.
func newRun(t Target, p RunParams, progress Progress) (*run, error) {
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
	ops := append(slices.Clone(AllOps), OpReverseLag)
	index := map[string]int{}
	for i, op := range ops {
		index[op] = i
	}
	rec := newRecorder(ops, int(p.Duration/time.Second)+2)
	return &run{t: t, p: p, g: g, pk: pk, rec: rec, index: index, progress: progress}, nil
}

// measure runs the workers (and the lag probe) through the warm-up and the
// measured period, with a progress line every second, and returns how long
// was measured.
func (r *run) measure(ctx context.Context) time.Duration {
	r.begin = time.Now()
	r.rec.start = r.begin.Add(r.p.Warmup)
	r.end = r.rec.start.Add(r.p.Duration)
	var wg sync.WaitGroup
	for w := range r.p.Clients {
		wg.Go(func() { r.worker(ctx, w) })
	}
	if r.p.LagProbe > 0 {
		wg.Go(func() { lagProbe(ctx, r.t, r.p, r.g, r.rec, r.index[OpReverseLag], r.end) })
	}
	// The CPU counters are read when measurement starts and once every
	// worker has stopped.
	var begin cpuClock
	sampled := false
	wg.Go(func() {
		select {
		case <-time.After(time.Until(r.rec.start)):
			begin, sampled = readCPU(ctx, r.t), true
		case <-ctx.Done():
		}
	})
	stop := r.showProgress()
	wg.Wait()
	stop()
	if sampled {
		r.cpu = cpuBetween(begin, readCPU(ctx, r.t))
	}
	return min(time.Since(r.rec.start), r.p.Duration)
}

// showProgress prints the phase, the time so far, the last second's
// operations and the errors so far, every second until stop is called.
func (r *run) showProgress() (stop func()) {
	var last int64
	return tickEvery(time.Second, func(now time.Time) {
		n := r.done.Load()
		phase := "run"
		if now.Before(r.rec.start) {
			phase = "warm-up"
		}
		r.progress("  %-7s %5.0fs  %8d ops/s  %d errors", phase, now.Sub(r.begin).Seconds(), n-last, r.errs.Load())
		last = n
	})
}

// requestGrace is how long past the measured period a request may take.
const requestGrace = 10 * time.Second

// worker is client w of the loop: it sends operations drawn from the mix,
// timed by a pacer, until the end of the measured period, and records
// those that finish after the warm-up. Each worker has its own random
// stream, so a seed replays the same operations.
func (r *run) worker(ctx context.Context, w int) {
	// One deadline for all of the worker's requests, 10 s past the end (a
	// request still unanswered then fails as a timeout): a client gives a
	// call without a deadline a timer of its own, and creating and
	// stopping one per request was a tenth of followbench's CPU.
	ctx, cancel := context.WithDeadline(ctx, r.end.Add(requestGrace))
	defer cancel()
	rng := rand.New(rand.NewPCG(r.p.Seed, uint64(w)+1))
	gen := newOpGen(r.g)
	deep := &deepCursor{}
	pace := newPacer(r.p, r.begin, rng)
	for {
		start, ok := pace.wait(ctx)
		if !ok || start.After(r.end) || ctx.Err() != nil {
			return
		}
		op := r.pk.pick(rng)
		err := doOp(ctx, r.t, op, rng, gen, deep, r.p.PageSize)
		finish := time.Now()
		if finish.Before(r.rec.start) {
			continue // warm-up
		}
		if err != nil && ctx.Err() != nil {
			return // cancelled: not a failure of the target
		}
		r.record(w, op, finish.Sub(start), finish, err)
	}
}

// record counts one measured operation of worker w: its latency and, if it
// failed, its error code.
func (r *run) record(w int, op string, latency time.Duration, finish time.Time, err error) {
	code := ""
	if err != nil {
		code = strconv.Itoa(int(codes.Of(err)))
		r.errs.Add(1)
	}
	r.rec.record(w, r.index[op], latency, code, finish)
	r.done.Add(1)
}

// pacer times one worker's operations. In a closed loop (no rate) each
// starts when the previous one ends. In an open loop the worker's share of
// the rate sets a fixed schedule, from a random phase so that the workers
// do not send in step, and an operation's latency counts from its
// scheduled time: a stalled target shows as queueing delay instead of
// fewer samples (no coordinated omission).
type pacer struct {
	open     bool
	interval time.Duration
	next     time.Time
}

// newPacer paces one worker of a run that starts at begin; an open loop
// draws its phase from rng.
func newPacer(p RunParams, begin time.Time, rng *rand.Rand) *pacer {
	pc := &pacer{open: p.Rate > 0, next: begin}
	if pc.open {
		pc.interval = time.Duration(float64(time.Second) * float64(p.Clients) / p.Rate)
		pc.next = begin.Add(time.Duration(rng.Int64N(int64(pc.interval) + 1)))
	}
	return pc
}

// wait returns once the next operation is due, with the time its latency
// counts from, or false if ctx ends first.
func (pc *pacer) wait(ctx context.Context) (time.Time, bool) {
	if !pc.open {
		return time.Now(), true
	}
	if now := time.Now(); pc.next.After(now) {
		select {
		case <-time.After(pc.next.Sub(now)):
		case <-ctx.Done():
			return time.Time{}, false
		}
	}
	start := pc.next // latency from the intended send time
	pc.next = pc.next.Add(pc.interval)
	return start, true
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
