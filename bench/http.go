package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
// the binary protocol's on the same graph. The API's port also serves
// /metrics, so memory and CPU figures come from the same address.
type HTTPTarget struct {
	base       string // scheme://host:port
	metricsURL string
	hc         *http.Client
	token      string
	tokenName  string
	metrics    *FollowdTarget // for /metrics scrapes only (no client connection)
}

// OpenHTTP returns a target for the JSON API at base (http://host:port or
// https://host:port). Each concurrent request uses its own keep-alive
// connection: HTTP/1.1 has no pipelining worth the name.
func OpenHTTP(ctx context.Context, base string, o TargetOptions) (*HTTPTarget, error) {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	if o.TLS != nil {
		tr.TLSClientConfig = o.TLS.Clone()
	}
	t := &HTTPTarget{base: base, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}, token: o.Token, tokenName: o.TokenName}
	t.metricsURL = base
	if o.MetricsURL != "" {
		t.metricsURL = o.MetricsURL
	}
	t.metrics = &FollowdTarget{metricsURL: t.metricsURL, http: t.hc}
	if _, err := t.status(ctx); err != nil {
		return nil, fmt.Errorf("followd JSON API at %s: %w", base, err)
	}
	return t, nil
}

// call sends one request and decodes a 200's body into out; an error
// response becomes a *codes.Error with the API's code.
func (t *HTTPTarget) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
		if t.tokenName != "" {
			req.Header.Set(httpapi.TokenNameHeader, t.tokenName)
		}
	}
	resp, err := t.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Code    codes.Code `json:"code"`
			Message string     `json:"message"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Code == 0 {
			return fmt.Errorf("%s %s: %s", method, path, resp.Status)
		}
		return codes.New(e.Code, "%s", e.Message)
	}
	return json.Unmarshal(raw, out)
}

type httpResults struct {
	Results []struct {
		UserID     string     `json:"userId"`
		Code       codes.Code `json:"code"`
		Info       string     `json:"info"`
		FollowType uint8      `json:"followType"`
		Following  int64      `json:"following"`
		Followers  int64      `json:"followers"`
		Mutual     int64      `json:"mutual"`
	} `json:"results"`
}

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
		Notes: fmt.Sprintf("node %s, %d shards, native JSON API over HTTP/1.1 keep-alive", st.Node, len(st.Shards))}, nil
}

func (t *HTTPTarget) write(ctx context.Context, path, actor string, targets []string) error {
	var res httpResults
	if err := t.call(ctx, http.MethodPost, path, map[string]any{"actor": actor, "targets": targets}, &res); err != nil {
		return err
	}
	for _, r := range res.Results {
		if r.Code != 0 {
			return codes.New(r.Code, "%s %s: %s", path, r.UserID, r.Info)
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
	if err := t.call(ctx, http.MethodPost, "/v1/check", map[string]any{"actor": actor, "targets": targets}, &res); err != nil {
		return nil, err
	}
	out := make([]uint8, len(res.Results))
	for i, r := range res.Results {
		if r.Code != 0 {
			return nil, codes.New(r.Code, "check %s", r.UserID)
		}
		out[i] = r.FollowType
	}
	return out, nil
}

func (t *HTTPTarget) Counts(ctx context.Context, users []string) ([]Counts, error) {
	out := make([]Counts, 0, len(users))
	// The API takes at most 100 users per request, as the protocol does.
	for len(users) > 0 {
		n := min(len(users), 100)
		var res httpResults
		if err := t.call(ctx, http.MethodPost, "/v1/info", map[string]any{"users": users[:n]}, &res); err != nil {
			return nil, err
		}
		for _, r := range res.Results {
			if r.Code != 0 {
				return nil, codes.New(r.Code, "info %s", r.UserID)
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
	var p struct {
		Items []struct {
			UserID     string `json:"userId"`
			FollowTime int64  `json:"followTime"`
		} `json:"items"`
		NextCursor string `json:"nextCursor"`
	}
	if err := t.call(ctx, http.MethodGet, path, nil, &p); err != nil {
		return Page{}, err
	}
	out := Page{Items: make([]Item, len(p.Items)), Next: p.NextCursor}
	for i, it := range p.Items {
		out.Items[i] = Item{it.UserID, it.FollowTime}
	}
	return out, nil
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
	t.hc.CloseIdleConnections()
	return nil
}
