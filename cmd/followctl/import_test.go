package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/cluster/clustertest"
)

// following returns user's following list as "id@time" strings.
func following(t *testing.T, c *client.Client, user string, followers bool) []string {
	t.Helper()
	list := c.Following
	if followers {
		list = c.Followers
	}
	p, err := list(context.Background(), user, client.Limit(500))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, it := range p.Items {
		out = append(out, fmt.Sprintf("%s@%d", it.UserID, it.FollowTime))
	}
	return out
}

// An import keeps the file's followTimes (and so the list order) on both
// sides, and running it again changes nothing.
func TestImportKeepsFollowTimes(t *testing.T) {
	addr := startServer(t, "")
	var b strings.Builder
	for i := range 50 {
		fmt.Fprintf(&b, `{"actor":"alice","target":"u%d","followTime":%d}`+"\n", i, 1_000+i*7%50)
		fmt.Fprintf(&b, "{ \"followTime\": %d, \"target\": \"alice\", \"actor\": \"u%d\" }\n", 2_000+i, i)
	}
	// Escapes go through the slow path: a user ID with a quote.
	b.WriteString(`{"actor":"q\"uote","target":"alice","followTime":5}` + "\n")
	file := writeFile(t, "g.jsonl", b.String())
	out := jsonOK(t, "--addr", addr, "import", file)
	if out["added"] != 101.0 || out["existing"] != 0.0 || out["errors"] != 0.0 || out["lines"] != 101.0 {
		t.Fatalf("first import: %v", out)
	}
	c := newClient(t, addr)
	got := following(t, c, "alice", false)
	if len(got) != 50 || got[0] != "u7@1049" || got[49] != "u0@1000" {
		t.Fatalf("following(alice) = %v", got)
	}
	fs := following(t, c, "alice", true)
	if len(fs) != 51 || fs[0] != "u49@2049" || fs[50] != `q"uote@5` {
		t.Fatalf("followers(alice) = %v", fs)
	}
	if got := following(t, c, "u3", true); len(got) != 1 || got[0] != "alice@1021" {
		t.Fatalf("followers(u3) = %v (the reverse side of a cross-shard edge)", got)
	}
	again := jsonOK(t, "--addr", addr, "import", file)
	if again["added"] != 0.0 || again["existing"] != 101.0 {
		t.Fatalf("second import: %v", again)
	}
	if after := following(t, c, "alice", false); strings.Join(after, " ") != strings.Join(got, " ") {
		t.Fatalf("the second import changed following(alice): %v", after)
	}
}

// Every kind of bad line is reported with its number and applied not at
// all; the good lines around it are applied.
func TestImportReportsBadLines(t *testing.T) {
	addr := clustertest.Start(t, clustertest.Options{Cluster: func(c *cluster.Config) { c.Store.MaxFollowing = 3 }}).Addr
	lines := []string{
		"actor,target,followTime", // 1: the header
		"a,b,10",                  // 2
		"a,b",                     // 3: two columns
		"a,a,11",                  // 4: self-follow
		"a,c,soon",                // 5: not a number
		"\x00\xff\xfe,c,12",       // 6: binary garbage
		"a,c,-1",                  // 7: out of range
		`"x,y",c,13`,              // 8: a quoted ID with a comma
		"a,c,14",                  // 9
		"a,d,15",                  // 10
		"a,e,16",                  // 11: a fourth following, over the cap of 3
		"a,b,c,17",                // 12: four columns
		`"unclosed,c,18`,          // 13: bad quoting
	}
	file := writeFile(t, "bad.csv", strings.Join(lines, "\n")+"\nz,y,1") // 14: no newline at the end
	status, stdout, stderr := ctl(t, "--addr", addr, "import", file, "--max-errors", "-1", "--json")
	if status != exitFailed {
		t.Fatalf("status %d, want %d; stderr %s", status, exitFailed, stderr)
	}
	var out importOutput
	decodeOne(t, stdout, &out)
	wantLines := []int{3, 4, 5, 6, 7, 11, 12, 13, 14}
	var gotLines []int
	for _, e := range out.FirstErrs {
		gotLines = append(gotLines, e.Line)
		if !strings.Contains(stderr, fmt.Sprintf("line %d: ", e.Line)) {
			t.Errorf("line %d is not reported on stderr", e.Line)
		}
	}
	if fmt.Sprint(gotLines) != fmt.Sprint(wantLines) || out.Errors != int64(len(wantLines)) || out.Added != 4 {
		t.Fatalf("errors on lines %v (want %v), %+v", gotLines, wantLines, out)
	}
	for _, want := range []string{"2 columns", "follows itself", "not an integer", "invalid actor", "out of range", "following limit", "4 columns", "bad CSV", "truncated"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("no error says %q: %s", want, stdout)
		}
	}
	c := newClient(t, addr)
	if got := following(t, c, "a", false); strings.Join(got, " ") != "d@15 c@14 b@10" {
		t.Fatalf("following(a) = %v", got)
	}
	if got := following(t, c, "x,y", false); strings.Join(got, " ") != "c@13" {
		t.Fatalf("following(x,y) = %v", got)
	}
	if got := following(t, c, "z", false); len(got) != 0 {
		t.Fatalf("the truncated last line was applied: %v", got)
	}
}

// With --max-errors 0 the first bad line stops the import; the lines
// before it are applied, the checkpoint points past it, and a second run
// with the checkpoint resumes there.
func TestImportStopsAndResumes(t *testing.T) {
	addr := startServer(t, "")
	var b strings.Builder
	for i := range 30 {
		if i == 10 {
			b.WriteString("{not json}\n")
		}
		fmt.Fprintf(&b, `{"actor":"r%d","target":"s%d","followTime":%d}`+"\n", i, i, 100+i)
	}
	file := writeFile(t, "g.jsonl", b.String())
	cp := filepath.Join(t.TempDir(), "g.cp")
	status, stdout, _ := ctl(t, "--addr", addr, "import", file, "--checkpoint", cp, "--batch", "4", "--parallel", "1", "--json")
	var out importOutput
	decodeOne(t, stdout, &out)
	if status != exitFailed || out.Stopped == "" || out.Errors != 1 || out.FirstErrs[0].Line != 11 || out.Edges != 10 {
		t.Fatalf("status %d, %+v", status, out)
	}
	c := newClient(t, addr)
	if got := following(t, c, "r9", false); len(got) != 1 {
		t.Fatalf("line 10 was not applied: %v", got)
	}
	if got := following(t, c, "r10", false); len(got) != 0 {
		t.Fatalf("a line after the stop was applied: %v", got)
	}
	var resumed importOutput
	decodeOne(t, mustOK(t, "--addr", addr, "import", file, "--checkpoint", cp, "--json"), &resumed)
	if resumed.Resumed != 12 || resumed.Added != 20 || resumed.Errors != 0 {
		t.Fatalf("resumed: %+v", resumed)
	}
	if got := following(t, c, "r29", false); len(got) != 1 {
		t.Fatalf("the last line was not applied: %v", got)
	}
	// A changed file is not resumed from the old checkpoint.
	os.WriteFile(file, []byte(b.String()+`{"actor":"r","target":"s","followTime":1}`+"\n"), 0o644)
	if status, _, stderr := ctl(t, "--addr", addr, "import", file, "--checkpoint", cp); status != exitFailed || !strings.Contains(stderr, "not resumed") {
		t.Fatalf("a changed file: status %d, %s", status, stderr)
	}
}
