package main

import (
	"bufio"
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
)

// Backup.
//
// A backup is a directory: one export file per shard (JSONL, what export
// writes and import reads), each the following lists of the shard's users
// in one point-in-time view of its leader, and manifest.json, written
// last, which makes the directory a backup. Only following lists are
// kept: followers and mutual lists follow from them, and a restore
// rebuilds them (so reverse edges still in the relay at backup time are
// not lost). Restore is in restore.go.

const (
	backupFormat   = "followgraph-backup"
	backupVersion  = 1
	manifestName   = "manifest.json"
	backupProgress = 2 * time.Second
)

var backupCommand = &command{
	name: "backup", args: "DIR", minArgs: 1, maxArgs: 1,
	summary: "write a consistent snapshot of every shard (and the cluster's metadata) to DIR",
	about: "Backs up the cluster (or node) at --addr into DIR (created if missing), without\n" +
		"stopping writes: DIR/shard-NNNN.jsonl holds the following lists of shard NNNN's\n" +
		"users from one point-in-time view of its leader (the format of followctl\n" +
		"export), and DIR/manifest.json, written last, the format version, the source\n" +
		"cluster (ID, shard count, nodes), and per shard its file, edges, bytes, sha256\n" +
		"and the time its view was taken. A directory without manifest.json is not a\n" +
		"backup; one with it is refused (no overwrite).\n\n" +
		"Each shard is consistent at its own moment; shards are viewed up to the\n" +
		"backup's duration apart, so a write made during the backup may be in some\n" +
		"shard files and not others. Reverse edges (followers, mutual) are rebuilt\n" +
		"from the following lists on restore. The change feed, webhook positions and\n" +
		"raft logs are not in a backup. --parallel shards are read at once. Progress\n" +
		"goes to stderr every 2s (not with --json); --timeout bounds each request.\n" +
		"Restore with followctl restore DIR.",
	example: "followctl backup /backups/graph-$(date +%F)\n  followctl --addr 10.0.0.5:7700 backup /backups/b1 --parallel 8 --json",
	flags:   backupFlags, check: backupCheck, budget: func(*options) time.Duration { return 0 },
	run: backupCmd,
}

func init() { commands = append(commands, backupCommand) }

// backupOptions are the flags of backup and restore.
type backupOptions struct {
	parallel int  // shards (files) at once
	requests int  // restore: import requests in flight per file
	batch    int  // restore: edges per import request
	force    bool // restore: into a cluster that holds edges
}

func backupFlags(fs *flag.FlagSet, o *options) {
	fs.IntVar(&o.backup.parallel, "parallel", 4, "shards backed up at once (`N`)")
}

func backupCheck(o *options) error {
	if o.backup.parallel < 1 || o.backup.parallel > 256 {
		return usageErrorf("--parallel must be between 1 and 256")
	}
	return nil
}

// backupManifest is manifest.json. Its presence means every shard file
// it lists was written whole.
type backupManifest struct {
	Format    string        `json:"format"`  // backupFormat
	Version   int           `json:"version"` // backupVersion
	Followctl string        `json:"followctl"`
	Created   time.Time     `json:"created"` // UTC, when the backup started
	Finished  time.Time     `json:"finished"`
	Cluster   backupCluster `json:"cluster"`
	Edges     int64         `json:"edges"`
	Bytes     int64         `json:"bytes"`
	Shards    []backupShard `json:"shards"`
}

// backupCluster is the source cluster, for the record; a restore needs
// only its shard count to match.
type backupCluster struct {
	ID     string       `json:"id"`
	Shards int          `json:"shards"`
	Nodes  []backupNode `json:"nodes"`
}

type backupNode struct {
	NodeID string `json:"nodeID"`
	Addr   string `json:"addr"`
	State  string `json:"state"`
}

// backupShard is one shard's file. ViewTime is when the first page of its
// view arrived: the view is of a moment within that page's round trip.
type backupShard struct {
	Shard    int       `json:"shard"`
	File     string    `json:"file"`
	Edges    int64     `json:"edges"`
	Bytes    int64     `json:"bytes"`
	SHA256   string    `json:"sha256"`
	ViewTime time.Time `json:"viewTime"`
}

func shardFileName(s int) string { return fmt.Sprintf("shard-%04d.jsonl", s) }

// backupOutput is backup's result.
type backupOutput struct {
	Dir         string        `json:"dir"`
	Shards      []backupShard `json:"shards"`
	Edges       int64         `json:"edges"`
	Bytes       int64         `json:"bytes"`
	ElapsedSec  float64       `json:"elapsedSec"`
	EdgesPerSec float64       `json:"edgesPerSec"`
}

func (out backupOutput) text(w io.Writer) {
	for _, s := range out.Shards {
		fmt.Fprintf(w, "shard %d: %d edges, %d bytes (%s)\n", s.Shard, s.Edges, s.Bytes, s.File)
	}
	fmt.Fprintf(w, "backed up %d edges of %d shards (%d bytes) to %s in %.2fs: %.0f edges/s\n",
		out.Edges, len(out.Shards), out.Bytes, out.Dir, out.ElapsedSec, out.EdgesPerSec)
}

func backupCmd(ctx context.Context, c *client.Client, o *options, args []string) (output, error) {
	dir := args[0]
	if _, err := os.Stat(filepath.Join(dir, manifestName)); err == nil {
		return nil, codes.New(codes.InvalidParam, "%s already holds a backup (%s): give a new directory", dir, manifestName)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	start := time.Now()
	m, err := sourceCluster(ctx, c, o)
	if err != nil {
		return nil, err
	}
	m.Created = start.UTC()
	b := &backuper{c: c, dir: dir, shards: make([]backupShard, m.Cluster.Shards)}
	stop := b.progress(o, start, m.Cluster.Shards)
	err = b.run(ctx, o.backup.parallel)
	stop()
	if err != nil {
		return nil, err
	}
	m.Finished = time.Now().UTC()
	m.Shards = b.shards
	for _, s := range m.Shards {
		m.Edges += s.Edges
		m.Bytes += s.Bytes
	}
	if err := writeManifest(dir, m); err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	return backupOutput{Dir: dir, Shards: m.Shards, Edges: m.Edges, Bytes: m.Bytes, ElapsedSec: elapsed.Seconds(),
		EdgesPerSec: float64(m.Edges) / max(elapsed.Seconds(), 1e-9)}, nil
}

// sourceCluster starts the manifest with what the cluster says of itself:
// its ID and nodes (from status) and its shard count (from the shard map).
func sourceCluster(ctx context.Context, c *client.Client, o *options) (backupManifest, error) {
	rctx, cancel := requestCtx(ctx, o)
	defer cancel()
	sm, err := c.ShardMap(rctx)
	if err != nil {
		return backupManifest{}, err
	}
	st, err := statusCmd(rctx, c, o, nil)
	if err != nil {
		return backupManifest{}, err
	}
	s := st.(statusOutput)
	m := backupManifest{Format: backupFormat, Version: backupVersion, Followctl: version,
		Cluster: backupCluster{ID: s.ClusterID, Shards: sm.Shards, Nodes: []backupNode{}}}
	for _, n := range s.Nodes {
		m.Cluster.Nodes = append(m.Cluster.Nodes, backupNode{NodeID: n.NodeID, Addr: n.ClientAddr, State: n.State})
	}
	if len(s.Nodes) == 0 {
		m.Cluster.Nodes = append(m.Cluster.Nodes, backupNode{NodeID: s.NodeID, Addr: s.Addr, State: "alive"})
	}
	return m, nil
}

// backuper writes the shards' files.
type backuper struct {
	c      *client.Client
	dir    string
	shards []backupShard // by shard, filled as each is done

	edges, viewEdges, done atomic.Int64 // for progress
}

// run backs up every shard, parallel at once; the first error stops the
// others, and their partial files are removed.
func (b *backuper) run(ctx context.Context, parallel int) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(parallel, len(b.shards)) {
		wg.Go(func() {
			for s := range jobs {
				if ctx.Err() != nil {
					continue
				}
				if err := b.shard(ctx, s); err != nil {
					cancel(fmt.Errorf("shard %d: %w", s, err))
				}
			}
		})
	}
	for s := range b.shards {
		jobs <- s
	}
	close(jobs)
	wg.Wait()
	return context.Cause(ctx)
}

// shard writes shard s's file from one export of it: to a .partial file,
// fsynced, then renamed, so that a file named like a shard's is whole.
func (b *backuper) shard(ctx context.Context, s int) (err error) {
	name := shardFileName(s)
	path := filepath.Join(b.dir, name)
	f, err := os.OpenFile(path+".partial", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path + ".partial")
		}
	}()
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(f, h)}
	w := bufio.NewWriterSize(cw, 1<<20)
	sh := backupShard{Shard: s, File: name}
	var view int64 = -1
	var line []byte
	err = b.c.ExportShard(ctx, s, func(p client.ExportPage, edges []client.ExportEdge) error {
		if view < 0 {
			view, sh.ViewTime = p.Edges, time.Now().UTC()
			b.viewEdges.Add(p.Edges)
		}
		for _, e := range edges {
			line = appendJSONLEdge(line[:0], e.Actor, e.Target, e.FollowTime)
			if _, err := w.Write(line); err != nil {
				return err
			}
		}
		sh.Edges += int64(len(edges))
		b.edges.Add(int64(len(edges)))
		return nil
	})
	if err != nil {
		return err
	}
	if sh.Edges != view {
		// Each page is checked by the protocol; this catches a page lost
		// between them.
		return fmt.Errorf("its view held %d edges and the export gave %d", view, sh.Edges)
	}
	if err := finishFile(f, w, path); err != nil {
		return err
	}
	sh.Bytes, sh.SHA256 = cw.n, hex.EncodeToString(h.Sum(nil))
	b.shards[s] = sh
	b.done.Add(1)
	return nil
}

// finishFile flushes w into f, fsyncs and closes f, and renames it to
// path: the rename happens only for a file whose bytes are on disk.
func finishFile(f *os.File, w *bufio.Writer, path string) error {
	err := w.Flush()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncDir fsyncs a directory, so that the renames in it survive a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}

// writeManifest writes manifest.json atomically (a temporary file,
// fsynced, renamed): it is the mark of a complete backup.
func writeManifest(dir string, m backupManifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, manifestName+".tmp*")
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	w.Write(append(data, '\n'))
	return finishFile(f, w, filepath.Join(dir, manifestName))
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// progress prints a line on stderr every 2s (not with --json) until the
// returned function is called.
func (b *backuper) progress(o *options, start time.Time, shards int) (stop func()) {
	if o.json {
		return func() {}
	}
	return every(backupProgress, func() {
		n, el := b.edges.Load(), time.Since(start)
		fmt.Fprintf(o.stderr, "backup: %d of %d shards done, %d of %d edges of the views taken, %.0f edges/s (%s)\n",
			b.done.Load(), shards, n, b.viewEdges.Load(), float64(n)/el.Seconds(), el.Round(time.Second))
	})
}
