package client_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/cluster/clustertest"
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/internal/tokens"
	"github.com/followgraph/followgraph/wire"
)

// tokenLog records when the server checked each request of a token, and
// the outcome.
type tokenLog struct {
	mu   sync.Mutex
	seen []tokenCheck
}

type tokenCheck struct {
	at   time.Time
	op   wire.Op
	code codes.Code
}

func (l *tokenLog) Request(wire.Op, codes.Code, time.Duration) {}
func (l *tokenLog) ConnOpened()                                {}
func (l *tokenLog) ConnClosed()                                {}
func (l *tokenLog) ConnRejected()                              {}
func (l *tokenLog) TokenRequest(_ string, op wire.Op, c codes.Code) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, tokenCheck{time.Now(), op, c})
}

func (l *tokenLog) checks(op wire.Op) []tokenCheck {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []tokenCheck
	for _, c := range l.seen {
		if c.op == op {
			out = append(out, c)
		}
	}
	return out
}

func startTokenNode(t *testing.T, toks ...tokens.Token) (string, *tokenLog) {
	t.Helper()
	st, err := tokens.NewStore(toks)
	if err != nil {
		t.Fatal(err)
	}
	log := &tokenLog{}
	n := clustertest.Start(t, clustertest.Options{Server: func(c *wire.ServerConfig) { c.Tokens, c.Observer = st, log }})
	return n.Addr, log
}

func TestTokenName(t *testing.T) {
	addr, log := startTokenNode(t, tokens.New("app", tokens.RoleWrite, "s3cret"), tokens.New("default", tokens.RoleAdmin, "root"))
	for _, cfg := range []client.Config{
		{Addrs: []string{addr}, TokenName: "app", Token: "wrong"},
		{Addrs: []string{addr}, TokenName: "nobody", Token: "s3cret"},
		{Addrs: []string{addr}, Token: "s3cret"}, // no name: "default"
	} {
		if _, err := client.New(context.Background(), cfg); !errors.Is(err, client.ErrAuthFailed) {
			t.Fatalf("%s/%s: %v, want ErrAuthFailed", cfg.TokenName, cfg.Token, err)
		}
	}
	c := newClient(t, addr, func(c *client.Config) { c.TokenName, c.Token = "app", "s3cret" })
	ctx := context.Background()
	if _, err := c.Follow(ctx, "a", []string{"b"}); err != nil {
		t.Fatal(err)
	}
	// A write token cannot drain: refused at once, not retried.
	if err := c.Drain(ctx, "n1", true); !errors.Is(err, client.ErrNotAllowed) {
		t.Fatalf("drain with a write token: %v", err)
	}
	if n := len(log.checks(wire.OpDrain)); n != 1 {
		t.Fatalf("drain tried %d times; NotAllowed must not be retried", n)
	}
	if !client.Definite(codes.New(codes.RateLimited, "")) || !client.Definite(codes.New(codes.NotAllowed, "")) {
		t.Fatal("refusals by token are definite: nothing was applied")
	}
	// The default token, without a name.
	admin := newClient(t, addr, func(c *client.Config) { c.Token = "root" })
	if err := admin.Drain(ctx, "n1", false); err != nil && errors.Is(err, client.ErrNotAllowed) {
		t.Fatalf("drain with the default admin token: %v", err)
	}
}

// TestRateLimitedBacksOff: a request over its token's rate is retried
// with a growing delay until the budget refills, not in a tight loop.
func TestRateLimitedBacksOff(t *testing.T) {
	lim := tokens.New("slow", tokens.RoleWrite, "s")
	lim.Rate, lim.Burst = 1, 2
	lim2 := lim
	lim2.Name = "slow2"
	addr, log := startTokenNode(t, lim, lim2)
	c := newClient(t, addr, func(c *client.Config) {
		c.TokenName, c.Token = "slow", "s"
		c.RetryBackoff, c.MaxRetryBackoff = 20*time.Millisecond, 2*time.Second
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The client's shard map read and this follow take the burst.
	if _, err := c.Follow(ctx, "a", []string{"b"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.Follow(ctx, "a", []string{"c"}); err != nil {
		t.Fatalf("not retried until the budget refilled: %v", err)
	}
	took := time.Since(start)
	var checks []tokenCheck
	for _, ch := range log.checks(wire.OpFollow) {
		if !ch.at.Before(start) {
			checks = append(checks, ch)
		}
	}
	last := checks[len(checks)-1]
	if last.code != codes.OK || len(checks) < 3 {
		t.Fatalf("checks %+v: want refusals, then success", checks)
	}
	// At 1 request/s the wait is up to a second; backoffs of 20, 40, 80,
	// ... ms fit it in a handful of attempts, where a spin would make
	// thousands.
	if took < 300*time.Millisecond || len(checks) > 10 {
		t.Fatalf("%d attempts in %v", len(checks), took)
	}
	// The delays double: the gap before attempt i is at least the i-th
	// backoff (20 ms << (i-1)), whatever the machine's load adds to it.
	for i := 1; i < len(checks); i++ {
		gap, least := checks[i].at.Sub(checks[i-1].at), min(20*time.Millisecond<<(i-1), 2*time.Second)
		if checks[i-1].code != codes.RateLimited || gap < least {
			t.Fatalf("attempt %d came %v after the one before, under its backoff %v: the delay must double (%+v)", i, gap, least, checks)
		}
	}

	// With few retries allowed the error surfaces as ErrRateLimited (a
	// token of its own, so that the client's first shard map read gets
	// a budget).
	c2 := newClient(t, addr, func(c *client.Config) {
		c.TokenName, c.Token, c.Retries = "slow2", "s", 1
	})
	var err error
	for range 5 {
		if _, err = c2.Follow(ctx, "a", []string{"d"}); err != nil {
			break
		}
	}
	if !errors.Is(err, client.ErrRateLimited) {
		t.Fatalf("over the rate with one retry: %v", err)
	}
}
