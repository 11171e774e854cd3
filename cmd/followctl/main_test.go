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
	"sync/atomic"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/cluster/clustertest"
	"github.com/followgraph/followgraph/router"
	"github.com/followgraph/followgraph/wire"
)

// startServer starts a single in-process node with 4 shards and serves the
// wire protocol on a free local port; token, when set, is required. It
// returns the address.
func startServer(t *testing.T, token string) string {
	t.Helper()
	return startServerWith(t, token, nil)
}

// startServerWith is startServer with the handler wrap returns in front
// of the node's router (nil: the router itself).
func startServerWith(t *testing.T, token string, wrap func(*router.Router) wire.Handler) string {
	t.Helper()
	return clustertest.Start(t, clustertest.Options{Token: token, Wrap: wrap}).Addr
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
		{"status", "--wait", "1s"}, // drain's flag
		{"drain"},
		{"drain", "n1", "n2"},
		{"drain", "n1", "--wait", "-1s"},
		{"drain", "n1", "--wait", "1s", "--off"},
		{"drain", "n1", "--wait", "soon"},
		{"verify", "x"},
		{"verify", "--parallel", "0"},
		{"verify", "--sample", "0"},
		{"verify", "--sample", "1.5"},
		{"verify", "--sample", "NaN"},
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
		var e map[string]map[string]any
		decodeOne(t, out, &e)
		if msg, _ := e["usage_error"]["message"].(string); status != 2 || len(e) != 1 || len(e["usage_error"]) != 1 || msg == "" {
			t.Errorf("%q --json: status %d, stdout %q; want 2 and {\"usage_error\":{\"message\":...}}", args, status, out)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{
		{"help"}, {"-h"}, {"--help"}, {"--json", "help"},
		{"help", "follow"}, {"follow", "--help"}, {"follow", "-h"}, {"--addr", "x", "follow", "a", "-h"},
		{"help", "followers"}, {"followers", "--help"}, {"status", "-h"},
		{"help", "drain"}, {"drain", "--help"}, {"help", "verify"}, {"verify", "-h"},
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
	if out := mustOK(t, "help", "drain"); !strings.Contains(out, "--wait DURATION") || !strings.Contains(out, "--off") {
		t.Errorf("help drain:\n%s", out)
	}
	if out := mustOK(t, "help", "verify"); !strings.Contains(out, "--parallel N") || !strings.Contains(out, "--sample F") ||
		!strings.Contains(out, "(default 8)") {
		t.Errorf("help verify:\n%s", out)
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
	checkKeys(t, "status", m, "nodeID", "version", "clusterID", "uptimeSec", "addr", "nodes", "shards", "healthy", "unhealthy")
	if m["nodeID"] != "node1" || m["version"] != "test" || m["addr"] != addr || m["clusterID"] == "" || m["healthy"] != true {
		t.Errorf("status: %v", m)
	}
	if u, ok := m["unhealthy"].([]any); !ok || len(u) != 0 {
		t.Errorf("unhealthy = %v, want []", m["unhealthy"])
	}
	if nodes := objects(t, m, "nodes"); len(nodes) != 0 {
		t.Errorf("a single node lists members: %v", nodes)
	}
	shards := objects(t, m, "shards")
	if len(shards) != 4 {
		t.Fatalf("%d shards, want 4", len(shards))
	}
	for i, sh := range shards {
		checkKeys(t, "shard", sh, "shard", "leader", "leaderID", "leaderAddr", "ready", "appliedIndex", "users",
			"following", "followers", "mutual", "lagRecords", "lagOldestMs", "halted", "recovered", "voters", "nonvoters", "webhookLag", "removals")
		if sh["shard"] != float64(i) || sh["ready"] != true || sh["leader"] != true {
			t.Errorf("shard %d: %v", i, sh)
		}
		if v, _ := sh["voters"].([]any); len(v) != 1 || v[0] != "node1" || fmt.Sprint(sh["nonvoters"]) != "[]" {
			t.Errorf("shard %d: voters %v, nonvoters %v; want [node1] and []", i, sh["voters"], sh["nonvoters"])
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
		{Shard: 3, Leader: true, Ready: true, LagRecords: 12, LagOldestMs: 6400},
		{Shard: 4, Leader: true, Ready: true, LagRecords: 2, LagOldestMs: 30, HookLag: 3}, // normal under load
		{Shard: 5, Leader: true, Ready: true, HookLag: 4000},
	}}
	want := []string{"shard 1 not ready", "shard 2 halted: apply failed", "shard 3 relay lag 12 records (oldest 6400 ms)",
		"shard 5 webhook backlog 4000 events (an endpoint failing or slow; see followgraph_webhook_* metrics)"}
	if got := problems(s); !slices.Equal(got, want) {
		t.Errorf("problems = %q, want %q", got, want)
	}
	if got := problems(client.Status{}); len(got) != 1 {
		t.Errorf("no shards: problems = %q", got)
	}
	out := statusOutput{NodeID: "n1", Unhealthy: want, Shards: []shardOutput{{Shard: 1, LeaderID: "n2", LeaderAddr: "10.0.0.2:7700"}}}
	var b bytes.Buffer
	out.text(&b)
	if !strings.Contains(b.String(), "UNHEALTHY: 4 problem(s)\n  - "+strings.Join(want, "\n  - ")+"\n") || !strings.Contains(b.String(), "n2 (10.0.0.2:7700)") {
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

// newClient returns a client of the node (or cluster) at addr.
func newClient(t *testing.T, addr string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Enough retries to ride out the elections of a cluster under load.
	c, err := client.New(ctx, client.Config{Addrs: []string{addr}, RequestTimeout: 30 * time.Second, Retries: 40})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// follow makes actor follow targets, 20 at a time, with the reverse side
// applied before it returns.
func follow(t *testing.T, c *client.Client, actor string, targets ...string) {
	t.Helper()
	for len(targets) > 0 {
		batch := targets[:min(20, len(targets))]
		targets = targets[len(batch):]
		rs, err := c.Follow(context.Background(), actor, batch, client.Sync())
		if err != nil {
			t.Fatalf("follow %s %q: %v", actor, batch, err)
		}
		for _, r := range rs {
			if r.Code != 0 {
				t.Fatalf("follow %s %s: %+v", actor, r.UserID, r)
			}
		}
	}
}

// buildGraph writes a small graph whose lists need several pages (hub
// follows 520 users), with mutual relations, and returns its users and
// edges.
func buildGraph(t *testing.T, c *client.Client) (users, edges int) {
	t.Helper()
	var targets []string
	for i := range 520 {
		targets = append(targets, fmt.Sprintf("t%03d", i))
	}
	follow(t, c, "hub", targets...)
	for _, tg := range targets[:30] {
		follow(t, c, tg, "hub")
	}
	for i := range 20 {
		follow(t, c, fmt.Sprintf("u%d", i), fmt.Sprintf("u%d", (i+1)%20), fmt.Sprintf("u%d", (i+2)%20), fmt.Sprintf("u%d", (i+3)%20))
	}
	follow(t, c, "u0", "hub")
	return 1 + 520 + 20, 520 + 30 + 60 + 1
}

// ctlVerify runs verify --json and decodes its report; progress may go to
// stderr.
func ctlVerify(t *testing.T, args ...string) (int, verifyOutput) {
	t.Helper()
	status, out, errOut := ctl(t, append([]string{"verify", "--json"}, args...)...)
	var v verifyOutput
	decodeOne(t, out, &v)
	if status != 0 && v.Violations == 0 {
		t.Fatalf("verify %q: status %d, stdout %s, stderr %s", args, status, out, errOut)
	}
	return status, v
}

func TestVerify(t *testing.T) {
	addr := startServer(t, "")
	c := newClient(t, addr)

	// An empty graph.
	if status, v := ctlVerify(t, "--addr", addr); status != 0 || v.Users != 0 || v.Edges != 0 || v.Shards != 4 || v.Samples == nil {
		t.Errorf("empty graph: status %d, %+v", status, v)
	}

	users, edges := buildGraph(t, c)
	status, v := ctlVerify(t, "--addr", addr)
	if status != 0 || v.Violations != 0 || len(v.Samples) != 0 {
		t.Fatalf("clean graph: status %d, %+v", status, v)
	}
	if v.Users != uint64(users) || v.Edges != uint64(edges) || v.Checks != 2*uint64(edges) || v.Sample != 1 {
		t.Errorf("clean graph: %+v, want %d users, %d edges, %d checks", v, users, edges, 2*edges)
	}
	var m map[string]any
	_, out, _ := ctl(t, "verify", "--json", "--addr", addr, "--parallel", "3")
	decodeOne(t, out, &m)
	checkKeys(t, "verify", m, "shards", "sample", "users", "edges", "checks", "violations", "samples")
	if m["violations"] != 0.0 || fmt.Sprint(m["samples"]) != "[]" {
		t.Errorf("verify --json: %s", out)
	}

	// A sample checks fewer users, and finds nothing either.
	status, v = ctlVerify(t, "--addr", addr, "--sample", "0.5", "--parallel", "1")
	if status != 0 || v.Violations != 0 || v.Users == 0 || v.Users >= uint64(users) || v.Sample != 0.5 {
		t.Errorf("--sample 0.5: status %d, %+v (of %d users)", status, v, users)
	}

	// Text.
	status, out, _ = ctl(t, "verify", "--addr", addr)
	if status != 0 || !strings.Contains(out, fmt.Sprintf("edges:       %d", edges)) || !strings.Contains(out, "violations:  0") ||
		!strings.Contains(out, "\nok: ") {
		t.Errorf("verify text: status %d:\n%s", status, out)
	}

	// An unfollow keeps the invariant.
	if _, err := c.Unfollow(context.Background(), "hub", []string{"t000", "t100"}, client.Sync()); err != nil {
		t.Fatal(err)
	}
	if status, v := ctlVerify(t, "--addr", addr); status != 0 || v.Violations != 0 || v.Edges != uint64(edges-2) {
		t.Errorf("after unfollow: status %d, %+v", status, v)
	}
}

// Ways the lying backend lies about user "victim".
const (
	truthful = iota
	dropFollower
	extraCount
	laterTime
	lostReverse
)

// lyingBackend serves a node's data, but lies about victim as mode says.
type lyingBackend struct {
	*router.Router
	mode atomic.Int32
}

func (b *lyingBackend) List(ctx context.Context, op wire.Op, req wire.ListRequest, fn func(id []byte, t int64)) (string, error) {
	if op != wire.OpFollowers || req.User != "victim" {
		return b.Router.List(ctx, op, req, fn)
	}
	mode, first := b.mode.Load(), req.Cursor == ""
	return b.Router.List(ctx, op, req, func(id []byte, t int64) {
		switch {
		case mode == dropFollower && first:
			first = false
			return
		case mode == laterTime && string(id) == "lone":
			t++
		}
		fn(id, t)
	})
}

func (b *lyingBackend) Info(ctx context.Context, req wire.UsersRequest) ([]wire.Info, error) {
	is, err := b.Router.Info(ctx, req)
	for i := range is {
		if is[i].UserID == "victim" && b.mode.Load() == extraCount {
			is[i].Followers++
		}
	}
	return is, err
}

func (b *lyingBackend) Check(ctx context.Context, req wire.CheckRequest) ([]wire.Check, error) {
	cs, err := b.Router.Check(ctx, req)
	for i := range cs {
		if b.mode.Load() == lostReverse && req.Actor == "f0" && cs[i].UserID == "victim" {
			cs[i].FollowType &^= 1 // victim does not follow f0
		}
	}
	return cs, err
}

func TestVerifyFindsViolations(t *testing.T) {
	lb := &lyingBackend{}
	addr := startServerWith(t, "", func(r *router.Router) wire.Handler { lb.Router = r; return lb })
	c := newClient(t, addr)
	for _, f := range []string{"f0", "f1", "f2", "lone"} {
		follow(t, c, f, "victim")
		// Distinct followTimes (milliseconds): the laterTime lie adds 1 ms
		// to lone's, which must not also reorder the list.
		time.Sleep(3 * time.Millisecond)
	}
	follow(t, c, "victim", "f0", "f1")
	if status, v := ctlVerify(t, "--addr", addr); status != 0 || v.Violations != 0 {
		t.Fatalf("truthful: status %d, %+v", status, v)
	}

	for _, c := range []struct {
		mode int32
		want string // in one of the samples
	}{
		{dropFollower, "info(victim) says followers 4, the list has 3"},
		{extraCount, "info(victim) says followers 5, the list has 4"},
		{laterTime, "a different followTime"},
		{lostReverse, "following(victim) lists f0 (followTime "},
	} {
		lb.mode.Store(c.mode)
		status, v := ctlVerify(t, "--addr", addr)
		found := false
		for _, s := range v.Samples {
			found = found || strings.Contains(s, c.want)
		}
		if status != 1 || v.Violations == 0 || uint64(len(v.Samples)) != v.Violations || !found {
			t.Errorf("lie %d: status %d, %+v; want 1 and a violation with %q", c.mode, status, v, c.want)
		}
		if (c.mode == extraCount || c.mode == laterTime || c.mode == lostReverse) && v.Violations != 1 {
			t.Errorf("lie %d: %d violations, want 1: %q", c.mode, v.Violations, v.Samples)
		}
	}
	// In text, the violations are listed and stderr says why the status is 1.
	lb.mode.Store(extraCount)
	status, out, errOut := ctl(t, "verify", "--addr", addr)
	if status != 1 || !strings.Contains(out, "VIOLATIONS:\n  info(victim) says followers 5") || !strings.Contains(errOut, "1 violations") {
		t.Errorf("text: status %d, stdout:\n%s\nstderr: %s", status, out, errOut)
	}
}

func TestDrainSingleNode(t *testing.T) {
	addr := startServer(t, "")
	for _, args := range [][]string{{"drain", "node1"}, {"drain", "node1", "--wait", "5s"}} {
		status, out, errOut := ctl(t, append(args, "--json", "--addr", addr)...)
		var e errorOutput
		decodeOne(t, out, &e)
		if status != 1 || e.Error.Code != 30001 || !strings.Contains(e.Error.Message, "a single node cannot be drained") || errOut == "" {
			t.Errorf("%q: status %d, stdout %s, stderr %q; want 1 and 30001", args, status, out, errOut)
		}
	}
}

func TestClusterView(t *testing.T) {
	st := func(node string, shards ...wire.ShardStatus) *client.Status {
		return &client.Status{NodeID: node, Addr: node + ":7700", Server: "v1", Shards: shards}
	}
	voters := []string{"n1", "n2", "n3"}
	self := st("n1",
		wire.ShardStatus{Shard: 0, Leader: true, Ready: true, Voters: voters, Users: 7},
		wire.ShardStatus{Shard: 1, LeaderID: "n2", Voters: voters},                                             // a follower: fine
		wire.ShardStatus{Shard: 2, Leader: true, Ready: true, Voters: voters, LagRecords: 3, LagOldestMs: 900}, // young lag: fine
		wire.ShardStatus{Shard: 3, Leader: true, Ready: true, Voters: voters[:2], Recovered: "unsafe recovery from n1"},
		wire.ShardStatus{Shard: 6, Voters: voters},                     // n1 and n2 up: an election is due
		wire.ShardStatus{Shard: 7, Voters: []string{"n1", "n3", "n5"}}, // only n1 up
	)
	members := []memberStatus{
		{MemberStatus: wire.MemberStatus{NodeID: "n1", Alive: true, Leads: 3, Hosts: 4}, status: self},
		{MemberStatus: wire.MemberStatus{NodeID: "n2", Alive: true, Leads: 1, Hosts: 4}, status: st("n2",
			wire.ShardStatus{Shard: 0, LeaderID: "n1", Voters: voters, Halted: "apply failed"},
			wire.ShardStatus{Shard: 1, Leader: true, Ready: true, Voters: voters, Nonvoters: []string{"n4"}, LagRecords: 9, LagOldestMs: 7000},
		)},
		{MemberStatus: wire.MemberStatus{NodeID: "n3", Alive: false}},
		{MemberStatus: wire.MemberStatus{NodeID: "n4", Alive: true, Draining: true}, status: st("n4",
			wire.ShardStatus{Shard: 2, Leader: true, Ready: false, Voters: voters},
		)},
		{MemberStatus: wire.MemberStatus{NodeID: "n5", Alive: true}, err: fmt.Errorf("connection refused")},
	}
	nodesOut, shards, bad := clusterView(*self, members, 8)
	want := []string{
		"node n3 dead", "node n4 draining", "node n5 did not answer: connection refused",
		"shard 0 halted on n2: apply failed",
		"shard 1 relay lag 9 records (oldest 7000 ms)",
		"shard 2 reported led by n1 and n4 (an election in progress, or a stale leader)",
		"shard 3 has 2 voters, want 3: no other live, active node to hold a replica",
		"shard 4 has no leader (no replica answered)",
		"shard 5 has no leader (no replica answered)",
		"shard 6 has no leader: election pending, 2 of 3 voters up",
		"shard 7 has no leader: quorum lost, 1 of 3 voters up (n3 dead, n5 silent); bring them back, or if their data is gone: followctl recover 7 --from n1 --accept-data-loss",
	}
	if !slices.Equal(bad, want) {
		t.Errorf("problems:\n%q\nwant\n%q", bad, want)
	}
	if len(nodesOut) != 5 || nodesOut[2].State != "dead" || nodesOut[3].State != "draining" || nodesOut[0].Version != "v1" || nodesOut[4].Error == "" {
		t.Errorf("nodes: %+v", nodesOut)
	}
	if len(shards) != 8 || shards[3].Recovered != "unsafe recovery from n1" || shards[0].LeaderID != "n1" || !shards[0].Leader || shards[0].Users != 7 ||
		shards[1].LeaderID != "n2" || shards[1].Leader || shards[1].LeaderAddr != "n2:7700" || !slices.Equal(shards[1].Nonvoters, []string{"n4"}) ||
		shards[4].LeaderID != "" || shards[4].Voters == nil {
		t.Errorf("shards: %+v", shards)
	}
	out := statusOutput{NodeID: "n1", Nodes: nodesOut, Shards: shards, Unhealthy: bad}
	var b bytes.Buffer
	out.text(&b)
	for _, s := range []string{"NODE", "RAFT ADDR", "draining", "VOTERS", "n1,n2,n3", "UNHEALTHY: 11 problem(s)\n  - node n3 dead\n  - node n4 draining\n", "RECOVERED: shard 3: unsafe recovery from n1\n"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("text lacks %q:\n%s", s, b.String())
		}
	}
}

// startCluster starts n cluster-mode nodes in this process, and returns
// once they are open; elections go on in the background.
func startCluster(t *testing.T, n, shards int) []*clustertest.Member {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	return clustertest.NewCluster(t, n, shards, func(cfg *cluster.Config) {
		cfg.Raft.HeartbeatTimeout, cfg.Raft.ElectionTimeout, cfg.Raft.LeaderLeaseTimeout = 300*time.Millisecond, 300*time.Millisecond, 150*time.Millisecond
	}).Nodes
}

// waitStatus polls "status --json" at addr until cond holds, and returns
// that status.
func waitStatus(t *testing.T, addr, what string, d time.Duration, cond func(statusOutput) bool) statusOutput {
	t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for {
		status, out, errOut := ctl(t, "status", "--json", "--addr", addr)
		if status == 0 {
			var st statusOutput
			decodeOne(t, out, &st)
			if cond(st) {
				return st
			}
		}
		last = fmt.Sprintf("status %d, stdout %s, stderr %s", status, out, errOut)
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last status: %s", d, what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// settled says every shard has a leader and as many voters as it should,
// and gossip agrees on the leaderships.
func settled(shards int) func(statusOutput) bool {
	return func(st statusOutput) bool {
		leads := 0
		for _, n := range st.Nodes {
			leads += n.Leads
		}
		return st.Healthy && len(st.Shards) == shards && leads == shards
	}
}

// clusterVerify runs verify --json against a cluster, again while it fails
// because a leadership moved (the cluster is quiet, but leaderships still
// settle on their preferred nodes).
func clusterVerify(t *testing.T, addr string) verifyOutput {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		status, out, errOut := ctl(t, "verify", "--json", "--addr", addr, "--timeout", "20s")
		var v verifyOutput
		decodeOne(t, out, &v)
		if status == 0 || v.Violations > 0 {
			return v
		}
		var e errorOutput
		decodeOne(t, out, &e)
		transient := e.Error.Code == 40001 || e.Error.Code == 40002 || e.Error.Code == 30007 || strings.Contains(e.Error.Message, "changed leader")
		if !transient || time.Now().After(deadline) {
			t.Fatalf("verify: status %d, stdout %s, stderr %s", status, out, errOut)
		}
		t.Logf("verify failed, again: %s", e.Error.Message)
		time.Sleep(200 * time.Millisecond)
	}
}

func hasProblem(st statusOutput, p string) bool {
	return slices.ContainsFunc(st.Unhealthy, func(s string) bool { return strings.Contains(s, p) })
}

// startHealthyCluster is startCluster once every shard has a leader and
// the cluster reports healthy, as the first node sees it; it returns that
// status.
func startHealthyCluster(t *testing.T, n, shards int) ([]*clustertest.Member, statusOutput) {
	t.Helper()
	nodes := startCluster(t, n, shards)
	addr := nodes[0].Addr
	waitStatus(t, addr, "a leader for every shard", 60*time.Second, func(st statusOutput) bool { return !hasProblem(st, "no leader") })
	return nodes, waitStatus(t, addr, "a healthy cluster", 60*time.Second, settled(shards))
}

func TestClusterStatus(t *testing.T) {
	const shards = 4
	nodes, st := startHealthyCluster(t, 3, shards)
	addr := nodes[0].Addr

	if st.NodeID != "n1" || st.Addr != addr || len(st.Nodes) != 3 {
		t.Fatalf("status: %+v", st)
	}
	for i, n := range st.Nodes {
		if n.NodeID != nodes[i].ID || n.ClientAddr != nodes[i].Addr || n.RaftAddr == "" || n.State != "alive" || n.Hosts != shards ||
			n.Version != "test" || n.Error != "" {
			t.Errorf("node %d: %+v", i, n)
		}
	}
	addrOf := map[string]string{}
	for _, n := range nodes {
		addrOf[n.ID] = n.Addr
	}
	for i, sh := range st.Shards {
		if sh.Shard != i || addrOf[sh.LeaderID] == "" || sh.LeaderAddr != addrOf[sh.LeaderID] || sh.Leader != (sh.LeaderID == "n1") ||
			!sh.Ready || !slices.Equal(sh.Voters, []string{"n1", "n2", "n3"}) || len(sh.Nonvoters) != 0 {
			t.Errorf("shard %d: %+v", i, sh)
		}
	}
	m := jsonOK(t, "status", "--addr", nodes[1].Addr)
	checkKeys(t, "cluster status", m, "nodeID", "version", "clusterID", "uptimeSec", "addr", "nodes", "shards", "healthy", "unhealthy")
	for _, n := range objects(t, m, "nodes") {
		checkKeys(t, "node", n, "nodeID", "clientAddr", "raftAddr", "state", "leads", "hosts", "version", "error")
	}
	if m["nodeID"] != "n2" || len(objects(t, m, "shards")) != shards {
		t.Errorf("status of n2: %v", m)
	}
	out := mustOK(t, "status", "--addr", addr)
	for _, want := range []string{"NODE", "CLIENT ADDR", "RAFT ADDR", "STATE", "LEADS", "HOSTS", "VOTERS", "NONVOTERS", "n1,n2,n3", nodes[2].Addr} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}

	// verify spans the cluster: every shard is scanned on its leader.
	c := newClient(t, addr)
	users, edges := buildGraph(t, c)
	v := clusterVerify(t, nodes[2].Addr)
	if v.Violations != 0 || v.Users != uint64(users) || v.Edges != uint64(edges) || v.Shards != shards {
		t.Errorf("verify: %+v; want %d users and %d edges", v, users, edges)
	}
	st = waitStatus(t, addr, "the edges counted", 30*time.Second, func(st statusOutput) bool {
		var following, followers uint64
		for _, sh := range st.Shards {
			following += sh.Following
			followers += sh.Followers
		}
		return following == uint64(edges) && followers == uint64(edges)
	})

	// A dead node is flagged; the exit status stays 0.
	nodes[2].Stop()
	st = waitStatus(t, addr, "n3 seen dead", 60*time.Second, func(st statusOutput) bool { return hasProblem(st, "node n3 dead") })
	if st.Healthy || st.Nodes[2].State != "dead" || st.Nodes[2].Error != "" {
		t.Errorf("with n3 dead: %+v", st)
	}
	status, out, _ := ctl(t, "status", "--addr", addr)
	if status != 0 || !strings.Contains(out, "UNHEALTHY: ") || !strings.Contains(out, "node n3 dead") {
		t.Errorf("with n3 dead, text: status %d\n%s", status, out)
	}
}

func TestClusterDrain(t *testing.T) {
	const shards = 4
	nodes, _ := startHealthyCluster(t, 4, shards)
	addr := nodes[0].Addr
	c := newClient(t, addr)
	var fans []string
	for i := range 20 {
		fans = append(fans, fmt.Sprintf("fan%d", i))
		follow(t, c, fans[i], "hub")
	}

	status, out, errOut := ctl(t, "drain", "n2", "--wait", "60s", "--json", "--addr", addr)
	var m map[string]any
	decodeOne(t, out, &m)
	if status != 0 {
		t.Fatalf("drain --wait: status %d, stdout %s, stderr %s", status, out, errOut)
	}
	checkKeys(t, "drain --wait", m, "node", "draining", "drained", "hosts", "leads")
	if m["node"] != "n2" || m["draining"] != true || m["drained"] != true || m["hosts"] != 0.0 || m["leads"] != 0.0 {
		t.Errorf("drain --wait: %s", out)
	}
	if !strings.Contains(errOut, "drain: n2 hosts ") {
		t.Errorf("drain --wait printed no progress: %q", errOut)
	}

	// The status shows it draining, with nothing; every shard still has 3
	// voters, on the other nodes.
	st := waitStatus(t, addr, "every shard off n2", 30*time.Second, func(st statusOutput) bool {
		for _, sh := range st.Shards {
			if sh.LeaderID == "" || len(sh.Voters) != 3 || slices.Contains(sh.Voters, "n2") || slices.Contains(sh.Nonvoters, "n2") {
				return false
			}
		}
		return len(st.Shards) == shards
	})
	if n := st.Nodes[1]; n.NodeID != "n2" || n.State != "draining" || n.Hosts != 0 || n.Leads != 0 || !hasProblem(st, "node n2 draining") {
		t.Errorf("after the drain: n2 %+v, problems %q", n, st.Unhealthy)
	}
	if v := clusterVerify(t, nodes[3].Addr); v.Violations != 0 || v.Edges != 20 {
		t.Errorf("verify after the drain: %+v", v)
	}

	// Without --wait, and --off.
	if out := mustOK(t, "drain", "n2", "--addr", addr); out != "draining n2\n" {
		t.Errorf("drain: %q", out)
	}
	m = jsonOK(t, "drain", "n2", "--off", "--addr", nodes[2].Addr)
	if len(m) != 2 || m["node"] != "n2" || m["draining"] != false {
		t.Errorf("drain --off: %v", m)
	}
	waitStatus(t, addr, "n2 active again", 30*time.Second, func(st statusOutput) bool {
		return len(st.Nodes) == 4 && st.Nodes[1].State == "alive"
	})
	// Let the replicas moving back to n2 settle before the cleanup stops
	// the nodes.
	waitStatus(t, addr, "replicas back on n2", 60*time.Second, func(st statusOutput) bool {
		for _, sh := range st.Shards {
			if len(sh.Nonvoters) > 0 {
				return false
			}
		}
		return settled(shards)(st) && st.Nodes[1].Hosts > 0
	})
	status, out, _ = ctl(t, "drain", "n9", "--json", "--addr", addr)
	var e errorOutput
	decodeOne(t, out, &e)
	if status != 1 || e.Error.Code != 30001 {
		t.Errorf("drain of an unknown node: status %d, %s", status, out)
	}
}

func TestWatch(t *testing.T) {
	addr := startServer(t, "")
	mustOK(t, "--addr", addr, "follow", "wa", "wb", "--sync")
	status, out, errOut := ctl(t, "--addr", addr, "watch", "--from", "oldest", "--count", "2", "--json")
	if status != 0 || !strings.Contains(errOut, "resume with --from ") {
		t.Fatalf("watch: status %d, stderr %q", status, errOut)
	}
	var kinds []string
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("watch --json line: %v\n%s", err, out)
		}
		checkKeys(t, "event", m, "shard", "offset", "kind", "user", "other", "time", "followTime")
		kinds = append(kinds, fmt.Sprint(m["kind"], " ", m["user"], " ", m["other"]))
	}
	slices.Sort(kinds)
	if want := []string{"follower_added wb wa", "following_added wa wb"}; !slices.Equal(kinds, want) {
		t.Fatalf("watch events %q, want %q", kinds, want)
	}
	// Resume from the positions it printed: nothing new yet, then the
	// next change only.
	from := strings.TrimSpace(errOut[strings.Index(errOut, "--from ")+len("--from "):])
	mustOK(t, "--addr", addr, "unfollow", "wa", "wb", "--sync")
	status, out, _ = ctl(t, "--addr", addr, "watch", "--from", from, "--kind", "following_removed", "--count", "1")
	if status != 0 || !strings.Contains(out, "following_removed") || strings.Contains(out, "following_added") {
		t.Fatalf("resumed watch: status %d\n%s", status, out)
	}
	for _, args := range [][]string{{"--from", "yesterday"}, {"--kind", "followed"}, {"--count", "-1"}, {"--from", "0:x"}} {
		if status, _, errOut := ctl(t, append([]string{"--addr", addr, "watch"}, args...)...); status != exitUsage {
			t.Errorf("watch %q: status %d, want 2 (%s)", args, status, errOut)
		}
	}
}
