package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
)

// readJSONL reads an export file into "actor>target" -> followTime,
// failing on a repeated edge.
func readJSONL(t *testing.T, path string) map[string]int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e struct {
			Actor, Target string
			FollowTime    int64
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: %v: %q", path, err, sc.Text())
		}
		k := e.Actor + ">" + e.Target
		if _, dup := out[k]; dup {
			t.Fatalf("%s: edge %s twice", path, k)
		}
		out[k] = e.FollowTime
	}
	return out
}

// followingOf reads user's whole following list.
func followingOf(t *testing.T, c *client.Client, user string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	p, err := c.Following(context.Background(), user, client.Limit(500))
	for ; ; p, err = c.Following(context.Background(), user, client.Limit(500), client.Cursor(p.NextCursor)) {
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range p.Items {
			out[it.UserID] = it.FollowTime
		}
		if p.NextCursor == "" {
			return out
		}
	}
}

// Three followd processes: a graph is loaded, then followctl export runs
// while writers keep following. Every loaded edge is in the export with
// its time, every exported edge exists with its time (writers only add
// edges, by actors of their own), and two exports of the quiet cluster
// are identical to followctl diff.
func TestClusterExportUnderWrites(t *testing.T) {
	procs := startCluster(t, 8)
	c := failoverClient(t, procs)
	waitMap(t, c, 30*time.Second)
	ctx := context.Background()
	const users = 300
	var actors []string
	for i := range users {
		actor := fmt.Sprintf("user%d", i)
		actors = append(actors, actor)
		var ts []string
		for j := range 1 + i%20 {
			ts = append(ts, fmt.Sprintf("user%d", (i*7+j+1)%users))
		}
		if _, err := c.Follow(ctx, actor, ts); err != nil {
			t.Fatal(err)
		}
	}
	loaded := map[string]int64{}
	for _, a := range actors {
		for b, ft := range followingOf(t, c, a) {
			loaded[a+">"+b] = ft
		}
	}

	stop := untilStopped(4, func(w, i int) {
		actor := fmt.Sprintf("writer%d-%d", w, i%50)
		if _, err := c.Follow(ctx, actor, []string{fmt.Sprintf("user%d", rand.IntN(users))}); err != nil {
			t.Errorf("write: %v", err)
			time.Sleep(100 * time.Millisecond)
		}
	})
	dir := t.TempDir()
	during := filepath.Join(dir, "during.jsonl")
	out, err := exec.Command(followctl, "--addr", procs[1].addr, "export", "--out", during, "--parallel", "3").CombinedOutput()
	stop()
	if err != nil {
		t.Fatalf("followctl export: %v\n%s", err, out)
	}
	t.Logf("export under writes:\n%s", out)
	got := readJSONL(t, during)
	for k, ft := range loaded {
		if got[k] != ft {
			t.Fatalf("loaded edge %s: time %d in the export, %d in the lists", k, got[k], ft)
		}
	}
	now := map[string]map[string]int64{}
	writes := 0
	for k, ft := range got {
		var a, b string
		for i := range k {
			if k[i] == '>' {
				a, b = k[:i], k[i+1:]
				break
			}
		}
		if now[a] == nil {
			now[a] = followingOf(t, c, a)
		}
		if cur, ok := now[a][b]; !ok || cur != ft {
			t.Fatalf("exported edge %s at %d: in the lists %v at %d", k, ft, ok, cur)
		}
		if _, ok := loaded[k]; !ok {
			writes++
		}
	}
	t.Logf("%d loaded edges, %d written during the export seen in it", len(loaded), writes)

	// Quiet: two exports (JSONL, CSV) through different nodes agree.
	a, b := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.csv")
	for _, x := range []struct{ addr, out, format string }{{procs[0].addr, a, "jsonl"}, {procs[2].addr, b, "csv"}} {
		if out, err := exec.Command(followctl, "--addr", x.addr, "export", "--out", x.out, "--format", x.format).CombinedOutput(); err != nil {
			t.Fatalf("followctl export: %v\n%s", err, out)
		}
	}
	if out, err := exec.Command(followctl, "diff", a, b).CombinedOutput(); err != nil {
		t.Fatalf("followctl diff: %v\n%s", err, out)
	}
}
