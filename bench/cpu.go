package bench

import (
	"context"
	"fmt"
	"io"
	"time"
)

// CPUReport is the CPU time spent during the measured period by the
// target's server process and by followbench itself, in total and per
// measured operation. The harness figure tells whether followbench, not
// the server, capped the run: on one machine both draw from the same
// cores.
type CPUReport struct {
	// Server is the server process's CPU; nil when the target could not
	// tell (followd without a reachable --metrics address).
	Server *CPUFigures `json:"server,omitempty"`
	// Harness is followbench's own CPU (user + system, every goroutine).
	Harness CPUFigures `json:"harness"`
	// HarnessShare is the harness's CPU per operation over the server's
	// (0 when Server is nil).
	HarnessShare float64 `json:"harnessShare,omitempty"`
}

// CPUFigures is one process's CPU over the measured period.
type CPUFigures struct {
	Seconds float64 `json:"seconds"` // user + system
	Cores   float64 `json:"cores"`   // Seconds per second measured
	UsPerOp float64 `json:"usPerOp"` // microseconds per measured operation
	Source  string  `json:"source"`
}

// cpuClock reads the CPU counters of the server and of this process.
type cpuClock struct {
	server  float64
	harness float64
	source  string
	ok      bool // the server's counter was read
}

// readCPU samples both counters now. A server that cannot report its CPU
// leaves ok false; the harness's counter is always read.
func readCPU(ctx context.Context, t Target) cpuClock {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c := cpuClock{harness: selfCPUSeconds()}
	s, src, err := t.CPUSeconds(ctx)
	if err == nil {
		c.server, c.source, c.ok = s, src, true
	}
	return c
}

// cpuBetween is the report for the period from a to b.
func cpuBetween(a, b cpuClock) *CPUReport {
	r := &CPUReport{Harness: CPUFigures{Seconds: b.harness - a.harness, Source: "getrusage"}}
	if a.ok && b.ok {
		r.Server = &CPUFigures{Seconds: b.server - a.server, Source: b.source}
	}
	return r
}

// finish fills in the rates for ops operations measured over elapsed.
func (r *CPUReport) finish(ops int64, elapsed time.Duration) {
	if r == nil {
		return
	}
	r.Harness.rates(ops, elapsed)
	r.HarnessShare = 0
	if r.Server != nil {
		r.Server.rates(ops, elapsed)
		if r.Server.UsPerOp > 0 {
			r.HarnessShare = r.Harness.UsPerOp / r.Server.UsPerOp
		}
	}
}

func (f *CPUFigures) rates(ops int64, elapsed time.Duration) {
	f.Cores, f.UsPerOp = 0, 0
	if elapsed > 0 {
		f.Cores = f.Seconds / elapsed.Seconds()
	}
	if ops > 0 {
		f.UsPerOp = f.Seconds * 1e6 / float64(ops)
	}
}

// mergeCPU adds up the CPU of several runs (nil if any run has none); the
// server's figures stay only if every run has them.
func mergeCPU(reps []*Report) *CPUReport {
	var out CPUReport
	server := true
	for _, r := range reps {
		if r.CPU == nil {
			return nil
		}
		out.Harness.Seconds += r.CPU.Harness.Seconds
		out.Harness.Source = r.CPU.Harness.Source
		if r.CPU.Server == nil {
			server = false
			continue
		}
		if out.Server == nil {
			out.Server = &CPUFigures{Source: r.CPU.Server.Source}
		}
		out.Server.Seconds += r.CPU.Server.Seconds
	}
	if !server {
		out.Server = nil
	}
	return &out
}

// writeLine prints the report as one line of the terminal table, naming
// the server after kind.
func (r *CPUReport) writeLine(w io.Writer, kind string) {
	if r == nil {
		return
	}
	server := kind + " CPU unknown (no metrics)"
	if r.Server != nil {
		server = fmt.Sprintf("%s %.2f cores, %.1f µs/op", kind, r.Server.Cores, r.Server.UsPerOp)
	}
	fmt.Fprintf(w, "cpu: %s; followbench %.2f cores, %.1f µs/op", server, r.Harness.Cores, r.Harness.UsPerOp)
	if r.HarnessShare > 0 {
		fmt.Fprintf(w, " (%.2f of %s's)", r.HarnessShare, kind)
	}
	fmt.Fprintln(w)
}
