package bench

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Chart size: wide enough for a legend beside half a dozen lines, small
// enough to embed in a README at native resolution.
const (
	chartWidth  = 20 * vg.Centimeter
	chartHeight = 12 * vg.Centimeter
)

// minChartMs is the floor for latencies on a log axis, which cannot show 0.
const minChartMs = 0.001

// maxNines is where the "max" (p100) column sits on the nines axis; p100
// is infinitely many nines, so it gets the next column after p99.99.
const maxNines = 5

// ninesTicks label the percentile axis. Everything between them (p75, p95,
// p99.5) is plotted at its true position, unlabelled.
var ninesTicks = plot.ConstantTicks{
	{Value: nines(50), Label: "p50"},
	{Value: nines(90), Label: "p90"},
	{Value: nines(99), Label: "p99"},
	{Value: nines(99.9), Label: "p99.9"},
	{Value: nines(99.99), Label: "p99.99"},
	{Value: maxNines, Label: "max"},
}

// nines places percentile p on an axis where each extra nine is one step:
// p90 -> 1, p99 -> 2, p99.9 -> 3. Tail latency lives in the last few
// nines, which a linear percentile axis squeezes into its right edge.
func nines(p float64) float64 {
	if p >= 100 {
		return maxNines
	}
	return math.Min(-math.Log10(1-p/100), maxNines)
}

// WriteCharts draws the run's latency percentiles and its throughput over
// time as prefix-latency.png and prefix-throughput.png, and returns the
// paths written. A report without data still gets (empty) charts so that
// scripts collecting them need no special case.
func WriteCharts(r *Report, prefix string) ([]string, error) {
	if r == nil {
		return nil, errors.New("bench: no report to chart")
	}
	charts := []struct {
		path string
		make func(*Report) (*plot.Plot, error)
	}{
		{prefix + "-latency.png", latencyPlot},
		{prefix + "-throughput.png", throughputPlot},
	}
	var paths []string
	for _, c := range charts {
		p, err := c.make(r)
		if err != nil {
			return paths, fmt.Errorf("bench: chart %s: %w", c.path, err)
		}
		if err := p.Save(chartWidth, chartHeight, c.path); err != nil {
			return paths, fmt.Errorf("bench: chart %s: %w", c.path, err)
		}
		paths = append(paths, c.path)
	}
	return paths, nil
}

// latencyPlot draws one line per operation: latency against percentile,
// both axes stretched towards the tail.
func latencyPlot(r *Report) (*plot.Plot, error) {
	p := plot.New()
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (ms)"
	p.X.Tick.Marker = ninesTicks
	p.Add(plotter.NewGrid())

	var lines []any
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, op := range r.Ops {
		if len(op.Percentiles) == 0 {
			continue
		}
		xys := make(plotter.XYs, len(op.Percentiles))
		for i, pc := range op.Percentiles {
			ms := math.Max(pc.Ms, minChartMs)
			xys[i] = plotter.XY{X: nines(pc.P), Y: ms}
			lo, hi = math.Min(lo, ms), math.Max(hi, ms)
		}
		lines = append(lines, op.Op, xys)
	}
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return nil, err
	}

	title := "Latency by percentile"
	if what := strings.TrimSpace(r.Target.Kind + " " + r.Params.Preset); what != "" {
		title += " — " + what
	}
	if len(lines) == 0 {
		title += " (no data)"
		lo, hi = 0.1, 10 // an arbitrary but valid log range
	}
	p.Title.Text = title

	// Set both ranges explicitly: the nines axis always shows p50..max so
	// charts of different runs line up, and the log axis must never get
	// the ±1 range the plot would invent for empty or flat data.
	p.X.Min = math.Min(p.X.Min, nines(50))
	p.X.Max = maxNines
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks{}
	p.Y.Min, p.Y.Max = floor125(lo), ceil125(hi)
	if p.Y.Min == p.Y.Max {
		p.Y.Max = ceil125(hi * 1.5)
	}

	// Latency rises to the right, so the top left is the emptiest corner.
	p.Legend.Top, p.Legend.Left = true, true
	return p, nil
}

// throughputPlot draws ops/s per second of measurement, per operation and
// in total, so stalls and warm-up effects show up as dips.
func throughputPlot(r *Report) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Throughput over time"
	p.X.Label.Text = "second"
	p.X.Tick.Marker = secondTicks{}
	p.Y.Label.Text = "ops/s"
	p.Add(plotter.NewGrid())

	if len(r.Series) == 0 {
		p.Title.Text += " (no data)"
		p.X.Min, p.X.Max = 0, 1
		p.Y.Min, p.Y.Max = 0, 1
		return p, nil
	}

	var lines []any
	total := make(plotter.XYs, len(r.Series))
	for _, op := range seriesOps(r) {
		xys := make(plotter.XYs, len(r.Series))
		for i, s := range r.Series {
			v := s.OpsPerSec[op] // seconds without this op count as 0
			xys[i] = plotter.XY{X: float64(s.Second), Y: v}
			total[i] = plotter.XY{X: float64(s.Second), Y: total[i].Y + v}
		}
		lines = append(lines, op, xys)
	}
	if err := plotutil.AddLines(p, lines...); err != nil {
		return nil, err
	}
	// The total is drawn thicker in black so it stands apart from the ops.
	tl, err := plotter.NewLine(total)
	if err != nil {
		return nil, err
	}
	tl.Color = color.Black
	tl.Width = vg.Points(2)
	p.Add(tl)
	p.Legend.Add("total", tl)

	// Throughput starts at zero on purpose: a y axis that begins near the
	// minimum makes a 2% wobble look like a collapse. The headroom keeps
	// the legend off the total line, which runs along the top.
	p.Y.Min = 0
	p.Y.Max *= 1.35
	p.Legend.Top = true
	return p, nil
}

// seriesOps lists the operations in a report's series: those of r.Ops
// first, in the report's order, then any others by name, so colors match
// between the two charts of a run.
func seriesOps(r *Report) []string {
	seen := map[string]bool{}
	var ops, extra []string
	for _, op := range r.Ops {
		if !seen[op.Op] {
			seen[op.Op] = true
			ops = append(ops, op.Op)
		}
	}
	for _, s := range r.Series {
		for op := range s.OpsPerSec {
			if !seen[op] {
				seen[op] = true
				extra = append(extra, op)
			}
		}
	}
	slices.Sort(extra)
	return append(ops, extra...)
}

// WriteCompareChart draws p99 latency per operation of two runs side by
// side (say followd and redis under the same preset) as a PNG at path.
// Only operations both runs measured are shown.
func WriteCompareChart(a, b *Report, path string) error {
	if a == nil || b == nil {
		return errors.New("bench: compare chart needs two reports")
	}
	bp99 := map[string]float64{}
	for _, s := range b.Ops {
		bp99[s.Op] = s.P99Ms
	}
	var ops []string
	var av, bv plotter.Values
	for _, s := range a.Ops {
		if v, ok := bp99[s.Op]; ok {
			ops = append(ops, s.Op)
			av = append(av, s.P99Ms)
			bv = append(bv, v)
		}
	}

	la, lb := a.Target.Kind, b.Target.Kind
	if la == lb { // two runs of one system: the legend must still tell them apart
		la, lb = la+" (a)", lb+" (b)"
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("p99 latency: %s vs %s", la, lb)
	p.Y.Label.Text = "p99 latency (ms)"

	if len(ops) == 0 {
		p.Title.Text += " (no data)"
		p.X.Min, p.X.Max = 0, 1
		p.Y.Min, p.Y.Max = 0, 1
		return p.Save(chartWidth, chartHeight, path)
	}

	// Two bars per group, shrinking as groups are added so they never
	// overlap their neighbours.
	w := min(vg.Points(24), chartWidth*0.8/vg.Length(3*len(ops)))
	for i, g := range []struct {
		label  string
		vals   plotter.Values
		offset vg.Length
	}{{la, av, -w / 2}, {lb, bv, w / 2}} {
		bars, err := plotter.NewBarChart(g.vals, w)
		if err != nil {
			return err
		}
		bars.Color = plotutil.Color(i)
		bars.LineStyle.Width = 0
		bars.Offset = g.offset
		p.Add(bars)
		p.Legend.Add(g.label, bars)
	}
	p.NominalX(ops...)
	// Half a group of margin on each side keeps the outer bars off the
	// axis and the image edge.
	p.X.Min, p.X.Max = -0.5, float64(len(ops))-0.5
	p.Y.Min = 0
	p.Y.Max *= 1.2 // room for the legend above the tallest bar
	p.Legend.Top = true
	return p.Save(chartWidth, chartHeight, path)
}

// secondTicks labels a time axis in whole seconds at 1-2-5 steps, about
// eight of them; plot.DefaultTicks gives runs of a minute two labels
// with decimals ("25.00").
type secondTicks struct{}

// Ticks implements plot.Ticker.
func (secondTicks) Ticks(lo, hi float64) []plot.Tick {
	step := ceil125(math.Max(1, (hi-lo)/8))
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', 0, 64)})
	}
	return ticks
}

// logTicks marks a log axis at 1-2-5 steps. plot.LogTicks labels only
// powers of ten, which leaves a typical latency range (say 0.3-4 ms) with
// one label or none.
type logTicks struct{}

// Ticks implements plot.Ticker.
func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	// Over many decades 1-2-5 labels would collide; label powers of ten
	// only and keep the 2s and 5s as unlabelled marks.
	dense := math.Log10(hi/lo) <= 3
	var ticks []plot.Tick
	for _, v := range steps125(lo, hi) {
		if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
			continue
		}
		t := plot.Tick{Value: v}
		if m := leading(v); dense || m == 1 {
			t.Label = format125(v)
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// steps125 lists 1, 2, 5 × 10^k from the step at or below lo to the step
// at or above hi.
func steps125(lo, hi float64) []float64 {
	var vs []float64
	for k := int(math.Floor(math.Log10(lo))); k <= int(math.Ceil(math.Log10(hi))); k++ {
		for _, m := range []float64{1, 2, 5} {
			vs = append(vs, m*math.Pow10(k))
		}
	}
	return vs
}

// floor125 is the largest 1-2-5 step not above x.
func floor125(x float64) float64 {
	vs := steps125(x, x)
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i] <= x*(1+1e-9) {
			return vs[i]
		}
	}
	return vs[0]
}

// ceil125 is the smallest 1-2-5 step not below x.
func ceil125(x float64) float64 {
	for _, v := range steps125(x, x*10) {
		if v >= x*(1-1e-9) {
			return v
		}
	}
	return x
}

// leading is the mantissa (1, 2 or 5) of a 1-2-5 step.
func leading(v float64) int {
	return int(math.Round(v / math.Pow10(int(math.Floor(math.Log10(v)+1e-9)))))
}

// format125 prints a step with just the decimals it needs: m × 10^k
// computed in floating point may carry noise (0.005000000000000001).
func format125(v float64) string {
	k := int(math.Floor(math.Log10(v) + 1e-9))
	return strconv.FormatFloat(v, 'f', max(0, -k), 64)
}
