package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/codes"
)

// exportCommand writes every edge of the graph to a file, one line per
// edge, from a point-in-time view of each shard (see client.ExportShard).
var exportCommand = &command{
	name: "export", args: "", minArgs: 0, maxArgs: 0,
	summary: "write every edge (actor, target, followTime) as JSONL or CSV, from a point-in-time view per shard",
	about: "Writes every follow edge of the cluster (or node) to --out, one line per edge,\n" +
		"without stopping writes. Each shard is read from one point-in-time view of its\n" +
		"leader, taken when its export starts: the edges of a shard are exactly those\n" +
		"it held at that moment (writes after it do not show), and shards are taken at\n" +
		"slightly different moments. --parallel shards are exported at once.\n\n" +
		"Formats (what followctl import reads):\n" +
		"  jsonl  {\"actor\":\"alice\",\"target\":\"bob\",\"followTime\":1700000000000}\n" +
		"  csv    the header actor,target,followTime, then alice,bob,1700000000000\n" +
		"         (an ID with a comma or a quote is quoted as RFC 4180 says)\n" +
		"followTime is Unix milliseconds. Lines of one shard come together, actor by\n" +
		"actor, each actor's newest first; shards interleave by whole pages.\n\n" +
		"With --out FILE the edges go to FILE.partial, renamed to FILE once every shard\n" +
		"is done: a failed export never leaves a file that looks complete. Progress goes\n" +
		"to stderr every 2s (not with --json); the summary (edges per shard, elapsed,\n" +
		"edges/s) to stdout, or to stderr when the edges go to stdout. If a shard's view\n" +
		"is lost mid-export (its node restarted, or the export stalled for over 30s),\n" +
		"the export fails with 40010: run it again. --timeout bounds each request, not\n" +
		"the whole command.",
	example: "followctl export --out graph.jsonl\n  followctl export --format csv --shards 0,1 --parallel 2 > part.csv",
	flags:   exportFlags, check: exportCheck, budget: func(*options) time.Duration { return 0 },
	run: exportCmd,
}

func init() { commands = append(commands, exportCommand) }

// exportOptions are the flags of export.
type exportOptions struct {
	format   string
	out      string
	shards   string
	parallel int
}

func exportFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.export.format, "format", "jsonl", "`FORMAT` of the lines: jsonl or csv")
	fs.StringVar(&o.export.out, "out", "", "`FILE` to write (default: stdout)")
	fs.StringVar(&o.export.shards, "shards", "", "export only these `SHARDS`, comma-separated (default: all)")
	fs.IntVar(&o.export.parallel, "parallel", 4, "shards exported at once (`N`)")
}

func exportCheck(o *options) error {
	switch {
	case o.export.format != "jsonl" && o.export.format != "csv":
		return usageErrorf("--format must be jsonl or csv, not %q", o.export.format)
	case o.export.parallel < 1 || o.export.parallel > 256:
		return usageErrorf("--parallel must be between 1 and 256")
	}
	if _, err := parseShardList(o.export.shards); err != nil {
		return usageError{err.Error()}
	}
	return nil
}

// parseShardList parses --shards: nil for all.
func parseShardList(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []int
	seen := map[int]bool{}
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 || n >= 1<<16 {
			return nil, fmt.Errorf("--shards: %q is not a shard number", f)
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

// exportOutput is the summary of an export.
type exportOutput struct {
	Format      string        `json:"format"`
	Out         string        `json:"out"`
	Shards      []shardExport `json:"shards"`
	Edges       int64         `json:"edges"`
	ElapsedSec  float64       `json:"elapsedSec"`
	EdgesPerSec float64       `json:"edgesPerSec"`
}

type shardExport struct {
	Shard int   `json:"shard"`
	Edges int64 `json:"edges"`
}

func (out exportOutput) text(w io.Writer) {
	for _, s := range out.Shards {
		fmt.Fprintf(w, "shard %d: %d edges\n", s.Shard, s.Edges)
	}
	fmt.Fprintf(w, "exported %d edges from %d shards to %s (%s) in %.2fs: %.0f edges/s\n",
		out.Edges, len(out.Shards), out.Out, out.Format, out.ElapsedSec, out.EdgesPerSec)
}

func exportCmd(ctx context.Context, c *client.Client, o *options, _ []string) (output, error) {
	rctx, cancel := requestCtx(ctx, o)
	sm, err := c.ShardMap(rctx)
	cancel()
	if err != nil {
		return nil, err
	}
	shards, _ := parseShardList(o.export.shards)
	if shards == nil {
		for s := range sm.Shards {
			shards = append(shards, s)
		}
	}
	for _, s := range shards {
		if s >= sm.Shards {
			return nil, codes.New(codes.InvalidParam, "--shards: no shard %d (there are %d)", s, sm.Shards)
		}
	}
	sink, err := openExportSink(o)
	if err != nil {
		return nil, err
	}
	ex := &exporter{c: c, o: o, csv: o.export.format == "csv", w: bufio.NewWriterSize(sink.w, 1<<20), counts: make([]atomic.Int64, len(shards))}
	start := time.Now()
	stop := ex.progress(start)
	err = ex.run(ctx, shards)
	stop()
	err = errors.Join(err, ex.w.Flush())
	if err = sink.finish(err); err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	out := exportOutput{Format: o.export.format, Out: sink.name, Edges: ex.total.Load(), ElapsedSec: elapsed.Seconds()}
	out.EdgesPerSec = float64(out.Edges) / max(elapsed.Seconds(), 1e-9)
	for i, s := range shards {
		out.Shards = append(out.Shards, shardExport{Shard: s, Edges: ex.counts[i].Load()})
	}
	if sink.stdout {
		// The edges own stdout: the summary goes beside them.
		printOutput(o.stderr, o.stderr, o.json, out)
		return streamed{}, nil
	}
	return out, nil
}

// exportSink is where the lines go: stdout, or FILE.partial renamed to
// FILE by finish.
type exportSink struct {
	w      io.Writer
	f      *os.File
	name   string
	stdout bool
}

func openExportSink(o *options) (*exportSink, error) {
	if o.export.out == "" || o.export.out == "-" {
		return &exportSink{w: o.stdout, name: "stdout", stdout: true}, nil
	}
	if st, err := os.Stat(o.export.out); err == nil && !st.Mode().IsRegular() {
		// /dev/null and the like: write in place.
		f, err := os.OpenFile(o.export.out, os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		return &exportSink{w: f, f: f, name: o.export.out}, nil
	}
	f, err := os.OpenFile(o.export.out+".partial", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return &exportSink{w: f, f: f, name: o.export.out}, nil
}

// finish closes the file and, if the export succeeded, renames it into
// place; a failed export's partial file is removed.
func (s *exportSink) finish(err error) error {
	if s.f == nil {
		return err
	}
	partial := s.f.Name() != s.name
	if err == nil && partial {
		err = s.f.Sync()
	}
	err = errors.Join(err, s.f.Close())
	switch {
	case !partial:
	case err != nil:
		os.Remove(s.f.Name())
	default:
		err = os.Rename(s.f.Name(), s.name)
		if d, derr := os.Open(filepath.Dir(s.name)); derr == nil {
			d.Sync() // the rename survives a crash
			d.Close()
		}
	}
	return err
}

// exporter runs the shards' exports and writes their pages.
type exporter struct {
	c   *client.Client
	o   *options
	csv bool

	mu sync.Mutex // guards w: one page at a time, whole lines
	w  *bufio.Writer

	counts     []atomic.Int64 // per shard (index in the shard list)
	total      atomic.Int64
	viewEdges  atomic.Int64 // edges of the views taken so far
	shardsDone atomic.Int64
}

// run exports the shards, o.export.parallel at once; the first error
// stops the others.
func (ex *exporter) run(ctx context.Context, shards []int) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if ex.csv {
		ex.w.WriteString("actor,target,followTime\n")
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(ex.o.export.parallel, len(shards)) {
		wg.Go(func() {
			var buf []byte
			for i := range jobs {
				if ctx.Err() != nil {
					continue
				}
				if err := ex.shard(ctx, i, shards[i], &buf); err != nil {
					cancel(fmt.Errorf("shard %d: %w", shards[i], err))
				}
			}
		})
	}
	for i := range shards {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return context.Cause(ctx)
}

// shard exports one shard: each page is formatted into buf, then written
// whole under the lock, so that lines of shards exported in parallel never
// interleave.
func (ex *exporter) shard(ctx context.Context, i, s int, buf *[]byte) error {
	first := true
	err := ex.c.ExportShard(ctx, s, func(p client.ExportPage, edges []client.ExportEdge) error {
		if first {
			ex.viewEdges.Add(p.Edges)
			first = false
		}
		b := (*buf)[:0]
		for _, e := range edges {
			if ex.csv {
				b = appendCSVEdge(b, e.Actor, e.Target, e.FollowTime)
			} else {
				b = appendJSONLEdge(b, e.Actor, e.Target, e.FollowTime)
			}
		}
		*buf = b
		ex.mu.Lock()
		_, err := ex.w.Write(b)
		ex.mu.Unlock()
		ex.counts[i].Add(int64(len(edges)))
		ex.total.Add(int64(len(edges)))
		return err
	})
	if err == nil {
		ex.shardsDone.Add(1)
	}
	return err
}

// progress prints a line on stderr every 2s (not with --json) until the
// returned function is called.
func (ex *exporter) progress(start time.Time) (stop func()) {
	if ex.o.json {
		return func() {}
	}
	return every(progressEvery, func() {
		n, el := ex.total.Load(), time.Since(start)
		fmt.Fprintf(ex.o.stderr, "export: %d shards done, %d of %d edges of the views taken, %.0f edges/s (%s)\n",
			ex.shardsDone.Load(), n, ex.viewEdges.Load(), float64(n)/el.Seconds(), el.Round(time.Second))
	})
}

// appendJSONLEdge appends {"actor":A,"target":B,"followTime":T} and a
// newline. User IDs are UTF-8 without control characters (shard.ValidUserID),
// so a quote and a backslash are all that JSON needs escaped.
func appendJSONLEdge(b, actor, target []byte, t int64) []byte {
	b = append(b, `{"actor":"`...)
	b = appendJSONString(b, actor)
	b = append(b, `","target":"`...)
	b = appendJSONString(b, target)
	b = append(b, `","followTime":`...)
	b = strconv.AppendInt(b, t, 10)
	return append(b, '}', '\n')
}

func appendJSONString(b, s []byte) []byte {
	for _, c := range s {
		if c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, c)
	}
	return b
}

// appendCSVEdge appends actor,target,followTime and a newline, quoting
// an ID that holds a comma or a quote (IDs hold no line breaks).
func appendCSVEdge(b, actor, target []byte, t int64) []byte {
	b = appendCSVField(b, actor)
	b = append(b, ',')
	b = appendCSVField(b, target)
	b = append(b, ',')
	b = strconv.AppendInt(b, t, 10)
	return append(b, '\n')
}

func appendCSVField(b, s []byte) []byte {
	quote := false
	for _, c := range s {
		if c == ',' || c == '"' {
			quote = true
			break
		}
	}
	if !quote {
		return append(b, s...)
	}
	b = append(b, '"')
	for _, c := range s {
		if c == '"' {
			b = append(b, '"')
		}
		b = append(b, c)
	}
	return append(b, '"')
}
