package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/followgraph/followgraph/cluster/clustertest"
	"github.com/followgraph/followgraph/shard"
)

// ctlBackup runs backup --json into dir and returns its summary.
func ctlBackup(t *testing.T, addr, dir string) backupOutput {
	t.Helper()
	var out backupOutput
	decodeOne(t, mustOK(t, "backup", "--json", "--addr", addr, dir, "--parallel", "3"), &out)
	return out
}

func readManifestFile(t *testing.T, dir string) backupManifest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		t.Fatal(err)
	}
	var m backupManifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// checkShardFile checks that a backup file holds exactly the edges the
// manifest says, each of an actor of its shard, and its recorded size
// and sha256.
func checkShardFile(t *testing.T, dir string, s backupShard, shards int) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, s.File))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if int64(len(data)) != s.Bytes || hex.EncodeToString(sum[:]) != s.SHA256 {
		t.Fatalf("%s: %d bytes, sha256 %x; manifest %+v", s.File, len(data), sum, s)
	}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	var n int64
	for sc.Scan() {
		var e struct{ Actor string }
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: %v", s.File, err)
		}
		if got := shard.Of(e.Actor, shards); got != s.Shard {
			t.Fatalf("%s holds an edge of %q, whose shard is %d", s.File, e.Actor, got)
		}
		n++
	}
	if n != s.Edges {
		t.Fatalf("%s: %d lines, manifest says %d edges", s.File, n, s.Edges)
	}
}

// A node's graph is backed up, restored into a fresh node, and the two
// hold the same edges (an export of each diffs identical) and a restored
// graph that verify finds clean; restoring again adds nothing.
func TestBackupAndRestore(t *testing.T) {
	src := startServer(t, "")
	c := newClient(t, src)
	_, edges := buildGraph(t, c)
	follow(t, c, oddIDs[0], oddIDs[1:]...)
	edges += len(oddIDs) - 1

	dir := filepath.Join(t.TempDir(), "b1") // created by backup
	sum := ctlBackup(t, src, dir)
	if sum.Edges != int64(edges) || len(sum.Shards) != 4 || sum.Dir != dir || sum.Bytes <= 0 {
		t.Fatalf("backup summary %+v, want %d edges of 4 shards", sum, edges)
	}
	m := readManifestFile(t, dir)
	if m.Format != backupFormat || m.Version != backupVersion || m.Cluster.Shards != 4 || m.Edges != int64(edges) ||
		len(m.Cluster.Nodes) != 1 || m.Cluster.Nodes[0].Addr != src || m.Created.IsZero() || m.Created.Location().String() != "UTC" {
		t.Fatalf("manifest %+v", m)
	}
	for _, s := range m.Shards {
		if s.ViewTime.Before(m.Created) || s.ViewTime.After(m.Finished) {
			t.Errorf("shard %d viewed at %v, outside the backup's %v..%v", s.Shard, s.ViewTime, m.Created, m.Finished)
		}
		checkShardFile(t, dir, s, 4)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.partial")); len(left) > 0 {
		t.Fatalf("partial files left: %v", left)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp*")); len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}

	dst := startServer(t, "")
	var r restoreOutput
	decodeOne(t, mustOK(t, "restore", "--json", "--addr", dst, dir, "--requests", "2", "--batch", "100"), &r)
	if r.Edges != int64(edges) || r.Added != int64(edges) || r.Existing != 0 || len(r.Files) != 4 {
		t.Fatalf("restore summary %+v, want %d edges added", r, edges)
	}
	if status, v := ctlVerify(t, "--addr", dst); status != 0 || v.Edges != uint64(edges) {
		t.Fatalf("verify of the restored node: status %d, %+v", status, v)
	}
	exports := t.TempDir()
	a, b := filepath.Join(exports, "src.jsonl"), filepath.Join(exports, "dst.jsonl")
	mustOK(t, "export", "--json", "--addr", src, "--out", a)
	mustOK(t, "export", "--json", "--addr", dst, "--out", b)
	if status, d := ctlDiff(t, a, b); status != 0 || d.Edges1 != int64(edges) {
		t.Fatalf("source and restored differ: %+v", d)
	}
	// The backup's files are exports too.
	if status, d := ctlDiff(t, filepath.Join(dir, "shard-0002.jsonl"), filepath.Join(dir, "shard-0002.jsonl")); status != 0 || d.Edges1 != m.Shards[2].Edges {
		t.Fatalf("diff of a shard file: %+v", d)
	}

	// Not empty any more: refused, then with --force, nothing added.
	if status, _, errOut := ctl(t, "restore", "--addr", dst, dir); status != 1 || !strings.Contains(errOut, "is not empty") {
		t.Fatalf("restore into a non-empty node: status %d, %s", status, errOut)
	}
	decodeOne(t, mustOK(t, "restore", "--json", "--addr", dst, dir, "--force"), &r)
	if r.Added != 0 || r.Existing != int64(edges) {
		t.Fatalf("restore again: %+v", r)
	}
	// A second backup needs a new directory.
	if status, _, errOut := ctl(t, "backup", "--addr", src, dir); status != 1 || !strings.Contains(errOut, "already holds a backup") {
		t.Fatalf("backup over a backup: status %d, %s", status, errOut)
	}
}

// copyBackup copies a backup's files into a new directory.
func copyBackup(t *testing.T, dir string) string {
	t.Helper()
	out := t.TempDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// A damaged backup, or a target of another shard count, is refused before
// anything is written.
func TestRestoreRefuses(t *testing.T) {
	src := startServer(t, "")
	c := newClient(t, src)
	buildGraph(t, c)
	dir := t.TempDir()
	ctlBackup(t, src, dir)
	dst := startServer(t, "")

	corrupt := copyBackup(t, dir)
	f := filepath.Join(corrupt, "shard-0001.jsonl")
	data, _ := os.ReadFile(f)
	data[len(data)/2] ^= 1
	os.WriteFile(f, data, 0o644)
	missing := copyBackup(t, dir)
	os.Remove(filepath.Join(missing, "shard-0003.jsonl"))
	short := copyBackup(t, dir)
	f = filepath.Join(short, "shard-0000.jsonl")
	data, _ = os.ReadFile(f)
	os.WriteFile(f, data[:len(data)-1], 0o644)
	incomplete := copyBackup(t, dir)
	os.Remove(filepath.Join(incomplete, manifestName))
	newer := copyBackup(t, dir)
	mf := filepath.Join(newer, manifestName)
	data, _ = os.ReadFile(mf)
	os.WriteFile(mf, []byte(strings.Replace(string(data), `"version": 1,`, `"version": 2,`, 1)), 0o644)
	eight := clustertest.Start(t, clustertest.Options{Shards: 8}).Addr

	for _, x := range []struct{ addr, dir, want string }{
		{dst, corrupt, "shard-0001.jsonl does not match its sha256"},
		{dst, missing, "shard-0003.jsonl is missing"},
		{dst, short, "shard-0000.jsonl has "},
		{dst, incomplete, "is not a complete backup"},
		{dst, newer, "backup format version 2"},
		{eight, dir, "the backup has 4 shards and the cluster at " + eight + " has 8"},
	} {
		status, _, errOut := ctl(t, "restore", "--addr", x.addr, x.dir)
		if status != 1 || !strings.Contains(errOut, x.want) {
			t.Errorf("restore %s: status %d, %q, want %q", x.dir, status, errOut, x.want)
		}
	}
	for _, addr := range []string{dst, eight} {
		if _, v := ctlVerify(t, "--addr", addr); v.Edges != 0 {
			t.Errorf("a refused restore wrote %d edges to %s", v.Edges, addr)
		}
	}
	for _, args := range [][]string{{"backup"}, {"backup", dir, "--parallel", "0"}, {"restore", dir, "--requests", "0"}, {"restore", dir, "--batch", "10001"}} {
		if status, _, _ := ctl(t, args...); status != 2 {
			t.Errorf("%q: status %d, want 2", args, status)
		}
	}
}

// A single node's backup restores into a three-node cluster of the same
// shard count, both sides of every edge included; a directory left by a
// failed backup (shard files, no manifest) takes a new backup.
func TestRestoreSingleNodeIntoCluster(t *testing.T) {
	src := startServer(t, "")
	c := newClient(t, src)
	_, edges := buildGraph(t, c)
	dir := t.TempDir()
	ctlBackup(t, src, dir)
	os.Remove(filepath.Join(dir, manifestName))
	os.WriteFile(filepath.Join(dir, "shard-0001.jsonl"), []byte("left by a failed backup\n"), 0o644)
	ctlBackup(t, src, dir)
	m := readManifestFile(t, dir)
	for _, s := range m.Shards {
		checkShardFile(t, dir, s, 4)
	}

	nodes, _ := startHealthyCluster(t, 3, 4)
	var r restoreOutput
	decodeOne(t, mustOK(t, "restore", "--json", "--addr", nodes[1].Addr, dir, "--timeout", "20s"), &r)
	// A request retried after it applied (the leadership transfers of a
	// new cluster cut some off; on a loaded machine every shard's one
	// request may be) reports its edges as already there: the two counts
	// together are exact, the restore refused a non-empty target, and
	// verify and diff below check what the cluster holds.
	if r.Added+r.Existing != int64(edges) {
		t.Fatalf("restore into the cluster: %+v, want %d edges added or already there", r, edges)
	}
	if v := clusterVerify(t, nodes[2].Addr); v.Violations != 0 || v.Edges != uint64(edges) {
		t.Fatalf("verify of the cluster: %+v", v)
	}
	a, b := filepath.Join(t.TempDir(), "src.jsonl"), filepath.Join(t.TempDir(), "dst.jsonl")
	mustOK(t, "export", "--json", "--addr", src, "--out", a)
	mustOK(t, "export", "--json", "--addr", nodes[0].Addr, "--out", b, "--timeout", "20s")
	if status, d := ctlDiff(t, a, b); status != 0 {
		t.Fatalf("the node and the restored cluster differ: %+v", d)
	}

	// With two of three nodes gone no shard has a leader: the restore
	// waits its --timeout for the shards to be ready, then refuses.
	nodes[1].Stop()
	nodes[2].Stop()
	waitStatus(t, nodes[0].Addr, "no leader", 60*time.Second, func(st statusOutput) bool { return hasProblem(st, "no leader") })
	start := time.Now()
	status, out, _ := ctl(t, "restore", "--json", "--force", "--addr", nodes[0].Addr, dir, "--timeout", "2s")
	var e errorOutput
	decodeOne(t, out, &e)
	if status == 0 || e.Error.Code != 40002 || !strings.Contains(e.Error.Message, "is not ready") || time.Since(start) < 2*time.Second {
		t.Fatalf("restore into a cluster without leaders: status %d after %s, %s", status, time.Since(start), out)
	}
}
