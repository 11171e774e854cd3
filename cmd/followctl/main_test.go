package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/wire"
)

// startServer starts a single in-process node with 4 shards and serves the
// wire protocol on a free local port; token, when set, is required. It
// returns the address.
func startServer(t *testing.T, token string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := cluster.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Shards = 4
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 100*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond
	n, err := cluster.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc := cluster.NewService(n, ln.Addr().String(), "test")
	scfg := wire.DefaultServerConfig()
	scfg.Welcome = svc.Welcome()
	scfg.Token = token
	srv, err := wire.NewServer(scfg, svc)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
		ln.Close() // Serve leaves it open if Shutdown came first
	})
	return ln.Addr().String()
}

// closedAddr returns an address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// ctl runs followctl in-process and returns its exit status and output.
func ctl(t *testing.T, args ...string) (status int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	status = run(args, &out, &errOut)
	return status, out.String(), errOut.String()
}

// mustOK runs followctl and fails the test unless it exits 0 with nothing
// on stderr.
func mustOK(t *testing.T, args ...string) string {
	t.Helper()
	status, out, errOut := ctl(t, args...)
	if status != 0 || errOut != "" {
		t.Fatalf("followctl %q: status %d, stderr %q, stdout %q", args, status, errOut, out)
	}
	return out
}

// decodeOne decodes stdout, which must hold exactly one JSON object, into v.
func decodeOne(t *testing.T, stdout string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s", err, stdout)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("stdout holds more than one JSON value: %q", stdout)
	}
}

// jsonOK runs followctl with --json, checks it succeeded, and returns the
// object it printed.
func jsonOK(t *testing.T, args ...string) map[string]any {
	t.Helper()
	var m map[string]any
	decodeOne(t, mustOK(t, append(args, "--json")...), &m)
	return m
}

// checkKeys fails unless m has exactly the keys want.
func checkKeys(t *testing.T, what string, m map[string]any, want ...string) {
	t.Helper()
	got := slices.Sorted(maps.Keys(m))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: keys %q, want %q", what, got, want)
	}
}

// objects returns m[key], which must be a JSON array of objects.
func objects(t *testing.T, m map[string]any, key string) []map[string]any {
	t.Helper()
	arr, ok := m[key].([]any)
	if !ok {
		t.Fatalf("%q is %T (%v), want an array", key, m[key], m[key])
	}
	out := make([]map[string]any, len(arr))
	for i, e := range arr {
		if out[i], ok = e.(map[string]any); !ok {
			t.Fatalf("%q[%d] is %T, want an object", key, i, e)
		}
	}
	return out
}

func TestCommandsJSON(t *testing.T) {
	addr := startServer(t, "")
	a := func(args ...string) map[string]any { t.Helper(); return jsonOK(t, append(args, "--addr", addr)...) }

	// follow: one result per target, per-item codes are not request errors.
	m := a("follow", "alice", "bob", "carol", "alice", "--sync")
	checkKeys(t, "follow", m, "results")
	rs := objects(t, m, "results")
	if len(rs) != 3 {
		t.Fatalf("follow: %d results, want 3: %v", len(rs), m)
	}
	for i, want := range []struct {
		user string
		code float64
	}{{"bob", 0}, {"carol", 0}, {"alice", 30001}} {
		checkKeys(t, "follow result", rs[i], "userID", "code", "info")
		if rs[i]["userID"] != want.user || rs[i]["code"] != want.code {
			t.Errorf("follow result %d = %v, want user %s code %v", i, rs[i], want.user, want.code)
		}
	}
	if rs[0]["info"] != "" || rs[2]["info"] == "" {
		t.Errorf("follow infos: %q and %q, want empty and a reason", rs[0]["info"], rs[2]["info"])
	}
	a("follow", "bob", "alice", "--sync")

	// Lists.
	before := time.Now().Add(-time.Minute).UnixMilli()
	m = a("followers", "bob")
	checkKeys(t, "followers", m, "items", "nextCursor")
	items := objects(t, m, "items")
	if len(items) != 1 || m["nextCursor"] != "" {
		t.Fatalf("followers bob = %v, want alice and no cursor", m)
	}
	checkKeys(t, "item", items[0], "userID", "followTime")
	if items[0]["userID"] != "alice" {
		t.Errorf("followers bob = %v, want alice", items)
	}
	if ft, ok := items[0]["followTime"].(float64); !ok || int64(ft) < before || int64(ft) > time.Now().UnixMilli() {
		t.Errorf("followTime %v is not a recent Unix time in ms", items[0]["followTime"])
	}
	var users []string
	for _, it := range objects(t, a("following", "alice"), "items") {
		users = append(users, it["userID"].(string))
	}
	if !slices.Equal(users, []string{"carol", "bob"}) && !slices.Equal(users, []string{"bob", "carol"}) {
		t.Errorf("following alice = %q, want bob and carol", users)
	}
	if items := objects(t, a("mutual", "alice"), "items"); len(items) != 1 || items[0]["userID"] != "bob" {
		t.Errorf("mutual alice = %v, want bob", items)
	}
	// An empty list is [], not null.
	_, out, _ := ctl(t, "followers", "nobody", "--json", "--addr", addr)
	if !strings.Contains(out, `"items":[]`) {
		t.Errorf("empty list: %s, want \"items\":[]", out)
	}

	// info
	m = a("info", "alice", "bob", "nobody")
	checkKeys(t, "info", m, "results")
	rs = objects(t, m, "results")
	want := []map[string]any{
		{"userID": "alice", "code": 0.0, "followingCount": 2.0, "followersCount": 1.0, "mutualCount": 1.0},
		{"userID": "bob", "code": 0.0, "followingCount": 1.0, "followersCount": 1.0, "mutualCount": 1.0},
		{"userID": "nobody", "code": 0.0, "followingCount": 0.0, "followersCount": 0.0, "mutualCount": 0.0},
	}
	if len(rs) != len(want) {
		t.Fatalf("info: %v", m)
	}
	for i := range want {
		if !maps.Equal(rs[i], want[i]) {
			t.Errorf("info result %d = %v, want %v", i, rs[i], want[i])
		}
	}

	// check
	m = a("check", "alice", "bob", "carol", "dave")
	checkKeys(t, "check", m, "results")
	rs = objects(t, m, "results")
	for i, w := range []map[string]any{
		{"userID": "bob", "code": 0.0, "followType": 3.0},
		{"userID": "carol", "code": 0.0, "followType": 2.0},
		{"userID": "dave", "code": 0.0, "followType": 0.0},
	} {
		if i >= len(rs) || !maps.Equal(rs[i], w) {
			t.Errorf("check result %d: %v, want %v", i, rs, w)
		}
	}
	if rs := objects(t, a("check", "carol", "alice"), "results"); len(rs) != 1 || rs[0]["followType"] != 1.0 {
		t.Errorf("check carol alice = %v, want followType 1", rs)
	}

	// unfollow
	m = a("unfollow", "alice", "carol", "--sync")
	checkKeys(t, "unfollow", m, "results")
	rs = objects(t, m, "results")
	if len(rs) != 1 || !maps.Equal(rs[0], map[string]any{"userID": "carol", "code": 0.0, "info": ""}) {
		t.Errorf("unfollow = %v", m)
	}
	if rs := objects(t, a("check", "alice", "carol"), "results"); rs[0]["followType"] != 0.0 {
		t.Errorf("after unfollow, check alice carol = %v", rs)
	}
	if items := objects(t, a("followers", "carol"), "items"); len(items) != 0 {
		t.Errorf("after unfollow --sync, followers carol = %v", items)
	}
}

func TestCommandsText(t *testing.T) {
	addr := startServer(t, "")
	out := mustOK(t, "follow", "alice", "bob", "alice", "--sync", "--addr", addr)
	for _, want := range []string{"USER", "CODE", "INFO", "bob", " ok", "30001"} {
		if !strings.Contains(out, want) {
			t.Errorf("follow output lacks %q:\n%s", want, out)
		}
	}
	mustOK(t, "follow", "bob", "alice", "--sync", "--addr", addr)

	out = mustOK(t, "followers", "bob", "--addr", addr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "USER") || !strings.Contains(lines[0], "FOLLOW TIME") {
		t.Fatalf("followers output:\n%s", out)
	}
	fields := strings.Fields(lines[1]) // alice 2024-...Z (1700000000000)
	if len(fields) != 3 || fields[0] != "alice" {
		t.Fatalf("followers row %q", lines[1])
	}
	ts, err := time.Parse("2006-01-02T15:04:05.000Z07:00", fields[1])
	if err != nil || !strings.HasSuffix(fields[1], "Z") {
		t.Fatalf("follow time %q is not RFC 3339 with milliseconds in UTC: %v", fields[1], err)
	}
	if raw := fmt.Sprintf("(%d)", ts.UnixMilli()); fields[2] != raw {
		t.Errorf("raw time %s, want %s", fields[2], raw)
	}
	if strings.Contains(out, "next cursor") {
		t.Errorf("a complete list printed a next cursor:\n%s", out)
	}

	out = mustOK(t, "info", "alice", "--addr", addr)
	if f := strings.Fields(strings.Split(out, "\n")[1]); !slices.Equal(f, []string{"alice", "0", "1", "1", "1"}) {
		t.Errorf("info output:\n%s", out)
	}
	if !strings.Contains(out, "FOLLOWING") || !strings.Contains(out, "FOLLOWERS") || !strings.Contains(out, "MUTUAL") {
		t.Errorf("info header:\n%s", out)
	}

	out = mustOK(t, "check", "alice", "bob", "carol", "--addr", addr)
	for _, want := range []string{"FOLLOW TYPE", "3 mutual", "0 none"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	out = mustOK(t, "check", "carol", "--addr", addr, "alice")
	if !strings.Contains(out, "0 none") {
		t.Errorf("check output:\n%s", out)
	}
}

func TestFlagPositions(t *testing.T) {
	addr := startServer(t, "")
	mustOK(t, "follow", "fan", "s1", "s2", "s3", "--sync", "--addr", addr)
	mustOK(t, "--addr", addr, "--sync", "follow", "s1", "fan") // command flag before the command name too

	variants := [][]string{
		{"following", "fan", "--limit", "1", "--addr", addr},
		{"following", "--limit", "1", "fan", "--addr", addr},
		{"following", "--limit=1", "--addr=" + addr, "fan"},
		{"--addr", addr, "following", "-limit", "1", "fan"},
		{"--addr", addr, "following", "--limit", "1", "--", "fan"},
	}
	first := mustOK(t, variants[0]...)
	if !strings.Contains(first, "next cursor: ") || strings.Count(first, "\n") != 3 {
		t.Fatalf("following --limit 1 printed:\n%s", first)
	}
	for _, v := range variants[1:] {
		if out := mustOK(t, v...); out != first {
			t.Errorf("followctl %q printed\n%s\nwant\n%s", v, out, first)
		}
	}

	// Global flags on either side of the command.
	after := mustOK(t, "info", "fan", "s1", "--json", "--addr", addr)
	before := mustOK(t, "--json", "--addr", addr, "info", "fan", "s1")
	mixed := mustOK(t, "--json", "info", "fan", "--timeout", "3s", "s1", "--addr", addr)
	if after != before || after != mixed {
		t.Errorf("flag order changed the output:\n%s\n%s\n%s", after, before, mixed)
	}

	// The environment supplies --addr; the flag wins over it.
	t.Setenv("FOLLOWCTL_ADDR", addr)
	if out := mustOK(t, "info", "fan", "s1", "--json"); out != after {
		t.Errorf("with FOLLOWCTL_ADDR: %s, want %s", out, after)
	}
	t.Setenv("FOLLOWCTL_ADDR", closedAddr(t))
	if out := mustOK(t, "info", "fan", "s1", "--json", "--addr", addr); out != after {
		t.Errorf("--addr over FOLLOWCTL_ADDR: %s, want %s", out, after)
	}
}

func TestAll(t *testing.T) {
	addr := startServer(t, "")
	for i := range 7 {
		mustOK(t, "follow", fmt.Sprintf("f%d", i), "star", "--sync", "--addr", addr)
	}

	// One page, then the next with its cursor.
	var p1, p2 listOutput
	decodeOne(t, mustOK(t, "followers", "star", "--limit", "2", "--json", "--addr", addr), &p1)
	if len(p1.Items) != 2 || p1.NextCursor == "" {
		t.Fatalf("first page: %+v", p1)
	}
	decodeOne(t, mustOK(t, "followers", "star", "--limit", "2", "--cursor", p1.NextCursor, "--json", "--addr", addr), &p2)
	if len(p2.Items) != 2 || p2.Items[0].UserID == p1.Items[0].UserID || p2.Items[0].UserID == p1.Items[1].UserID {
		t.Fatalf("second page: %+v after %+v", p2, p1)
	}

	// --all pages to the end.
	var all listOutput
	decodeOne(t, mustOK(t, "followers", "star", "--limit", "2", "--all", "--json", "--addr", addr), &all)
	seen := map[string]bool{}
	for _, it := range all.Items {
		if seen[it.UserID] {
			t.Errorf("%s listed twice", it.UserID)
		}
		seen[it.UserID] = true
	}
	if len(all.Items) != 7 || len(seen) != 7 || all.NextCursor != "" {
		t.Errorf("--all: %d items (%d distinct), next cursor %q; want 7, 7, \"\"", len(all.Items), len(seen), all.NextCursor)
	}
	if !slices.Equal(all.Items[:2], p1.Items) || !slices.Equal(all.Items[2:4], p2.Items) {
		t.Errorf("--all order %+v does not continue the pages %+v %+v", all.Items, p1.Items, p2.Items)
	}
	// --all with the default page size, and from a cursor.
	var def, rest listOutput
	decodeOne(t, mustOK(t, "followers", "star", "--all", "--json", "--addr", addr), &def)
	if !slices.Equal(def.Items, all.Items) {
		t.Errorf("--all without --limit: %+v, want %+v", def.Items, all.Items)
	}
	decodeOne(t, mustOK(t, "followers", "star", "--all", "--cursor", p1.NextCursor, "--limit", "3", "--json", "--addr", addr), &rest)
	if !slices.Equal(rest.Items, all.Items[2:]) {
		t.Errorf("--all --cursor: %+v, want %+v", rest.Items, all.Items[2:])
	}
	// Text: every row, no cursor line.
	out := mustOK(t, "followers", "star", "--all", "--limit", "2", "--addr", addr)
	if n := strings.Count(out, "\n"); n != 8 || strings.Contains(out, "next cursor") {
		t.Errorf("--all text (%d lines):\n%s", n, out)
	}
}

func TestRequestErrors(t *testing.T) {
	addr := startServer(t, "")
	targets := make([]string, 21)
	for i := range targets {
		targets[i] = fmt.Sprintf("t%d", i)
	}
	args := append([]string{"follow", "a"}, targets...)

	status, out, errOut := ctl(t, append(args, "--json", "--addr", addr)...)
	var e map[string]map[string]any
	decodeOne(t, out, &e)
	if status != 1 || errOut == "" {
		t.Errorf("21 targets: status %d, stderr %q; want 1 and a message", status, errOut)
	}
	if len(e) != 1 || e["error"] == nil || e["error"]["code"] != 30001.0 || e["error"]["message"] == "" || len(e["error"]) != 2 {
		t.Errorf("21 targets: %s, want {\"error\":{\"code\":30001,\"message\":...}}", out)
	}
	if msg, _ := e["error"]["message"].(string); strings.Contains(msg, "30001") {
		t.Errorf("message %q repeats the code", msg)
	}

	status, out, errOut = ctl(t, append(args, "--addr", addr)...)
	if status != 1 || out != "" || !strings.Contains(errOut, "30001") {
		t.Errorf("21 targets, text: status %d, stdout %q, stderr %q", status, out, errOut)
	}

	// A malformed cursor the server refuses, and an unreachable node.
	for _, c := range []struct {
		args []string
		code float64
	}{
		{[]string{"followers", "a", "--cursor", "garbage", "--addr", addr}, 30001},
		{[]string{"info", "a", "--addr", closedAddr(t)}, 40002},
	} {
		status, out, errOut := ctl(t, append(c.args, "--json")...)
		e = nil
		decodeOne(t, out, &e)
		if status != 1 || errOut == "" || e["error"]["code"] != c.code {
			t.Errorf("%q: status %d, stdout %s, stderr %q; want 1 and code %v", c.args, status, out, errOut, c.code)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	addr := closedAddr(t) // a usage error must not need the server
	for _, args := range [][]string{
		{},
		{"bogus"},
		{"follow", "a"},
		{"followers"},
		{"followers", "a", "b"},
		{"status", "x"},
		{"info", "a", "--bogus"},
		{"info", "--sync", "a"}, // another command's flag
		{"followers", "a", "--limit"},
		{"followers", "a", "--limit", "abc"},
		{"followers", "a", "--limit", "501"},
		{"info", "a", "--timeout", "0s"},
		{"help", "bogus"},
	} {
		args = append(args, "--addr", addr)
		status, out, errOut := ctl(t, args...)
		if status != 2 || out != "" || !strings.Contains(errOut, "followctl: ") || !strings.Contains(errOut, "Usage: followctl") {
			t.Errorf("%q: status %d, stdout %q, stderr %q; want 2, nothing, an error and the usage", args, status, out, errOut)
		}
		status, out, _ = ctl(t, append(args, "--json")...)
		var e errorOutput
		decodeOne(t, out, &e)
		if status != 2 || e.Error.Code != 30001 || e.Error.Message == "" {
			t.Errorf("%q --json: status %d, stdout %q; want 2 and a 30001 error object", args, status, out)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{
		{"help"}, {"-h"}, {"--help"}, {"--json", "help"},
		{"help", "follow"}, {"follow", "--help"}, {"follow", "-h"}, {"--addr", "x", "follow", "a", "-h"},
		{"help", "followers"}, {"followers", "--help"}, {"status", "-h"},
	} {
		out := mustOK(t, args...)
		if !strings.Contains(out, "Example:\n  followctl ") || !strings.Contains(out, "--addr") {
			t.Errorf("%q printed no usage with an example:\n%s", args, out)
		}
	}
	if out := mustOK(t, "help", "follow"); out != mustOK(t, "follow", "--help") ||
		!strings.Contains(out, "ACTOR TARGET...") || !strings.Contains(out, "--sync") {
		t.Errorf("help follow:\n%s", out)
	}
	if out := mustOK(t, "help", "following"); !strings.Contains(out, "--limit N") || !strings.Contains(out, "--all") || !strings.Contains(out, "--cursor") {
		t.Errorf("help following:\n%s", out)
	}
	out := mustOK(t, "help")
	for _, c := range commands {
		if !strings.Contains(out, "  "+c.name+" ") {
			t.Errorf("help does not list %s:\n%s", c.name, out)
		}
	}
}

func TestStatus(t *testing.T) {
	addr := startServer(t, "")
	out := mustOK(t, "status", "--addr", addr)
	for _, want := range []string{"node1", "test", "SHARD", "APPLIED INDEX", "LAG RECORDS", "healthy"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "UNHEALTHY") {
		t.Errorf("a fresh node is unhealthy:\n%s", out)
	}

	m := jsonOK(t, "status", "--addr", addr)
	checkKeys(t, "status", m, "nodeID", "version", "clusterID", "uptimeSec", "addr", "shards", "healthy", "unhealthy")
	if m["nodeID"] != "node1" || m["version"] != "test" || m["addr"] != addr || m["clusterID"] == "" || m["healthy"] != true {
		t.Errorf("status: %v", m)
	}
	if u, ok := m["unhealthy"].([]any); !ok || len(u) != 0 {
		t.Errorf("unhealthy = %v, want []", m["unhealthy"])
	}
	shards := objects(t, m, "shards")
	if len(shards) != 4 {
		t.Fatalf("%d shards, want 4", len(shards))
	}
	for i, sh := range shards {
		checkKeys(t, "shard", sh, "shard", "leader", "leaderID", "leaderAddr", "ready", "appliedIndex", "users",
			"following", "followers", "mutual", "lagRecords", "lagOldestMs", "halted")
		if sh["shard"] != float64(i) || sh["ready"] != true || sh["leader"] != true {
			t.Errorf("shard %d: %v", i, sh)
		}
	}

	// Counts follow writes.
	mustOK(t, "follow", "alice", "bob", "--sync", "--addr", addr)
	var st statusOutput
	decodeOne(t, mustOK(t, "status", "--json", "--addr", addr), &st)
	var following, followers uint64
	for _, sh := range st.Shards {
		following += sh.Following
		followers += sh.Followers
	}
	if following != 1 || followers != 1 {
		t.Errorf("after one follow: %d edges, %d followers; want 1 and 1", following, followers)
	}
}

func TestUnhealthy(t *testing.T) {
	s := client.Status{NodeID: "n1", Shards: []wire.ShardStatus{
		{Shard: 0, Leader: true, Ready: true},
		{Shard: 1, LeaderID: "n2", LeaderAddr: "10.0.0.2:7700"},
		{Shard: 2, Leader: true, Ready: true, Halted: "apply failed"},
		{Shard: 3, Leader: true, Ready: true, LagRecords: 12, LagOldestMs: 3400},
	}}
	want := []string{"shard 1 not ready", "shard 2 halted: apply failed", "shard 3 relay lag 12 records (oldest 3400 ms)"}
	if got := problems(s); !slices.Equal(got, want) {
		t.Errorf("problems = %q, want %q", got, want)
	}
	if got := problems(client.Status{}); len(got) != 1 {
		t.Errorf("no shards: problems = %q", got)
	}
	out := statusOutput{NodeID: "n1", Unhealthy: want, Shards: []shardOutput{{Shard: 1, LeaderID: "n2", LeaderAddr: "10.0.0.2:7700"}}}
	var b bytes.Buffer
	out.text(&b)
	if !strings.Contains(b.String(), "UNHEALTHY: "+strings.Join(want, "; ")+"\n") || !strings.Contains(b.String(), "n2 (10.0.0.2:7700)") {
		t.Errorf("status text:\n%s", b.String())
	}
}

func TestToken(t *testing.T) {
	addr := startServer(t, "s3cret")
	t.Setenv("FOLLOWCTL_TOKEN", "")
	for _, token := range [][]string{nil, {"--token", "wrong"}} {
		status, out, errOut := ctl(t, append([]string{"info", "a", "--json", "--addr", addr}, token...)...)
		var e errorOutput
		decodeOne(t, out, &e)
		if status != 1 || e.Error.Code != 40004 || e.Error.Message == "" || !strings.Contains(errOut, "40004") {
			t.Errorf("token %q: status %d, stdout %s, stderr %q; want 1 and code 40004", token, status, out, errOut)
		}
	}
	m := jsonOK(t, "info", "a", "--token", "s3cret", "--addr", addr)
	if rs := objects(t, m, "results"); len(rs) != 1 || rs[0]["userID"] != "a" {
		t.Errorf("with the token: %v", m)
	}
	t.Setenv("FOLLOWCTL_TOKEN", "s3cret")
	jsonOK(t, "status", "--addr", addr)
}
