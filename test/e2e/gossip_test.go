package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/internal/gossipkey"
)

// gossipWatch polls every node's status until stopped, and records every
// member some node saw other than alive: a rotation must not make gossip
// lose anyone, even for a moment.
type gossipWatch struct {
	mu     sync.Mutex
	seen   []string
	polls  int
	stopFn func()
}

func watchGossip(c *client.Client, procs []*proc) *gossipWatch {
	w := &gossipWatch{}
	w.stopFn = untilStopped(1, func(_, i int) {
		p := procs[i%len(procs)]
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := c.Status(ctx, p.addr)
		cancel()
		w.mu.Lock()
		defer w.mu.Unlock()
		if err != nil {
			w.seen = append(w.seen, fmt.Sprintf("%s: status: %v", p.addr, err))
			return
		}
		w.polls++
		if len(st.Members) != len(procs) {
			w.seen = append(w.seen, fmt.Sprintf("%s sees %d members", st.NodeID, len(st.Members)))
		}
		for _, m := range st.Members {
			if !m.Alive {
				w.seen = append(w.seen, fmt.Sprintf("%s sees %s dead", st.NodeID, m.NodeID))
			}
		}
		time.Sleep(50 * time.Millisecond) // a poll's pace, not a wait for a condition
	})
	return w
}

func (w *gossipWatch) stop() (polls int, seen []string) {
	w.stopFn()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.polls, w.seen
}

// gossipKeysMetric reads followgraph_gossip_keys from a node's /metrics.
func gossipKeysMetric(t *testing.T, p *proc) string {
	t.Helper()
	resp, err := http.Get("http://" + p.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "followgraph_gossip_keys "); ok {
			return v
		}
	}
	return ""
}

// TestGossipKeyRotationWithoutDowntime runs three followd processes with
// encrypted gossip (--gossip-key-file) and rotates the key with followctl
// gossip-key install, use and remove while a writer runs: no write fails
// and no node sees another one dead at any poll. Then a process with the
// old key cannot join, and a node restarted with the old key still on its
// command line comes back on the rotated keyring of its data directory.
func TestGossipKeyRotationWithoutDowntime(t *testing.T) {
	const shards = 4
	dir := t.TempDir()
	oldKey, newKey := gossipkey.New(), gossipkey.New()
	oldFile, newFile := filepath.Join(dir, "old.key"), filepath.Join(dir, "new.key")
	os.WriteFile(oldFile, []byte(gossipkey.Encode(oldKey)+"\n"), 0o600)
	os.WriteFile(newFile, []byte(gossipkey.Encode(newKey)+"\n"), 0o600)
	procs := startClusterWith(t, shards, "--gossip-key-file", oldFile)
	c := failoverClient(t, procs)
	waitMap(t, c, 60*time.Second)
	for _, p := range procs {
		if v := gossipKeysMetric(t, p); v != "1" {
			t.Fatalf("followgraph_gossip_keys of %s: %q", p.addr, v)
		}
	}

	var mu sync.Mutex
	var errs []string
	writes := 0
	stopWriter := untilStopped(2, func(w, i int) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := c.Follow(ctx, fmt.Sprintf("rot%d-%d", w, i%50), []string{fmt.Sprintf("t%d", i%97)})
		cancel()
		mu.Lock()
		writes++
		if err != nil {
			errs = append(errs, err.Error())
		}
		mu.Unlock()
		time.Sleep(10 * time.Millisecond) // a writer's pace
	})
	watch := watchGossip(c, procs)
	// Each step on every node, then a few gossip rounds (probes every
	// second) before the next, so that a node cut off would be seen.
	for _, step := range [][]string{{"install", "--key-file", newFile}, {"use", "--key-file", newFile}, {"remove", "--key-file", oldFile}} {
		res := gossipCtl(t, append([]string{"gossip-key", "--addr", procs[0].addr}, step...)...)
		if res["ok"] != true {
			t.Fatalf("gossip-key %s: %v", step[0], res)
		}
		before := watch.pollsNow()
		waitFor(t, "gossip rounds after "+step[0], 30*time.Second, func() bool { return watch.pollsNow() >= before+30 })
	}
	polls, seen := watch.stop()
	stopWriter()
	if len(seen) > 0 {
		t.Errorf("during the rotation (%d polls): %q", polls, seen[:min(len(seen), 10)])
	}
	if len(errs) > 0 || writes == 0 {
		t.Errorf("%d of %d writes failed during the rotation: %q", len(errs), writes, errs[:min(len(errs), 5)])
	}
	list := gossipCtl(t, "gossip-key", "list", "--addr", procs[1].addr)
	for _, n := range list["nodes"].([]any) {
		keys := n.(map[string]any)["keys"].([]any)
		if len(keys) != 1 || keys[0].(map[string]any)["fingerprint"] != gossipkey.Fingerprint(newKey) {
			t.Fatalf("keys after the rotation: %v", list)
		}
	}

	outsiderStaysOut(t, c, procs, oldFile)
	restartKeepsKeyring(t, c, procs)
}

// gossipCtl runs followctl with --json, requires success, and returns
// its object.
func gossipCtl(t *testing.T, args ...string) map[string]any {
	t.Helper()
	status, out := ctlRun(append(args, "--json")...)
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); status != 0 || err != nil {
		t.Fatalf("followctl %q: status %d, %v\n%s", args, status, err, out)
	}
	return m
}

// outsiderStaysOut starts a process holding only the removed key: it
// cannot join, and the members never list it.
func outsiderStaysOut(t *testing.T, c *client.Client, procs []*proc, oldFile string) {
	t.Helper()
	var join []string
	for _, p := range procs {
		for i, a := range p.args[:len(p.args)-1] {
			if a == "--gossip-addr" {
				join = append(join, p.args[i+1])
			}
		}
	}
	outsider := start(t, t.TempDir(), "--node-id", "intruder", "--raft-addr", freePort(t), "--gossip-addr", freePort(t),
		"--join", strings.Join(join, ","), "--gossip-key-file", oldFile)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		st, err := c.Status(context.Background(), procs[0].addr)
		if err != nil || len(st.Members) != 3 {
			t.Fatalf("with an outsider holding the old key: %v, members %+v", err, st.Members)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Nor did it learn of any member (its status lists itself alone).
	if st, err := c.Status(context.Background(), outsider.addr); err != nil || len(st.Members) > 1 {
		t.Errorf("the outsider's status: %v, members %+v", err, st.Members)
	}
	if !strings.Contains(outsider.log(), "no seed answered yet") {
		t.Errorf("the outsider's log does not show its join failing:\n%s", outsider.log())
	}
	outsider.stop()
}

// restartKeepsKeyring restarts the second node with the old key still on
// its command line: it comes back on its data directory's rotated keyring.
func restartKeepsKeyring(t *testing.T, c *client.Client, procs []*proc) {
	t.Helper()
	p := procs[1]
	p.cmd.Process.Signal(os.Interrupt)
	<-p.exited
	procs[1] = start(t, p.dir, p.args...)
	waitMap(t, c, 60*time.Second)
	if l := procs[1].log(); !strings.Contains(l, "the configured gossip key is not in the data directory's keyring") {
		t.Errorf("the restarted node did not say it ignored its flag's key:\n%s", l)
	}
	waitFor(t, "the restarted node alive to the others", 30*time.Second, func() bool {
		st, err := c.Status(context.Background(), procs[0].addr)
		if err != nil {
			return false
		}
		alive := 0
		for _, m := range st.Members {
			if m.Alive {
				alive++
			}
		}
		return alive == 3
	})
	if v := gossipKeysMetric(t, procs[1]); v != "1" {
		t.Errorf("followgraph_gossip_keys after the restart: %q", v)
	}
}

func (w *gossipWatch) pollsNow() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.polls
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
