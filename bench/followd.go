package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/codes"
)

// FollowdTarget drives followd through the Go client.
type FollowdTarget struct {
	c          *client.Client
	addr       string
	metricsURL string
	http       *http.Client
}

// OpenFollowd connects to followd at addr.
func OpenFollowd(ctx context.Context, addr string, o TargetOptions) (*FollowdTarget, error) {
	conns := o.Conns
	if conns <= 0 {
		conns = 4
	}
	c, err := client.New(ctx, client.Config{Addrs: []string{addr}, Token: o.Token, TokenName: o.TokenName, ConnsPerNode: conns, MaxInflight: 4096, Name: "followbench", TLS: o.TLS})
	if err != nil {
		return nil, err
	}
	m, hc := o.MetricsURL, http.DefaultClient
	scheme := "http://"
	if o.TLS != nil {
		// followd's HTTP port follows its client port's TLS.
		scheme = "https://"
		hc = &http.Client{Transport: &http.Transport{TLSClientConfig: o.TLS.Clone()}}
	}
	if m == "" {
		host, _, _ := net.SplitHostPort(addr)
		m = scheme + net.JoinHostPort(host, "7780")
	}
	return &FollowdTarget{c: c, addr: addr, metricsURL: strings.TrimSuffix(m, "/"), http: hc}, nil
}

// Client returns the underlying client.
func (f *FollowdTarget) Client() *client.Client { return f.c }

func (f *FollowdTarget) Info(ctx context.Context) (TargetInfo, error) {
	st, err := f.c.Status(ctx, "")
	if err != nil {
		return TargetInfo{}, err
	}
	return TargetInfo{Kind: "followd", Addr: f.addr, Version: st.Server,
		Notes: fmt.Sprintf("node %s, %d shards, raft log fsync'ed per batch", st.NodeID, len(st.Shards))}, nil
}

// itemErr turns a per-item failure into an error: the harness counts it.
func itemErr(op string, rs []client.Result) error {
	for _, r := range rs {
		if r.Code != 0 {
			return codes.New(r.Code, "%s %s: %s", op, r.UserID, r.Info)
		}
	}
	return nil
}

func (f *FollowdTarget) Follow(ctx context.Context, actor string, targets []string) error {
	rs, err := f.c.Follow(ctx, actor, targets)
	if err != nil {
		return err
	}
	return itemErr("follow", rs)
}

func (f *FollowdTarget) Unfollow(ctx context.Context, actor string, targets []string) error {
	rs, err := f.c.Unfollow(ctx, actor, targets)
	if err != nil {
		return err
	}
	return itemErr("unfollow", rs)
}

func (f *FollowdTarget) Check(ctx context.Context, actor string, targets []string) ([]uint8, error) {
	cs, err := f.c.Check(ctx, actor, targets...)
	if err != nil {
		return nil, err
	}
	out := make([]uint8, len(cs))
	for i, c := range cs {
		if c.Code != 0 {
			return nil, codes.New(c.Code, "check %s", c.UserID)
		}
		out[i] = c.FollowType
	}
	return out, nil
}

func (f *FollowdTarget) Counts(ctx context.Context, users []string) ([]Counts, error) {
	is, err := f.c.Info(ctx, users...)
	if err != nil {
		return nil, err
	}
	out := make([]Counts, len(is))
	for i, in := range is {
		if in.Code != 0 {
			return nil, codes.New(in.Code, "info %s", in.UserID)
		}
		out[i] = Counts{int64(in.Following), int64(in.Followers), int64(in.Mutual)}
	}
	return out, nil
}

func (f *FollowdTarget) List(ctx context.Context, kind ListKind, user, cursor string, limit int) (Page, error) {
	opts := []client.ListOption{client.Limit(limit), client.Cursor(cursor)}
	var p client.Page
	var err error
	switch kind {
	case Following:
		p, err = f.c.Following(ctx, user, opts...)
	case Followers:
		p, err = f.c.Followers(ctx, user, opts...)
	default:
		p, err = f.c.Mutual(ctx, user, opts...)
	}
	if err != nil {
		return Page{}, err
	}
	out := Page{Items: make([]Item, len(p.Items)), Next: p.NextCursor}
	for i, it := range p.Items {
		out.Items[i] = Item{it.UserID, it.FollowTime}
	}
	return out, nil
}

// Load sends the batch's follows concurrently; the client pipelines them on
// its connections and followd group-commits them.
func (f *FollowdTarget) Load(ctx context.Context, batch []FollowBatch) error {
	errs := make(chan error, len(batch))
	for _, b := range batch {
		go func() { errs <- f.Follow(ctx, b.Actor, b.Targets) }()
	}
	var first error
	for range batch {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Quiesce waits until no shard has undelivered reverse edges.
func (f *FollowdTarget) Quiesce(ctx context.Context) error {
	for {
		st, err := f.c.Status(ctx, "")
		if err != nil {
			return err
		}
		pending := uint64(0)
		for _, s := range st.Shards {
			pending += s.LagRecords
		}
		if pending == 0 {
			return nil
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("%d reverse edges still pending: %w", pending, ctx.Err())
		}
	}
}

// Memory reads process_resident_memory_bytes and the shards' edge counts
// from followd's /metrics.
func (f *FollowdTarget) Memory(ctx context.Context) (Memory, error) {
	m := Memory{Source: f.metricsURL + "/metrics"}
	err := f.scrape(ctx, func(name string, v float64) {
		switch {
		case name == "process_resident_memory_bytes":
			m.RSSBytes = int64(v)
		case strings.HasPrefix(name, "followgraph_shard_edges{"):
			m.Edges += int64(v)
		}
	})
	return m, err
}

// CPUSeconds reads process_cpu_seconds_total from followd's /metrics: the
// CPU of the node followbench talks to (in a cluster, that node only).
func (f *FollowdTarget) CPUSeconds(ctx context.Context) (float64, string, error) {
	secs, found := 0.0, false
	err := f.scrape(ctx, func(name string, v float64) {
		if name == "process_cpu_seconds_total" {
			secs, found = v, true
		}
	})
	if err == nil && !found {
		err = fmt.Errorf("followd metrics at %s: no process_cpu_seconds_total", f.metricsURL)
	}
	return secs, f.metricsURL + "/metrics process_cpu_seconds_total", err
}

// scrape calls fn with every sample of followd's /metrics (text format:
// name with labels, then the value).
func (f *FollowdTarget) scrape(ctx context.Context, fn func(name string, v float64)) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", f.metricsURL+"/metrics", nil)
	resp, err := f.http.Do(req)
	if err != nil {
		return fmt.Errorf("followd metrics (set --metrics): %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("followd metrics at %s: %s", f.metricsURL, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			fn(name, v)
		}
	}
	return sc.Err()
}

// Flush is not supported: followd has no delete-everything operation.
// Point followbench at a fresh data directory instead.
func (f *FollowdTarget) Flush(ctx context.Context) error {
	return fmt.Errorf("followd cannot be flushed; start it on an empty data directory")
}

func (f *FollowdTarget) Close() error { return f.c.Close() }
