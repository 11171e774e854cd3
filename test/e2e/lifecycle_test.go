//go:build lifecycle

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/followgraph/followgraph/internal/graphgen"
)

var lifecycleUsers = flag.Int("lifecycle-users", 250_000, "users of the generated graph (mean 20 follows each)")

// TestLifecycle runs the data lifecycle at scale on real binaries: a
// generated graph of about 5M edges is imported into a single node,
// exported and compared with the file, imported again from the export
// into a second node and compared again, each node verified; then the
// most followed user is removed and the graph verified once more. It
// logs the rates (make lifecycle; CI runs it).
func TestLifecycle(t *testing.T) {
	dir := t.TempDir()
	file, edges, celeb := writeGraph(t, dir, *lifecycleUsers)
	t.Logf("generated %d edges in %s", edges, file)
	a := start(t, t.TempDir(), "--shards", "16")
	imp := ctlJSON(t, "--addr", a.addr, "import", file, "--timeout", "60s")
	t.Logf("import into one node: %v edges added in %.1fs: %.0f edges/s", imp["added"], imp["seconds"], imp["edgesPerSecond"])
	// A request retried after it applied counts as "already there": the
	// sum is exact, and the diff below checks every edge.
	if imp["added"].(float64)+imp["existing"].(float64) != float64(edges) || imp["errors"] != 0.0 {
		t.Fatalf("import: %v", imp)
	}
	exported := filepath.Join(dir, "a.jsonl")
	ex := ctlJSON(t, "--addr", a.addr, "export", "--out", exported, "--timeout", "60s")
	t.Logf("export: %v", ex)
	ctlJSON(t, "diff", file, exported)
	verifySample(t, a.addr)

	b := start(t, t.TempDir(), "--shards", "16")
	imp = ctlJSON(t, "--addr", b.addr, "import", exported, "--timeout", "60s")
	t.Logf("import of the export into a fresh node: %.0f edges/s", imp["edgesPerSecond"])
	again := filepath.Join(dir, "b.jsonl")
	ctlJSON(t, "--addr", b.addr, "export", "--out", again, "--timeout", "60s")
	ctlJSON(t, "diff", exported, again)
	verifySample(t, b.addr)

	c := newClient(t, a.addr, "")
	in, err := c.Info(context.Background(), celeb)
	if err != nil {
		t.Fatal(err)
	}
	rm := ctlJSON(t, "--addr", a.addr, "remove-user", celeb, "--wait")
	t.Logf("remove-user of %s (%d followers, %d following): %.0f edges/s", celeb, in[0].Followers, in[0].Following, rm["edgesPerSecond"])
	if in, err = c.Info(context.Background(), celeb); err != nil || in[0].Followers+in[0].Following != 0 {
		t.Fatalf("after the removal: %+v %v", in, err)
	}
	verifySample(t, a.addr)
}

// writeGraph writes a generated graph as JSONL, each edge with its own
// followTime, and returns the file, its number of edges and its most
// followed user.
func writeGraph(t *testing.T, dir string, users int) (string, int, string) {
	cfg := graphgen.DefaultConfig()
	cfg.Users = users
	g, err := graphgen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "graph.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	n := 0
	var line []byte
	g.Edges(func(a, b int) bool {
		line = append(line[:0], `{"actor":"`...)
		line = append(line, graphgen.UserID(a)...)
		line = append(line, `","target":"`...)
		line = append(line, graphgen.UserID(b)...)
		line = append(line, `","followTime":`...)
		line = strconv.AppendInt(line, 1_600_000_000_000+int64(n)*37%100_000_000_000, 10)
		line = append(line, "}\n"...)
		w.Write(line)
		n++
		return true
	})
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path, n, graphgen.UserID(g.ByRank(0))
}

// verifySample runs followctl verify on a tenth of the users: a full
// verify of 5M edges checks each edge with a request, about 6 minutes
// here; the diffs above compare every edge.
func verifySample(t *testing.T, addr string) {
	t.Helper()
	v := ctlJSON(t, "--addr", addr, "verify", "--sample", "0.1", "--parallel", "16", "--timeout", "30s")
	if v["violations"] != 0.0 {
		t.Fatalf("verify: %v", v)
	}
}

// ctlJSON runs followctl with --json, requires success, and returns its
// object.
func ctlJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	start := time.Now()
	status, out := ctlRun(append(args, "--json")...)
	if status != 0 {
		t.Fatalf("followctl %q: status %d after %v\n%s", args, status, time.Since(start), out)
	}
	var m map[string]any
	// Progress lines may precede the object on the combined output.
	for i := len(out) - 1; i >= 0; i-- {
		if out[i] == '{' && (i == 0 || out[i-1] == '\n') {
			if err := json.Unmarshal([]byte(out[i:]), &m); err == nil {
				return m
			}
		}
	}
	t.Fatalf("followctl %q printed no JSON object:\n%s", args, fmt.Sprint(out))
	return nil
}
