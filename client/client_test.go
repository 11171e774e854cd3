package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/cluster/clustertest"
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/router"
	"github.com/followgraph/followgraph/wire"
)

// exampleAddr is a node the examples talk to, started by TestMain.
var exampleAddr string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "client-example")
	if err != nil {
		panic(err)
	}
	n, err := clustertest.StartWith(clustertest.Options{Dir: dir}, os.Stderr)
	if err != nil {
		panic(err)
	}
	exampleAddr = n.Addr
	code := m.Run()
	n.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

func newClient(t *testing.T, addr string, mod ...func(*client.Config)) *client.Client {
	t.Helper()
	cfg := client.Config{Addrs: []string{addr}}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := client.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestOperations(t *testing.T) {
	n := clustertest.Start(t, clustertest.Options{})
	c := newClient(t, n.Addr)
	ctx := context.Background()
	res, err := c.Follow(ctx, "alice", []string{"bob", "carol", "alice"}, client.Sync())
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Code != 0 || res[1].Code != 0 || res[2].Code != codes.InvalidParam {
		t.Fatalf("follow: %+v", res)
	}
	if _, err := c.Follow(ctx, "bob", []string{"alice"}, client.Sync()); err != nil {
		t.Fatal(err)
	}
	p, err := c.Followers(ctx, "bob")
	if err != nil || len(p.Items) != 1 || p.Items[0].UserID != "alice" || p.NextCursor != "" {
		t.Fatalf("followers: %+v %v", p, err)
	}
	p, err = c.Following(ctx, "alice", client.Limit(1))
	if err != nil || len(p.Items) != 1 || p.NextCursor == "" {
		t.Fatalf("following page 1: %+v %v", p, err)
	}
	p2, err := c.Following(ctx, "alice", client.Limit(1), client.Cursor(p.NextCursor))
	if err != nil || len(p2.Items) != 1 || p2.Items[0].UserID == p.Items[0].UserID || p2.NextCursor != "" {
		t.Fatalf("following page 2: %+v %v", p2, err)
	}
	m, err := c.Mutual(ctx, "alice")
	if err != nil || len(m.Items) != 1 || m.Items[0].UserID != "bob" {
		t.Fatalf("mutual: %+v %v", m, err)
	}
	// Info spans shards and keeps the order.
	users := []string{"alice", "bob", "carol", "nobody", "zed", "yan", "xu"}
	infos, err := c.Info(ctx, users...)
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range infos {
		if in.UserID != users[i] {
			t.Fatalf("info %d is for %q", i, in.UserID)
		}
	}
	if infos[0].Following != 2 || infos[0].Mutual != 1 || infos[1].Followers != 1 || infos[2].Followers != 1 {
		t.Fatalf("info: %+v", infos)
	}
	cs, err := c.Check(ctx, "alice", "bob", "carol", "nobody")
	if err != nil || cs[0].FollowType != 3 || cs[1].FollowType != 2 || cs[2].FollowType != 0 {
		t.Fatalf("check: %+v %v", cs, err)
	}
	if _, err := c.Unfollow(ctx, "alice", []string{"bob"}, client.Sync()); err != nil {
		t.Fatal(err)
	}
	if p, _ := c.Followers(ctx, "bob"); len(p.Items) != 0 {
		t.Fatalf("followers after unfollow: %+v", p)
	}
	st, err := c.Status(ctx, "")
	if err != nil || len(st.Shards) != 4 || !st.Shards[0].Ready {
		t.Fatalf("status: %+v %v", st, err)
	}
	sm, err := c.ShardMap(ctx)
	if err != nil || sm.Shards != 4 || len(sm.Leaders) != 4 || sm.Leaders[0].Addr != n.Addr {
		t.Fatalf("shard map: %+v %v", sm, err)
	}
	if err := c.Ping(ctx, ""); err != nil {
		t.Fatal(err)
	}
}

func TestErrorsMatchSentinels(t *testing.T) {
	n := clustertest.Start(t, clustertest.Options{})
	c := newClient(t, n.Addr)
	ctx := context.Background()
	_, err := c.Follow(ctx, "a", make([]string, 21))
	if !errors.Is(err, client.ErrInvalidParam) || errors.Is(err, client.ErrInternal) {
		t.Fatalf("21 targets: %v", err)
	}
	_, err = c.Followers(ctx, "a", client.Cursor("forged"))
	if !errors.Is(err, client.ErrInvalidParam) {
		t.Fatalf("forged cursor: %v", err)
	}
	_, err = c.Followers(ctx, "a", client.Limit(501))
	if !errors.Is(err, client.ErrInvalidParam) {
		t.Fatalf("limit 501: %v", err)
	}
}

func TestToken(t *testing.T) {
	n := clustertest.Start(t, clustertest.Options{Token: "s3cret"})
	_, err := client.New(context.Background(), client.Config{Addrs: []string{n.Addr}})
	if !errors.Is(err, client.ErrAuthFailed) {
		t.Fatalf("no token: %v", err)
	}
	_, err = client.New(context.Background(), client.Config{Addrs: []string{n.Addr}, Token: "wrong"})
	if !errors.Is(err, client.ErrAuthFailed) {
		t.Fatalf("wrong token: %v", err)
	}
	c := newClient(t, n.Addr, func(c *client.Config) { c.Token = "s3cret" })
	if _, err := c.Follow(context.Background(), "a", []string{"b"}); err != nil {
		t.Fatal(err)
	}
}

// Many goroutines share one connection: requests pipeline and responses
// find their callers.
func TestPipelinedConcurrency(t *testing.T) {
	n := clustertest.Start(t, clustertest.Options{})
	c := newClient(t, n.Addr, func(c *client.Config) { c.ConnsPerNode = 1 })
	ctx := context.Background()
	var wg sync.WaitGroup
	var errs atomic.Int64
	for g := range 64 {
		wg.Go(func() {
			for i := range 20 {
				actor := fmt.Sprintf("p%d", g)
				if _, err := c.Follow(ctx, actor, []string{fmt.Sprintf("t%d", i)}); err != nil {
					errs.Add(1)
				}
				p, err := c.Following(ctx, actor, client.Limit(500))
				if err != nil || len(p.Items) != i+1 {
					errs.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if errs.Load() != 0 {
		t.Fatalf("%d errors", errs.Load())
	}
}

// flaky fails the first calls with a retryable code, then serves.
type flaky struct {
	wire.Handler
	fails atomic.Int64
	calls atomic.Int64
	code  codes.Code
	then  codes.Code // if set, every call after the failures fails with it
}

func (f *flaky) Write(ctx context.Context, op wire.Op, req wire.WriteRequest) ([]wire.Result, error) {
	f.calls.Add(1)
	if f.fails.Add(-1) >= 0 {
		return nil, codes.New(f.code, "injected")
	}
	if f.then != 0 {
		return nil, codes.New(f.then, "injected later")
	}
	return f.Handler.Write(ctx, op, req)
}

func startFlaky(t *testing.T, code codes.Code, fails int64) (*flaky, string) {
	f := &flaky{code: code}
	f.fails.Store(fails)
	n := clustertest.Start(t, clustertest.Options{Wrap: func(r *router.Router) wire.Handler { f.Handler = r; return f }})
	return f, n.Addr
}

func TestRetries(t *testing.T) {
	for _, code := range []codes.Code{codes.ShardUnavailable, codes.Overloaded, codes.NotLeader, codes.Timeout} {
		f, addr := startFlaky(t, code, 2)
		c := newClient(t, addr)
		res, err := c.Follow(context.Background(), "a", []string{"b"})
		if err != nil || res[0].Code != 0 {
			t.Fatalf("%v: not retried: %v", code, err)
		}
		if f.calls.Load() != 3 {
			t.Fatalf("%v: %d calls, want 3", code, f.calls.Load())
		}
	}
	// Non-retryable codes are returned at once.
	f, addr := startFlaky(t, codes.FollowingLimit, 5)
	c := newClient(t, addr)
	if _, err := c.Follow(context.Background(), "a", []string{"b"}); !errors.Is(err, codes.ErrFollowingLimit) || f.calls.Load() != 1 {
		t.Fatalf("non-retryable: %v after %d calls", err, f.calls.Load())
	}
	// Retries stop at the configured count.
	f, addr = startFlaky(t, codes.Overloaded, 100)
	c = newClient(t, addr, func(c *client.Config) { c.Retries = 2 })
	if _, err := c.Follow(context.Background(), "a", []string{"b"}); !errors.Is(err, client.ErrOverloaded) || f.calls.Load() != 3 {
		t.Fatalf("bounded retries: %v after %d calls", err, f.calls.Load())
	}
}

// By default a failure that did not apply is retried until the request's
// deadline, with the backoff capped: a failover of a second or two costs
// latency, not an error.
func TestRetriesUntilDeadline(t *testing.T) {
	// Eight failures (a failover's worth of retries at the capped
	// backoff), then success.
	f, addr := startFlaky(t, codes.ShardUnavailable, 8)
	c := newClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if res, err := c.Follow(ctx, "a", []string{"b"}); err != nil || res[0].Code != 0 {
		t.Fatalf("not retried until it succeeded: %v", err)
	}
	if f.calls.Load() != 9 {
		t.Fatalf("%d calls, want 9", f.calls.Load())
	}
	took := time.Since(start)
	// Backoffs 10, 20, 40, 80, 160, then 200 ms: at least 0.9 s, and
	// far less than an uncapped doubling (2.5 s) plus jitter.
	if took < 900*time.Millisecond || took > 3*time.Second {
		t.Fatalf("eight retries took %v", took)
	}

	// A failure that lasts beyond the deadline ends at the deadline, as
	// a timeout naming the last failure.
	f, addr = startFlaky(t, codes.ShardUnavailable, 1<<30)
	c = newClient(t, addr)
	ctx, cancel = context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err := c.Follow(ctx, "a", []string{"b"})
	if codes.Of(err) != codes.Timeout || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("at the deadline: %v", err)
	}
	if took := time.Since(start); took < 650*time.Millisecond || f.calls.Load() < 6 {
		t.Fatalf("gave up after %v and %d calls, before the deadline", took, f.calls.Load())
	}
}

// Info takes more users than one request may carry: the client splits
// them.
func TestInfoManyUsers(t *testing.T) {
	n := clustertest.Start(t, clustertest.Options{})
	c := newClient(t, n.Addr)
	ctx := context.Background()
	if _, err := c.Follow(ctx, "u7", []string{"u8"}); err != nil {
		t.Fatal(err)
	}
	// The reverse edge reaches u8's shard through the relay, after the
	// follow returns.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		is, err := c.InfoAt(ctx, client.Any, "u8")
		if err == nil && len(is) == 1 && is[0].Followers == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("u8's follower never arrived: %+v %v", is, err)
		}
	}
	users := make([]string, 1000)
	for i := range users {
		users[i] = fmt.Sprintf("u%d", i)
	}
	for _, cons := range []wire.Consistency{client.Leader, client.Any} {
		is, err := c.InfoAt(ctx, cons, users...)
		if err != nil || len(is) != len(users) {
			t.Fatalf("info of %d users at %v: %d results, %v", len(users), cons, len(is), err)
		}
		for i, in := range is {
			if in.UserID != users[i] || (i == 7) != (in.Following == 1) || (i == 8) != (in.Followers == 1) {
				t.Fatalf("result %d at %v: %+v", i, cons, in)
			}
		}
	}
}

// stalling holds its first write until released (a frozen node), then
// serves.
type stalling struct {
	wire.Handler
	calls   atomic.Int64
	release chan struct{}
}

func (s *stalling) Write(ctx context.Context, op wire.Op, req wire.WriteRequest) ([]wire.Result, error) {
	if s.calls.Add(1) == 1 {
		<-s.release
	}
	return s.Handler.Write(ctx, op, req)
}

// An attempt that gets no answer within AttemptTimeout is retried (the
// write is idempotent) long before the call's deadline; with
// KnownOutcomeWrites its outcome is reported unknown instead.
func TestAttemptTimeout(t *testing.T) {
	s := &stalling{release: make(chan struct{})}
	defer close(s.release)
	n := clustertest.Start(t, clustertest.Options{Wrap: func(r *router.Router) wire.Handler { s.Handler = r; return s }})
	c := newClient(t, n.Addr, func(c *client.Config) { c.AttemptTimeout = 200 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := c.Follow(ctx, "a", []string{"b"}); err != nil {
		t.Fatalf("not retried after the attempt timeout: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second || s.calls.Load() != 2 {
		t.Fatalf("took %v and %d calls, want about the attempt timeout and 2", took, s.calls.Load())
	}

	s2 := &stalling{release: make(chan struct{})}
	defer close(s2.release)
	n2 := clustertest.Start(t, clustertest.Options{Wrap: func(r *router.Router) wire.Handler { s2.Handler = r; return s2 }})
	c2 := newClient(t, n2.Addr, func(c *client.Config) {
		c.AttemptTimeout = 200 * time.Millisecond
		c.KnownOutcomeWrites = true
	})
	_, err := c2.Follow(ctx, "a", []string{"b"})
	if codes.Of(err) != codes.Timeout || client.Definite(err) || s2.calls.Load() != 1 {
		t.Fatalf("known-outcome write after an attempt timeout: %v after %d calls, want an unknown outcome after 1", err, s2.calls.Load())
	}
}

// A server restart breaks the client's connections; the next calls
// reconnect by themselves.
func TestReconnect(t *testing.T) {
	dir := t.TempDir()
	n, err := clustertest.StartWith(clustertest.Options{Dir: dir}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, n.Addr)
	ctx := context.Background()
	if _, err := c.Follow(ctx, "a", []string{"b"}); err != nil {
		t.Fatal(err)
	}
	addr := n.Addr
	n.Stop()
	n, err = clustertest.StartWith(clustertest.Options{Dir: dir, Listen: addr}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	p, err := c.Following(ctx, "a")
	if err != nil || len(p.Items) != 1 {
		t.Fatalf("after restart: %+v %v", p, err)
	}
}

func TestDeadline(t *testing.T) {
	be := &blocking{release: make(chan struct{})}
	n := clustertest.Start(t, clustertest.Options{Wrap: func(r *router.Router) wire.Handler { be.Handler = r; return be }})
	defer close(be.release)
	c := newClient(t, n.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Follow(ctx, "a", []string{"b"})
	if !errors.Is(err, client.ErrTimeout) || time.Since(start) > 2*time.Second {
		t.Fatalf("deadline: %v after %v", err, time.Since(start))
	}
}

type blocking struct {
	wire.Handler
	release chan struct{}
}

func (b *blocking) Write(ctx context.Context, op wire.Op, req wire.WriteRequest) ([]wire.Result, error) {
	<-b.release
	return nil, codes.New(codes.Internal, "released")
}

// With KnownOutcomeWrites, a write whose outcome is unknown (timeout,
// internal error) is returned at once, so the caller knows it may or may
// not have applied exactly once; refusals that certainly applied nothing
// are still retried.
func TestKnownOutcomeWrites(t *testing.T) {
	known := func(c *client.Config) { c.KnownOutcomeWrites = true }
	for _, code := range []codes.Code{codes.Timeout, codes.Internal} {
		f, addr := startFlaky(t, code, 2)
		c := newClient(t, addr, known)
		_, err := c.Follow(context.Background(), "a", []string{"b"})
		if codes.Of(err) != code || f.calls.Load() != 1 {
			t.Fatalf("%v: %v after %d calls, want the error after 1", code, err, f.calls.Load())
		}
		if client.Definite(err) {
			t.Fatalf("%v counted as certainly not applied", code)
		}
	}
	for _, code := range []codes.Code{codes.NotLeader, codes.ShardUnavailable, codes.Overloaded, codes.ShuttingDown} {
		f, addr := startFlaky(t, code, 2)
		c := newClient(t, addr, known)
		if _, err := c.Follow(context.Background(), "a", []string{"b"}); err != nil || f.calls.Load() != 3 {
			t.Fatalf("%v: %v after %d calls, want success after 3", code, err, f.calls.Load())
		}
		if !client.Definite(codes.New(code, "x")) {
			t.Fatalf("%v not counted as certainly not applied", code)
		}
	}
}

// A write whose first attempt may have applied must not end with an error
// that promises nothing applied, even if the last retry was refused.
func TestUnknownOutcomeSurvivesRetries(t *testing.T) {
	f, addr := startFlaky(t, codes.Timeout, 1)
	f.then = codes.NotLeader
	c := newClient(t, addr, func(c *client.Config) { c.Retries = 2 })
	_, err := c.Follow(context.Background(), "a", []string{"b"})
	if err == nil || client.Definite(err) || codes.Of(err) != codes.Timeout {
		t.Fatalf("after a timeout and refusals: %v, want an unknown outcome (timeout)", err)
	}
	if f.calls.Load() != 3 {
		t.Fatalf("%d calls, want 3", f.calls.Load())
	}
}
