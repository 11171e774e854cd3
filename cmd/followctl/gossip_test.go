package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/cluster/clustertest"
	"github.com/followgraph/followgraph/internal/gossipkey"
	"github.com/followgraph/followgraph/wire"
)

// A bad gossip-key command line is a usage error (status 2, the usage),
// checked before any server is asked, and never echoes the key.
func TestGossipKeyUsageErrors(t *testing.T) {
	addr := closedAddr(t)
	key := gossipkey.Encode(gossipkey.New())
	short := gossipkey.Encode(make([]byte, 10))
	file := filepath.Join(t.TempDir(), "k")
	os.WriteFile(file, []byte(key+"\n"), 0o600)
	big := filepath.Join(t.TempDir(), "big")
	os.WriteFile(big, bytes.Repeat([]byte("A"), maxKeyFile+1), 0o600)
	for _, args := range [][]string{
		{"gossip-key"},
		{"gossip-key", "rotate", key},
		{"gossip-key", "list", key},
		{"gossip-key", "list", "--key-file", file},
		{"gossip-key", "install"},
		{"gossip-key", "use", short},
		{"gossip-key", "remove", "not*base64"},
		{"gossip-key", "install", key, "--key-file", file},
		{"gossip-key", "install", "--key-file", filepath.Join(t.TempDir(), "none")},
		{"gossip-key", "install", "--key-file", big},
		{"gossip-key", "install", key, "extra"},
	} {
		args = append(args, "--addr", addr)
		status, out, errOut := ctl(t, args...)
		if status != 2 || out != "" || !strings.Contains(errOut, "Usage: followctl gossip-key") || strings.Contains(errOut, key) || strings.Contains(errOut, short) {
			t.Errorf("%q: status %d, stdout %q, stderr %q", args, status, out, errOut)
		}
	}
	// --key-file - reads stdin.
	o := &options{gossip: gossipKeyOptions{keyFile: "-", stdin: strings.NewReader(key + "\n")}}
	if err := gossipKeyArgs(o, []string{"use"}); err != nil || gossipkey.Encode(o.gossip.key) != key || o.gossip.action != wire.GossipKeysUse {
		t.Fatalf("--key-file -: %v", err)
	}
	out := mustOK(t, "help", "gossip-key")
	for _, want := range []string{"--key-file FILE", "install KEY", "fingerprint", "Example:\n  followctl gossip-key"} {
		if !strings.Contains(out, want) {
			t.Errorf("help gossip-key lacks %q:\n%s", want, out)
		}
	}
}

// A single node does not gossip: the request fails with 30001.
func TestGossipKeySingleNode(t *testing.T) {
	addr := startServer(t, "")
	status, out, _ := ctl(t, "gossip-key", "list", "--json", "--addr", addr)
	var res gossipKeyOutput
	decodeOne(t, out, &res)
	if status != 1 || res.OK || len(res.Nodes) != 1 || res.Nodes[0].Code != 30001 || !strings.Contains(res.Nodes[0].Error, "does not gossip") {
		t.Fatalf("status %d: %s", status, out)
	}
}

// gossipKeyRun runs gossip-key with --json and decodes its result.
func gossipKeyRun(t *testing.T, addr string, args ...string) (int, gossipKeyOutput) {
	t.Helper()
	status, out, _ := ctl(t, append([]string{"gossip-key", "--json", "--addr", addr}, args...)...)
	var res gossipKeyOutput
	decodeOne(t, out, &res)
	return status, res
}

// primaries returns each node's primary key fingerprint and key count.
func primaries(res gossipKeyOutput) (fps []string, counts []int) {
	for _, n := range res.Nodes {
		fp := ""
		for _, k := range n.Keys {
			if k.Primary {
				fp = k.Fingerprint
			}
		}
		fps, counts = append(fps, fp), append(counts, len(n.Keys))
	}
	return fps, counts
}

// A rotation through followctl on an encrypted 3-node cluster: the
// refused steps change nothing, the right order leaves every node on the
// new key alone, and the cluster stays healthy throughout.
func TestClusterGossipKeyRotation(t *testing.T) {
	const shards = 2
	old, next := gossipkey.New(), gossipkey.New()
	oldFP, nextFP := gossipkey.Fingerprint(old), gossipkey.Fingerprint(next)
	nodes := clustertest.NewCluster(t, 3, shards, func(cfg *cluster.Config) {
		cfg.Raft.HeartbeatTimeout, cfg.Raft.ElectionTimeout, cfg.Raft.LeaderLeaseTimeout = 300*time.Millisecond, 300*time.Millisecond, 150*time.Millisecond
		cfg.Membership.GossipKey = old
	}).Nodes
	addr := nodes[0].Addr
	waitStatus(t, addr, "a healthy cluster", 60*time.Second, settled(shards))
	healthy := func(step string) {
		t.Helper()
		st := waitStatus(t, addr, "status after "+step, 10*time.Second, func(statusOutput) bool { return true })
		for _, n := range st.Nodes {
			if n.State != "alive" {
				t.Fatalf("after %s: %s is %s", step, n.NodeID, n.State)
			}
		}
	}

	status, res := gossipKeyRun(t, addr, "list")
	fps, counts := primaries(res)
	if status != 0 || !res.OK || res.Action != "list" || len(res.Nodes) != 3 || fps[0] != oldFP || fps[2] != oldFP || counts[1] != 1 {
		t.Fatalf("list: status %d, %+v", status, res)
	}
	nextB64 := gossipkey.Encode(next)
	// use before install: refused on the check, nothing changed.
	status, res = gossipKeyRun(t, addr, "use", nextB64)
	if status != 1 || res.OK || !strings.Contains(res.Refused, "n1, n2, n3 do not hold the key") {
		t.Fatalf("use before install: status %d, %+v", status, res)
	}
	status, res = gossipKeyRun(t, nodes[1].Addr, "install", nextB64)
	if _, counts = primaries(res); status != 0 || !res.OK || res.Key != nextFP || counts[0] != 2 || counts[2] != 2 {
		t.Fatalf("install: status %d, %+v", status, res)
	}
	healthy("install")
	// remove of the key every node still sends with: refused.
	status, res = gossipKeyRun(t, addr, "remove", gossipkey.Encode(old))
	if status != 1 || !strings.Contains(res.Refused, "still send with the key") {
		t.Fatalf("remove of the primary: status %d, %+v", status, res)
	}
	if status, res = gossipKeyRun(t, addr, "use", nextB64); status != 0 || !res.OK {
		t.Fatalf("use: status %d, %+v", status, res)
	}
	healthy("use")
	path := filepath.Join(t.TempDir(), "old.key")
	os.WriteFile(path, []byte(gossipkey.Encode(old)), 0o600)
	status, res = gossipKeyRun(t, nodes[2].Addr, "remove", "--key-file", path)
	fps, counts = primaries(res)
	if status != 0 || !res.OK || fps[0] != nextFP || fps[1] != nextFP || counts[0] != 1 || counts[1] != 1 || counts[2] != 1 {
		t.Fatalf("remove: status %d, %+v", status, res)
	}
	healthy("remove")
	// The text form marks the primary.
	out := mustOK(t, "gossip-key", "list", "--addr", addr)
	if !strings.Contains(out, "KEYS (* primary)") || strings.Count(out, nextFP+"*") != 3 || strings.Contains(out, oldFP) {
		t.Errorf("list:\n%s", out)
	}
	// A node that is down fails the step for itself and blocks use.
	nodes[2].Stop()
	waitStatus(t, addr, "n3 seen dead", 60*time.Second, func(st statusOutput) bool { return hasProblem(st, "node n3 dead") })
	status, res = gossipKeyRun(t, addr, "install", gossipkey.Encode(old))
	if status != 1 || res.OK || res.Nodes[2].Error == "" || res.Nodes[0].Error != "" {
		t.Fatalf("install with n3 down: status %d, %+v", status, res)
	}
	status, res = gossipKeyRun(t, addr, "use", gossipkey.Encode(old))
	if status != 1 || !strings.Contains(res.Refused, "no answer from n3") {
		t.Fatalf("use with n3 down: status %d, %+v", status, res)
	}
	if fps, _ = primaries(res); fps[0] != nextFP {
		t.Fatalf("a refused use changed a primary: %+v", res)
	}
}
