// Package client is the Go client of followgraph.
//
//	c, err := client.New(ctx, client.Config{Addrs: []string{"127.0.0.1:7700"}})
//	...
//	res, err := c.Follow(ctx, "alice", []string{"bob", "carol"})
//	page, err := c.Followers(ctx, "bob", client.Limit(50))
//
// A Client is safe for concurrent use. It keeps a small pool of connections
// per node and pipelines requests on them (many requests in flight per
// connection, written together). It routes each request to the leader of
// the user's shard, as the node's shard map says, and retries retryable
// failures (not leader, shard unavailable, overloaded, timeouts, broken
// connections) with backoff: every operation is idempotent, so a retry can
// never apply a write twice. Errors carry a codes.Code; compare them with
// errors.Is against the sentinels here (client.ErrInvalidParam, ...).
//
// # TLS
//
// Against a node started with --tls-cert, set Config.TLS; the protocol
// runs inside TLS, unchanged:
//
//	pool := x509.NewCertPool()
//	pool.AppendCertsFromPEM(caPEM) // the cluster's ca.crt
//	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
//	// With mutual TLS (followd --tls-client-ca), also the client's own:
//	// tc.Certificates = []tls.Certificate{kp} // tls.LoadX509KeyPair(...)
//	c, err := client.New(ctx, client.Config{Addrs: addrs, TLS: tc})
//
// The server's certificate must name the host of the address dialled (or
// tls.Config.ServerName). A handshake that cannot succeed by retrying (an
// untrusted server certificate, a plaintext port, a refused client
// certificate) fails with ErrAuthFailed and says which; a plaintext
// client on a TLS port gets ErrAuthFailed too ("this port requires TLS").
package client

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/shard"
	"github.com/followgraph/followgraph/wire"
)

// Result types, shared with the protocol.
type (
	// Result is the outcome of one target of Follow or Unfollow.
	Result = wire.Result
	// Item is one list entry.
	Item = wire.Item
	// Page is a page of a list and the cursor of the next one.
	Page = wire.Page
	// Info is one user's counts.
	Info = wire.Info
	// Check is the relation of the actor with one target: FollowType 0
	// none, 1 the target follows the actor, 2 the actor follows the
	// target, 3 both.
	Check = wire.Check
	// Status is a node's status.
	Status = wire.Status
	// ShardMap says which node leads each shard.
	ShardMap = wire.ShardMap
)

// Errors. Every error a Client returns matches one of these with errors.Is
// when the server (or the client) reported that code.
var (
	ErrInvalidParam       = codes.ErrInvalidParam
	ErrInternal           = codes.ErrInternal
	ErrTimeout            = codes.ErrTimeout
	ErrNotLeader          = codes.ErrNotLeader
	ErrShardUnavailable   = codes.ErrShardUnavailable
	ErrOverloaded         = codes.ErrOverloaded
	ErrAuthFailed         = codes.ErrAuthFailed
	ErrFrameTooLarge      = codes.ErrFrameTooLarge
	ErrUnsupportedVersion = codes.ErrUnsupportedVersion
	ErrShuttingDown       = codes.ErrShuttingDown
	ErrUnknownOp          = codes.ErrUnknownOp
	// ErrRateLimited: the request was over its token's rate limit and
	// was not applied. The client retries it with backoff like other
	// retryable codes; it surfaces once the retries or the time run out.
	ErrRateLimited = codes.ErrRateLimited
	// ErrNotAllowed: the token's role does not allow the operation. Not
	// retried.
	ErrNotAllowed     = codes.ErrNotAllowed
	ErrFollowingLimit = codes.ErrFollowingLimit
	ErrFollowersLimit = codes.ErrFollowersLimit
	// ErrUserRemoving: a write involving a user whose graph is being
	// removed (see RemoveUser).
	ErrUserRemoving = codes.ErrUserRemoving
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("client: closed")
)

// Config configures a Client.
type Config struct {
	// Addrs are the nodes to start from (host:port). Required.
	Addrs []string
	// Token is sent in the handshake when the servers require one.
	Token string
	// TokenName names the token in the servers' token file. Empty sends
	// none, which the servers read as "default" (the token of followd's
	// --token).
	TokenName string
	// TLS, when set, makes every connection TLS with this configuration
	// (nil: plaintext). Set RootCAs to the cluster's CA, and Certificates
	// when the servers require client certificates (followd
	// --tls-client-ca); without ServerName, each server's certificate is
	// checked against the host of its address. internal/certs.Client
	// builds one from PEM files.
	TLS *tls.Config
	// ConnsPerNode is the number of connections kept to each node
	// (default 2).
	ConnsPerNode int
	// MaxInflight bounds the requests in flight on one connection
	// (default 512); more wait for a slot.
	MaxInflight int
	// DialTimeout bounds connecting and the handshake (default 3s).
	DialTimeout time.Duration
	// Dial, if set, opens connections instead of TCP (nodes use it to
	// reach each other over their raft ports). TLS, if set, runs over
	// what it returns.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// RequestTimeout bounds a call whose context has no deadline
	// (default 10s), retries included.
	RequestTimeout time.Duration
	// Retries bounds how many times a retryable failure is retried. The
	// default, 0, retries until the request's deadline (its context's,
	// or RequestTimeout), so a leader change, a node restart or a
	// rolling upgrade costs callers latency, not errors; negative: no
	// retries.
	Retries int
	// AttemptTimeout bounds each attempt of a call (default 1.5s, about
	// a leader failover; negative: none but the call's deadline). A node
	// that does not answer in time (stopped, frozen, partitioned away) is
	// avoided for a moment and the call retried elsewhere, where the
	// shard's new leader is by then: a stalled node delays callers by
	// about a failover, not by their whole deadline. A write whose
	// attempt timed out may still apply; with KnownOutcomeWrites it is
	// reported as unknown (30007) instead of retried.
	AttemptTimeout time.Duration
	// RetryBackoff is the first retry delay, doubling each time with
	// jitter (default 10ms) up to MaxRetryBackoff (default 200ms: a
	// failover takes about a second, and a retry should find the new
	// leader soon after).
	RetryBackoff, MaxRetryBackoff time.Duration
	// KnownOutcomeWrites stops retrying a write once its outcome is
	// unknown (a timeout, a connection lost after sending, a leadership
	// lost after proposing): the error is returned, and the write may or
	// may not have applied. Writes are idempotent, so by default they are
	// retried; a caller that records exactly what happened (the chaos
	// harness's histories) wants each attempt to apply at most once.
	// Failures that certainly did not apply (not leader, overloaded, no
	// connection) are still retried.
	KnownOutcomeWrites bool
	// MaxFrame bounds a frame (default 1 MiB; the server's welcome may
	// lower it).
	MaxFrame int
	// Name identifies the client in server logs.
	Name string
}

// DefaultConfig returns the defaults, without addresses (set Addrs). A
// zero field of a Config given to New also means its default.
func DefaultConfig() Config {
	return Config{
		ConnsPerNode:    2,
		MaxInflight:     512,
		DialTimeout:     3 * time.Second,
		RequestTimeout:  10 * time.Second,
		AttemptTimeout:  1500 * time.Millisecond,
		RetryBackoff:    10 * time.Millisecond,
		MaxRetryBackoff: 200 * time.Millisecond,
		MaxFrame:        wire.DefaultMaxFrame,
		Name:            "followgraph-go",
	}
}

// Validate reports the first invalid field. Zero values are valid (they
// mean the defaults), but for Addrs.
func (c *Config) Validate() error {
	switch {
	case len(c.Addrs) == 0:
		return errors.New("client: Config.Addrs is empty")
	case c.ConnsPerNode < 0 || c.MaxInflight < 0:
		return fmt.Errorf("client: ConnsPerNode (%d) and MaxInflight (%d) must not be negative", c.ConnsPerNode, c.MaxInflight)
	case c.DialTimeout < 0 || c.RequestTimeout < 0 || c.RetryBackoff < 0 || c.MaxRetryBackoff < 0:
		return errors.New("client: DialTimeout, RequestTimeout, RetryBackoff and MaxRetryBackoff must not be negative")
	case c.MaxFrame < 0:
		return fmt.Errorf("client: MaxFrame (%d) must not be negative", c.MaxFrame)
	}
	return nil
}

// withDefaults fills in the zero fields with the defaults.
func (c *Config) withDefaults() error {
	if err := c.Validate(); err != nil {
		return err
	}
	d := DefaultConfig()
	c.ConnsPerNode = cmp.Or(c.ConnsPerNode, d.ConnsPerNode)
	c.MaxInflight = cmp.Or(c.MaxInflight, d.MaxInflight)
	c.DialTimeout = cmp.Or(c.DialTimeout, d.DialTimeout)
	c.RequestTimeout = cmp.Or(c.RequestTimeout, d.RequestTimeout)
	c.AttemptTimeout = cmp.Or(c.AttemptTimeout, d.AttemptTimeout)
	c.RetryBackoff = cmp.Or(c.RetryBackoff, d.RetryBackoff)
	c.MaxRetryBackoff = max(cmp.Or(c.MaxRetryBackoff, d.MaxRetryBackoff), c.RetryBackoff)
	c.MaxFrame = cmp.Or(c.MaxFrame, d.MaxFrame)
	c.Name = cmp.Or(c.Name, d.Name)
	return nil
}

// Client talks to a followgraph cluster (or a single node).
type Client struct {
	cfg Config

	mu      sync.Mutex
	pools   map[string]*pool
	down    map[string]time.Time // unreachable nodes, until when to avoid them
	smap    wire.ShardMap
	shards  int
	welcome wire.Welcome
	closed  bool
}

// New connects to the first reachable address, learns the shard map and
// returns a Client.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, pools: map[string]*pool{}}
	var errs []error
	for _, addr := range cfg.Addrs {
		cn, err := c.conn(ctx, addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			if codes.Of(err) == codes.AuthFailed || codes.Of(err) == codes.UnsupportedVersion {
				break
			}
			continue
		}
		c.welcome = cn.welcome
		c.shards = cn.welcome.Shards
		if err := c.refreshMap(ctx); err != nil {
			errs = append(errs, err)
			continue
		}
		return c, nil
	}
	c.Close()
	return nil, fmt.Errorf("client: no node reachable: %w", errors.Join(errs...))
}

// Close closes every connection. Calls in flight fail.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	pools := c.pools
	c.pools = map[string]*pool{}
	c.mu.Unlock()
	for _, p := range pools {
		p.close()
	}
	return nil
}

// Welcome returns the handshake response of the first node reached.
func (c *Client) Welcome() wire.Welcome { return c.welcome }

// conn returns a connection to addr, dialling if needed.
func (c *Client) conn(ctx context.Context, addr string) (*conn, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	p := c.pools[addr]
	if p == nil {
		p = &pool{c: c, addr: addr, conns: make([]*conn, c.cfg.ConnsPerNode)}
		c.pools[addr] = p
	}
	c.mu.Unlock()
	return p.get(ctx)
}

// refreshMap asks any node for the shard map.
func (c *Client) refreshMap(ctx context.Context) error {
	var lastErr error
	cands := c.candidates()
	c.mu.Lock()
	now := time.Now()
	slices.SortStableFunc(cands, func(a, b string) int {
		da, db := now.Before(c.down[a]), now.Before(c.down[b])
		switch {
		case da == db:
			return 0
		case db:
			return -1
		}
		return 1
	})
	c.mu.Unlock()
	for _, addr := range cands {
		cn, err := c.conn(ctx, addr)
		if err != nil {
			c.markDown(addr)
			lastErr = err
			continue
		}
		body, err := cn.call(ctx, wire.OpShardMap, wire.AppendEmpty)
		if err != nil {
			lastErr = err
			continue
		}
		m, err := wire.ParseShardMap(body)
		if err != nil {
			lastErr = err
			continue
		}
		// The map just fetched replaces the held one whatever its version:
		// versions count one node's maps and do not compare across nodes,
		// and the client refreshes because what it holds proved wrong.
		c.mu.Lock()
		c.smap = m
		c.shards = m.Shards
		c.mu.Unlock()
		return nil
	}
	return lastErr
}

// candidates lists known node addresses, seeds first.
func (c *Client) candidates() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, a := range c.cfg.Addrs {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, l := range c.smap.Leaders {
		if l.Addr != "" && !seen[l.Addr] {
			seen[l.Addr] = true
			out = append(out, l.Addr)
		}
	}
	return out
}

// route returns the address to send a request for shard to (-1: any).
func (c *Client) route(shard, attempt int, jumped bool) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if shard >= 0 {
		for _, l := range c.smap.Leaders {
			if l.Shard == shard && l.Addr != "" && now.After(c.down[l.Addr]) {
				// Alternate between the leader and other nodes on retries,
				// except right after a redirect named the leader.
				if attempt == 0 || attempt%2 == 1 || jumped {
					return l.Addr
				}
			}
		}
	}
	// No known leader, the leader is unreachable, or it keeps failing: any
	// node forwards. Prefer nodes that answered recently.
	var live []string
	for _, a := range c.cfg.Addrs {
		if now.After(c.down[a]) {
			live = append(live, a)
		}
	}
	if len(live) == 0 {
		live = c.cfg.Addrs
	}
	return live[(attempt+rand.IntN(len(live)))%len(live)]
}

// markDown records that addr could not be reached; routing avoids it for
// a moment.
func (c *Client) markDown(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down == nil {
		c.down = map[string]time.Time{}
	}
	c.down[addr] = time.Now().Add(downFor)
}

// downFor is how long an unreachable node is avoided.
const downFor = 2 * time.Second

// learnLeader updates the map from a "not leader" reply, which names the
// shard's leader: the next attempt goes there without a map refresh.
func (c *Client) learnLeader(shard int, err error) bool {
	var ce *codes.Error
	if shard < 0 || !errors.As(err, &ce) || ce.Code != codes.NotLeader {
		return false
	}
	i := strings.LastIndex(ce.Msg, " at ")
	if i < 0 {
		return false
	}
	addr := strings.TrimSpace(ce.Msg[i+4:])
	c.mu.Lock()
	defer c.mu.Unlock()
	for j := range c.smap.Leaders {
		if c.smap.Leaders[j].Shard == shard {
			c.smap.Leaders[j].Addr = addr
			return true
		}
	}
	return false
}

// ShardOf returns the shard of a user.
func (c *Client) ShardOf(user string) int {
	c.mu.Lock()
	n := c.shards
	c.mu.Unlock()
	return shard.Of(user, n)
}

// do sends a request for shard (or any node for -1) with retries.
func (c *Client) do(ctx context.Context, shard int, op wire.Op, body func([]byte) []byte) ([]byte, error) {
	resp, _, err := c.doAt(ctx, shard, op, body)
	return resp, err
}

// doAt is do, also returning the address of the node that answered.
func (c *Client) doAt(ctx context.Context, shard int, op wire.Op, body func([]byte) []byte) ([]byte, string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
		defer cancel()
	}
	backoff := c.cfg.RetryBackoff
	jumps := 0
	write := op == wire.OpFollow || op == wire.OpUnfollow || op == wire.OpImport || op == wire.OpRemoveUser
	var unknown error // an earlier attempt of a write that may have applied
	var failed error  // the last failure that was not the call's deadline
	for attempt := 0; ; attempt++ {
		addr := c.route(shard, attempt, jumps > 0)
		resp, cn, err := c.attempt(ctx, addr, op, body)
		if err == nil {
			return resp, addr, nil
		}
		if ctx.Err() == nil {
			failed = err
		} else if failed != nil && codes.Of(err) == codes.Timeout {
			// The deadline cut the last attempt short: what kept the call
			// from succeeding is the failure before it.
			msg := err.Error()
			var ce *codes.Error
			if errors.As(err, &ce) && ce.Msg != "" {
				msg = ce.Msg
			}
			err = codes.New(codes.Timeout, "%s (last failure: %v)", msg, failed)
		}
		ambiguous := write && cn != nil && !Definite(err)
		if ambiguous && unknown == nil {
			unknown = err
		}
		if ambiguous && c.cfg.KnownOutcomeWrites || !retryable(err) || c.retriesSpent(attempt) || ctx.Err() != nil {
			return nil, "", giveUp(ctx, err, unknown)
		}
		if cn == nil || errors.Is(err, errConnLost) {
			c.markDown(addr)
		}
		switch {
		case jumps < 2 && c.learnLeader(shard, err):
			// Straight to the named leader, at most twice in a row: nodes
			// with stale views may name each other.
			jumps++
			continue
		case codes.Of(err) == codes.NotLeader || codes.Of(err) == codes.ShardUnavailable:
			c.refreshMap(ctx)
		}
		jumps = 0
		jitter := time.Duration(rand.Int64N(int64(backoff)/2 + 1))
		select {
		case <-time.After(backoff + jitter):
		case <-ctx.Done():
			return nil, "", giveUp(ctx, err, unknown)
		}
		backoff = min(2*backoff, c.cfg.MaxRetryBackoff)
	}
}

// attempt sends the request once, to addr, within Config.AttemptTimeout
// (and ctx). An attempt that runs out of its own time, while the call has
// time left, marks addr unreachable for a moment: a node that does not
// answer (paused, overloaded, partitioned) is routed around, and the
// retry finds the shard's new leader. cn is nil if no connection was made.
func (c *Client) attempt(ctx context.Context, addr string, op wire.Op, body func([]byte) []byte) ([]byte, *conn, error) {
	actx := ctx
	if c.cfg.AttemptTimeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, c.cfg.AttemptTimeout)
		defer cancel()
	}
	cn, err := c.conn(actx, addr)
	var resp []byte
	if err == nil {
		resp, err = cn.call(actx, op, body)
	}
	if err != nil && actx.Err() != nil && ctx.Err() == nil {
		c.markDown(addr)
		err = codes.New(codes.Timeout, "%s did not answer within %v (a write may still be applied; retrying is safe): %v", addr, c.cfg.AttemptTimeout, err)
	}
	return resp, cn, err
}

// giveUp is the error of a request whose last attempt failed with err;
// unknown, if set, is the failure of an earlier attempt of a write that
// may have applied.
func giveUp(ctx context.Context, err, unknown error) error {
	if ctx.Err() != nil && codes.Of(err) != codes.Timeout {
		return codes.New(codes.Timeout, "%v (last error: %v)", ctx.Err(), err)
	}
	if unknown != nil && Definite(err) {
		// The last refusal says nothing about the earlier attempt,
		// which may have applied.
		return codes.New(codes.Timeout, "outcome unknown: an earlier attempt failed with %v; the last with %v", unknown, err)
	}
	return err
}

// retriesSpent reports whether attempt (counted from 0) was the last one
// Config.Retries allows; with Retries 0, only the deadline ends retries.
func (c *Client) retriesSpent(attempt int) bool {
	return c.cfg.Retries < 0 || c.cfg.Retries > 0 && attempt >= c.cfg.Retries
}

// definite reports whether a request that failed with err certainly had no
// effect: it was refused before any work was done.

// Definite reports whether a write that failed with err certainly did not
// apply: its code is one the server returns only before a write reaches
// the raft log (docs/PROTOCOL.md, "Outcome of a failed write"). Timeouts,
// internal errors and connections lost with the request in flight leave
// the outcome unknown.
func Definite(err error) bool {
	switch codes.Of(err) {
	case codes.NotLeader, codes.ShardUnavailable, codes.ShuttingDown, codes.Overloaded, codes.RateLimited, codes.NotAllowed,
		codes.InvalidParam, codes.UserRemoving, codes.AuthFailed, codes.FrameTooLarge, codes.UnsupportedVersion, codes.UnknownOp:
		return true
	}
	return false
}

func retryable(err error) bool {
	if errors.Is(err, ErrClosed) {
		return false
	}
	var ce *codes.Error
	if errors.As(err, &ce) {
		return ce.Code.Retryable()
	}
	return true // connection errors: the request may be resent
}

// WriteOption modifies a write.
type WriteOption func(*wire.WriteRequest)

// Sync makes Follow and Unfollow return only once the reverse side (the
// targets' followers and mutual lists, possibly on other shards) is applied.
func Sync() WriteOption { return func(w *wire.WriteRequest) { w.Sync = true } }

func (c *Client) write(ctx context.Context, op wire.Op, actor string, targets []string, opts []WriteOption) ([]Result, error) {
	req := wire.WriteRequest{Actor: actor, Targets: targets}
	for _, o := range opts {
		o(&req)
	}
	body, err := c.do(ctx, c.ShardOf(actor), op, func(b []byte) []byte { return wire.AppendWriteRequest(b, req) })
	if err != nil {
		return nil, err
	}
	return wire.ParseResults(body)
}

// Follow makes actor follow each target (1 to 20). It returns one Result
// per target; following someone already followed succeeds.
func (c *Client) Follow(ctx context.Context, actor string, targets []string, opts ...WriteOption) ([]Result, error) {
	return c.write(ctx, wire.OpFollow, actor, targets, opts)
}

// Unfollow makes actor stop following each target (1 to 20).
func (c *Client) Unfollow(ctx context.Context, actor string, targets []string, opts ...WriteOption) ([]Result, error) {
	return c.write(ctx, wire.OpUnfollow, actor, targets, opts)
}

// ListOption modifies a list request.
type ListOption func(*wire.ListRequest)

// Cursor continues from a previous page's NextCursor.
func Cursor(cursor string) ListOption { return func(l *wire.ListRequest) { l.Cursor = cursor } }

// Limit sets the page size (1 to 500; the server's default is 100).
func Limit(n int) ListOption { return func(l *wire.ListRequest) { l.Limit = n } }

// Consistency levels of reads (see ReadConsistency).
const (
	Leader       = wire.Leader
	Linearizable = wire.Linearizable
	Any          = wire.Any
)

// ReadConsistency sets a list's consistency: Leader (the default),
// Linearizable (leadership confirmed by a quorum), or Any (any replica,
// possibly stale).
func ReadConsistency(c wire.Consistency) ListOption {
	return func(l *wire.ListRequest) { l.Consistency = c }
}

func (c *Client) list(ctx context.Context, op wire.Op, user string, opts []ListOption) (Page, error) {
	req := wire.ListRequest{User: user}
	for _, o := range opts {
		o(&req)
	}
	if req.Limit < 0 {
		return Page{}, codes.New(codes.InvalidParam, "limit %d: want 1 to 500, or 0 for the server's default", req.Limit)
	}
	shard := c.ShardOf(user)
	if req.Consistency == wire.Any {
		shard = -1 // any node: it reads its own replica, or forwards
	}
	body, err := c.do(ctx, shard, op, func(b []byte) []byte { return wire.AppendListRequest(b, req) })
	if err != nil {
		return Page{}, err
	}
	return wire.ParsePage(body)
}

// Followers returns a page of user's followers, newest first.
func (c *Client) Followers(ctx context.Context, user string, opts ...ListOption) (Page, error) {
	return c.list(ctx, wire.OpFollowers, user, opts)
}

// Following returns a page of the users user follows, newest first.
func (c *Client) Following(ctx context.Context, user string, opts ...ListOption) (Page, error) {
	return c.list(ctx, wire.OpFollowing, user, opts)
}

// Mutual returns a page of user's mutual follows, by the time the relation
// became mutual, newest first.
func (c *Client) Mutual(ctx context.Context, user string, opts ...ListOption) (Page, error) {
	return c.list(ctx, wire.OpMutual, user, opts)
}

// Info returns the counts of each user, in order: any number of users
// (at least one). They go in requests of at most MaxInfoPerRequest (the
// server's limit per request), each to its shard's leader, in parallel.
func (c *Client) Info(ctx context.Context, users ...string) ([]Info, error) {
	return c.InfoAt(ctx, Leader, users...)
}

// InfoAt is Info at a chosen read consistency.
func (c *Client) InfoAt(ctx context.Context, cons wire.Consistency, users ...string) ([]Info, error) {
	if len(users) == 0 {
		return nil, codes.New(codes.InvalidParam, "no users")
	}
	out := make([]Info, len(users))
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	sem := make(chan struct{}, infoParallel)
	for _, g := range c.infoGroups(cons, users) {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			is, err := c.infoPart(ctx, g.shard, cons, users, g.idx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				firstErr = cmp.Or(firstErr, err)
				return
			}
			for j, i := range g.idx {
				out[i] = is[j]
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// MaxInfoPerRequest is the most users the client puts in one info
// request: the server's default limit. Info takes any number of users and
// sends as many requests as it needs, at most infoParallel at once.
const MaxInfoPerRequest = 100

const infoParallel = 16

type infoGroup struct {
	shard int   // -1: any node
	idx   []int // indexes into the users
}

// infoGroups splits users into requests of at most MaxInfoPerRequest: by
// shard, each to the shard's leader, except at consistency Any, where any
// node reads the shards it holds and forwards the rest.
func (c *Client) infoGroups(cons wire.Consistency, users []string) []infoGroup {
	byShard := map[int][]int{}
	for i, u := range users {
		s := -1
		if cons != wire.Any {
			s = c.ShardOf(u)
		}
		byShard[s] = append(byShard[s], i)
	}
	var gs []infoGroup
	for s, idx := range byShard {
		for len(idx) > 0 {
			n := min(len(idx), MaxInfoPerRequest)
			gs = append(gs, infoGroup{s, idx[:n]})
			idx = idx[n:]
		}
	}
	return gs
}

// infoPart sends one info request for users[idx...].
func (c *Client) infoPart(ctx context.Context, shard int, cons wire.Consistency, users []string, idx []int) ([]Info, error) {
	part := make([]string, len(idx))
	for j, i := range idx {
		part[j] = users[i]
	}
	body, err := c.do(ctx, shard, wire.OpInfo, func(b []byte) []byte {
		return wire.AppendInfoRequest(b, wire.UsersRequest{Users: part, Consistency: cons})
	})
	if err != nil {
		return nil, err
	}
	is, err := wire.ParseInfos(body)
	if err == nil && len(is) != len(part) {
		err = codes.New(codes.Internal, "info: %d results for %d users", len(is), len(part))
	}
	return is, err
}

// Check returns the relation of actor with each target (1 to 100).
func (c *Client) Check(ctx context.Context, actor string, targets ...string) ([]Check, error) {
	return c.CheckAt(ctx, Leader, actor, targets...)
}

// CheckAt is Check at a chosen read consistency.
func (c *Client) CheckAt(ctx context.Context, cons wire.Consistency, actor string, targets ...string) ([]Check, error) {
	req := wire.CheckRequest{Actor: actor, Targets: targets, Consistency: cons}
	shard := c.ShardOf(actor)
	if cons == wire.Any {
		shard = -1
	}
	body, err := c.do(ctx, shard, wire.OpCheck, func(b []byte) []byte { return wire.AppendCheckRequest(b, req) })
	if err != nil {
		return nil, err
	}
	return wire.ParseChecks(body)
}

// Status returns the status of the node at addr ("" for the first seed).
func (c *Client) Status(ctx context.Context, addr string) (Status, error) {
	if addr == "" {
		addr = c.cfg.Addrs[0]
	}
	cn, err := c.conn(ctx, addr)
	if err != nil {
		return Status{}, err
	}
	body, err := cn.call(ctx, wire.OpStatus, wire.AppendEmpty)
	if err != nil {
		return Status{}, err
	}
	return wire.ParseStatus(body)
}

// ShardMap returns the client's current shard map, refreshed from a node.
func (c *Client) ShardMap(ctx context.Context) (ShardMap, error) {
	if err := c.refreshMap(ctx); err != nil {
		return ShardMap{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.smap, nil
}

// Ping round-trips an empty request to the node at addr ("" for the first
// seed).
func (c *Client) Ping(ctx context.Context, addr string) error {
	if addr == "" {
		addr = c.cfg.Addrs[0]
	}
	cn, err := c.conn(ctx, addr)
	if err != nil {
		return err
	}
	_, err = cn.call(ctx, wire.OpPing, wire.AppendEmpty)
	return err
}

// NewLazy returns a Client that connects only when first used. Servers use
// it to reach their peers (forwarding, relaying), whose addresses they learn
// from gossip.
func NewLazy(cfg Config) (*Client, error) {
	if len(cfg.Addrs) == 0 {
		cfg.Addrs = []string{"127.0.0.1:0"} // never dialled: Call names its node
	}
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, pools: map[string]*pool{}, shards: 1}, nil
}

// Call sends one request to the node at addr, without routing or retries,
// and returns the response body. body appends the request body.
func (c *Client) Call(ctx context.Context, addr string, op wire.Op, body func([]byte) []byte) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.RequestTimeout)
		defer cancel()
	}
	cn, err := c.conn(ctx, addr)
	if err != nil {
		return nil, err
	}
	return cn.call(ctx, op, body)
}

// Drain asks node (by ID) to move its replicas and leaderships to other
// nodes (on), or to stop (off). Any node forwards the request.
func (c *Client) Drain(ctx context.Context, node string, on bool) error {
	_, err := c.do(ctx, -1, wire.OpDrain, func(b []byte) []byte { return wire.AppendDrainRequest(b, wire.DrainRequest{Node: node, On: on}) })
	return err
}

// Recover makes shard (-1: every shard that lost its quorum) serve again
// from node's replica alone, after the shard lost a majority of its
// replicas for good. It is unsafe - what only the lost replicas held is
// gone - and the server refuses it unless acceptDataLoss is true. Any node
// forwards the request to node.
func (c *Client) Recover(ctx context.Context, node string, shard int, acceptDataLoss bool) ([]wire.Recovered, error) {
	body, err := c.do(ctx, -1, wire.OpRecover, func(b []byte) []byte {
		return wire.AppendRecoverRequest(b, wire.RecoverRequest{Node: node, Shard: shard, AcceptDataLoss: acceptDataLoss})
	})
	if err != nil {
		return nil, err
	}
	return wire.ParseRecovered(body)
}

// ScanUsers lists users of shard, starting at from (0 first), from the
// shard's leader; the result's Next is where to continue (0 at the end).
// The position is the leader's own, so restart the scan if the leader
// changes (followctl verify runs at a quiescent moment).
func (c *Client) ScanUsers(ctx context.Context, shard int, from uint64, limit int) (wire.UserPage, error) {
	body, err := c.do(ctx, shard, wire.OpScanUsers, func(b []byte) []byte {
		return wire.AppendScanRequest(b, wire.ScanRequest{Shard: shard, From: from, Limit: limit})
	})
	if err != nil {
		return wire.UserPage{}, err
	}
	return wire.ParseUserPage(body)
}
