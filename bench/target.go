// Package bench is followbench: a load harness for followgraph and for the
// design a user would otherwise pick (Redis sorted sets). It generates
// reproducible power-law graphs, loads them, runs operation mixes in closed
// or open loop with latency measured from the intended send time, checks
// the graph's invariants afterwards, and reports tables, JSON and charts.
//
// The systems under test are Targets: FollowdTarget speaks the followgraph
// protocol through the Go client; HTTPTarget speaks followd's native JSON
// API; RedisTarget implements the same operations with two sorted sets
// per user.
package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"strings"
)

// ListKind selects a list.
type ListKind uint8

// List kinds.
const (
	Following ListKind = iota + 1
	Followers
	Mutual
)

// String names the list.
func (k ListKind) String() string {
	switch k {
	case Following:
		return "following"
	case Followers:
		return "followers"
	case Mutual:
		return "mutual"
	}
	return "?"
}

// Counts are one user's counts.
type Counts struct {
	Following, Followers, Mutual int64
}

// Item is one list entry.
type Item struct {
	User string
	Time int64
}

// Page is a page of a list.
type Page struct {
	Items []Item
	Next  string // empty at the end
}

// FollowBatch is one actor following up to 20 targets, for bulk loading.
type FollowBatch struct {
	Actor   string
	Targets []string
}

// Memory is what a target reports about its memory.
type Memory struct {
	RSSBytes int64  // resident memory of the server process
	Edges    int64  // follow edges it holds (0 if it cannot tell)
	Source   string // where the figures come from
}

// TargetInfo describes a target for reports.
type TargetInfo struct {
	Kind    string // "followd" or "redis"
	Addr    string
	Version string
	Notes   string // configuration worth knowing (persistence, shards...)
}

// Target is a system under test. All methods must be safe for concurrent
// use. Errors that carry a followgraph code keep it (codes.Of).
type Target interface {
	Info(ctx context.Context) (TargetInfo, error)
	// Follow and Unfollow change one actor's edges (1 to 20 targets).
	Follow(ctx context.Context, actor string, targets []string) error
	Unfollow(ctx context.Context, actor string, targets []string) error
	// Check returns the follow type (0..3, REST numbering) of each target
	// seen from actor.
	Check(ctx context.Context, actor string, targets []string) ([]uint8, error)
	// Counts returns each user's counts.
	Counts(ctx context.Context, users []string) ([]Counts, error)
	// List returns a page of a list, newest first.
	List(ctx context.Context, kind ListKind, user, cursor string, limit int) (Page, error)
	// Load writes a batch of follows as fast as the target allows (bulk
	// loading: the target may pipeline and may skip per-request options).
	Load(ctx context.Context, batch []FollowBatch) error
	// Quiesce waits until asynchronous work (followgraph's reverse edges)
	// is done, so that invariants can be checked.
	Quiesce(ctx context.Context) error
	// Memory reports the server's resident memory and edge count.
	Memory(ctx context.Context) (Memory, error)
	// CPUSeconds reports the CPU time (user + system) the server process
	// has used so far, and where the figure comes from.
	CPUSeconds(ctx context.Context) (seconds float64, source string, err error)
	// Flush removes all data (used before loading, when asked to).
	Flush(ctx context.Context) error
	Close() error
}

// TargetOptions configure Open.
type TargetOptions struct {
	Token string
	// TokenName names the token in followd's token file (empty:
	// "default").
	TokenName string
	// MetricsURL is followd's HTTP address for memory and CPU figures
	// (default: the target's host, port 7780; a spec's ?metrics= wins).
	MetricsURL string
	// Conns is the number of connections the target's client may use.
	Conns int
	// TLS, when set, is followd's client TLS configuration (nil:
	// plaintext); it also serves the metrics scrape, whose default URL is
	// then https://.
	TLS *tls.Config
}

// Open connects to a target given as followd://host:port (query
// parameters token, token_name and metrics override o's), http://host:port
// or https://host:port (followd's native JSON API on its HTTP port, with
// the same query parameters), or redis://host:port.
func Open(ctx context.Context, spec string, o TargetOptions) (Target, error) {
	u, err := url.Parse(spec)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("target %q: want followd://host:port, http://host:port or redis://host:port", spec)
	}
	switch strings.ToLower(u.Scheme) {
	case "followd":
		if t := u.Query().Get("token"); t != "" {
			o.Token = t
		}
		if n := u.Query().Get("token_name"); n != "" {
			o.TokenName = n
		}
		if m := u.Query().Get("metrics"); m != "" {
			o.MetricsURL = m
		}
		return OpenFollowd(ctx, u.Host, o)
	case "http", "https":
		if t := u.Query().Get("token"); t != "" {
			o.Token = t
		}
		if n := u.Query().Get("token_name"); n != "" {
			o.TokenName = n
		}
		if m := u.Query().Get("metrics"); m != "" {
			o.MetricsURL = m
		}
		return OpenHTTP(ctx, strings.ToLower(u.Scheme)+"://"+u.Host, o)
	case "redis":
		return OpenRedis(ctx, u.Host, o)
	}
	return nil, fmt.Errorf("target %q: unknown scheme %q (followd, http, https or redis)", spec, u.Scheme)
}
