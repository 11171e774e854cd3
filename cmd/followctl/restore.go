package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/wire"
)

// Restore.
//
// restore checks a backup whole (manifest, every file's size and sha256)
// and the target (same shard count, every shard ready, no edges unless
// --force) before it writes anything, then imports the shard files with
// import's machinery: sync writes, so that when it ends both sides of
// every edge are applied, and idempotent, so that running it again is
// harmless.

var restoreCommand = &command{
	name: "restore", args: "DIR", minArgs: 1, maxArgs: 1,
	summary: "load a backup written by followctl backup into the (empty) cluster at --addr",
	about: "Restores the backup in DIR into the cluster (or node) at --addr, which may\n" +
		"have any number of nodes but must have the backup's shard count (followd\n" +
		"--shards). It first checks the backup: its manifest, and every shard file's\n" +
		"size and sha256. Then the target: the same shard count, every shard ready, and\n" +
		"no edges in any shard (--force restores into a cluster that has edges: the\n" +
		"backup's edges are added, and edges already there keep their followTime).\n" +
		"Nothing is written before these checks pass.\n\n" +
		"The shard files are then imported as followctl import does, --parallel files\n" +
		"at once, --requests requests of up to --batch edges in flight per file, each\n" +
		"a sync write: when restore ends, both sides of every edge (followers and\n" +
		"mutual lists) are applied. Running it again (with --force: the cluster is no\n" +
		"longer empty) changes nothing. A line that fails fails the restore with its\n" +
		"file and line. Progress goes to stderr every 2s (not with --json); --timeout\n" +
		"bounds each request. Check the result with followctl verify.",
	example: "followctl --addr 10.0.0.9:7700 restore /backups/graph-2026-12-07\n  followctl restore /backups/b1 --parallel 8 --json",
	flags:   restoreFlags, check: restoreCheck, budget: func(*options) time.Duration { return 0 },
	run: restoreCmd, client: importClient,
}

func init() { commands = append(commands, restoreCommand) }

func restoreFlags(fs *flag.FlagSet, o *options) {
	fs.IntVar(&o.backup.parallel, "parallel", 4, "shard files imported at once (`N`)")
	fs.IntVar(&o.backup.requests, "requests", 4, "import requests in flight per file (`N`)")
	fs.IntVar(&o.backup.batch, "batch", wire.MaxImportEdges, "edges per request, `N` up to 10000")
	fs.BoolVar(&o.backup.force, "force", false, "restore into a cluster that already holds edges (merge)")
}

func restoreCheck(o *options) error {
	switch {
	case o.backup.parallel < 1 || o.backup.parallel > 256:
		return usageErrorf("--parallel must be between 1 and 256")
	case o.backup.requests < 1 || o.backup.requests > 256:
		return usageErrorf("--requests must be between 1 and 256")
	case o.backup.batch < 1 || o.backup.batch > wire.MaxImportEdges:
		return usageErrorf("--batch must be between 1 and %d", wire.MaxImportEdges)
	}
	return nil
}

// restoreOutput is restore's result.
type restoreOutput struct {
	Dir         string        `json:"dir"`
	Files       []restoreFile `json:"files"`
	Edges       int64         `json:"edges"`
	Added       int64         `json:"added"`
	Existing    int64         `json:"existing"`
	ElapsedSec  float64       `json:"elapsedSec"`
	EdgesPerSec float64       `json:"edgesPerSec"`
}

type restoreFile struct {
	Shard    int     `json:"shard"`
	File     string  `json:"file"`
	Edges    int64   `json:"edges"`
	Added    int64   `json:"added"`
	Existing int64   `json:"existing"`
	Seconds  float64 `json:"seconds"`
}

func (out restoreOutput) text(w io.Writer) {
	for _, f := range out.Files {
		fmt.Fprintf(w, "%s: %d edges, %d added, %d already there, %.1fs\n", f.File, f.Edges, f.Added, f.Existing, f.Seconds)
	}
	fmt.Fprintf(w, "restored %d edges from %d files of %s (%d added, %d already there) in %.2fs: %.0f edges/s\n",
		out.Edges, len(out.Files), out.Dir, out.Added, out.Existing, out.ElapsedSec, out.EdgesPerSec)
}

func restoreCmd(ctx context.Context, c *client.Client, o *options, args []string) (output, error) {
	dir := args[0]
	m, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	if err := checkBackupFiles(dir, m); err != nil {
		return nil, err
	}
	if err := checkTarget(ctx, c, o, m); err != nil {
		return nil, err
	}
	start := time.Now()
	r := &restorer{c: c, o: o, dir: dir, m: m, files: make([]restoreFile, len(m.Shards))}
	stop := r.progress(start)
	err = r.run(ctx)
	stop()
	if err != nil {
		return nil, err
	}
	out := restoreOutput{Dir: dir, Files: r.files}
	for _, f := range r.files {
		out.Edges += f.Edges
		out.Added += f.Added
		out.Existing += f.Existing
	}
	out.ElapsedSec = time.Since(start).Seconds()
	out.EdgesPerSec = float64(out.Edges) / max(out.ElapsedSec, 1e-9)
	return out, nil
}

// readManifest reads DIR/manifest.json and checks that it describes a
// backup this build restores: the format and version, and one file per
// shard under the name backup gives it (never a path elsewhere).
func readManifest(dir string) (backupManifest, error) {
	var m backupManifest
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	if errors.Is(err, os.ErrNotExist) {
		return m, codes.New(codes.InvalidParam, "%s is not a complete backup: it has no %s", dir, manifestName)
	}
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, codes.New(codes.InvalidParam, "%s: %v", filepath.Join(dir, manifestName), err)
	}
	switch {
	case m.Format != backupFormat:
		return m, codes.New(codes.InvalidParam, "%s: format %q is not %q", dir, m.Format, backupFormat)
	case m.Version != backupVersion:
		return m, codes.New(codes.InvalidParam, "%s: backup format version %d; this followctl reads version %d", dir, m.Version, backupVersion)
	case m.Cluster.Shards < 1 || len(m.Shards) != m.Cluster.Shards:
		return m, codes.New(codes.InvalidParam, "%s: the manifest lists %d shard files for %d shards", dir, len(m.Shards), m.Cluster.Shards)
	}
	for i, s := range m.Shards {
		if s.Shard != i || s.File != shardFileName(i) {
			return m, codes.New(codes.InvalidParam, "%s: manifest entry %d is shard %d in %q, want shard %d in %q", dir, i, s.Shard, s.File, i, shardFileName(i))
		}
	}
	return m, nil
}

// checkBackupFiles checks that every shard file is there with the size
// and sha256 the manifest gives, before anything is restored from it.
func checkBackupFiles(dir string, m backupManifest) error {
	for _, s := range m.Shards {
		path := filepath.Join(dir, s.File)
		f, err := os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			return codes.New(codes.InvalidParam, "backup %s: %s is missing", dir, s.File)
		}
		if err != nil {
			return err
		}
		h := sha256.New()
		n, err := io.Copy(h, f)
		f.Close()
		switch {
		case err != nil:
			return fmt.Errorf("backup %s: reading %s: %w", dir, s.File, err)
		case n != s.Bytes:
			return codes.New(codes.InvalidParam, "backup %s: %s has %d bytes, the manifest says %d", dir, s.File, n, s.Bytes)
		case hex.EncodeToString(h.Sum(nil)) != s.SHA256:
			return codes.New(codes.InvalidParam, "backup %s: %s does not match its sha256 in the manifest (corrupted)", dir, s.File)
		}
	}
	return nil
}

// checkTarget refuses a cluster with another shard count (an edge's file
// is its shard's: the counts must match), with a shard not ready, or,
// without --force, one that holds edges. A new cluster's leaderships
// still move to their preferred nodes for a while, and a shard is not
// ready for a moment at each move: the check waits up to --timeout for
// every shard to be ready before it refuses.
func checkTarget(ctx context.Context, c *client.Client, o *options, m backupManifest) error {
	rctx, cancel := requestCtx(ctx, o)
	defer cancel()
	sm, err := c.ShardMap(rctx)
	if err != nil {
		return err
	}
	if sm.Shards != m.Cluster.Shards {
		return codes.New(codes.InvalidParam, "the backup has %d shards and the cluster at %s has %d: restore into a cluster started with followd --shards %d",
			m.Cluster.Shards, o.addr, sm.Shards, m.Cluster.Shards)
	}
	st, err := waitReady(rctx, c, o)
	if err != nil {
		return err
	}
	var edges uint64
	for _, sh := range st.Shards {
		edges += sh.Following + sh.Followers
	}
	if edges > 0 && !o.backup.force {
		return codes.New(codes.InvalidParam, "the cluster at %s is not empty (%d list entries): restore into a new cluster, or --force to add the backup's edges to these", o.addr, edges)
	}
	return nil
}

// waitReady reads the cluster's status until every shard is ready, every
// readyPoll, and refuses with the first shard not ready when ctx ends.
func waitReady(ctx context.Context, c *client.Client, o *options) (statusOutput, error) {
	const readyPoll = 200 * time.Millisecond
	notReady := func(shard int) error {
		return codes.New(codes.ShardUnavailable, "shard %d of the cluster at %s is not ready (no leader, or catching up) after %s: wait until followctl status is healthy", shard, o.addr, o.timeout)
	}
	last := -1 // the shard not ready at the last read
	for {
		res, err := statusCmd(ctx, c, o, nil)
		if err != nil {
			if last >= 0 && ctx.Err() != nil {
				return statusOutput{}, notReady(last)
			}
			return statusOutput{}, err
		}
		st := res.(statusOutput)
		last = -1
		for _, sh := range st.Shards {
			if !sh.Ready {
				last = sh.Shard
				break
			}
		}
		if last < 0 {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return statusOutput{}, notReady(last)
		case <-time.After(readyPoll):
		}
	}
}

// restorer imports the shard files.
type restorer struct {
	c   *client.Client
	o   *options
	dir string
	m   backupManifest

	files       []restoreFile // by shard
	edges, done atomic.Int64  // for progress
}

// run imports every file, o.backup.parallel at once; the first failure
// stops the others.
func (r *restorer) run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(r.o.backup.parallel, len(r.m.Shards)) {
		wg.Go(func() {
			for i := range jobs {
				if ctx.Err() != nil {
					continue
				}
				if err := r.file(ctx, i); err != nil {
					cancel(err)
				}
			}
		})
	}
	for i := range r.m.Shards {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return context.Cause(ctx)
}

// file imports shard i's file with import's options set for a backup:
// JSONL, no error tolerated, no checkpoint (a restore run again is the
// resume). Its stderr is silenced: the failure comes back in the output
// and is reported with the file's name.
func (r *restorer) file(ctx context.Context, i int) error {
	s := r.m.Shards[i]
	o := *r.o
	o.stderr = io.Discard
	o.imp = importOptions{format: "jsonl", maxErrors: 0, parallel: r.o.backup.requests, batch: r.o.backup.batch}
	out, err := importFile(ctx, r.c, &o, filepath.Join(r.dir, s.File), &r.edges)
	if err == nil && len(out.FirstErrs) > 0 {
		err = fmt.Errorf("%v", out.FirstErrs[0])
	}
	if err == nil && out.Stopped != "" {
		err = errors.New(out.Stopped)
	}
	if err == nil && (int64(out.Lines) != s.Edges || out.Edges != s.Edges) {
		err = fmt.Errorf("%d lines read and %d edges sent, the manifest says %d", out.Lines, out.Edges, s.Edges)
	}
	if err != nil {
		return fmt.Errorf("restore of %s: %w", filepath.Join(r.dir, s.File), err)
	}
	r.files[i] = restoreFile{Shard: s.Shard, File: s.File, Edges: out.Edges, Added: out.Added, Existing: out.Existing, Seconds: out.Seconds}
	r.done.Add(1)
	return nil
}

// progress prints a line on stderr every 2s (not with --json) until the
// returned function is called.
func (r *restorer) progress(start time.Time) (stop func()) {
	if r.o.json {
		return func() {}
	}
	return every(backupProgress, func() {
		n, el := r.edges.Load(), time.Since(start)
		fmt.Fprintf(r.o.stderr, "restore: %d of %d files done, %d of %d edges, %.0f edges/s (%s)\n",
			r.done.Load(), len(r.m.Shards), n, r.m.Edges, float64(n)/el.Seconds(), el.Round(time.Second))
	})
}
