package chaos

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/followgraph/followgraph/shard"
)

// bucket is the resolution of the availability figures.
const bucket = 250 * time.Millisecond

// Availability sums, for one fault kind, the time writes were failing
// while faults of that kind were in force (from injection to the next
// fault, when their effects may linger). A fault hurts only the shards
// its node led, so time is counted per shard and the worst shard's is
// reported.
type Availability struct {
	Kind       FaultKind     `json:"kind"`
	Injections int           `json:"injections"`
	Window     time.Duration `json:"window"` // time attributed to this kind
	// Unavailable is the time, in 250 ms buckets, where writes to a shard
	// were tried and none succeeded (the worst shard of each window,
	// summed over the windows); Max is the longest such run.
	Unavailable time.Duration `json:"unavailable"`
	Max         time.Duration `json:"max"`
	WritesOK    int           `json:"writesOK"`
	WritesBad   int           `json:"writesBad"` // failed or unknown
	ReadsOK     int           `json:"readsOK"`
	ReadsBad    int           `json:"readsBad"`
}

// Unavailability attributes each operation to the fault in force when it
// was called (or to "none" before the first fault) and measures, per
// fault kind, how long writes failed.
func Unavailability(ops []Op, sched []Fault, end time.Duration, shards int) []Availability {
	by := map[FaultKind]*Availability{}
	var order []FaultKind
	for _, w := range faultWindows(sched, end) {
		a := by[w.kind]
		if a == nil {
			a = &Availability{Kind: w.kind}
			by[w.kind] = a
			order = append(order, w.kind)
		}
		a.add(w, ops, shards)
	}
	out := make([]Availability, 0, len(order))
	for _, k := range order {
		out = append(out, *by[k])
	}
	return out
}

// window is a stretch of a run attributed to one fault kind.
type window struct {
	kind     FaultKind
	from, to time.Duration
}

// faultWindows cuts the run, up to end, into windows: each injected fault
// from its injection to the next fault's (or the end), since its effects
// may linger until then, and "none" for the quiet stretches before.
func faultWindows(sched []Fault, end time.Duration) []window {
	var ws []window
	prev := time.Duration(0)
	for i, f := range sched {
		if f.Injected == 0 {
			continue
		}
		if f.Injected > prev {
			ws = append(ws, window{FaultNone, prev, f.Injected})
		}
		to := end
		if i+1 < len(sched) && sched[i+1].Injected > 0 {
			to = sched[i+1].Injected
		}
		ws = append(ws, window{f.Kind, f.Injected, to})
		prev = to
	}
	if prev < end {
		ws = append(ws, window{FaultNone, prev, end})
	}
	return ws
}

// add attributes window w to a: its length, the outcomes of the operations
// called in it, and how long writes to its worst shard failed. Writes are
// tracked per shard and per bucket of 250 ms.
func (a *Availability) add(w window, ops []Op, shards int) {
	if w.kind != FaultNone {
		a.Injections++
	}
	a.Window += w.to - w.from
	nb := int((w.to-w.from)/bucket) + 1
	tried, good := make([][]bool, shards), make([][]bool, shards)
	for i := range shards {
		tried[i], good[i] = make([]bool, nb), make([]bool, nb)
	}
	for _, o := range ops {
		at := time.Duration(o.Call)
		if at < w.from || at >= w.to {
			continue
		}
		if write, ok := a.count(o); write {
			s, b := shard.Of(userID(o.Actor), shards), int((at-w.from)/bucket)
			tried[s][b] = true
			good[s][b] = good[s][b] || ok
		}
	}
	a.addWorstShard(tried, good)
}

// count adds o's outcome to a's tallies and reports whether o is a write
// and whether it succeeded.
func (a *Availability) count(o Op) (write, ok bool) {
	write = o.Kind == Follow || o.Kind == Unfollow
	ok = o.Outcome == OK
	switch {
	case write && ok:
		a.WritesOK++
	case write:
		a.WritesBad++
	case ok:
		a.ReadsOK++
	default:
		a.ReadsBad++
	}
	return write, ok
}

// addWorstShard adds to a.Unavailable the failing time of the shard whose
// writes failed longest (a fault hurts the shards its node led), and keeps
// in a.Max the longest run of failing buckets. A bucket fails when writes
// to the shard were tried in it and none succeeded; a bucket with no write
// neither ends a run nor extends it.
func (a *Availability) addWorstShard(tried, good [][]bool) {
	worst := time.Duration(0)
	for s := range tried {
		total, run := time.Duration(0), time.Duration(0)
		for b := range tried[s] {
			if tried[s][b] && !good[s][b] {
				total += bucket
				run += bucket
				a.Max = max(a.Max, run)
			} else if good[s][b] {
				run = 0
			}
		}
		worst = max(worst, total)
	}
	a.Unavailable += worst
}

// WriteReport prints the run's figures.
func WriteReport(w io.Writer, res *Result) {
	fmt.Fprintf(w, "seed %d: %d operations (%d ok, %d failed, %d unknown outcome), %d faults\n",
		res.Seed, res.Ops, res.OK, res.Failed, res.Unknown, len(res.Schedule))
	fmt.Fprintf(w, "  linearizable: %s; lost acknowledged writes: %d (of %d edges with a certain last write); converged: %v after %v; fully replicated after %v\n",
		res.Linearizable, len(res.Lost), res.EdgesDecided, res.Converged, res.ConvergeAfter.Round(time.Millisecond), res.ReplicatedAfter.Round(time.Millisecond))
	for _, c := range []struct {
		what string
		r    *WatchResult
	}{{"watcher", res.Watch}, {"webhook", res.Webhook}} {
		if what, r := c.what, c.r; r != nil {
			fmt.Fprintf(w, "  %s: %d events (%d received again), %d actors' following sets differ from the final reads%s\n", what, r.Events, r.Duplicates, len(r.Mismatches), errNote(r.Err))
		}
	}
	restored := map[FaultKind]time.Duration{}
	for _, f := range res.Schedule {
		restored[f.Kind] = max(restored[f.Kind], f.Restored)
	}
	fmt.Fprintf(w, "  %-16s %4s %8s %12s %8s %9s %9s %8s %8s %9s\n", "fault", "n", "window", "unavailable", "max", "writes ok", "writes ✗", "reads ok", "reads ✗", "restored")
	for _, a := range res.Availability {
		fmt.Fprintf(w, "  %-16s %4d %7.1fs %11.2fs %7.2fs %9d %9d %8d %8d %8.1fs\n", a.Kind, a.Injections, a.Window.Seconds(),
			a.Unavailable.Seconds(), a.Max.Seconds(), a.WritesOK, a.WritesBad, a.ReadsOK, a.ReadsBad, restored[a.Kind].Seconds())
	}
	fmt.Fprintf(w, "  (unavailable: time writes to the worst shard all failed; restored: longest time from a heal until every shard's voters are current nodes holding its data)\n")
	writeScaleReport(w, res)
	for _, f := range res.Schedule {
		if f.Err != "" {
			fmt.Fprintf(w, "  fault %s at %v: %s\n", f.Kind, f.At, f.Err)
		}
	}
}

// writeScaleReport prints the scale mode's and the clock probe's figures,
// when the run had them.
func writeScaleReport(w io.Writer, res *Result) {
	if s := res.Scale; s != nil {
		fmt.Fprintf(w, "  background graph: %d users, %d edges loaded in %.1fs (%.0f edges/s, %d failed batches); background ops during the run: %d ok, %d failed\n",
			s.Users, s.Edges, s.LoadSeconds, s.EdgesPerSec, s.LoadErrors, s.BackgroundOK, s.BackgroundFailed)
	}
	if c := res.Clock; c != nil {
		fmt.Fprintf(w, "  followTime probe (%d shards, %d edges): largest step forward %v; %d stamped equal to the previous (clamped); back on the same leader: %d; back across a leader change: %d (largest %v)\n",
			c.Shards, c.Samples, c.MaxForward.Round(time.Millisecond), c.Frozen, len(c.Violations), c.Back, c.MaxBack.Round(time.Millisecond))
	}
}

func porcupineVisualize(res *Result, path string) error {
	if res.lin.Result == porcupine.Ok || len(res.lin.Info.PartialLinearizations()) == 0 {
		return nil // nothing to show, or an actor history too long to explain
	}
	return porcupine.VisualizePath(followingModel, res.lin.Info, path)
}

// Sample is one reading of a node's resources.
type Sample struct {
	At         time.Duration
	Node       string
	Pid        int
	Goroutines int
	RSS        int64 // bytes
	FDs        int
}

func (h *Harness) sampleLoop(ctx context.Context) {
	t := time.NewTicker(h.cfg.SampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, n := range h.nodes {
			if pid := n.Pid(); pid != 0 {
				s := Sample{At: time.Duration(h.hist.Now()), Node: n.ID, Pid: pid}
				s.RSS, s.FDs = procStats(pid)
				s.Goroutines = goroutines(n.HTTP)
				h.cfg.Sample(s)
			}
		}
	}
}

// procStats reads VmRSS and the number of open descriptors.
func procStats(pid int) (rss int64, fds int) {
	if f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				rss = kb << 10
			}
		}
		f.Close()
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		fds = len(ents)
	}
	return rss, fds
}

// goroutines reads go_goroutines from the node's /metrics (-1 if it does
// not answer, e.g. while paused).
func goroutines(httpAddr string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int(n)
		}
	}
	return -1
}

// Flat reports whether a series stays flat: the median of its last
// quarter is at most growth times (plus slack) the median of its second
// quarter (the first is warm-up).
func Flat(xs []float64, growth, slack float64) (bool, float64, float64) {
	if len(xs) < 8 {
		return true, 0, 0
	}
	q := len(xs) / 4
	med := func(s []float64) float64 {
		s = slices.Clone(s)
		slices.Sort(s)
		return s[len(s)/2]
	}
	early, late := med(xs[q:2*q]), med(xs[3*q:])
	return late <= early*growth+slack, early, late
}

func errNote(e string) string {
	if e == "" {
		return ""
	}
	return "; error: " + e
}
