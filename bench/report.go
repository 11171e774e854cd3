package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latency histograms record microseconds from 1 µs to 100 s with three
// significant digits.
const (
	histMin    = 1
	histMax    = 100_000_000
	histDigits = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

// OpStats are the figures of one operation in one run.
type OpStats struct {
	Op        string           `json:"op"`
	Count     int64            `json:"count"`
	OpsPerSec float64          `json:"opsPerSec"`
	P50Ms     float64          `json:"p50Ms"`
	P90Ms     float64          `json:"p90Ms"`
	P99Ms     float64          `json:"p99Ms"`
	P999Ms    float64          `json:"p999Ms"`
	MaxMs     float64          `json:"maxMs"`
	MeanMs    float64          `json:"meanMs"`
	Errors    map[string]int64 `json:"errors,omitempty"` // by result code
	// Percentiles is the latency distribution for charts: percentile ->
	// milliseconds.
	Percentiles []Percentile `json:"percentiles"`
}

// Percentile is one point of a latency distribution.
type Percentile struct {
	P  float64 `json:"p"`
	Ms float64 `json:"ms"`
}

// SeriesPoint is one interval of throughput over time.
type SeriesPoint struct {
	Second    int                `json:"second"` // since the start of measurement
	OpsPerSec map[string]float64 `json:"opsPerSec"`
	Errors    int64              `json:"errors"`
}

// Machine describes where the benchmark ran.
type Machine struct {
	Hostname  string `json:"hostname"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	Cores     int    `json:"cores"`
	MemoryMiB int64  `json:"memoryMiB"`
	CPU       string `json:"cpu"`
	GoVersion string `json:"goVersion"`
}

// MemoryReport is the target's memory after load.
type MemoryReport struct {
	RSSBytes     int64   `json:"rssBytes"`
	Edges        int64   `json:"edges"`
	BytesPerEdge float64 `json:"bytesPerEdge"`
	Source       string  `json:"source"`
}

// Report is everything one run measured. It is what --out writes.
type Report struct {
	Tool      string        `json:"tool"`
	Version   string        `json:"version"`
	Command   string        `json:"command"`
	StartedAt time.Time     `json:"startedAt"`
	Target    TargetInfo    `json:"target"`
	Params    RunParams     `json:"params"`
	Machine   Machine       `json:"machine"`
	Elapsed   float64       `json:"elapsedSec"` // of measurement (after warm-up)
	Ops       []OpStats     `json:"ops"`
	Total     OpStats       `json:"total"`
	Series    []SeriesPoint `json:"series"`
	Load      *LoadReport   `json:"load,omitempty"`
	Verify    *VerifyReport `json:"verify,omitempty"`
	Memory    *MemoryReport `json:"memory,omitempty"`
	CPU       *CPUReport    `json:"cpu,omitempty"`

	rec *recorder // the raw histograms, for merging
}

// LoadReport describes a graph load.
type LoadReport struct {
	Users       int     `json:"users"`
	Edges       int64   `json:"edges"`
	Seconds     float64 `json:"seconds"`
	EdgesPerSec float64 `json:"edgesPerSec"`
	Errors      int64   `json:"errors"`
}

// MachineInfo reads this machine's description.
func MachineInfo() Machine {
	m := Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, Cores: runtime.NumCPU(), GoVersion: runtime.Version()}
	m.Hostname, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				m.MemoryMiB = kb / 1024
			}
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// percentilesOf lists the chart points of a histogram.
var chartPercentiles = []float64{50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100}

// statsOf computes an operation's figures from its histogram.
func statsOf(op string, h *hdrhistogram.Histogram, errs map[string]int64, elapsed time.Duration) OpStats {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	s := OpStats{Op: op, Count: h.TotalCount(), Errors: errs}
	if elapsed > 0 {
		s.OpsPerSec = float64(s.Count) / elapsed.Seconds()
	}
	if s.Count > 0 {
		s.P50Ms = ms(h.ValueAtQuantile(50))
		s.P90Ms = ms(h.ValueAtQuantile(90))
		s.P99Ms = ms(h.ValueAtQuantile(99))
		s.P999Ms = ms(h.ValueAtQuantile(99.9))
		s.MaxMs = ms(h.Max())
		s.MeanMs = h.Mean() / 1000
		for _, p := range chartPercentiles {
			s.Percentiles = append(s.Percentiles, Percentile{p, ms(h.ValueAtQuantile(p))})
		}
	}
	return s
}

// WriteTable prints the per-operation table.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "target %s %s (%s)  %s\n", r.Target.Kind, r.Target.Addr, r.Target.Version, r.Target.Notes)
	if r.Params.Preset != "" {
		model := fmt.Sprintf("closed loop, %d clients", r.Params.Clients)
		if r.Params.Rate > 0 {
			model = fmt.Sprintf("open loop at %.0f ops/s, %d workers", r.Params.Rate, r.Params.Clients)
		}
		fmt.Fprintf(w, "preset %s, %s, %.1fs measured after %s warm-up\n", r.Params.Preset, model, r.Elapsed, r.Params.Warmup)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tops/s\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\terrors\t")
	for _, s := range append(slices.Clone(r.Ops), r.Total) {
		fmt.Fprintf(tw, "%s\t%.0f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%s\t\n", s.Op, s.OpsPerSec, s.P50Ms, s.P90Ms, s.P99Ms, s.P999Ms, s.MaxMs, errString(s.Errors))
	}
	tw.Flush()
	if r.Verify != nil {
		fmt.Fprintf(w, "invariants: %d users sampled, %d edges checked, %d violations\n", r.Verify.Users, r.Verify.Edges, r.Verify.Violations)
		for _, v := range r.Verify.Samples {
			fmt.Fprintf(w, "  violation: %s\n", v)
		}
	}
	r.CPU.writeLine(w, r.Target.Kind)
	if r.Memory != nil {
		fmt.Fprintf(w, "memory: %.1f MiB resident, %d edges, %.1f bytes/edge (%s)\n", float64(r.Memory.RSSBytes)/(1<<20), r.Memory.Edges, r.Memory.BytesPerEdge, r.Memory.Source)
	}
}

func errString(m map[string]int64) string {
	if len(m) == 0 {
		return "0"
	}
	var parts []string
	for _, k := range slices.Sorted(mapsKeys(m)) {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	return strings.Join(parts, ",")
}

func mapsKeys(m map[string]int64) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

// SaveJSON writes the report to path.
func (r *Report) SaveJSON(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := r.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// recorder collects latencies per operation, striped to keep goroutines
// from contending on one lock.
type recorder struct {
	ops     []string
	stripes [][]*stripe // [op][stripe]
	start   time.Time   // of measurement
	series  [][]int64   // [second][op], atomic adds via mu
	serr    []int64     // errors per second
	mu      sync.Mutex
}

type stripe struct {
	mu   sync.Mutex
	h    *hdrhistogram.Histogram
	errs map[string]int64
}

const nstripes = 8

func newRecorder(ops []string, seconds int) *recorder {
	r := &recorder{ops: ops, stripes: make([][]*stripe, len(ops)), series: make([][]int64, seconds+1), serr: make([]int64, seconds+1)}
	for i := range r.stripes {
		r.stripes[i] = make([]*stripe, nstripes)
		for j := range r.stripes[i] {
			r.stripes[i][j] = &stripe{h: newHist(), errs: map[string]int64{}}
		}
	}
	for i := range r.series {
		r.series[i] = make([]int64, len(ops))
	}
	return r
}

// record adds one completed operation (op index, latency, error code or "").
func (r *recorder) record(worker, op int, lat time.Duration, code string, at time.Time) {
	s := r.stripes[op][worker%nstripes]
	s.mu.Lock()
	us := lat.Microseconds()
	if us < histMin {
		us = histMin
	}
	if us > histMax {
		us = histMax
	}
	s.h.RecordValue(us)
	if code != "" {
		s.errs[code]++
	}
	s.mu.Unlock()
	sec := int(at.Sub(r.start) / time.Second)
	if sec >= 0 && sec < len(r.series) {
		r.mu.Lock()
		r.series[sec][op]++
		if code != "" {
			r.serr[sec]++
		}
		r.mu.Unlock()
	}
}

// merged returns an operation's merged histogram and errors.
func (r *recorder) merged(op int) (*hdrhistogram.Histogram, map[string]int64) {
	h := newHist()
	errs := map[string]int64{}
	for _, s := range r.stripes[op] {
		s.mu.Lock()
		h.Merge(s.h)
		for k, v := range s.errs {
			errs[k] += v
		}
		s.mu.Unlock()
	}
	return h, errs
}

// Merge combines reports of the same target and workload measured in
// several rounds (followbench compare interleaves targets this way).
func Merge(reps []*Report) *Report {
	if len(reps) == 0 {
		return nil
	}
	out := *reps[0]
	rec := newRecorder(reps[0].rec.ops, 0)
	rec.series, rec.serr = rec.series[:0], rec.serr[:0]
	var elapsed time.Duration
	for _, r := range reps {
		for i := range r.rec.ops {
			h, errs := r.rec.merged(i)
			s := rec.stripes[i][0]
			s.h.Merge(h)
			for k, v := range errs {
				s.errs[k] += v
			}
		}
		rec.series = append(rec.series, r.rec.series[:min(len(r.rec.series), int(r.Elapsed))]...)
		rec.serr = append(rec.serr, r.rec.serr[:min(len(r.rec.serr), int(r.Elapsed))]...)
		elapsed += time.Duration(r.Elapsed * float64(time.Second))
	}
	out.Params.Duration = elapsed
	out.CPU = mergeCPU(reps)
	rec.fill(&out, elapsed)
	out.rec = rec
	return &out
}

// clientOps is the number of measured operations of the mix (the lag
// probe's samples are not operations a client asked for).
func (r *Report) clientOps() int64 {
	var n int64
	for _, s := range r.Ops {
		if s.Op != OpReverseLag {
			n += s.Count
		}
	}
	return n
}

// fill puts the recorder's figures into rep.
func (r *recorder) fill(rep *Report, elapsed time.Duration) {
	rep.rec = r
	total := newHist()
	totalErrs := map[string]int64{}
	rep.Ops = nil
	for i, op := range r.ops {
		h, errs := r.merged(i)
		if h.TotalCount() == 0 && len(errs) == 0 {
			continue
		}
		rep.Ops = append(rep.Ops, statsOf(op, h, errs, elapsed))
		total.Merge(h)
		for k, v := range errs {
			totalErrs[k] += v
		}
	}
	rep.Total = statsOf("all", total, totalErrs, elapsed)
	rep.Elapsed = elapsed.Seconds()
	rep.CPU.finish(rep.clientOps(), elapsed)
	secs := int(elapsed / time.Second)
	rep.Series = nil
	for s := 0; s < secs && s < len(r.series); s++ {
		p := SeriesPoint{Second: s, OpsPerSec: map[string]float64{}, Errors: r.serr[s]}
		for i, op := range r.ops {
			if n := r.series[s][i]; n > 0 {
				p.OpsPerSec[op] = float64(n)
			}
		}
		rep.Series = append(rep.Series, p)
	}
}
