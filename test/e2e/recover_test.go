package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
)

// ctlRun runs followctl with args and returns its exit status and output.
func ctlRun(args ...string) (int, string) {
	out, err := exec.Command(followctl, args...).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		return -1, err.Error()
	}
	return 0, string(out)
}

// ctlStatus is the part of followctl status --json the recovery test reads.
type ctlStatus struct {
	Healthy   bool     `json:"healthy"`
	Unhealthy []string `json:"unhealthy"`
	Shards    []struct {
		Shard     int      `json:"shard"`
		LeaderID  string   `json:"leaderID"`
		Voters    []string `json:"voters"`
		Recovered string   `json:"recovered"`
	} `json:"shards"`
}

func statusOf(t *testing.T, addr string) ctlStatus {
	t.Helper()
	code, out := ctlRun("--addr", addr, "status", "--json")
	var st ctlStatus
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("status: exit %d, %v:\n%s", code, err, out)
	}
	return st
}

// Two of three nodes lose their data for good (SIGKILL, data directories
// deleted): every shard lost its quorum. followctl recover makes them
// serve from the third node; nothing acknowledged is lost (the survivor
// had every write: they were all sync and the test waited until it had
// applied them), verify is clean, status records the recovery, and once
// the two nodes come back empty every shard has three voters again.
func TestUnsafeRecovery(t *testing.T) {
	const shards = 4
	procs := startCluster(t, shards)
	c := failoverClient(t, procs)
	waitMap(t, c, 60*time.Second)
	ctx := context.Background()
	for i := range 30 {
		if _, err := c.Follow(ctx, fmt.Sprintf("r%d", i), []string{fmt.Sprintf("r%d", i+1), fmt.Sprintf("r%d", i+2)}, client.Sync()); err != nil {
			t.Fatal(err)
		}
	}
	n1 := procs[0].addr
	caughtUp(t, c, procs)

	if code, out := ctlRun("--addr", n1, "recover", "all", "--from", "n1"); code != 2 || !strings.Contains(out, "--accept-data-loss") {
		t.Errorf("without --accept-data-loss: exit %d:\n%s", code, out)
	}
	if code, out := ctlRun("--addr", n1, "recover", "0", "--from", "n1", "--accept-data-loss"); code != 1 || !strings.Contains(out, "nothing to recover") {
		t.Errorf("a healthy shard: exit %d:\n%s", code, out)
	}

	for _, p := range procs[1:] {
		p.kill(t)
		if err := os.RemoveAll(p.dir); err != nil {
			t.Fatal(err)
		}
	}
	began := time.Now()
	var out string
	for code := 1; code != 0; {
		if time.Since(began) > 60*time.Second {
			t.Fatalf("recover never succeeded; last:\n%s", out)
		}
		time.Sleep(500 * time.Millisecond)
		// Refused until gossip has the two nodes dead: until then a
		// majority of voters looks alive.
		code, out = ctlRun("--addr", n1, "--timeout", "60s", "recover", "all", "--from", "n1", "--accept-data-loss", "--json")
	}
	t.Logf("recovered %v after the kill: %s", time.Since(began).Round(time.Millisecond), strings.TrimSpace(out))
	var rec struct {
		Recovered []struct {
			Shard int      `json:"shard"`
			Lost  []string `json:"lost"`
		} `json:"recovered"`
	}
	if err := json.Unmarshal([]byte(out), &rec); err != nil || len(rec.Recovered) != shards {
		t.Fatalf("recover output %v:\n%s", err, out)
	}
	for _, r := range rec.Recovered {
		if !slices.Equal(r.Lost, []string{"n2", "n3"}) {
			t.Errorf("shard %d: lost %v, want [n2 n3]", r.Shard, r.Lost)
		}
	}
	one, err := client.New(ctx, client.Config{Addrs: []string{n1}, RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	waitMap(t, one, 30*time.Second)
	st := statusOf(t, n1)
	for _, sh := range st.Shards {
		if sh.LeaderID != "n1" || !strings.Contains(sh.Recovered, "unsafe recovery from n1") {
			t.Errorf("after recovery, shard %d: leader %q, recovered %q", sh.Shard, sh.LeaderID, sh.Recovered)
		}
	}
	checkFollows(t, one, 30)
	if code, out := ctlRun("--addr", n1, "--timeout", "10s", "verify"); code != 0 {
		t.Fatalf("verify after recovery: exit %d\n%s", code, out)
	}

	// The lost nodes come back empty, under their IDs: they get replicas
	// again, and the recovery stays on record.
	for i := 1; i < 3; i++ {
		procs[i] = startB(t, procs[i].dir, procs[i].args...)
	}
	deadline := time.Now().Add(90 * time.Second)
	for st = statusOf(t, n1); !st.Healthy; st = statusOf(t, n1) {
		if time.Now().After(deadline) {
			t.Fatalf("not healthy 90 s after the nodes came back: %q", st.Unhealthy)
		}
		time.Sleep(time.Second)
	}
	for _, sh := range st.Shards {
		if len(sh.Voters) != 3 || sh.Recovered == "" {
			t.Errorf("shard %d: voters %v, recovered %q", sh.Shard, sh.Voters, sh.Recovered)
		}
	}
	if _, err := c.Follow(ctx, "r0", []string{"late"}, client.Sync()); err != nil {
		t.Fatal(err)
	}
	if code, out := ctlRun("--addr", procs[2].addr, "--timeout", "10s", "verify"); code != 0 {
		for _, p := range procs {
			st, err := c.Status(ctx, p.addr)
			t.Logf("replicas of %s (%v):", st.NodeID, err)
			for _, sh := range st.Shards {
				t.Logf("  shard %d leader %v ready %v applied %d users %d following %d followers %d voters %v nonvoters %v lag %d",
					sh.Shard, sh.Leader, sh.Ready, sh.AppliedIndex, sh.Users, sh.Following, sh.Followers, sh.Voters, sh.Nonvoters, sh.LagRecords)
			}
		}
		time.Sleep(5 * time.Second)
		code2, out2 := ctlRun("--addr", procs[2].addr, "--timeout", "10s", "verify")
		t.Logf("verify again 5 s later: exit %d\n%s", code2, out2)
		t.Fatalf("verify with the replicas rebuilt: exit %d\n%s", code, out)
	}
}

// caughtUp waits until every node's replica of every shard has applied
// what the shard's leader has.
func caughtUp(t *testing.T, c *client.Client, procs []*proc) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		applied := map[int][]uint64{}
		for _, p := range procs {
			st, err := c.Status(context.Background(), p.addr)
			if err != nil {
				t.Fatal(err)
			}
			for _, sh := range st.Shards {
				applied[sh.Shard] = append(applied[sh.Shard], sh.AppliedIndex)
			}
		}
		same := true
		for _, idx := range applied {
			same = same && len(idx) == len(procs) && slices.Min(idx) == slices.Max(idx)
		}
		if same {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas not caught up: %v", applied)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkFollows checks that r_i follows r_{i+1} and r_{i+2}, i < n, and
// that both are followed back (the reverse edges).
func checkFollows(t *testing.T, c *client.Client, n int) {
	t.Helper()
	for i := range n {
		a := fmt.Sprintf("r%d", i)
		p, err := c.Following(context.Background(), a)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range p.Items {
			got = append(got, e.UserID)
		}
		slices.Sort(got)
		want := []string{fmt.Sprintf("r%d", i+1), fmt.Sprintf("r%d", i+2)}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("following(%s) = %v, want %v", a, got, want)
		}
	}
}
