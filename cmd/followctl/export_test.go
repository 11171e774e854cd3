package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/followgraph/followgraph/client"
)

// oddIDs are user IDs that need quoting in CSV or escaping in JSON.
var oddIDs = []string{`a,b`, `q"uote`, `back\slash`, `é 中`, ` lead`, `"`, `,`}

// listedEdges reads every edge of the given users through the lists, as
// JSON lines written by encoding/json: an independent rendering of what
// export must produce.
func listedEdges(t *testing.T, c *client.Client, users []string) string {
	t.Helper()
	var b strings.Builder
	for _, u := range users {
		p, err := c.Following(context.Background(), u, client.Limit(500))
		if err != nil {
			t.Fatal(err)
		}
		for cursor := ""; ; cursor = p.NextCursor {
			if cursor != "" {
				if p, err = c.Following(context.Background(), u, client.Limit(500), client.Cursor(cursor)); err != nil {
					t.Fatal(err)
				}
			}
			for _, it := range p.Items {
				line, _ := json.Marshal(map[string]any{"actor": u, "target": it.UserID, "followTime": it.FollowTime})
				b.Write(line)
				b.WriteByte('\n')
			}
			if p.NextCursor == "" {
				break
			}
		}
	}
	return b.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func ctlDiff(t *testing.T, a, b string) (int, diffOutput) {
	t.Helper()
	status, out, errOut := ctl(t, "diff", "--json", a, b)
	var d diffOutput
	decodeOne(t, out, &d)
	if status != 0 && d.Identical {
		t.Fatalf("diff: status %d, %s %s", status, out, errOut)
	}
	return status, d
}

func TestExportAndDiff(t *testing.T) {
	addr := startServer(t, "")
	c := newClient(t, addr)
	_, edges := buildGraph(t, c)
	follow(t, c, oddIDs[0], oddIDs[1:]...)
	follow(t, c, oddIDs[1], oddIDs[0], "hub")
	edges += len(oddIDs) - 1 + 2
	users := []string{"hub", oddIDs[0], oddIDs[1]}
	for i := range 520 {
		users = append(users, fmt.Sprintf("t%03d", i))
	}
	for i := range 20 {
		users = append(users, fmt.Sprintf("u%d", i))
	}
	want := writeFile(t, "want.jsonl", listedEdges(t, c, users))

	dir := t.TempDir()
	jsonl, csvFile := filepath.Join(dir, "g.jsonl"), filepath.Join(dir, "g.csv")
	var sum exportOutput
	_, out, _ := ctl(t, "export", "--json", "--addr", addr, "--out", jsonl, "--parallel", "2")
	decodeOne(t, out, &sum)
	if sum.Edges != int64(edges) || len(sum.Shards) != 4 || sum.Format != "jsonl" || sum.Out != jsonl || sum.EdgesPerSec <= 0 {
		t.Fatalf("export summary %+v, want %d edges", sum, edges)
	}
	var m map[string]any
	decodeOne(t, out, &m)
	checkKeys(t, "export", m, "format", "out", "shards", "edges", "elapsedSec", "edgesPerSec")
	if _, err := os.Stat(jsonl + ".partial"); !os.IsNotExist(err) {
		t.Fatalf("partial file left: %v", err)
	}
	mustOK(t, "export", "--addr", addr, "--out", csvFile, "--format", "csv")

	// The exact line format.
	data, _ := os.ReadFile(jsonl)
	line := regexp.MustCompile(`^\{"actor":"([^"\\]|\\["\\])+","target":"([^"\\]|\\["\\])+","followTime":[0-9]+\}$`)
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		var e map[string]any
		if !line.MatchString(l) || json.Unmarshal([]byte(l), &e) != nil {
			t.Fatalf("bad JSONL line %q", l)
		}
	}
	f, _ := os.Open(csvFile)
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != edges+1 || strings.Join(recs[0], ",") != "actor,target,followTime" {
		t.Fatalf("CSV: %d records, %v", len(recs), err)
	}

	// The export holds exactly the lists' edges, in either format.
	for _, pair := range [][2]string{{jsonl, want}, {csvFile, want}, {jsonl, csvFile}} {
		if status, d := ctlDiff(t, pair[0], pair[1]); status != 0 || !d.Identical || d.Edges1 != int64(edges) {
			t.Fatalf("diff %s %s: status %d, %+v", pair[0], pair[1], status, d)
		}
	}
	if out := mustOK(t, "diff", jsonl, csvFile); !strings.HasPrefix(out, "identical: ") {
		t.Fatalf("diff text: %s", out)
	}

	// To stdout: the lines there, the summary on stderr.
	status, stdout, stderr := ctl(t, "export", "--addr", addr, "--shards", "1,0")
	if status != 0 || !strings.Contains(stderr, "shard 1: ") || strings.Count(stdout, "\n") == 0 || strings.Count(stdout, "\n") >= edges {
		t.Fatalf("export to stdout: status %d, %d lines, stderr %q", status, strings.Count(stdout, "\n"), stderr)
	}
}

func TestDiffFindsDifferences(t *testing.T) {
	a := writeFile(t, "a.jsonl", `{"actor":"x","target":"y","followTime":1}
{"actor":"x","target":"z","followTime":2}
{"actor":"q\"","target":"y","followTime":3}
{"actor":"w","target":"y","followTime":4}
`)
	b := writeFile(t, "b.csv", "actor,target,followTime\nx,y,1\nx,z,5\n\"q\"\"\",y,3\nv,y,4\nx,y,1\n")
	status, d := ctlDiff(t, a, b)
	if status != 1 || d.Identical || d.OnlyIn1 != 1 || d.OnlyIn2 != 1 || d.TimeDiffers != 1 || d.Duplicates2 != 1 || d.Edges1 != 4 || d.Edges2 != 5 {
		t.Fatalf("status %d, %+v", status, d)
	}
	joined := strings.Join(d.Samples, "\n")
	for _, s := range []string{`only in ` + a + `: "w" -> "y" at 4`, `only in ` + b + `: "v" -> "y" at 4`, `different followTime: "x" -> "z" at 2 in`, `repeated in ` + b + `: "x" -> "y" at [1 1]`} {
		if !strings.Contains(joined, s) {
			t.Errorf("samples lack %q:\n%s", s, joined)
		}
	}
	status, out, _ := ctl(t, "diff", a, b)
	if status != 1 || !strings.Contains(out, "only in "+a+": 1") {
		t.Fatalf("text: %d %s", status, out)
	}
	// Not an export; a malformed line; usage.
	bad := writeFile(t, "bad.txt", "hello\n")
	if status, _, _ := ctl(t, "diff", a, bad); status != 1 {
		t.Fatalf("not an export: status %d", status)
	}
	broken := writeFile(t, "broken.jsonl", `{"actor":"x","target":"y","followTime":1}`+"\n{\"actor\":\"x\"}\n")
	if status, _, errOut := ctl(t, "diff", a, broken); status != 1 || !strings.Contains(errOut, "broken.jsonl: line 2: ") {
		t.Fatalf("malformed line: status %d, %s", status, errOut)
	}
	if status, _, _ := ctl(t, "diff", a); status != 2 {
		t.Fatalf("one file: status %d", status)
	}
}

func TestExportUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"export", "--format", "xml"}, {"export", "--parallel", "0"}, {"export", "--shards", "a"}, {"export", "--shards", "-1"},
	} {
		if status, _, _ := ctl(t, args...); status != 2 {
			t.Errorf("%q: status %d, want 2", args, status)
		}
	}
	addr := startServer(t, "")
	if status, _, errOut := ctl(t, "export", "--addr", addr, "--shards", "9", "--out", filepath.Join(t.TempDir(), "x")); status != 1 || !strings.Contains(errOut, "no shard 9") {
		t.Errorf("--shards 9 of 4: status %d, %s", status, errOut)
	}
}

func TestExportLineFormats(t *testing.T) {
	for _, c := range []struct{ a, b, jsonl, csv string }{
		{"alice", "bob", `{"actor":"alice","target":"bob","followTime":1700000000000}` + "\n", "alice,bob,1700000000000\n"},
		{`a,b`, `q"`, `{"actor":"a,b","target":"q\"","followTime":1700000000000}` + "\n", `"a,b","q""",1700000000000` + "\n"},
		{`x\y`, "é", `{"actor":"x\\y","target":"é","followTime":1700000000000}` + "\n", `x\y,é,1700000000000` + "\n"},
	} {
		if got := string(appendJSONLEdge(nil, []byte(c.a), []byte(c.b), 1700000000000)); got != c.jsonl {
			t.Errorf("JSONL %q", got)
		}
		if got := string(appendCSVEdge(nil, []byte(c.a), []byte(c.b), 1700000000000)); got != c.csv {
			t.Errorf("CSV %q", got)
		}
	}
}
