package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/shard"
)

// A user with 100,000 followers, who follows 2,000 of them back, is
// removed from a three-node cluster while writers keep following among
// other users (and one keeps trying to follow the user). Midway, the
// leader of the user's shard is killed (SIGKILL) and restarted: a new
// leader resumes the removal from where the log says it was. It ends;
// nothing of the user's graph is left (its only followers can be writers
// whose follow came after the end: a fresh user's), the graph's invariant
// holds (verify), and every follow of the user was refused with 32200 or
// accepted (by a shard the block had not reached yet: undone by the
// removal, which verify would otherwise catch; or after the end).
func TestRemoveUserUnderLoad(t *testing.T) {
	const shards, fans, back = 4, 100_000, 2_000
	procs := startCluster(t, shards)
	c := failoverClient(t, procs)
	waitMap(t, c, 30*time.Second)
	var b strings.Builder
	for i := range fans {
		fmt.Fprintf(&b, `{"actor":"fan%d","target":"celeb","followTime":%d}`+"\n", i, 1_700_000_000_000+i)
		fmt.Fprintf(&b, `{"actor":"fan%d","target":"fan%d","followTime":%d}`+"\n", i, (i+1)%fans, 1_700_000_000_000+i)
	}
	for i := range back {
		fmt.Fprintf(&b, `{"actor":"celeb","target":"fan%d","followTime":%d}`+"\n", i*37, 1_700_000_100_000+i)
	}
	graph := filepath.Join(t.TempDir(), "graph.jsonl")
	if err := os.WriteFile(graph, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if status, out := ctlRun("--addr", procs[0].addr, "import", graph, "--timeout", "60s"); status != 0 {
		t.Fatalf("import: %d\n%s", status, out)
	}
	ctx := context.Background()
	var refused, celebFollows atomic.Int64
	stop := untilStopped(4, func(w, i int) {
		target := fmt.Sprintf("fan%d", (i*7919+w)%fans)
		if w == 0 && i%3 == 0 {
			target = "celeb"
		}
		res, err := c.Follow(ctx, fmt.Sprintf("writer%d-%d", w, i%200), []string{target})
		switch {
		case err != nil:
			t.Errorf("follow of %s: %v", target, err)
			time.Sleep(50 * time.Millisecond)
		case res[0].Code == codes.UserRemoving:
			refused.Add(1) // the user's shard, or one the block reached
		case res[0].Code != codes.OK:
			t.Errorf("follow of %s: %+v", target, res[0])
		case target == "celeb":
			celebFollows.Add(1)
		}
		time.Sleep(2 * time.Millisecond)
	})
	start := time.Now()
	p, err := c.RemoveUser(ctx, "celeb")
	if err != nil || !p.Running || p.Following != back || p.Followers != fans {
		stop()
		t.Fatalf("remove-user: %+v %v", p, err)
	}
	victim := waitRemoved(t, c, procs, 20_000)
	victim.kill(t)
	restarted, err := startProc(victim.dir, victim.args...)
	if err != nil {
		stop()
		t.Fatal(err)
	}
	t.Cleanup(restarted.stop)
	for {
		p, err = c.RemovalOf(ctx, "celeb")
		if err == nil && !p.Running {
			break
		}
		if time.Since(start) > 3*time.Minute {
			stop()
			t.Fatalf("the removal does not end: %+v %v", p, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(start)
	stop()
	t.Logf("removed %d edges in %v across a leader kill, with writers running (%d follows of the user refused, %d accepted: before the block or after the end)",
		fans+back, took.Round(time.Millisecond), refused.Load(), celebFollows.Load())
	// Nothing of the old graph is left: celeb follows nobody, and its
	// only followers can be writers whose follow came after the end.
	if in, err := c.Info(ctx, "celeb"); err != nil || in[0].Following != 0 || in[0].Followers > 500 {
		t.Fatalf("info(celeb) after the removal: %+v %v", in, err)
	}
	page, err := c.Followers(ctx, "celeb", client.Limit(500))
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range page.Items {
		if !strings.HasPrefix(it.UserID, "writer0-") {
			t.Fatalf("%s still follows celeb after the removal", it.UserID)
		}
	}
	verifyClean(t, restarted.addr)
}

// waitRemoved waits until the removal of celeb has removed at least n
// edges and returns the node that leads celeb's shard.
func waitRemoved(t *testing.T, c *client.Client, procs []*proc, n uint64) *proc {
	t.Helper()
	home := shard.Of("celeb", c.Welcome().Shards)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		p, err := c.RemovalOf(context.Background(), "celeb")
		if err != nil || p.Removed < n {
			continue
		}
		for _, pr := range procs {
			if leadsShard(c, pr.addr, home) {
				return pr
			}
		}
	}
	t.Fatalf("the removal did not reach %d edges", n)
	return nil
}

// verifyClean runs followctl verify once the relay has settled.
func verifyClean(t *testing.T, addr string) {
	t.Helper()
	var last string
	for range 10 {
		status, out := ctlRun("--addr", addr, "verify", "--json", "--timeout", "20s")
		// The object is the last line; progress lines come before it.
		lines := strings.Split(strings.TrimSpace(out), "\n")
		var v struct{ Violations int }
		if json.Unmarshal([]byte(lines[len(lines)-1]), &v) == nil && status == 0 && v.Violations == 0 {
			return
		}
		last = out
		time.Sleep(time.Second) // the relay may still be delivering
	}
	t.Fatalf("verify is not clean:\n%s", last)
}
