//go:build chaos

package chaos

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/followgraph/followgraph/wire"
)

var (
	seedsFlag    = flag.String("seeds", "1,2,random", "comma-separated seeds; \"random\" draws one and prints it")
	durationFlag = flag.Duration("duration", 60*time.Second, "length of the faulty part of each run (chaos) or of the soak")
	nodesFlag    = flag.Int("nodes", 3, "nodes in the cluster (3 or 5)")
	outFlag      = flag.String("out", "", "directory for run directories and artifacts (default: chaos-out in the repository)")
	netnsFlag    = flag.Bool("netns", true, "run nodes in network namespaces (needed for partitions; root only)")
	binFlag      = flag.String("bin", "", "directory holding followd and followctl (default: build them)")
	faultsFlag   = flag.String("faults", "", "comma-separated fault kinds to draw from (default: all)")
	shardsFlag   = flag.Int("shards", 0, "shards of the cluster (default 4; 64 for the scale mode)")
	bgFlag       = flag.Int("background", 0, "scale mode: preload a power-law graph of this many users and run a background load over it during the faults (0: off)")
	readsFlag    = flag.String("reads", "mixed", "consistency of the workload's reads: mixed (half leader, half linearizable), linearizable, leader, or any (follower reads, not linearizable: they show the checker at work)")
)

var followd, followctl string

func TestMain(m *testing.M) {
	flag.Parse()
	dir := *binFlag
	if dir == "" {
		tmp, err := os.MkdirTemp("", "followgraph-chaos-bin")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(tmp)
		build := exec.Command("go", "build", "-o", tmp, "../../cmd/followd", "../../cmd/followctl")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building the binaries:", err)
			os.Exit(2)
		}
		dir = tmp
	}
	followd, followctl = filepath.Join(dir, "followd"), filepath.Join(dir, "followctl")
	if *netnsFlag {
		CleanStale()
	}
	code := m.Run()
	// Repeated last, so that a CI log cut to its tail still says why.
	if len(failures.lines) > 0 {
		fmt.Println("chaos: failures (details and artifacts above):")
		for _, l := range failures.lines {
			fmt.Println("  " + l)
		}
	}
	os.Exit(code)
}

// failures collects every run's failure reasons for the summary TestMain
// prints after the tests.
var failures struct {
	sync.Mutex
	lines []string
}

func recordFailure(format string, args ...any) {
	failures.Lock()
	failures.lines = append(failures.lines, fmt.Sprintf(format, args...))
	failures.Unlock()
}

func outDir(t *testing.T) string {
	out := *outFlag
	if out == "" {
		out = filepath.Join("..", "..", "chaos-out")
	}
	out, _ = filepath.Abs(out)
	return out
}

func seeds(t *testing.T) []uint64 {
	var out []uint64
	for _, s := range strings.Split(*seedsFlag, ",") {
		s = strings.TrimSpace(s)
		if s == "random" {
			r := rand.Uint64() % 1_000_000
			t.Logf("random seed: %d (replay: make chaos CHAOS_SEEDS=%d)", r, r)
			fmt.Printf("chaos: random seed %d\n", r)
			out = append(out, r)
			continue
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("bad seed %q", s)
		}
		out = append(out, v)
	}
	return out
}

func baseConfig(t *testing.T, name string) Config {
	cfg := DefaultConfig()
	cfg.Followd, cfg.Followctl = followd, followctl
	cfg.Nodes = *nodesFlag
	cfg.Duration = *durationFlag
	cfg.Namespaces = *netnsFlag
	if cfg.Namespaces {
		if err := NamespacesWork(); err != nil {
			t.Fatalf("network namespaces do not work here (%v); run with -netns=false (CHAOS_NETNS=false) to leave partitions out", err)
		}
	}
	cfg.Dir = filepath.Join(outDir(t), name)
	os.RemoveAll(cfg.Dir)
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.Log = testWriter{t}
	if *shardsFlag > 0 {
		cfg.Shards = *shardsFlag
	}
	if *bgFlag > 0 {
		cfg.ScaleConfig(cfg.Shards, *bgFlag)
	}
	switch *readsFlag {
	case "mixed":
	case "linearizable":
		cfg.Reads = wire.Linearizable
	case "leader":
		cfg.Reads = wire.Leader
	case "any":
		cfg.Reads = wire.Any
	default:
		t.Fatalf("-reads %q: want linearizable, leader or any", *readsFlag)
	}
	if *faultsFlag != "" {
		for _, f := range strings.Split(*faultsFlag, ",") {
			cfg.Faults = append(cfg.Faults, FaultKind(strings.TrimSpace(f)))
		}
	}
	return cfg
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// runAndCheck runs one harness and fails the test on any violation,
// keeping the artifacts; a clean run keeps only its report.
func runAndCheck(t *testing.T, cfg Config) *Result {
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	budget := cfg.Duration + 10*time.Minute
	if cfg.Background > 0 {
		budget += 30 * time.Minute // the load and a full verify of the graph
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	res, err := h.Run(ctx)
	h.Close()
	if err != nil {
		recordFailure("%s seed %d: run: %v (logs in %s)", t.Name(), cfg.Seed, err, cfg.Dir)
		t.Fatalf("run: %v (logs in %s)", err, cfg.Dir)
	}
	var report strings.Builder
	WriteReport(&report, res)
	t.Log("\n" + report.String())
	fmt.Print(report.String())
	os.WriteFile(filepath.Join(cfg.Dir, "report.txt"), []byte(report.String()), 0o644)
	if v := res.Violations(); len(v) > 0 {
		if err := h.SaveArtifacts(res); err != nil {
			t.Errorf("saving artifacts: %v", err)
		}
		for _, s := range v {
			recordFailure("%s seed %d: %s", t.Name(), cfg.Seed, s)
			t.Errorf("seed %d: %s", cfg.Seed, s)
		}
		t.Errorf("artifacts (history, schedule, seed, node logs, visualisation) kept in %s", cfg.Dir)
		return res
	}
	for i := range cfg.Nodes {
		os.RemoveAll(filepath.Join(cfg.Dir, fmt.Sprintf("node%d", i+1), "data"))
	}
	return res
}

// TestChaos runs the seeded fault schedules.
func TestChaos(t *testing.T) {
	for _, seed := range seeds(t) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			cfg := baseConfig(t, fmt.Sprintf("seed-%d", seed))
			cfg.Seed = seed
			runAndCheck(t, cfg)
		})
	}
}

// TestSoak keeps the cluster under load with periodic faults that do not
// restart processes (pauses and partitions), so each node's goroutines,
// RSS and descriptors can be followed over the whole run; they must stay
// flat.
func TestSoak(t *testing.T) {
	cfg := baseConfig(t, "soak")
	cfg.Seed = seeds(t)[0]
	cfg.Faults = []FaultKind{FaultPause, FaultNone, FaultNone}
	if cfg.Namespaces {
		cfg.Faults = append(cfg.Faults, FaultIsolate, FaultIsolateLead, FaultSplit)
	}
	cfg.SampleEvery = max(5*time.Second, cfg.Duration/60)
	var mu sync.Mutex
	series := map[string][]Sample{}
	cfg.Sample = func(s Sample) {
		mu.Lock()
		series[s.Node] = append(series[s.Node], s)
		mu.Unlock()
		t.Logf("sample %s pid %d: goroutines %d, RSS %.1f MiB, fds %d", s.Node, s.Pid, s.Goroutines, float64(s.RSS)/(1<<20), s.FDs)
	}
	res := runAndCheck(t, cfg)
	mu.Lock()
	defer mu.Unlock()
	var b strings.Builder
	soakLatency(t, &b, res)
	for node, ss := range series {
		var g, r, f []float64
		for _, s := range ss {
			if s.Goroutines >= 0 { // a paused node does not answer
				g = append(g, float64(s.Goroutines))
			}
			r = append(r, float64(s.RSS)/(1<<20))
			f = append(f, float64(s.FDs))
		}
		for _, m := range []struct {
			name          string
			xs            []float64
			growth, slack float64
		}{{"goroutines", g, 1.5, 50}, {"RSS MiB", r, 1.5, 32}, {"fds", f, 1.5, 20}} {
			ok, early, late := Flat(m.xs, m.growth, m.slack)
			fmt.Fprintf(&b, "%s %-10s samples %3d  early %8.1f  late %8.1f  flat %v\n", node, m.name, len(m.xs), early, late, ok)
			if !ok {
				t.Errorf("%s: %s grew from %.1f to %.1f", node, m.name, early, late)
			}
		}
	}
	t.Log("\n" + b.String())
	fmt.Print(b.String())
	os.WriteFile(filepath.Join(cfg.Dir, "resources.txt"), []byte(b.String()), 0o644)
}

// soakLatency writes the latency of successful operations per twelfth of
// the soak into b, and fails the test if the median grew: faults run
// throughout, so the 99th percentile is theirs and is only reported.
func soakLatency(t *testing.T, b *strings.Builder, res *Result) {
	var med []float64
	for _, s := range LatencySlices(res.history, 12) {
		fmt.Fprintf(b, "latency from %6.0fs: %6d ops ok, median %8.2f ms, p99 %8.1f ms\n",
			s.From.Seconds(), s.Ops, float64(s.Median.Microseconds())/1000, float64(s.P99.Microseconds())/1000)
		med = append(med, float64(s.Median.Microseconds())/1000)
	}
	ok, early, late := Flat(med, 2, 5)
	fmt.Fprintf(b, "all        latency    median early %8.2f ms  late %8.2f ms  flat %v\n", early, late, ok)
	if !ok {
		t.Errorf("median latency grew from %.2f to %.2f ms", early, late)
	}
}

// TestGossipHealsAfterLongPartition: a node cut off for longer than
// memberlist keeps gossiping to the dead (30 s) must be seen alive again
// soon after the partition heals. memberlist neither probes nor
// push-pulls with dead nodes, so without followd's own reconnect the two
// sides kept each other dead for good - and past --dead-timeout the
// leaders would have moved the healthy node's replicas away.
func TestGossipHealsAfterLongPartition(t *testing.T) {
	if !*netnsFlag {
		t.Fatal("partitions need network namespaces (-netns)")
	}
	cfg := baseConfig(t, "gossip-heal")
	cfg.DeadTimeout = time.Hour // only gossip is under test
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx := context.Background()
	if err := h.startCluster(ctx); err != nil {
		t.Fatal(err)
	}
	hold := 45 * time.Second
	if err := h.net.Partition([]int{0}, []int{1, 2}); err != nil {
		t.Fatal(err)
	}
	t.Logf("n1 cut off for %v", hold)
	time.Sleep(hold)
	if err := h.net.Heal(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := h.gossipHealed(ctx, gossipHealTime); err != nil {
		t.Fatalf("%v after the partition healed: %v", gossipHealTime, err)
	}
	t.Logf("every node sees every other alive %v after the heal", time.Since(start).Round(time.Millisecond))
}
