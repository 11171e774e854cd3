package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/internal/testport"
	"github.com/followgraph/followgraph/shard"
)

func freePort(t *testing.T) string { return testport.Addr(t) }

// startCluster runs three followd processes forming a cluster on loopback.
func startCluster(t *testing.T, shards int) []*proc {
	t.Helper()
	return startClusterWith(t, shards)
}

// startClusterWith is startCluster with extra flags for every node.
func startClusterWith(t *testing.T, shards int, extra ...string) []*proc {
	t.Helper()
	return startClusterEach(t, shards, func(int) []string { return extra })
}

// startClusterEach is startCluster with extra(i) flags for node i (0-2;
// node IDs n1-n3).
func startClusterEach(t *testing.T, shards int, extra func(i int) []string) []*proc {
	t.Helper()
	type ports struct{ client, http, raft, gossip string }
	ps := make([]ports, 3)
	var join []string
	for i := range ps {
		ps[i] = ports{freePort(t), freePort(t), freePort(t), freePort(t)}
		join = append(join, ps[i].gossip)
	}
	procs := make([]*proc, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range ps {
		dir := t.TempDir()
		wg.Go(func() {
			// The nodes wait for each other to get ready, so they start
			// together; t.Fatal must not run in these goroutines.
			args := []string{"--node-id", fmt.Sprintf("n%d", i+1), "--listen", ps[i].client, "--http", ps[i].http,
				"--raft-addr", ps[i].raft, "--gossip-addr", ps[i].gossip, "--join", strings.Join(join, ","),
				"--bootstrap-expect", "3", "--shards", fmt.Sprint(shards)}
			procs[i], errs[i] = startProc(dir, append(args, extra(i)...)...)
		})
	}
	wg.Wait()
	for _, p := range procs {
		if p != nil {
			t.Cleanup(p.stop)
		}
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node n%d: %v", i+1, err)
		}
	}
	return procs
}

// failoverClient is a client of every node with short timeouts and many
// retries, closed when the test ends.
func failoverClient(t *testing.T, procs []*proc) *client.Client {
	t.Helper()
	var addrs []string
	for _, p := range procs {
		addrs = append(addrs, p.addr)
	}
	c, err := client.New(context.Background(), client.Config{Addrs: addrs, RequestTimeout: 2 * time.Second, Retries: 50, RetryBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitMap waits until the shard map names a leader for every shard.
func waitMap(t *testing.T, c *client.Client, d time.Duration) client.ShardMap {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		m, err := c.ShardMap(context.Background())
		if err == nil {
			ok := len(m.Leaders) == m.Shards
			for _, l := range m.Leaders {
				ok = ok && l.Addr != ""
			}
			if ok {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader for every shard after %v: %+v %v", d, m, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Three followd processes; the leader of a shard is killed with SIGKILL
// while a writer keeps following users of that shard. Writes to the shard
// must resume: the target is within 3 s of the kill; the test reports how
// long they were unavailable, fails beyond 10 s (a loaded machine is
// slower), and checks no acknowledged write was lost.
func TestClusterFailoverUnderLoad(t *testing.T) {
	const shards = 8
	procs := startCluster(t, shards)
	c := failoverClient(t, procs)
	m := waitMap(t, c, 60*time.Second)
	const victimShard = 0
	leaderAddr := m.Leaders[victimShard].Addr
	var victim *proc
	for _, p := range procs {
		if p.addr == leaderAddr {
			victim = p
		}
	}
	if victim == nil {
		t.Fatalf("leader %s of shard 0 is none of the nodes", leaderAddr)
	}
	// Actors homed on the victim's shard.
	var actors []string
	for i := 0; len(actors) < 50; i++ {
		if a := fmt.Sprintf("actor%d", i); shard.Of(a, shards) == victimShard {
			actors = append(actors, a)
		}
	}
	type ack struct {
		at     time.Time
		actor  string
		target string
	}
	var mu sync.Mutex
	var acks []ack
	stop := untilStopped(4, func(w, i int) {
		a, tg := actors[(i*4+w)%len(actors)], fmt.Sprintf("t%d-%d", w, i)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := c.Follow(ctx, a, []string{tg})
		cancel()
		if err == nil && res[0].Code == 0 {
			mu.Lock()
			acks = append(acks, ack{time.Now(), a, tg})
			mu.Unlock()
		}
	})
	time.Sleep(1 * time.Second)
	// Leaderships may have moved since (the leaders balance them): kill
	// whoever leads the shard now, as its own raft reports it.
	victim = nil
	for deadline := time.Now().Add(10 * time.Second); victim == nil; {
		for _, p := range procs {
			if leadsShard(c, p.addr, victimShard) {
				victim = p
			}
		}
		if victim == nil && time.Now().After(deadline) {
			t.Fatalf("no node leads shard %d", victimShard)
		}
	}
	killedAt := time.Now()
	victim.kill(t)
	time.Sleep(6 * time.Second)
	stop()
	// The unavailability window: the longest gap between acknowledgements
	// around the kill.
	var before, after time.Time
	for _, a := range acks {
		if a.at.Before(killedAt) {
			before = a.at
		} else if after.IsZero() {
			after = a.at
		}
	}
	if after.IsZero() {
		t.Fatalf("no write to shard %d succeeded after killing its leader (%d before)", victimShard, len(acks))
	}
	gap := after.Sub(before)
	t.Logf("writes to shard %d were unavailable for %v after SIGKILL of its leader (%d writes acknowledged)", victimShard, gap.Round(time.Millisecond), len(acks))
	if gap > 10*time.Second {
		t.Fatalf("writes unavailable for %v", gap)
	}
	// Nothing acknowledged was lost.
	for _, a := range acks {
		cs, err := c.Check(context.Background(), a.actor, a.target)
		if err != nil || cs[0].FollowType&2 == 0 {
			t.Fatalf("acknowledged %s -> %s lost after failover: %+v %v", a.actor, a.target, cs, err)
		}
	}

	// With one node down, each surviving node serves every operation.
	for _, p := range procs {
		if p != victim {
			everyOperation(t, p.addr, "via-"+p.addr)
		}
	}

	// The killed node comes back on its data directory and rejoins: the
	// cluster is healthy again (followctl status exits 0 only then), and
	// the graph's invariant holds across every shard.
	restarted := startB(t, victim.dir, victim.args...)
	everyOperation(t, restarted.addr, "via-restarted")
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := exec.Command(followctl, "--addr", restarted.addr, "status").CombinedOutput()
		if err == nil && strings.Contains(string(out), "healthy: 3 nodes alive") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not healthy after the restart: %v\n%s", err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// The leaders move back to the restarted node for a while after it is
	// healthy (leader balancing); verify refuses a scan during which a
	// shard changed leader and asks to be run again.
	var out []byte
	var err error
	for attempt := 1; ; attempt++ {
		out, err = exec.Command(followctl, "--addr", restarted.addr, "--timeout", "10s", "verify").CombinedOutput()
		if err == nil || attempt == 5 || !strings.Contains(string(out), "run verify again") {
			break
		}
		t.Logf("verify attempt %d: %s", attempt, strings.TrimSpace(string(out)))
		time.Sleep(2 * time.Second)
	}
	if err != nil || !strings.Contains(string(out), "violations:") {
		t.Fatalf("followctl verify: %v\n%s", err, out)
	}
	t.Logf("after the restart: followctl status healthy, verify clean:\n%s", out)
}

// leadsShard tells whether the node at addr says it leads shard i.
func leadsShard(c *client.Client, addr string, i int) bool {
	st, err := c.Status(context.Background(), addr)
	if err != nil {
		return false
	}
	for _, sh := range st.Shards {
		if sh.Shard == i {
			return sh.Leader
		}
	}
	return false
}

// everyOperation runs every graph operation through a client that knows
// only addr, with users unique to tag, and checks the results.
func everyOperation(t *testing.T, addr, tag string) {
	t.Helper()
	c, err := client.New(context.Background(), client.Config{Addrs: []string{addr}, RequestTimeout: 10 * time.Second, Retries: 20, RetryBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	a, b, x := tag+"-a", tag+"-b", tag+"-x"
	for _, w := range [][2]string{{a, b}, {b, a}, {a, x}} {
		res, err := c.Follow(ctx, w[0], []string{w[1]}, client.Sync())
		if err != nil || res[0].Code != 0 {
			t.Fatalf("%s: follow %s -> %s: %+v %v", tag, w[0], w[1], res, err)
		}
	}
	if res, err := c.Unfollow(ctx, a, []string{x}, client.Sync()); err != nil || res[0].Code != 0 {
		t.Fatalf("%s: unfollow: %+v %v", tag, res, err)
	}
	if p, err := c.Followers(ctx, b); err != nil || len(p.Items) != 1 || p.Items[0].UserID != a {
		t.Fatalf("%s: followers: %+v %v", tag, p, err)
	}
	if p, err := c.Following(ctx, a); err != nil || len(p.Items) != 1 || p.Items[0].UserID != b {
		t.Fatalf("%s: following: %+v %v", tag, p, err)
	}
	if p, err := c.Mutual(ctx, a); err != nil || len(p.Items) != 1 || p.Items[0].UserID != b {
		t.Fatalf("%s: mutual: %+v %v", tag, p, err)
	}
	if in, err := c.Info(ctx, a, x); err != nil || in[0].Following != 1 || in[0].Followers != 1 || in[0].Mutual != 1 || in[1].Followers != 0 {
		t.Fatalf("%s: info: %+v %v", tag, in, err)
	}
	if cs, err := c.Check(ctx, a, b, x); err != nil || cs[0].FollowType != 3 || cs[1].FollowType != 0 {
		t.Fatalf("%s: check: %+v %v", tag, cs, err)
	}
}

// shardQuiet tells whether the node with HTTP address httpAddr reports
// shard i as quiet (it leads it, and the shard is idle).
func shardQuiet(httpAddr string, i int) bool {
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return err == nil && strings.Contains(string(body), fmt.Sprintf("followgraph_shard_quiet{shard=\"%d\"} 1\n", i))
}

// The leader of a quiet shard (idle: its followers hear from it only
// through the nodes' coalesced beats) is killed with SIGKILL: the
// followers notice as fast as for a busy shard, and writes to the shard
// resume within 3 s of the kill.
func TestClusterFailoverQuiet(t *testing.T) {
	const shards = 8
	procs := startCluster(t, shards)
	c := failoverClient(t, procs)
	waitMap(t, c, 60*time.Second)
	const victimShard = 0
	var actor string
	for i := 0; actor == ""; i++ {
		if a := fmt.Sprintf("actor%d", i); shard.Of(a, shards) == victimShard {
			actor = a
		}
	}
	if _, err := c.Follow(context.Background(), actor, []string{"before"}); err != nil {
		t.Fatal(err)
	}
	// Wait until a node reports the shard quiet; it is the leader.
	var victim *proc
	for deadline := time.Now().Add(30 * time.Second); victim == nil; time.Sleep(100 * time.Millisecond) {
		for _, p := range procs {
			if shardQuiet(p.http, victimShard) {
				victim = p
			}
		}
		if victim == nil && time.Now().After(deadline) {
			t.Fatalf("shard %d never went quiet", victimShard)
		}
	}
	killedAt := time.Now()
	victim.kill(t)
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Follow(ctx, actor, []string{fmt.Sprintf("t%d", i)})
		cancel()
		if err == nil {
			break
		}
		if time.Since(killedAt) > 10*time.Second {
			t.Fatalf("no write to quiet shard %d succeeded within 10 s of the kill: %v", victimShard, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	gap := time.Since(killedAt)
	t.Logf("writes to quiet shard %d resumed %v after SIGKILL of its leader", victimShard, gap.Round(time.Millisecond))
	if gap > 3*time.Second {
		t.Fatalf("writes to a quiet shard resumed %v after its leader was killed, want within 3 s", gap)
	}
	cs, err := c.Check(context.Background(), actor, "before")
	if err != nil || cs[0].FollowType&2 == 0 {
		t.Fatalf("write acknowledged before the kill lost: %+v %v", cs, err)
	}
}
