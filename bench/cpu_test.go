package bench

import (
	"bytes"
	"context"
	"errors"
	"math"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// cpuTarget answers every operation at once and reports a server CPU
// counter from a script: the i-th call returns cpu[i]. A nil script means
// the server cannot tell.
type cpuTarget struct {
	Target // nil: only the methods below are called
	mu     sync.Mutex
	cpu    []float64
	calls  int
}

func (c *cpuTarget) Info(context.Context) (TargetInfo, error) {
	return TargetInfo{Kind: "fake"}, nil
}
func (c *cpuTarget) Follow(context.Context, string, []string) error   { return nil }
func (c *cpuTarget) Unfollow(context.Context, string, []string) error { return nil }
func (c *cpuTarget) Check(_ context.Context, _ string, ts []string) ([]uint8, error) {
	return make([]uint8, len(ts)), nil
}
func (c *cpuTarget) Counts(_ context.Context, us []string) ([]Counts, error) {
	return make([]Counts, len(us)), nil
}
func (c *cpuTarget) List(context.Context, ListKind, string, string, int) (Page, error) {
	return Page{}, nil
}

func (c *cpuTarget) CPUSeconds(context.Context) (float64, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cpu == nil {
		return 0, "", errors.New("no metrics")
	}
	v := c.cpu[min(c.calls, len(c.cpu)-1)]
	c.calls++
	return v, "script", nil
}

func cpuRun(t *testing.T, tg Target) *Report {
	t.Helper()
	p, _ := ParamsFor("default")
	p.Graph.Users = 200
	p.Duration, p.Warmup, p.Clients = 500*time.Millisecond, 100*time.Millisecond, 2
	rep, err := Run(context.Background(), tg, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total.Count == 0 || rep.CPU == nil {
		t.Fatalf("run: %d ops, cpu %+v", rep.Total.Count, rep.CPU)
	}
	return rep
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// The server's CPU is the counter's difference across the measured
// period, per second measured and per operation; followbench's own comes
// from getrusage and is positive after a busy loop of operations.
func TestRunReportsCPU(t *testing.T) {
	tg := &cpuTarget{cpu: []float64{10, 12.5}}
	rep := cpuRun(t, tg)
	c, ops := rep.CPU, float64(rep.clientOps())
	if tg.calls != 2 || c.Server == nil || !near(c.Server.Seconds, 2.5) {
		t.Fatalf("%d counter reads, server %+v", tg.calls, c.Server)
	}
	if !near(c.Server.Cores, 2.5/rep.Elapsed) || !near(c.Server.UsPerOp, 2.5e6/ops) {
		t.Fatalf("server rates %+v for %v ops in %.3fs", c.Server, ops, rep.Elapsed)
	}
	if c.Harness.Seconds <= 0 || !near(c.Harness.UsPerOp, c.Harness.Seconds*1e6/ops) {
		t.Fatalf("harness %+v", c.Harness)
	}
	if !near(c.HarnessShare, c.Harness.UsPerOp/c.Server.UsPerOp) {
		t.Fatalf("share %v", c.HarnessShare)
	}
	var table bytes.Buffer
	rep.WriteTable(&table)
	line := regexp.MustCompile(`(?m)^cpu: fake [0-9.]+ cores, [0-9.]+ µs/op; followbench [0-9.]+ cores, [0-9.]+ µs/op \([0-9.]+ of fake's\)$`)
	if !line.MatchString(table.String()) {
		t.Fatalf("table:\n%s", table.String())
	}

	// Merged rounds add the seconds and recompute the rates.
	second := cpuRun(t, &cpuTarget{cpu: []float64{1, 2}})
	m := Merge([]*Report{rep, second})
	if ops := float64(m.clientOps()); !near(m.CPU.Server.Seconds, 3.5) || !near(m.CPU.Server.UsPerOp, 3.5e6/ops) || ops != float64(rep.clientOps()+second.clientOps()) {
		t.Fatalf("merged %+v over %v ops", m.CPU.Server, ops)
	}
	if !near(m.CPU.Harness.Seconds, rep.CPU.Harness.Seconds+second.CPU.Harness.Seconds) {
		t.Fatalf("harness seconds %v, want %v + %v", m.CPU.Harness.Seconds, rep.CPU.Harness.Seconds, second.CPU.Harness.Seconds)
	}
}

// A server that cannot report its CPU leaves the server figures out (in
// the run and in any merge that includes it); followbench's own remain.
func TestRunCPUWithoutServerFigures(t *testing.T) {
	rep := cpuRun(t, &cpuTarget{})
	if rep.CPU.Server != nil || rep.CPU.HarnessShare != 0 || rep.CPU.Harness.UsPerOp <= 0 {
		t.Fatalf("cpu %+v", rep.CPU)
	}
	var table bytes.Buffer
	rep.WriteTable(&table)
	if !strings.Contains(table.String(), "fake CPU unknown") {
		t.Fatalf("table:\n%s", table.String())
	}
	if m := Merge([]*Report{cpuRun(t, &cpuTarget{cpu: []float64{1, 2}}), rep}); m.CPU.Server != nil {
		t.Fatalf("merge kept a partial server figure: %+v", m.CPU.Server)
	}
}
