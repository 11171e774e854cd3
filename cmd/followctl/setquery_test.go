package main

import (
	"strings"
	"testing"
)

func TestSetQueryCommands(t *testing.T) {
	addr := startServer(t, "")
	a := func(args ...string) map[string]any { t.Helper(); return jsonOK(t, append(args, "--addr", addr)...) }
	// alice follows bob, carol and dave; carol and dave follow erin, and so
	// does bob, whom zed does not follow.
	mustOK(t, "follow", "alice", "bob", "carol", "dave", "--sync", "--addr", addr)
	for _, f := range []string{"carol", "dave", "bob"} {
		mustOK(t, "follow", f, "erin", "--sync", "--addr", addr)
	}
	mustOK(t, "follow", "zed", "carol", "erin", "--sync", "--addr", addr)

	m := a("known-followers", "alice", "erin", "--limit", "2")
	checkKeys(t, "known-followers", m, "items", "nextCursor", "total")
	if items := objects(t, m, "items"); len(items) != 2 || m["total"] != float64(3) || m["nextCursor"] == "" {
		t.Fatalf("known-followers, first page: %v", m)
	}
	m = a("known-followers", "alice", "erin", "--all")
	items := objects(t, m, "items")
	if len(items) != 3 || m["nextCursor"] != "" {
		t.Fatalf("known-followers --all: %v", m)
	}
	got := map[string]bool{}
	for _, it := range items {
		got[it["userID"].(string)] = true
	}
	if !got["bob"] || !got["carol"] || !got["dave"] {
		t.Fatalf("known followers of erin for alice: %v", items)
	}
	m = a("common-following", "alice", "zed", "--all")
	if items := objects(t, m, "items"); len(items) != 1 || items[0]["userID"] != "carol" || m["total"] != float64(1) {
		t.Fatalf("common-following: %v", m)
	}
	m = a("relationships", "alice:bob", "erin:carol", "alice:", "zed:zed")
	rs := objects(t, m, "results")
	if len(rs) != 4 {
		t.Fatalf("relationships: %v", m)
	}
	checkKeys(t, "relationship", rs[0], "from", "to", "code", "follows", "followedBy", "followType")
	if rs[0]["follows"] != true || rs[0]["followedBy"] != false || rs[0]["followType"] != float64(2) {
		t.Errorf("alice:bob: %v", rs[0])
	}
	if rs[1]["follows"] != false || rs[1]["followedBy"] != true {
		t.Errorf("erin:carol: %v", rs[1])
	}
	if rs[2]["code"] != float64(30001) || rs[3]["code"] != float64(0) || rs[3]["followType"] != float64(0) {
		t.Errorf("invalid pair and self pair: %v %v", rs[2], rs[3])
	}

	out := mustOK(t, "known-followers", "alice", "erin", "--addr", addr)
	if !strings.Contains(out, "total: 3") || !strings.Contains(out, "carol") {
		t.Errorf("known-followers text: %q", out)
	}
	out = mustOK(t, "relationships", "alice:bob", "--addr", addr)
	if !strings.Contains(out, "FROM FOLLOWS TO") || !strings.Contains(out, "yes") {
		t.Errorf("relationships text: %q", out)
	}
	if status, _, _ := ctl(t, "relationships", "alice-bob", "--addr", addr); status != exitUsage {
		t.Errorf("a pair without a colon: status %d, want %d", status, exitUsage)
	}
	if status, _, _ := ctl(t, "known-followers", "alice", "--addr", addr); status != exitUsage {
		t.Errorf("known-followers with one user: status %d, want %d", status, exitUsage)
	}
}
