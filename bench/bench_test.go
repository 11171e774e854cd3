package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/followgraph/followgraph/cluster/clustertest"
)

// The recorder's percentiles match an exact computation on the same data,
// within HdrHistogram's 3 significant digits.
func TestRecorderPercentiles(t *testing.T) {
	rec := newRecorder([]string{"a", "b"}, 10)
	rec.start = time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	var lat []float64
	for i := range 20000 {
		d := time.Duration(100+rng.ExpFloat64()*2000) * time.Microsecond
		lat = append(lat, float64(d.Microseconds()))
		code := ""
		if i%1000 == 0 {
			code = "30007"
		}
		rec.record(i, 0, d, code, rec.start.Add(time.Duration(i%5)*time.Second))
	}
	var rep Report
	rec.fill(&rep, 5*time.Second)
	if len(rep.Ops) != 1 || rep.Ops[0].Op != "a" {
		t.Fatalf("ops: %+v", rep.Ops)
	}
	s := rep.Ops[0]
	if s.Count != 20000 || s.OpsPerSec != 4000 || s.Errors["30007"] != 20 {
		t.Fatalf("count %d, ops/s %v, errors %v", s.Count, s.OpsPerSec, s.Errors)
	}
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	// Rank round(p×N), HdrHistogram's convention.
	exact := func(p float64) float64 { return sorted[int(math.Round(p/100*float64(len(sorted))))-1] / 1000 }
	for _, c := range []struct{ got, p float64 }{{s.P50Ms, 50}, {s.P90Ms, 90}, {s.P99Ms, 99}, {s.P999Ms, 99.9}} {
		if want := exact(c.p); math.Abs(c.got-want) > want*0.002+0.001 {
			t.Errorf("p%v = %v ms, exact %v ms", c.p, c.got, want)
		}
	}
	if top := sorted[len(sorted)-1] / 1000; math.Abs(s.MaxMs-top) > top*0.002 {
		t.Errorf("max %v, want %v", s.MaxMs, top)
	}
	if len(rep.Series) != 5 || rep.Series[0].OpsPerSec["a"] != 4000 {
		t.Fatalf("series: %+v", rep.Series)
	}
	if rep.Total.Count != 20000 {
		t.Fatalf("total %d", rep.Total.Count)
	}
	// Merging two rounds adds counts and keeps percentiles.
	var rep2 Report
	rec2 := newRecorder([]string{"a", "b"}, 10)
	rec2.start = rec.start
	for i := range 20000 {
		rec2.record(i, 0, time.Duration(lat[i])*time.Microsecond, "", rec.start)
	}
	rec2.fill(&rep2, 5*time.Second)
	m := Merge([]*Report{&rep, &rep2})
	if m.Ops[0].Count != 40000 || math.Abs(m.Ops[0].P99Ms-s.P99Ms) > s.P99Ms*0.01 {
		t.Fatalf("merged: %+v", m.Ops[0])
	}
}

func TestMixAndPresets(t *testing.T) {
	m, err := ParseMix("follow=10,check=30,followers=60")
	if err != nil || m[OpFollow] != 10 || m[OpFollowers] != 60 {
		t.Fatalf("%v %v", m, err)
	}
	for _, bad := range []string{"follow", "nope=3", "follow=-1", "follow=x"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q) accepted", bad)
		}
	}
	// The picker follows the weights.
	p, _ := newPicker(Mix{OpFollow: 1, OpCheck: 3})
	rng := rand.New(rand.NewPCG(3, 4))
	counts := map[string]int{}
	for range 40000 {
		counts[p.pick(rng)]++
	}
	if r := float64(counts[OpCheck]) / float64(counts[OpFollow]); r < 2.8 || r > 3.2 {
		t.Fatalf("pick ratio %v, want 3", r)
	}
	for _, name := range PresetNames() {
		pp, err := ParamsFor(name)
		if err != nil || pp.Graph.Validate() != nil || pp.Duration <= 0 || pp.Clients < 1 {
			t.Errorf("preset %s: %+v %v", name, pp, err)
		}
		if _, err := newPicker(pp.Mix); err != nil {
			t.Errorf("preset %s: %v", name, err)
		}
	}
	// read-heavy is TAO-like: 99.8% reads.
	rh := Presets["read-heavy"].Mix
	total, writes := 0.0, rh[OpFollow]+rh[OpUnfollow]
	for _, w := range rh {
		total += w
	}
	if f := writes / total; f < 0.0015 || f > 0.0025 {
		t.Errorf("read-heavy writes are %.4f of the mix", f)
	}
}

// A smoke run against a real followd: load, run every operation, check
// the invariants, write the JSON and the charts. It asserts behaviour
// (no errors, no violations, a complete report), not timing.
func TestSmokeAgainstFollowd(t *testing.T) {
	n := clustertest.Start(t, clustertest.Options{Shards: 4})
	ctx := context.Background()
	tg, err := OpenFollowd(ctx, n.Addr, TargetOptions{MetricsURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	p, _ := ParamsFor("smoke")
	p.Graph.Users = 500
	p.Duration, p.Warmup, p.Clients = 2*time.Second, 200*time.Millisecond, 8
	lr, err := Load(ctx, tg, LoadParams{Graph: p.Graph, Workers: 4, Batch: 16}, nil)
	if err != nil || lr.Edges < 1000 || lr.Errors != 0 {
		t.Fatalf("load: %+v %v", lr, err)
	}
	var lines bytes.Buffer
	rep, err := Run(ctx, tg, p, ProgressTo(&lines))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total.Count == 0 || len(rep.Total.Errors) != 0 {
		t.Fatalf("run: %d ops, errors %v", rep.Total.Count, rep.Total.Errors)
	}
	seen := map[string]bool{}
	for _, s := range rep.Ops {
		seen[s.Op] = true
		if s.Count > 0 && (s.P50Ms <= 0 || s.P99Ms < s.P50Ms || s.MaxMs < s.P99Ms) {
			t.Errorf("%s: inconsistent percentiles %+v", s.Op, s)
		}
	}
	for _, op := range AllOps {
		if !seen[op] {
			t.Errorf("operation %s never ran", op)
		}
	}
	if !strings.Contains(lines.String(), "ops/s") {
		t.Error("no progress lines")
	}
	v, err := Verify(ctx, tg, p.Graph, 50, 1)
	if err != nil {
		t.Fatal(err)
	}
	if v.Violations != 0 || v.Users < 50 || v.Edges == 0 {
		t.Fatalf("verify: %+v", v)
	}
	rep.Verify = v
	dir := t.TempDir()
	out := filepath.Join(dir, "r.json")
	if err := rep.SaveJSON(out); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	b, _ := os.ReadFile(out)
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"params", "machine", "target", "ops", "total", "series", "verify"} {
		if back[k] == nil {
			t.Errorf("report lacks %q", k)
		}
	}
	if m := back["machine"].(map[string]any); m["cores"].(float64) < 1 || m["goVersion"] == "" {
		t.Errorf("machine: %v", m)
	}
	files, err := WriteCharts(rep, filepath.Join(dir, "r"))
	if err != nil || len(files) != 2 {
		t.Fatalf("charts: %v %v", files, err)
	}
	var table bytes.Buffer
	rep.WriteTable(&table)
	if !strings.Contains(table.String(), "p99 ms") || !strings.Contains(table.String(), "0 violations") {
		t.Fatalf("table:\n%s", table.String())
	}
}

// Verify finds broken invariants: here a target whose reverse side lies.
func TestVerifyCatchesViolations(t *testing.T) {
	n := clustertest.Start(t, clustertest.Options{Shards: 2})
	ctx := context.Background()
	tg, _ := OpenFollowd(ctx, n.Addr, TargetOptions{})
	defer tg.Close()
	p, _ := ParamsFor("smoke")
	p.Graph.Users = 100
	if _, err := Load(ctx, tg, LoadParams{Graph: p.Graph}, nil); err != nil {
		t.Fatal(err)
	}
	v, err := Verify(ctx, &lyingTarget{tg}, p.Graph, 20, 1)
	if err != nil {
		t.Fatal(err)
	}
	if v.Violations == 0 || len(v.Samples) == 0 {
		t.Fatalf("violations not detected: %+v", v)
	}
}

// lyingTarget reports one follower too many.
type lyingTarget struct{ Target }

func (l *lyingTarget) Counts(ctx context.Context, users []string) ([]Counts, error) {
	cs, err := l.Target.Counts(ctx, users)
	for i := range cs {
		cs[i].Followers++
	}
	return cs, err
}
