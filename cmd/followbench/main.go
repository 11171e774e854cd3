// Command followbench loads and benchmarks followgraph (and Redis, with the
// same workload), and checks the graph's invariants afterwards.
//
//	followbench run --preset smoke --target followd://127.0.0.1:7700 --out r.json
//	followbench load --preset default --target followd://127.0.0.1:7700
//	followbench compare followd://127.0.0.1:7700 redis://127.0.0.1:6379 --preset default
//	followbench presets
//
// See docs/PERFORMANCE.md for the figures and how they were produced.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/followgraph/followgraph/bench"
	"github.com/followgraph/followgraph/internal/certs"
	"github.com/followgraph/followgraph/internal/graphgen"
)

var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `followbench: load and benchmark followgraph (and Redis, with the same workload)

Usage:
  followbench run     --target URL [--preset NAME] [flags]   run a workload (loading the graph first if needed)
  followbench load    --target URL [--preset NAME] [flags]   load a preset's graph and report edges/s
  followbench compare URL_A URL_B [--preset NAME] [flags]   run both, interleaved, and print the ratios
  followbench presets                                         list the presets

Targets: followd://host:port (flags --token, --token-name, --metrics http://host:7780, or in
the URL: followd://host:port?metrics=http://host:7780; over TLS --tls-ca, and
--tls-cert, --tls-key for mutual TLS), http://host:7780 (followd's native JSON
API on its HTTP port, same token flags; https:// with --tls-ca) or redis://host:port.
Reports give each operation's rate and latency, and the CPU per operation
of the server (followd's /metrics, Redis's INFO cpu) and of followbench.

Examples:
  followbench run --preset smoke --target followd://127.0.0.1:7700 --out r.json
  followbench run --preset read-heavy --target followd://127.0.0.1:7700 --rate 50000 --duration 60s
  followbench compare followd://127.0.0.1:7700 redis://127.0.0.1:6379 --preset default --out cmp.json
  followbench compare followd://127.0.0.1:7700 http://127.0.0.1:7780 --preset read-heavy

Run "followbench COMMAND -h" for a command's flags.
`

// common are the flags every command shares.
type common struct {
	preset, target, token, tokenName, metrics, out, charts, mix, load string
	users, celebrities, clients, workers, batch, verify               int
	meanFollowing, zipf, celebShare, rate                             float64
	duration, warmup                                                  time.Duration
	seed                                                              uint64
	pageSize, rounds, conns                                           int
	cpuprofile                                                        string
	lagProbe                                                          float64
	tlsCA, tlsCert, tlsKey, tlsServerName                             string
}

func flags(name string, c *common, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("followbench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.preset, "preset", "smoke", "workload preset: "+strings.Join(bench.PresetNames(), ", "))
	fs.StringVar(&c.target, "target", "followd://127.0.0.1:7700", "target: followd://host:port, http://host:port[?pipeline=N] (followd's JSON API; N requests in flight per connection) or redis://host:port")
	fs.StringVar(&c.token, "token", os.Getenv("FOLLOWBENCH_TOKEN"), "followd token (env FOLLOWBENCH_TOKEN)")
	fs.StringVar(&c.tokenName, "token-name", os.Getenv("FOLLOWBENCH_TOKEN_NAME"), "name of the followd token in its token file (env FOLLOWBENCH_TOKEN_NAME; empty: default)")
	fs.StringVar(&c.metrics, "metrics", "", "followd HTTP address for memory figures (default http://HOST:7780, https:// with TLS)")
	fs.StringVar(&c.tlsCA, "tls-ca", os.Getenv("FOLLOWBENCH_TLS_CA"), "followd over TLS: trust the server certificates this PEM CA `FILE` issued (env FOLLOWBENCH_TLS_CA)")
	fs.StringVar(&c.tlsCert, "tls-cert", os.Getenv("FOLLOWBENCH_TLS_CERT"), "followd over mutual TLS: this PEM client certificate `FILE` (env FOLLOWBENCH_TLS_CERT)")
	fs.StringVar(&c.tlsKey, "tls-key", os.Getenv("FOLLOWBENCH_TLS_KEY"), "PEM private key `FILE` of --tls-cert (env FOLLOWBENCH_TLS_KEY)")
	fs.StringVar(&c.tlsServerName, "tls-server-name", os.Getenv("FOLLOWBENCH_TLS_SERVER_NAME"), "the `NAME` followd's certificate must hold (default: the target's host; env FOLLOWBENCH_TLS_SERVER_NAME)")
	fs.StringVar(&c.out, "out", "", "write the JSON report here (charts go next to it: NAME-latency.png, NAME-throughput.png)")
	fs.StringVar(&c.charts, "charts", "", "chart file prefix (default: --out without .json)")
	fs.StringVar(&c.mix, "mix", "", "operation mix, e.g. follow=10,check=50,followers=40 (default: the preset's)")
	fs.StringVar(&c.load, "load", "auto", "load the graph first: auto (if the target looks empty), always, never")
	fs.IntVar(&c.users, "users", 0, "users in the graph (default: the preset's)")
	fs.Float64Var(&c.meanFollowing, "mean-following", 0, "mean follows per user (default: the preset's)")
	fs.Float64Var(&c.zipf, "zipf", -1, "followee popularity exponent (default: the preset's)")
	fs.IntVar(&c.celebrities, "celebrities", -1, "celebrities getting --celebrity-share of all follows (default: the preset's)")
	fs.Float64Var(&c.celebShare, "celebrity-share", -1, "share of follows that go to the celebrities (default: the preset's)")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the graph and the operation stream")
	fs.IntVar(&c.clients, "clients", 0, "concurrent clients (closed loop) or workers (open loop) (default: the preset's)")
	fs.Float64Var(&c.rate, "rate", 0, "open loop: target ops/s, latency measured from the intended send time (0: closed loop)")
	fs.DurationVar(&c.duration, "duration", 0, "measured duration (default: the preset's)")
	fs.DurationVar(&c.warmup, "warmup", -1, "warm-up before measuring (default: the preset's)")
	fs.IntVar(&c.pageSize, "page-size", 100, "list page size")
	fs.IntVar(&c.verify, "verify", 100, "after the run, check the invariants on this many sampled users (0: skip)")
	fs.IntVar(&c.workers, "load-workers", 32, "concurrent loaders")
	fs.IntVar(&c.batch, "load-batch", 64, "follow requests (of up to 20 targets) per load batch")
	fs.IntVar(&c.rounds, "rounds", 4, "compare: alternate the targets this many times")
	fs.IntVar(&c.conns, "conns", 4, "client connections per node (followd), pipelined connections (http with ?pipeline=N), or rueidis pipeline connections (redis)")
	fs.Float64Var(&c.lagProbe, "lag-probe", 0, "measure the reverse-side lag this many times a second (reported as reverse-lag)")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "write followbench's own CPU profile here (to see what the load generator costs)")
	return fs
}

// params applies the flags to the preset.
func (c *common) params() (bench.RunParams, error) {
	p, err := bench.ParamsFor(c.preset)
	if err != nil {
		return p, err
	}
	if c.mix != "" {
		if p.Mix, err = bench.ParseMix(c.mix); err != nil {
			return p, err
		}
	}
	g := &p.Graph
	if c.users > 0 {
		g.Users = c.users
	}
	if c.meanFollowing > 0 {
		g.MeanFollowing = c.meanFollowing
	}
	if c.zipf >= 0 {
		g.ZipfS = c.zipf
	}
	if c.celebrities >= 0 {
		g.Celebrities = c.celebrities
	}
	if c.celebShare >= 0 {
		g.CelebrityShare = c.celebShare
	}
	g.Seed = c.seed
	if err := g.Validate(); err != nil {
		return p, err
	}
	p.Seed = c.seed
	if c.clients > 0 {
		p.Clients = c.clients
	}
	p.Rate = c.rate
	if c.duration > 0 {
		p.Duration = c.duration
	}
	if c.warmup >= 0 {
		p.Warmup = c.warmup
	}
	p.PageSize = c.pageSize
	p.LagProbe = c.lagProbe
	return p, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	cmd, rest := args[0], args[1:]
	var c common
	fs := flags(cmd, &c, stderr)
	var positional []string
	// Flags may follow the positional arguments (compare A B --preset x).
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		rest = fs.Args()
		if len(rest) > 0 {
			positional = append(positional, rest[0])
			rest = rest[1:]
		}
	}
	progress := bench.ProgressTo(stderr)
	if c.cpuprofile != "" {
		f, err := os.Create(c.cpuprofile)
		if err != nil {
			fmt.Fprintln(stderr, "followbench:", err)
			return 1
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	var err error
	switch cmd {
	case "presets":
		printPresets(stdout)
		return 0
	case "load":
		err = cmdLoad(ctx, &c, stdout, progress)
	case "run":
		err = cmdRun(ctx, &c, stdout, progress)
	case "compare":
		if len(positional) != 2 {
			fmt.Fprintln(stderr, "followbench compare: want two targets: compare URL_A URL_B")
			return 2
		}
		err = cmdCompare(ctx, &c, positional[0], positional[1], stdout, progress)
	default:
		fmt.Fprintf(stderr, "followbench: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if len(positional) > 0 && cmd != "compare" {
		fmt.Fprintf(stderr, "followbench %s: unexpected arguments %q\n", cmd, positional)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "followbench:", err)
		return 1
	}
	return 0
}

// printPresets lists the presets with their graphs, clients, durations
// and mixes.
func printPresets(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, n := range bench.PresetNames() {
		p := bench.Presets[n]
		fmt.Fprintf(tw, "%s\t%s\n\tgraph: %d users, mean %g follows, zipf %g, %d celebrities (%g share); %d clients, %s + %s warm-up\n\tmix: %s\n",
			n, p.Help, p.Graph.Users, p.Graph.MeanFollowing, p.Graph.ZipfS, p.Graph.Celebrities, p.Graph.CelebrityShare, p.Clients, p.Duration, p.Warmup, p.Mix)
	}
	tw.Flush()
}

func open(ctx context.Context, c *common, spec string) (bench.Target, error) {
	o := bench.TargetOptions{Token: c.token, TokenName: c.tokenName, MetricsURL: c.metrics, Conns: c.conns}
	if c.tlsCA != "" || c.tlsCert != "" || c.tlsKey != "" || c.tlsServerName != "" {
		var err error
		if o.TLS, err = certs.Client(c.tlsCA, c.tlsCert, c.tlsKey, c.tlsServerName); err != nil {
			return nil, err
		}
	}
	return bench.Open(ctx, spec, o)
}

// openTarget applies the flags to the preset and connects to --target: the
// start of load and run. The caller closes the target.
func openTarget(ctx context.Context, c *common) (bench.RunParams, bench.Target, error) {
	p, err := c.params()
	if err != nil {
		return p, nil, err
	}
	t, err := open(ctx, c, c.target)
	if err != nil {
		return p, nil, err
	}
	return p, t, nil
}

// addMemory puts the target's memory figures in rep, per edge of the
// edges loaded when the target cannot count its own. Without them the
// report is still worth having, so a failure is only told.
func addMemory(ctx context.Context, t bench.Target, rep *bench.Report, edges int64, progress bench.Progress) {
	if m, err := bench.MemoryOf(ctx, t, edges); err == nil {
		rep.Memory = m
	} else {
		progress("memory figures unavailable: %v", err)
	}
}

// maybeLoad loads the graph if asked, or if the target looks empty.
func maybeLoad(ctx context.Context, c *common, t bench.Target, p bench.RunParams, progress bench.Progress) (*bench.LoadReport, error) {
	switch c.load {
	case "never":
		return nil, nil
	case "auto":
		g, err := graphgen.New(p.Graph)
		if err != nil {
			return nil, err
		}
		star := graphgen.UserID(g.ByRank(0))
		if cs, err := t.Counts(ctx, []string{star}); err == nil && cs[0].Followers > 0 {
			progress("graph already loaded (%s has %d followers); --load always to load anyway", star, cs[0].Followers)
			return nil, nil
		}
	case "always":
	default:
		return nil, fmt.Errorf("--load %q: want auto, always or never", c.load)
	}
	progress("loading %d users (mean %g follows, zipf %g)...", p.Graph.Users, p.Graph.MeanFollowing, p.Graph.ZipfS)
	lr, err := bench.Load(ctx, t, bench.LoadParams{Graph: p.Graph, Workers: c.workers, Batch: c.batch}, progress)
	if err != nil {
		return lr, err
	}
	progress("loaded %d edges in %.1fs: %.0f edges/s", lr.Edges, lr.Seconds, lr.EdgesPerSec)
	return lr, nil
}

func cmdLoad(ctx context.Context, c *common, stdout io.Writer, progress bench.Progress) error {
	p, t, err := openTarget(ctx, c)
	if err != nil {
		return err
	}
	defer t.Close()
	c.load = "always"
	lr, err := maybeLoad(ctx, c, t, p, progress)
	if err != nil {
		return err
	}
	rep := &bench.Report{Tool: "followbench", Version: version, Command: "load", StartedAt: time.Now().UTC(), Params: p, Machine: bench.MachineInfo(), Load: lr}
	if info, err := t.Info(ctx); err == nil {
		rep.Target = info
	}
	if err := t.Quiesce(ctx); err != nil {
		progress("waiting for the target to settle: %v", err)
	}
	addMemory(ctx, t, rep, lr.Edges, progress)
	fmt.Fprintf(stdout, "loaded %d users, %d edges in %.1fs: %.0f edges/s (%d failed batches)\n", lr.Users, lr.Edges, lr.Seconds, lr.EdgesPerSec, lr.Errors)
	if rep.Memory != nil {
		fmt.Fprintf(stdout, "memory: %.1f MiB resident, %d edges, %.1f bytes/edge\n", float64(rep.Memory.RSSBytes)/(1<<20), rep.Memory.Edges, rep.Memory.BytesPerEdge)
	}
	if c.out != "" {
		return rep.SaveJSON(c.out)
	}
	return nil
}

// runOne loads if needed, runs, verifies and measures memory.
func runOne(ctx context.Context, c *common, t bench.Target, p bench.RunParams, progress bench.Progress) (*bench.Report, error) {
	lr, err := maybeLoad(ctx, c, t, p, progress)
	if err != nil {
		return nil, err
	}
	progress("running preset %s for %s (+%s warm-up)...", p.Preset, p.Duration, p.Warmup)
	rep, err := bench.Run(ctx, t, p, progress)
	if err != nil {
		return nil, err
	}
	rep.Version, rep.Load = version, lr
	return rep, nil
}

func finish(ctx context.Context, c *common, t bench.Target, rep *bench.Report, progress bench.Progress) {
	if c.verify > 0 {
		progress("checking invariants on %d sampled users...", c.verify)
		v, err := bench.Verify(ctx, t, rep.Params.Graph, c.verify, c.seed)
		if err != nil {
			progress("invariant check failed to run: %v", err)
		} else {
			rep.Verify = v
		}
	}
	var edges int64
	if rep.Load != nil {
		edges = rep.Load.Edges
	}
	addMemory(ctx, t, rep, edges, progress)
}

func chartPrefix(c *common) string {
	if c.charts != "" {
		return c.charts
	}
	if c.out != "" {
		return strings.TrimSuffix(c.out, ".json")
	}
	return ""
}

func cmdRun(ctx context.Context, c *common, stdout io.Writer, progress bench.Progress) error {
	p, t, err := openTarget(ctx, c)
	if err != nil {
		return err
	}
	defer t.Close()
	rep, err := runOne(ctx, c, t, p, progress)
	if err != nil {
		return err
	}
	finish(ctx, c, t, rep, progress)
	rep.WriteTable(stdout)
	if c.out != "" {
		if err := rep.SaveJSON(c.out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "report: %s\n", c.out)
	}
	if prefix := chartPrefix(c); prefix != "" {
		files, err := bench.WriteCharts(rep, prefix)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "charts: %s\n", strings.Join(files, ", "))
	}
	if rep.Verify != nil && rep.Verify.Violations > 0 {
		return fmt.Errorf("%d invariant violations", rep.Verify.Violations)
	}
	return nil
}

// Comparison is what compare writes with --out.
type Comparison struct {
	A, B *bench.Report
}

func cmdCompare(ctx context.Context, c *common, specA, specB string, stdout io.Writer, progress bench.Progress) error {
	p, err := c.params()
	if err != nil {
		return err
	}
	var targets [2]bench.Target
	for i, spec := range []string{specA, specB} {
		t, err := open(ctx, c, spec)
		if err != nil {
			return fmt.Errorf("%s: %w", spec, err)
		}
		defer t.Close()
		targets[i] = t
	}
	var loads [2]*bench.LoadReport
	for i, t := range targets {
		progress("== %s", []string{specA, specB}[i])
		if loads[i], err = maybeLoad(ctx, c, t, p, progress); err != nil {
			return err
		}
	}
	// Interleave: A, B, A, B... so that drift in the machine's load hits
	// both alike.
	rounds := max(c.rounds, 1)
	round := p
	round.Duration = p.Duration / time.Duration(rounds)
	var parts [2][]*bench.Report
	for r := range rounds {
		for i, t := range targets {
			progress("== round %d/%d: %s", r+1, rounds, []string{specA, specB}[i])
			rep, err := bench.Run(ctx, t, round, progress)
			if err != nil {
				return err
			}
			parts[i] = append(parts[i], rep)
			round.Warmup = min(round.Warmup, time.Second) // warm once, then short re-warms
		}
	}
	var reps [2]*bench.Report
	for i := range targets {
		reps[i] = bench.Merge(parts[i])
		reps[i].Version, reps[i].Load, reps[i].Command = version, loads[i], "compare"
		finish(ctx, c, targets[i], reps[i], progress)
		reps[i].WriteTable(stdout)
		fmt.Fprintln(stdout)
	}
	writeRatios(stdout, reps[0], reps[1])
	if c.out != "" {
		f, err := os.Create(c.out)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := writeJSON(f, Comparison{reps[0], reps[1]}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "report: %s\n", c.out)
	}
	if prefix := chartPrefix(c); prefix != "" {
		for i, r := range reps {
			if _, err := bench.WriteCharts(r, fmt.Sprintf("%s-%c", prefix, 'a'+i)); err != nil {
				return err
			}
		}
		if err := bench.WriteCompareChart(reps[0], reps[1], prefix+"-p99.png"); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "charts: %s-{a,b}-latency.png, %s-{a,b}-throughput.png, %s-p99.png\n", prefix, prefix, prefix)
	}
	return nil
}

func writeRatios(w io.Writer, a, b *bench.Report) {
	fmt.Fprintf(w, "ratios %s / %s (ops/s: higher is better for %s; p99: lower is better)\n", a.Target.Kind, b.Target.Kind, a.Target.Kind)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "op\t%s ops/s\t%s ops/s\tratio\t%s p99 ms\t%s p99 ms\tratio\t\n", a.Target.Kind, b.Target.Kind, a.Target.Kind, b.Target.Kind)
	byOp := map[string]bench.OpStats{}
	for _, s := range b.Ops {
		byOp[s.Op] = s
	}
	byOp["all"] = b.Total
	for _, s := range append(append([]bench.OpStats(nil), a.Ops...), a.Total) {
		o, ok := byOp[s.Op]
		if !ok {
			continue
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.2fx\t%.3f\t%.3f\t%.2fx\t\n", s.Op, s.OpsPerSec, o.OpsPerSec, ratio(s.OpsPerSec, o.OpsPerSec), s.P99Ms, o.P99Ms, ratio(s.P99Ms, o.P99Ms))
	}
	tw.Flush()
	if a.CPU != nil && b.CPU != nil && a.CPU.Server != nil && b.CPU.Server != nil {
		fmt.Fprintf(w, "cpu per op: %s %.1f µs, %s %.1f µs (%.2fx)\n", a.Target.Kind, a.CPU.Server.UsPerOp, b.Target.Kind, b.CPU.Server.UsPerOp, ratio(a.CPU.Server.UsPerOp, b.CPU.Server.UsPerOp))
	}
	if a.Memory != nil && b.Memory != nil {
		fmt.Fprintf(w, "memory: %s %.1f bytes/edge, %s %.1f bytes/edge (%.2fx)\n", a.Target.Kind, a.Memory.BytesPerEdge, b.Target.Kind, b.Memory.BytesPerEdge, ratio(a.Memory.BytesPerEdge, b.Memory.BytesPerEdge))
	}
}

func ratio(x, y float64) float64 {
	if y == 0 {
		return 0
	}
	return x / y
}

func writeJSON(w io.Writer, v any) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(v)
}
