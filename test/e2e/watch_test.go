package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/wire"
)

// ev is an event without its position.
type ev struct {
	Kind        wire.EventKind
	User, Other string
}

func (e ev) String() string { return fmt.Sprintf("%s(%s,%s)", e.Kind, e.User, e.Other) }

// collect reads n events from w within d.
func collect(t *testing.T, w *client.Watcher, n int, d time.Duration) []client.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var out []client.Event
	for len(out) < n {
		e, err := w.Next(ctx)
		if err != nil {
			t.Fatalf("after %d of %d events: %v (got %v)", len(out), n, err, out)
		}
		out = append(out, e)
	}
	return out
}

// byUser groups events by the user whose list changed, in arrival order.
func byUser(es []client.Event) map[string][]ev {
	out := map[string][]ev{}
	for _, e := range es {
		out[e.User] = append(out[e.User], ev{e.Kind, e.User, e.Other})
	}
	return out
}

// quiet checks that w delivers nothing more within d.
func quiet(t *testing.T, w *client.Watcher, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if e, err := w.Next(ctx); err == nil {
		t.Fatalf("unexpected event %+v", e)
	}
}

// TestWatchSingleNode: follows and unfollows produce their events on both
// sides, mutual formed and broken included, in order per user; filters
// work; a watcher resumes from stored positions without repeats, also
// across a restart of the node; a position older than the feed retains
// gets 40009.
func TestWatchSingleNode(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir)
	c := newClient(t, p.addr, "")
	ctx := context.Background()
	w, err := c.Watch(ctx, client.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, s := range []struct {
		unfollow bool
		from, to string
	}{{false, "wa", "wb"}, {false, "wb", "wa"}, {true, "wa", "wb"}} {
		var err error
		if s.unfollow {
			_, err = c.Unfollow(ctx, s.from, []string{s.to}, client.Sync())
		} else {
			_, err = c.Follow(ctx, s.from, []string{s.to}, client.Sync())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	got := byUser(collect(t, w, 10, 10*time.Second))
	want := map[string][]ev{
		"wa": {{wire.FollowingAdded, "wa", "wb"}, {wire.FollowerAdded, "wa", "wb"}, {wire.MutualFormed, "wa", "wb"},
			{wire.FollowingRemoved, "wa", "wb"}, {wire.MutualBroken, "wa", "wb"}},
		"wb": {{wire.FollowerAdded, "wb", "wa"}, {wire.FollowingAdded, "wb", "wa"}, {wire.MutualFormed, "wb", "wa"},
			{wire.FollowerRemoved, "wb", "wa"}, {wire.MutualBroken, "wb", "wa"}},
	}
	for u, es := range want {
		if !slices.Equal(got[u], es) {
			t.Errorf("%s's events: %v, want %v", u, got[u], es)
		}
	}
	quiet(t, w, 300*time.Millisecond)
	saved := w.Positions()
	w.Close()

	filtered, err := c.Watch(ctx, client.WatchOptions{Users: []string{"wd"}, Kinds: []wire.EventKind{wire.FollowerAdded}})
	if err != nil {
		t.Fatal(err)
	}
	defer filtered.Close()
	if _, err := c.Follow(ctx, "wc", []string{"wd", "we"}, client.Sync()); err != nil {
		t.Fatal(err)
	}
	if es := collect(t, filtered, 1, 10*time.Second); es[0].Kind != wire.FollowerAdded || es[0].User != "wd" || es[0].Other != "wc" {
		t.Fatalf("filtered watcher: %+v", es)
	}
	quiet(t, filtered, 300*time.Millisecond)

	// Resume from the stored positions: exactly the events since, and
	// again after a graceful restart (the feed is in the snapshot).
	resumed := []ev{{wire.FollowingAdded, "wc", "wd"}, {wire.FollowingAdded, "wc", "we"}, {wire.FollowerAdded, "wd", "wc"}, {wire.FollowerAdded, "we", "wc"}}
	for round := range 2 {
		r, err := c.Watch(ctx, client.WatchOptions{From: saved})
		if err != nil {
			t.Fatal(err)
		}
		var es []ev
		for _, e := range collect(t, r, len(resumed), 10*time.Second) {
			es = append(es, ev{e.Kind, e.User, e.Other})
		}
		quiet(t, r, 300*time.Millisecond)
		r.Close()
		slices.SortFunc(es, func(a, b ev) int { return compareEv(a, b) })
		slices.SortFunc(resumed, func(a, b ev) int { return compareEv(a, b) })
		if !slices.Equal(es, resumed) {
			t.Fatalf("round %d: resumed watcher got %v, want %v", round, es, resumed)
		}
		if round == 0 {
			p.cmd.Process.Signal(syscall.SIGTERM)
			<-p.exited
			p = start(t, dir)
			c = newClient(t, p.addr, "")
		}
	}
}

func compareEv(a, b ev) int {
	if c := int(a.Kind) - int(b.Kind); c != 0 {
		return c
	}
	return cmpStrings(a.User+"\x00"+a.Other, b.User+"\x00"+b.Other)
}

func cmpStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestWatchExpiredPosition: a node that keeps 4 events per shard refuses
// a position behind them with 40009, which ends the watch.
func TestWatchExpiredPosition(t *testing.T) {
	p := start(t, t.TempDir(), "--shards", "1", "--feed-retention", "4")
	c := newClient(t, p.addr, "")
	ctx := context.Background()
	for i := range 3 {
		if _, err := c.Follow(ctx, "xa", []string{fmt.Sprint("xb", i)}, client.Sync()); err != nil {
			t.Fatal(err)
		}
	}
	w, err := c.Watch(ctx, client.WatchOptions{From: client.Positions{0: 0}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := w.Next(cctx); !errors.Is(err, codes.ErrFeedExpired) {
		t.Fatalf("watch from an evicted position: %v, want 40009", err)
	}
	// From the oldest retained event instead: the last 4.
	o, err := c.Watch(ctx, client.WatchOptions{Start: wire.WatchOldest})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	collect(t, o, 4, 10*time.Second)
	quiet(t, o, 300*time.Millisecond)
}

// TestFollowctlWatch: followctl watch --json streams one object per line
// in a pipeline and stops cleanly on Ctrl-C (SIGINT), printing where to
// resume.
func TestFollowctlWatch(t *testing.T) {
	p := start(t, t.TempDir())
	c := newClient(t, p.addr, "")
	cmd := exec.Command(followctl, "--addr", p.addr, "watch", "--json", "--user", "ca")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// The watch starts "now": follow until its first event arrives.
	var line string
	for i := 0; line == "" && i < 100; i++ {
		if _, err := c.Follow(context.Background(), "ca", []string{fmt.Sprint("cb", i)}); err != nil {
			t.Fatal(err)
		}
		select {
		case line = <-lines:
		case <-time.After(100 * time.Millisecond):
		}
	}
	var e map[string]any
	if err := json.Unmarshal([]byte(line), &e); err != nil || e["user"] != "ca" && e["other"] != "ca" {
		t.Fatalf("first line %q: %v", line, err)
	}
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil || !strings.Contains(stderr.String(), "resume with --from ") {
			t.Fatalf("after Ctrl-C: %v, stderr %q", err, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("followctl watch did not stop on SIGINT")
	}
}
