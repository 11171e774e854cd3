package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Three followd processes hold an imported graph; followctl backup runs
// while writers keep following (without --sync, so reverse edges are in
// the relay when the shards are viewed: the restore must re-create them). The backup is restored into a
// new single node with the same shard count: verify finds it clean, and
// an export of it diffs identical with the backup's files.
func TestBackupUnderWritesRestores(t *testing.T) {
	const shards, users = 8, 3000
	procs := startCluster(t, shards)
	c := failoverClient(t, procs)
	waitMap(t, c, 30*time.Second)
	dir := t.TempDir()

	var b strings.Builder
	loaded := map[string]int64{}
	for i := range users {
		for j := range 1 + i%30 {
			a, tg, ft := fmt.Sprintf("user%d", i), fmt.Sprintf("user%d", (i+1+j*97)%users), int64(1_700_000_000_000+i*31+j)
			fmt.Fprintf(&b, `{"actor":%q,"target":%q,"followTime":%d}`+"\n", a, tg, ft)
			loaded[a+">"+tg] = ft
		}
	}
	graph := filepath.Join(dir, "graph.jsonl")
	if err := os.WriteFile(graph, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if status, out := ctlRun("--addr", procs[0].addr, "import", graph, "--timeout", "30s"); status != 0 {
		t.Fatalf("import: %d\n%s", status, out)
	}

	ctx := context.Background()
	stop := untilStopped(4, func(w, i int) {
		actor := fmt.Sprintf("writer%d-%d", w, i%100)
		if _, err := c.Follow(ctx, actor, []string{fmt.Sprintf("user%d", rand.IntN(users))}); err != nil {
			t.Errorf("write: %v", err)
			time.Sleep(100 * time.Millisecond)
		}
	})
	time.Sleep(500 * time.Millisecond) // the relay busy when the views are taken
	backup := filepath.Join(dir, "backup")
	status, out := ctlRun("--addr", procs[1].addr, "backup", backup, "--parallel", "3")
	stop()
	if status != 0 {
		t.Fatalf("followctl backup: %d\n%s", status, out)
	}
	t.Logf("backup under writes:\n%s", out)
	var m struct {
		Cluster struct {
			Shards int
			Nodes  []struct{ NodeID string }
		}
		Edges  int64
		Shards []struct{ File string }
	}
	data, err := os.ReadFile(filepath.Join(backup, "manifest.json"))
	if err != nil || json.Unmarshal(data, &m) != nil || m.Cluster.Shards != shards || len(m.Cluster.Nodes) != 3 || len(m.Shards) != shards {
		t.Fatalf("manifest: %v\n%s", err, data)
	}
	all := filepath.Join(dir, "backup.jsonl")
	var cat []byte
	for _, s := range m.Shards {
		d, err := os.ReadFile(filepath.Join(backup, s.File))
		if err != nil {
			t.Fatal(err)
		}
		cat = append(cat, d...)
	}
	os.WriteFile(all, cat, 0o644)
	got := readJSONL(t, all)
	for k, ft := range loaded {
		if got[k] != ft {
			t.Fatalf("loaded edge %s: time %d in the backup, want %d", k, got[k], ft)
		}
	}
	if len(got) == len(loaded) {
		t.Fatal("no edge of the writers in the backup")
	}
	t.Logf("%d edges in the backup, %d of them by the writers", len(got), len(got)-len(loaded))

	one := start(t, t.TempDir(), "--shards", fmt.Sprint(shards))
	if status, out := ctlRun("--addr", one.addr, "restore", backup); status != 0 {
		t.Fatalf("followctl restore: %d\n%s", status, out)
	}
	var v struct{ Edges, Violations int64 }
	out2, err := exec.Command(followctl, "--addr", one.addr, "verify", "--json").Output()
	if err != nil || json.Unmarshal(out2, &v) != nil || v.Edges != m.Edges || v.Violations != 0 {
		t.Fatalf("verify of the restored node (want %d edges): %v\n%s", m.Edges, err, out2)
	}
	export := filepath.Join(dir, "restored.jsonl")
	if status, out := ctlRun("--addr", one.addr, "export", "--out", export); status != 0 {
		t.Fatalf("export: %d\n%s", status, out)
	}
	if out, err := exec.Command(followctl, "diff", all, export).CombinedOutput(); err != nil {
		t.Fatalf("followctl diff of the backup and the restored node: %v\n%s", err, out)
	}
}
