package bench

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// chartReport builds a report with hand-made figures; the latencies span
// several decades and include a zero to exercise the log-axis clamp.
func chartReport(kind string, scale float64) *Report {
	r := &Report{Target: TargetInfo{Kind: kind}}
	r.Params.Preset = "small"
	for i, op := range []string{"follow", "unfollow", "counts", "list"} {
		s := OpStats{Op: op, P99Ms: scale * float64(i+1)}
		for j, p := range chartPercentiles {
			ms := scale * float64(i+1) * math.Pow(2, float64(j))
			if op == "counts" && p == 50 {
				ms = 0 // below the histogram's resolution
			}
			s.Percentiles = append(s.Percentiles, Percentile{P: p, Ms: ms})
		}
		r.Ops = append(r.Ops, s)
	}
	for sec := range 10 {
		pt := SeriesPoint{Second: sec, OpsPerSec: map[string]float64{
			"follow":   1000 + 50*float64(sec%3),
			"unfollow": 300,
			"counts":   5000 - 100*float64(sec),
		}}
		if sec%2 == 0 { // an op missing from some seconds, and one not in Ops
			pt.OpsPerSec["list"] = 800
			pt.OpsPerSec["extra"] = 10
		}
		r.Series = append(r.Series, pt)
	}
	return r
}

// checkPNG decodes a chart and fails unless it is a plausible picture: a
// sensible size and more than background plus one ink color.
func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b := img.Bounds()
	if b.Dx() <= 100 || b.Dy() <= 100 {
		t.Fatalf("%s: %dx%d, want more than 100x100", path, b.Dx(), b.Dy())
	}
	colors := map[[4]uint32]bool{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			colors[[4]uint32{r, g, bl, a}] = true
		}
	}
	if len(colors) <= 2 {
		t.Fatalf("%s: %d distinct colors, looks blank", path, len(colors))
	}
}

func TestWriteCharts(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "run")
	paths, err := WriteCharts(chartReport("followd", 0.2), prefix)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{prefix + "-latency.png", prefix + "-throughput.png"}
	if len(paths) != len(want) {
		t.Fatalf("paths = %v, want %v", paths, want)
	}
	for i, p := range paths {
		if p != want[i] {
			t.Errorf("paths[%d] = %s, want %s", i, p, want[i])
		}
		checkPNG(t, p)
	}
}

func TestWriteChartsEmpty(t *testing.T) {
	for name, r := range map[string]*Report{
		"empty": {},
		// Ops without percentiles (a run where everything failed) and a
		// single flat series point must not produce a degenerate axis.
		"degenerate": {
			Ops:    []OpStats{{Op: "follow"}},
			Series: []SeriesPoint{{Second: 0, OpsPerSec: map[string]float64{}}},
		},
	} {
		t.Run(name, func(t *testing.T) {
			paths, err := WriteCharts(r, filepath.Join(t.TempDir(), name))
			if err != nil {
				t.Fatal(err)
			}
			if len(paths) != 2 {
				t.Fatalf("paths = %v, want 2", paths)
			}
			for _, p := range paths {
				checkPNG(t, p)
			}
		})
	}
}

func TestWriteChartsFlatLatency(t *testing.T) {
	// Every percentile equal, exactly on a tick: the log axis still needs
	// a non-empty range.
	r := &Report{Ops: []OpStats{{Op: "counts", Percentiles: []Percentile{{50, 1}, {99, 1}, {100, 1}}}}}
	paths, err := WriteCharts(r, filepath.Join(t.TempDir(), "flat"))
	if err != nil {
		t.Fatal(err)
	}
	checkPNG(t, paths[0])
}

func TestWriteCompareChart(t *testing.T) {
	dir := t.TempDir()
	a, b := chartReport("followd", 0.2), chartReport("redis", 0.5)
	b.Ops = b.Ops[1:] // "follow" only in a: must be left out, not fail
	path := filepath.Join(dir, "compare.png")
	if err := WriteCompareChart(a, b, path); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, path)

	// No common operation still yields a chart.
	path = filepath.Join(dir, "compare-empty.png")
	if err := WriteCompareChart(a, &Report{Target: TargetInfo{Kind: "followd"}}, path); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, path)
}

func TestChartNines(t *testing.T) {
	for _, c := range []struct{ p, want float64 }{
		{50, math.Log10(2)}, {90, 1}, {99, 2}, {99.9, 3}, {99.99, 4}, {100, maxNines},
	} {
		if got := nines(c.p); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("nines(%v) = %v, want %v", c.p, got, c.want)
		}
	}
}

func TestChartLogTicks(t *testing.T) {
	for _, c := range []struct {
		x, floor, ceil float64
	}{
		{0.3, 0.2, 0.5}, {1, 1, 1}, {7, 5, 10}, {0.001, 0.001, 0.001}, {1234, 1000, 2000},
	} {
		if got := floor125(c.x); math.Abs(got-c.floor) > 1e-12*c.floor {
			t.Errorf("floor125(%v) = %v, want %v", c.x, got, c.floor)
		}
		if got := ceil125(c.x); math.Abs(got-c.ceil) > 1e-12*c.ceil {
			t.Errorf("ceil125(%v) = %v, want %v", c.x, got, c.ceil)
		}
	}

	var labels []string
	for _, tk := range (logTicks{}).Ticks(0.005, 0.5) {
		labels = append(labels, tk.Label)
	}
	want := []string{"0.005", "0.01", "0.02", "0.05", "0.1", "0.2", "0.5"}
	if !slices.Equal(labels, want) {
		t.Errorf("labels = %q, want %q", labels, want)
	}

	// Over many decades only powers of ten are labelled.
	for _, tk := range (logTicks{}).Ticks(0.001, 1000) {
		if tk.Label != "" && leading(tk.Value) != 1 {
			t.Errorf("tick %v labelled %q over a wide range", tk.Value, tk.Label)
		}
	}
}

func TestChartSecondTicks(t *testing.T) {
	var labels []string
	for _, tk := range (secondTicks{}).Ticks(0, 59) {
		labels = append(labels, tk.Label)
	}
	want := []string{"0", "10", "20", "30", "40", "50"}
	if !slices.Equal(labels, want) {
		t.Errorf("labels = %q, want %q", labels, want)
	}
	// The flat range the plot invents for one point (-1..1) still gets
	// whole-second ticks.
	if n := len((secondTicks{}).Ticks(-1, 1)); n != 3 {
		t.Errorf("%d ticks over -1..1, want 3", n)
	}
}
