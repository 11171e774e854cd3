package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/webhook"
	"github.com/followgraph/followgraph/wire"
)

// hookReceiver is a webhook endpoint that records the follows and
// unfollows it is told about; while failing is set it answers 500.
type hookReceiver struct {
	mu       sync.Mutex
	seen     map[string]int    // "add alice>bob" or "del alice>bob" -> calls
	last     map[string]string // "alice>bob" -> the last call's "add" or "del", in arrival order
	ids      map[string]bool
	bad      []string // calls whose signature or query did not check
	failing  atomic.Bool
	refused  atomic.Int64
	accepted atomic.Int64
}

func newHookReceiver(t *testing.T) (*hookReceiver, *httptest.Server) {
	rv := &hookReceiver{seen: map[string]int{}, ids: map[string]bool{}, last: map[string]string{}}
	srv := httptest.NewServer(rv)
	t.Cleanup(srv.Close)
	return rv, srv
}

func (rv *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if rv.failing.Load() {
		rv.refused.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var b struct {
		CallbackCommand string
		From_Account    string
		FollowList      []struct{ To_Account string }
		To_Account      []string
		EventTime       int64
	}
	err := json.Unmarshal(body, &b)
	rv.mu.Lock()
	defer rv.mu.Unlock()
	q := r.URL.Query()
	if err != nil || r.Header.Get(webhook.HeaderSignature) != webhook.Sign("hooksecret", body) || q.Get("CallbackCommand") != b.CallbackCommand ||
		q.Get("SdkAppid") != "1400000001" || b.EventTime == 0 || !strings.Contains(r.Header.Get(webhook.HeaderEventID), ":") {
		rv.bad = append(rv.bad, string(body))
	}
	rv.ids[r.Header.Get(webhook.HeaderEventID)] = true
	switch b.CallbackCommand {
	case webhook.CommandFollowAdd:
		for _, f := range b.FollowList {
			rv.seen["add "+b.From_Account+">"+f.To_Account]++
			rv.last[b.From_Account+">"+f.To_Account] = "add"
		}
	case webhook.CommandFollowDelete:
		for _, to := range b.To_Account {
			rv.seen["del "+b.From_Account+">"+to]++
			rv.last[b.From_Account+">"+to] = "del"
		}
	}
	rv.accepted.Add(1)
	io.WriteString(w, `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}`)
}

// waitSeen waits until every key was seen, and returns the duplicates.
func (rv *hookReceiver) waitSeen(t *testing.T, keys []string, d time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		rv.mu.Lock()
		var missing []string
		dups := 0
		for _, k := range keys {
			if rv.seen[k] == 0 {
				missing = append(missing, k)
			}
			dups += max(rv.seen[k]-1, 0)
		}
		bad := len(rv.bad)
		rv.mu.Unlock()
		if bad > 0 {
			t.Fatalf("%d webhook calls failed their checks, e.g. %s", bad, rv.bad[0])
		}
		if len(missing) == 0 {
			return dups
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d changes never reached the webhook, e.g. %v", len(missing), len(keys), missing[:min(5, len(missing))])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var hookFlags = []string{"--webhook-secret", "hooksecret", "--webhook-sdkappid", "1400000001"}

// TestWebhooksSingleNode: every acknowledged follow and unfollow reaches
// the endpoint in Tencent's shape, signed; an endpoint that fails for a
// while then recovers gets every change; a restart does not start over.
func TestWebhooksSingleNode(t *testing.T) {
	rv, srv := newHookReceiver(t)
	dir := t.TempDir()
	p := start(t, dir, append([]string{"--webhook-url", srv.URL + "/im"}, hookFlags...)...)
	c := newClient(t, p.addr, "")
	ctx := context.Background()
	var keys []string
	for i := range 20 {
		actor, target := fmt.Sprint("ha", i%4), fmt.Sprint("hb", i)
		if _, err := c.Follow(ctx, actor, []string{target}); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, "add "+actor+">"+target)
		if i%5 == 0 {
			if _, err := c.Unfollow(ctx, actor, []string{target}); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, "del "+actor+">"+target)
		}
	}
	rv.waitSeen(t, keys, 10*time.Second)
	// In order: each unfollow came after its follow.
	rv.mu.Lock()
	for i := range 20 {
		edge, want := fmt.Sprintf("ha%d>hb%d", i%4, i), "add"
		if i%5 == 0 {
			want = "del"
		}
		if rv.last[edge] != want {
			t.Errorf("%s: the last webhook call said %q, want %q", edge, rv.last[edge], want)
		}
	}
	rv.mu.Unlock()

	// The endpoint fails for a while: the changes meanwhile arrive once it
	// recovers; writes are not slowed.
	rv.failing.Store(true)
	began := time.Now()
	for i := range 10 {
		if _, err := c.Follow(ctx, "hc", []string{fmt.Sprint("hd", i)}); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, fmt.Sprint("add hc>hd", i))
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Fatalf("10 follows took %v with the endpoint down", d)
	}
	deadline := time.Now().Add(10 * time.Second)
	for rv.refused.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if rv.refused.Load() < 3 {
		t.Fatalf("only %d refused attempts: not retrying", rv.refused.Load())
	}
	rv.failing.Store(false)
	rv.waitSeen(t, keys, 40*time.Second)

	// After a restart, delivery resumes from the replicated position: at
	// most the last unrecorded calls come again, not everything.
	before := rv.accepted.Load()
	time.Sleep(1500 * time.Millisecond) // the position reaches the log
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.exited
	p = start(t, dir, append([]string{"--webhook-url", srv.URL + "/im"}, hookFlags...)...)
	c = newClient(t, p.addr, "")
	if _, err := c.Follow(ctx, "he", []string{"hf"}); err != nil {
		t.Fatal(err)
	}
	rv.waitSeen(t, append(keys, "add he>hf"), 10*time.Second)
	if again := rv.accepted.Load() - before; again > 3 {
		t.Fatalf("%d calls after the restart for 1 new follow: delivery started over", again)
	}
	if !strings.Contains(p.log(), "followd ready") {
		t.Fatal("no ready line")
	}
}

// TestWebhooksThroughFailover: with webhooks and a watcher active on a
// 3-node cluster, the leader of a shard is killed with SIGKILL under a
// steady workload: every acknowledged follow still reaches the endpoint
// (duplicates allowed, each with its event ID) and the watcher.
func TestWebhooksThroughFailover(t *testing.T) {
	rv, srv := newHookReceiver(t)
	procs := startClusterWith(t, 4, append([]string{"--webhook-url", srv.URL}, hookFlags...)...)
	c := failoverClient(t, procs)
	m := waitMap(t, c, 30*time.Second)
	ctx := context.Background()
	// A watcher runs through the failover too.
	w, err := c.Watch(ctx, client.WatchOptions{Kinds: []wire.EventKind{wire.FollowingAdded}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	watched := map[string]bool{}
	var wmu sync.Mutex
	go func() {
		for {
			e, err := w.Next(ctx)
			if err != nil {
				return
			}
			wmu.Lock()
			watched["add "+e.User+">"+e.Other] = true
			wmu.Unlock()
		}
	}()
	var keys []string
	victim := m.Leaders[0].Addr
	for i := range 300 {
		if i == 100 {
			for _, p := range procs {
				if p.addr == victim {
					p.kill(t)
				}
			}
		}
		actor, target := fmt.Sprint("wf", i%37), fmt.Sprint("wt", i)
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := c.Follow(wctx, actor, []string{target})
		cancel()
		if err == nil {
			keys = append(keys, "add "+actor+">"+target)
		}
	}
	if len(keys) < 250 {
		t.Fatalf("only %d of 300 follows acknowledged", len(keys))
	}
	dups := rv.waitSeen(t, keys, 40*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for {
		wmu.Lock()
		missing := 0
		for _, k := range keys {
			if !watched[k] {
				missing++
			}
		}
		wmu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d acknowledged follows never reached the watcher", missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d acknowledged follows, each delivered to the webhook (%d duplicates, %d calls)", len(keys), dups, rv.accepted.Load())
}
