package bench

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/httpapi"
)

// HTTPTarget drives followd's native JSON API (package httpapi) over
// HTTP/1.1 keep-alive connections, so that its cost can be compared with
// the binary protocol's on the same graph. Its client (httpconn.go) is a
// lean one over raw connections, one request at a time per connection or
// pipelined. The API's port also serves /metrics, so memory and CPU
// figures come from the same address (through net/http: not on the hot
// path).
type HTTPTarget struct {
	base    string // scheme://host:port
	mode    string // for reports
	pool    httpDoer
	header  []byte         // Host and credentials: the same on every request
	metrics *FollowdTarget // for /metrics scrapes only (no client connection)
	scrapes *http.Client
}

// httpDoer sends one request and fills in its response; an error of ctx
// means the call is still owned by the connection (see pipePool.do).
type httpDoer interface {
	do(ctx context.Context, c *httpCall) error
	close()
}

// OpenHTTP returns a target for the JSON API at base (http://host:port or
// https://host:port). With pipeline 0, each concurrent request uses its
// own keep-alive connection, as with Go's net/http client; with pipeline
// N > 0, all requests share o.Conns connections (default 4, as the
// followd:// target) with up to N requests in flight on each.
func OpenHTTP(ctx context.Context, base string, pipeline int, o TargetOptions) (*HTTPTarget, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("HTTP target %q: want http://host:port", base)
	}
	addr, port := u.Host, "80"
	if u.Scheme == "https" {
		port = "443"
	}
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	var tc *tls.Config
	tr := &http.Transport{DisableCompression: true}
	if u.Scheme == "https" {
		tc = &tls.Config{ServerName: u.Hostname()}
		if o.TLS != nil {
			tc = o.TLS.Clone()
		}
		tr.TLSClientConfig = tc.Clone()
	}
	t := &HTTPTarget{base: base, scrapes: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	t.header = fmt.Appendf(nil, "Host: %s\r\n", u.Host)
	if o.Token != "" {
		t.header = fmt.Appendf(t.header, "Authorization: Bearer %s\r\n", o.Token)
		if o.TokenName != "" {
			t.header = fmt.Appendf(t.header, "%s: %s\r\n", httpapi.TokenNameHeader, o.TokenName)
		}
	}
	if pipeline > 0 {
		conns := o.Conns
		if conns <= 0 {
			conns = 4
		}
		pp, err := newPipePool(addr, tc, conns, pipeline)
		if err != nil {
			return nil, fmt.Errorf("followd JSON API at %s: %w", base, err)
		}
		t.pool, t.mode = pp, fmt.Sprintf("pipelined: %d connections, up to %d requests in flight on each", conns, pipeline)
	} else {
		t.pool, t.mode = &serialPool{addr: addr, tls: tc}, "one request at a time per keep-alive connection"
	}
	metricsURL := base
	if o.MetricsURL != "" {
		metricsURL = o.MetricsURL
	}
	t.metrics = &FollowdTarget{metricsURL: metricsURL, http: t.scrapes}
	if _, err := t.status(ctx); err != nil {
		t.pool.close()
		return nil, fmt.Errorf("followd JSON API at %s: %w", base, err)
	}
	return t, nil
}

// call sends one request (body, if not nil, appends the JSON body) and
// decodes a 200's body into out; an error response becomes a *codes.Error
// with the API's code.
func (t *HTTPTarget) call(ctx context.Context, method, path string, body func([]byte) []byte, out any) error {
	c := getCall()
	c.req = append(c.req[:0], method...)
	c.req = append(c.req, ' ')
	c.req = append(c.req, path...)
	c.req = append(c.req, " HTTP/1.1\r\n"...)
	c.req = append(c.req, t.header...)
	if body != nil {
		c.body = body(c.body[:0]) // scratch until the response
		c.req = append(c.req, "Content-Type: application/json\r\nContent-Length: "...)
		c.req = strconv.AppendInt(c.req, int64(len(c.body)), 10)
		c.req = append(c.req, "\r\n\r\n"...)
		c.req = append(c.req, c.body...)
	} else {
		c.req = append(c.req, "\r\n"...)
	}
	if err := t.pool.do(ctx, c); err != nil {
		return err // c still belongs to the connection
	}
	defer putCall(c)
	if c.err != nil {
		return c.err
	}
	if c.status != http.StatusOK {
		var e struct {
			Code    codes.Code `json:"code"`
			Message string     `json:"message"`
		}
		if json.Unmarshal(c.body, &e) != nil || e.Code == 0 {
			return fmt.Errorf("%s %s: HTTP %d", method, path, c.status)
		}
		return codes.New(e.Code, "%s", e.Message)
	}
	return decodeBody(c.body, out)
}

// decodeBody reads the hot responses with the lean reader (httpjson.go),
// the others with encoding/json.
func decodeBody(b []byte, out any) (err error) {
	switch o := out.(type) {
	case *httpResults:
		o.Results, err = decodeResults(b, o.Results[:0])
	case *Page:
		*o, err = decodePage(b)
	default:
		err = json.Unmarshal(b, out)
	}
	return err
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '"' || ch == '\\':
			b = append(b, '\\', ch)
		case ch < 0x20:
			b = fmt.Appendf(b, "\\u%04x", ch)
		default:
			b = append(b, ch)
		}
	}
	return append(b, '"')
}

// appendUsers appends {"KEY":"first",...,"LIST":["a","b"]}: first empty
// leaves KEY out.
func appendUsers(b []byte, key, first, list string, users []string) []byte {
	b = append(b, '{')
	if key != "" {
		b = append(b, '"')
		b = append(b, key...)
		b = append(b, `":`...)
		b = appendJSONString(b, first)
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, list...)
	b = append(b, `":[`...)
	for i, u := range users {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, u)
	}
	return append(b, "]}"...)
}

// httpResults is a write, check or info response, read by decodeResults.
type httpResults struct{ Results []httpResult }

type httpStatus struct {
	Node   string `json:"node"`
	Server string `json:"server"`
	Shards []struct {
		LagRecords uint64 `json:"lagRecords"`
	} `json:"shards"`
}

func (t *HTTPTarget) status(ctx context.Context) (httpStatus, error) {
	var st httpStatus
	err := t.call(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

func (t *HTTPTarget) Info(ctx context.Context) (TargetInfo, error) {
	st, err := t.status(ctx)
	if err != nil {
		return TargetInfo{}, err
	}
	return TargetInfo{Kind: "followd-http", Addr: t.base, Version: st.Server,
		Notes: fmt.Sprintf("node %s, %d shards, native JSON API over HTTP/1.1, %s", st.Node, len(st.Shards), t.mode)}, nil
}

func (t *HTTPTarget) write(ctx context.Context, path, actor string, targets []string) error {
	var res httpResults
	body := func(b []byte) []byte { return appendUsers(b, "actor", actor, "targets", targets) }
	if err := t.call(ctx, http.MethodPost, path, body, &res); err != nil {
		return err
	}
	for _, r := range res.Results {
		if r.Code != 0 {
			return codes.New(codes.Code(r.Code), "%s %s: %s", path, r.UserID, r.Info)
		}
	}
	return nil
}

func (t *HTTPTarget) Follow(ctx context.Context, actor string, targets []string) error {
	return t.write(ctx, "/v1/follow", actor, targets)
}

func (t *HTTPTarget) Unfollow(ctx context.Context, actor string, targets []string) error {
	return t.write(ctx, "/v1/unfollow", actor, targets)
}

func (t *HTTPTarget) Check(ctx context.Context, actor string, targets []string) ([]uint8, error) {
	var res httpResults
	body := func(b []byte) []byte { return appendUsers(b, "actor", actor, "targets", targets) }
	if err := t.call(ctx, http.MethodPost, "/v1/check", body, &res); err != nil {
		return nil, err
	}
	out := make([]uint8, len(res.Results))
	for i, r := range res.Results {
		if r.Code != 0 {
			return nil, codes.New(codes.Code(r.Code), "check %s", r.UserID)
		}
		out[i] = uint8(r.FollowType)
	}
	return out, nil
}

func (t *HTTPTarget) Counts(ctx context.Context, users []string) ([]Counts, error) {
	out := make([]Counts, 0, len(users))
	// The API takes at most 100 users per request, as the protocol does.
	for len(users) > 0 {
		n := min(len(users), 100)
		var res httpResults
		page := users[:n]
		body := func(b []byte) []byte { return appendUsers(b, "", "", "users", page) }
		if err := t.call(ctx, http.MethodPost, "/v1/info", body, &res); err != nil {
			return nil, err
		}
		for _, r := range res.Results {
			if r.Code != 0 {
				return nil, codes.New(codes.Code(r.Code), "info %s", r.UserID)
			}
			out = append(out, Counts{r.Following, r.Followers, r.Mutual})
		}
		users = users[n:]
	}
	return out, nil
}

func (t *HTTPTarget) List(ctx context.Context, kind ListKind, user, cursor string, limit int) (Page, error) {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := "/v1/users/" + url.PathEscape(user) + "/" + kind.String()
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var p Page
	if err := t.call(ctx, http.MethodGet, path, nil, &p); err != nil {
		return Page{}, err
	}
	return p, nil
}

// Load sends the batch's follows concurrently, one connection each.
func (t *HTTPTarget) Load(ctx context.Context, batch []FollowBatch) error {
	errs := make(chan error, len(batch))
	for _, b := range batch {
		go func() { errs <- t.Follow(ctx, b.Actor, b.Targets) }()
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
func (t *HTTPTarget) Quiesce(ctx context.Context) error {
	for {
		st, err := t.status(ctx)
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

func (t *HTTPTarget) Memory(ctx context.Context) (Memory, error) { return t.metrics.Memory(ctx) }

func (t *HTTPTarget) CPUSeconds(ctx context.Context) (float64, string, error) {
	return t.metrics.CPUSeconds(ctx)
}

// Flush is not supported, as for the binary protocol's target.
func (t *HTTPTarget) Flush(ctx context.Context) error {
	return fmt.Errorf("followd cannot be flushed; start it on an empty data directory")
}

func (t *HTTPTarget) Close() error {
	t.pool.close()
	t.scrapes.CloseIdleConnections()
	return nil
}
