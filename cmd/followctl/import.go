package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/shard"
	"github.com/followgraph/followgraph/wire"
)

// Import.
//
// import reads an edge file (see importparse.go) and sends its edges in
// requests of up to --batch edges, grouped by actor, --parallel requests
// in flight. Each request is a sync write: when it is answered, both
// sides of its edges are applied, so when import ends the graph is
// consistent. A line is one edge, sent whole or not at all: a bad line
// (or an edge the server refuses, such as a 5,001st following) is
// reported with its number and counts as an error; --max-errors decides
// how many errors stop the import (0: the first). Edges already there
// keep their followTime, so an import run again changes nothing, and an
// interrupted one can be resumed: --checkpoint FILE records, every
// second, a position before which every line is applied or reported, and
// a later run with the same FILE starts there.

const (
	importProgressEvery = time.Second
	maxListedErrors     = 20 // errors in the final output; all are counted
	maxPrintedErrors    = 100
)

type importOptions struct {
	format     string
	maxErrors  int
	parallel   int
	batch      int
	checkpoint string
}

func importFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.imp.format, "format", "auto", "input `FORMAT`: jsonl, csv or auto (by the first line)")
	fs.IntVar(&o.imp.maxErrors, "max-errors", 0, "stop after more than `N` bad lines or refused edges (-1: never)")
	fs.IntVar(&o.imp.parallel, "parallel", 8, "`N` requests in flight")
	fs.IntVar(&o.imp.batch, "batch", wire.MaxImportEdges, "edges per request, `N` up to 10000")
	fs.StringVar(&o.imp.checkpoint, "checkpoint", "", "resume from, and record progress in, `FILE`")
}

// importClient gives each attempt the whole --timeout: a page of 10,000
// sync edges behind others on a busy node takes longer than the client's
// default attempt, and an attempt given up is sent again for nothing.
func importClient(o *options, cfg *client.Config) { cfg.AttemptTimeout = o.timeout }

func importCheck(o *options) error {
	switch {
	case o.imp.parallel < 1 || o.imp.parallel > 256:
		return usageErrorf("--parallel must be between 1 and 256")
	case o.imp.batch < 1 || o.imp.batch > wire.MaxImportEdges:
		return usageErrorf("--batch must be between 1 and %d", wire.MaxImportEdges)
	case o.imp.maxErrors < -1:
		return usageErrorf("--max-errors must be -1 or more")
	}
	_, err := parseFormat(o.imp.format)
	return err
}

// importOutput is import's result.
type importOutput struct {
	Input     string      `json:"input"`
	Lines     int         `json:"lines"`
	Edges     int64       `json:"edges"`
	Added     int64       `json:"added"`
	Existing  int64       `json:"existing"`
	Errors    int64       `json:"errors"`
	FirstErrs []lineError `json:"firstErrors"`
	Resumed   int         `json:"resumedAtLine,omitempty"`
	Stopped   string      `json:"stopped,omitempty"`
	Seconds   float64     `json:"seconds"`
	PerSecond float64     `json:"edgesPerSecond"`
}

func (out importOutput) text(w io.Writer) {
	if out.Resumed > 0 {
		fmt.Fprintf(w, "resumed at line %d\n", out.Resumed)
	}
	fmt.Fprintf(w, "%d lines, %d edges sent: %d added, %d already there; %d errors; %.1fs, %.0f edges/s\n",
		out.Lines, out.Edges, out.Added, out.Existing, out.Errors, out.Seconds, out.PerSecond)
	for _, e := range out.FirstErrs {
		fmt.Fprintf(w, "  %v\n", e)
	}
	if out.Stopped != "" {
		fmt.Fprintf(w, "stopped: %s\n", out.Stopped)
	}
}

func (out importOutput) failure() error {
	switch {
	case out.Stopped != "":
		return errors.New("import stopped: " + out.Stopped)
	case out.Errors > 0:
		return fmt.Errorf("import: %d errors", out.Errors)
	}
	return nil
}

// importBatch is one request's edges: commands by actor, and each edge's
// line, in request order.
type importBatch struct {
	seq     int
	cmds    []client.ImportCommand
	lines   [][]int // per command
	byActor map[string]int
	edges   int
	// start: the position before the batch's first line.
	startOffset int64
	startLine   int
}

func (b *importBatch) add(e edge) {
	i, ok := b.byActor[e.actor]
	if !ok || len(b.cmds[i].Targets) >= shard.MaxImportTargets {
		i = len(b.cmds)
		b.cmds = append(b.cmds, client.ImportCommand{Actor: e.actor})
		b.lines = append(b.lines, nil)
		b.byActor[e.actor] = i
	}
	c := &b.cmds[i]
	c.Targets = append(c.Targets, e.target)
	c.Times = append(c.Times, e.time)
	b.lines[i] = append(b.lines[i], e.line)
	b.edges++
}

// lineOf returns the line of the request's edge number idx.
func (b *importBatch) lineOf(idx int) int {
	for _, ls := range b.lines {
		if idx < len(ls) {
			return ls[idx]
		}
		idx -= len(ls)
	}
	return 0
}

type importer struct {
	ctx    context.Context
	cancel context.CancelFunc
	c      *client.Client
	o      *options
	in     *edgeReader
	size   int64 // of the input, 0 if unknown
	start  time.Time

	edges, added, existing, errs atomic.Int64
	counted                      *atomic.Int64 // if set, edges sent are added to it too

	mu      sync.Mutex
	first   []lineError
	stopped string
	pending map[int]*importBatch // being filled, or sent and not yet answered
	seq     int
	cp      checkpoint
	// The reader's position, for progress and the checkpoint.
	readOffset int64
	readLine   int
}

func importCmd(ctx context.Context, c *client.Client, o *options, args []string) (output, error) {
	out, err := importFile(ctx, c, o, args[0], nil)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// importFile imports the edge file at path ("-": stdin) with o's import
// flags. With counted set, it prints no progress and adds the edges it
// sends to counted as they are applied, for a caller that reports on
// several files at once (restore).
func importFile(ctx context.Context, c *client.Client, o *options, path string, counted *atomic.Int64) (importOutput, error) {
	f, _ := parseFormat(o.imp.format)
	in, size, closeIn, err := openInput(path)
	if err != nil {
		return importOutput{}, err
	}
	defer closeIn()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	imp := &importer{ctx: ctx, cancel: cancel, c: c, o: o, in: newEdgeReader(in, f), size: size, start: time.Now(), pending: map[int]*importBatch{}, counted: counted}
	out := importOutput{Input: path}
	if o.imp.checkpoint != "" {
		resumed, err := imp.resume(in, path)
		if err != nil {
			return importOutput{}, err
		}
		out.Resumed = resumed
	}
	stopProgress := func() {}
	if counted == nil {
		stopProgress = imp.progress()
	}
	imp.run()
	stopProgress()
	if o.imp.checkpoint != "" {
		if err := imp.saveCheckpoint(); err != nil {
			fmt.Fprintf(o.stderr, "followctl import: %v\n", err)
		}
	}
	return imp.output(out), nil
}

func openInput(path string) (io.ReadSeeker, int64, func(), error) {
	if path == "-" {
		return nil, 0, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	return f, st.Size(), func() { f.Close() }, nil
}

// run reads batches and hands them to --parallel senders until the input
// ends or the import stops.
func (imp *importer) run() {
	batches := make(chan *importBatch)
	var wg sync.WaitGroup
	for range imp.o.imp.parallel {
		wg.Go(func() {
			for b := range batches {
				imp.send(b)
			}
		})
	}
	b := imp.newBatch()
	for imp.ctx.Err() == nil {
		e, err := imp.in.next()
		imp.mu.Lock()
		imp.readOffset, imp.readLine = imp.in.offset, imp.in.line
		imp.mu.Unlock()
		if err == io.EOF {
			break
		}
		var le *lineError
		switch {
		case errors.As(err, &le):
			imp.fail(*le)
			continue
		case err != nil:
			imp.stop(fmt.Sprintf("reading line %d: %v", imp.in.line+1, err))
			continue
		}
		b.add(e)
		if b.edges >= imp.o.imp.batch {
			imp.dispatch(batches, b)
			b = imp.newBatch()
		}
	}
	// Lines before a stop are sent: everything before the first line not
	// applied is, so the checkpoint can move past them.
	if b.edges > 0 {
		imp.dispatch(batches, b)
	} else {
		imp.mu.Lock()
		delete(imp.pending, b.seq)
		imp.mu.Unlock()
	}
	close(batches)
	wg.Wait()
}

func (imp *importer) newBatch() *importBatch {
	imp.mu.Lock()
	defer imp.mu.Unlock()
	imp.seq++
	b := &importBatch{seq: imp.seq, byActor: map[string]int{}, startOffset: imp.readOffset, startLine: imp.readLine}
	imp.pending[b.seq] = b
	return b
}

func (imp *importer) dispatch(batches chan<- *importBatch, b *importBatch) { batches <- b }

// send imports one batch; an error that remains after the client's
// retries stops the import.
func (imp *importer) send(b *importBatch) {
	ctx, cancel := context.WithTimeout(context.Background(), imp.o.timeout)
	defer cancel()
	res, err := imp.c.Import(ctx, b.cmds, client.Sync())
	if err != nil {
		imp.stop(fmt.Sprintf("request for lines %d-%d: %v", b.startLine+1, b.lineOf(b.edges-1), err))
		return
	}
	imp.edges.Add(int64(b.edges))
	if imp.counted != nil {
		imp.counted.Add(int64(b.edges))
	}
	imp.added.Add(int64(res.Added))
	imp.existing.Add(int64(res.Existing))
	for _, f := range res.Failures {
		imp.fail(lineError{b.lineOf(f.Index), fmt.Sprintf("%s (%d)", f.Info, f.Code)})
	}
	imp.mu.Lock()
	delete(imp.pending, b.seq)
	imp.mu.Unlock()
}

// fail counts a bad line, and stops the import past --max-errors.
func (imp *importer) fail(e lineError) {
	n := imp.errs.Add(1)
	if n <= maxPrintedErrors {
		fmt.Fprintf(imp.o.stderr, "followctl import: %v\n", e)
	}
	imp.mu.Lock()
	imp.first = append(imp.first, e)
	if len(imp.first) > 4*maxListedErrors {
		slices.SortFunc(imp.first, func(a, b lineError) int { return a.Line - b.Line })
		imp.first = imp.first[:maxListedErrors]
	}
	imp.mu.Unlock()
	if max := imp.o.imp.maxErrors; max >= 0 && n > int64(max) {
		imp.stop(fmt.Sprintf("more than %d errors (--max-errors)", max))
	}
}

func (imp *importer) stop(why string) {
	imp.mu.Lock()
	if imp.stopped == "" {
		imp.stopped = why
	}
	imp.mu.Unlock()
	imp.cancel()
}

func (imp *importer) output(out importOutput) importOutput {
	imp.mu.Lock()
	defer imp.mu.Unlock()
	out.Lines = imp.readLine
	out.Edges, out.Added, out.Existing, out.Errors = imp.edges.Load(), imp.added.Load(), imp.existing.Load(), imp.errs.Load()
	slices.SortFunc(imp.first, func(a, b lineError) int { return a.Line - b.Line })
	out.FirstErrs = imp.first[:min(len(imp.first), maxListedErrors)]
	if out.FirstErrs == nil {
		out.FirstErrs = []lineError{}
	}
	out.Stopped = imp.stopped
	out.Seconds = time.Since(imp.start).Seconds()
	out.PerSecond = float64(out.Edges) / max(out.Seconds, 1e-9)
	return out
}

// progress prints a progress bar on stderr every second (overwritten in
// place on a terminal) until the returned function is called, and saves
// the checkpoint as it goes.
func (imp *importer) progress() (stop func()) {
	tty := isTerminal(imp.o.stderr)
	stopTicks := every(importProgressEvery, func() {
		imp.printProgress(tty)
		if imp.o.imp.checkpoint != "" {
			if err := imp.saveCheckpoint(); err != nil {
				fmt.Fprintf(imp.o.stderr, "followctl import: %v\n", err)
			}
		}
	})
	return func() {
		stopTicks()
		if tty {
			fmt.Fprintln(imp.o.stderr)
		}
	}
}

func (imp *importer) printProgress(tty bool) {
	secs := time.Since(imp.start).Seconds()
	n := imp.edges.Load()
	bar := ""
	if imp.size > 0 {
		imp.mu.Lock()
		frac := float64(imp.readOffset) / float64(imp.size)
		imp.mu.Unlock()
		k := int(frac * 30)
		bar = fmt.Sprintf("[%s%s] %5.1f%% ", strings.Repeat("#", k), strings.Repeat(".", 30-k), 100*frac)
	}
	line := fmt.Sprintf("import: %s%d edges, %.0f edges/s, %d errors", bar, n, float64(n)/secs, imp.errs.Load())
	if tty {
		fmt.Fprintf(imp.o.stderr, "\r%s", line)
	} else {
		fmt.Fprintln(imp.o.stderr, line)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// checkpoint is what --checkpoint FILE holds: every line before Line
// (which starts at byte Offset) is applied or was reported.
type checkpoint struct {
	Input  string `json:"input"`
	Size   int64  `json:"size"` // of the input: a changed file is not resumed
	Offset int64  `json:"offset"`
	Line   int    `json:"line"`
	Done   bool   `json:"done"`
}

// resume reads the checkpoint file, if there is one, and moves the input
// to its position. It returns the line it resumes at (0: from the start).
func (imp *importer) resume(in io.ReadSeeker, input string) (int, error) {
	abs, _ := filepath.Abs(input)
	imp.cp = checkpoint{Input: abs, Size: imp.size}
	data, err := os.ReadFile(imp.o.imp.checkpoint)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var cp checkpoint
	if err := json.Unmarshal(data, &cp); err != nil {
		return 0, fmt.Errorf("checkpoint %s: %v", imp.o.imp.checkpoint, err)
	}
	switch {
	case cp.Input != abs:
		return 0, codes.New(codes.InvalidParam, "checkpoint %s is of %s, not %s", imp.o.imp.checkpoint, cp.Input, abs)
	case cp.Size != imp.size:
		return 0, codes.New(codes.InvalidParam, "checkpoint %s is of a %d-byte %s, which now has %d bytes: not resumed", imp.o.imp.checkpoint, cp.Size, abs, imp.size)
	}
	if in != nil {
		_, err = in.Seek(cp.Offset, io.SeekStart)
	} else {
		_, err = io.CopyN(io.Discard, os.Stdin, cp.Offset)
	}
	if err != nil {
		return 0, fmt.Errorf("resuming at byte %d: %v", cp.Offset, err)
	}
	imp.in.offset, imp.in.line = cp.Offset, cp.Line
	imp.readOffset, imp.readLine = cp.Offset, cp.Line
	imp.cp = cp
	return cp.Line + 1, nil
}

// saveCheckpoint records the start of the oldest batch not yet applied
// (or the reader's position, when none is pending).
func (imp *importer) saveCheckpoint() error {
	imp.mu.Lock()
	cp := imp.cp
	cp.Offset, cp.Line = imp.readOffset, imp.readLine
	oldest := 0
	for seq, b := range imp.pending {
		if oldest == 0 || seq < oldest {
			oldest = seq
			cp.Offset, cp.Line = b.startOffset, b.startLine
		}
	}
	cp.Done = oldest == 0 && imp.stopped == "" && imp.ctx.Err() == nil
	imp.mu.Unlock()
	data, _ := json.Marshal(cp)
	tmp := imp.o.imp.checkpoint + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, imp.o.imp.checkpoint)
}
