package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/followgraph/followgraph/cluster/clustertest"
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/httpapi"
	"github.com/followgraph/followgraph/internal/h1"
	"github.com/followgraph/followgraph/internal/tokens"
	"github.com/followgraph/followgraph/wire"
)

// server is the API of a real single node, over real HTTP.
type server struct {
	t    testing.TB
	url  string
	node *clustertest.Node
	hc   *http.Client
}

// startAPI starts a node and serves its router's API; tune adjusts the
// API's configuration, wrap the handler it calls.
func startAPI(t testing.TB, tune func(*httpapi.Config), wrap func(wire.Handler) wire.Handler) *server {
	t.Helper()
	n := clustertest.Start(t, clustertest.Options{})
	cfg := httpapi.DefaultConfig()
	if tune != nil {
		tune(&cfg)
	}
	var h wire.Handler = n.Router
	if wrap != nil {
		h = wrap(h)
	}
	api, err := httpapi.New(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(httpapi.Prefix, api)
	return &server{t: t, url: serveH1(t, mux), node: n, hc: &http.Client{Timeout: 30 * time.Second}}
}

// serveH1 serves h as followd does (package h1, with the API's errors
// for requests the server refuses) and returns its base URL.
func serveH1(t testing.TB, h http.Handler) string {
	t.Helper()
	cfg := h1.DefaultConfig()
	cfg.ErrorBody = httpapi.ProtocolErrorBody
	srv, err := h1.NewServer(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// response is one answer: its status, headers and JSON body.
type response struct {
	status int
	header http.Header
	raw    []byte
}

// fataler is what the helpers need of a test: a testing.TB or a
// rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// decode unmarshals the body into v, failing the test if it is not JSON.
func (r response) decode(t fataler, v any) {
	t.Helper()
	if err := json.Unmarshal(r.raw, v); err != nil {
		t.Fatalf("body %q: %v", r.raw, err)
	}
}

// apiError is the error body.
type apiError struct {
	Code    codes.Code `json:"code"`
	Message string     `json:"message"`
}

// wantError checks an error answer: its status, code and a JSON body
// with a message.
func (r response) wantError(t testing.TB, status int, code codes.Code) apiError {
	t.Helper()
	var e apiError
	r.decode(t, &e)
	if r.status != status || e.Code != code || e.Message == "" || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("want %d with code %d, got %d %s (%s)", status, code, r.status, r.raw, r.header.Get("Content-Type"))
	}
	return e
}

func (s *server) do(method, path, body string, hdr ...string) response {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, raw: raw}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

type result struct {
	UserID     string     `json:"userId"`
	Code       codes.Code `json:"code"`
	Info       string     `json:"info"`
	FollowType uint8      `json:"followType"`
	Following  uint64     `json:"following"`
	Followers  uint64     `json:"followers"`
	Mutual     uint64     `json:"mutual"`
}

type results struct {
	Results []result `json:"results"`
}

type page struct {
	Items []struct {
		UserID     string `json:"userId"`
		FollowTime int64  `json:"followTime"`
	} `json:"items"`
	NextCursor string `json:"nextCursor"`
}

func (s *server) write(path, actor string, targets ...string) []result {
	s.t.Helper()
	r := s.do("POST", path, mustJSON(map[string]any{"actor": actor, "targets": targets, "sync": true}))
	if r.status != 200 {
		s.t.Fatalf("%s %s %v: %d %s", path, actor, targets, r.status, r.raw)
	}
	var res results
	r.decode(s.t, &res)
	return res.Results
}

// list reads a whole list, page by page, with the given page size.
func (s *server) list(kind, user string, limit int, extra string) []string {
	s.t.Helper()
	var out []string
	cursor := ""
	for {
		r := s.do("GET", fmt.Sprintf("/v1/users/%s/%s?limit=%d&cursor=%s%s", url.PathEscape(user), kind, limit, url.QueryEscape(cursor), extra), "")
		if r.status != 200 {
			s.t.Fatalf("list %s %s: %d %s", kind, user, r.status, r.raw)
		}
		var p page
		r.decode(s.t, &p)
		if len(p.Items) > limit {
			s.t.Fatalf("page of %d items, limit %d", len(p.Items), limit)
		}
		for _, it := range p.Items {
			out = append(out, it.UserID)
		}
		if p.NextCursor == "" {
			return out
		}
		cursor = p.NextCursor
	}
}

// Every operation, answered as the binary protocol answers it.
func TestOperations(t *testing.T) {
	s := startAPI(t, nil, nil)
	res := s.write("/v1/follow", "alice", "bob", "carol", "alice", "", strings.Repeat("x", 65), "bob")
	want := []struct {
		code codes.Code
		info string
	}{{0, ""}, {0, ""}, {codes.InvalidParam, "cannot follow or unfollow yourself"}, {codes.InvalidParam, "invalid user ID"}, {codes.InvalidParam, ""}, {0, ""}}
	if len(res) != len(want) {
		t.Fatalf("results %+v", res)
	}
	for i, w := range want {
		if res[i].Code != w.code || (w.info != "" && !strings.HasPrefix(res[i].Info, w.info)) || (w.code == 0) != (res[i].Info == "") {
			t.Fatalf("result %d: %+v, want %+v", i, res[i], w)
		}
	}
	s.write("/v1/follow", "bob", "alice")
	// Follows in the same millisecond tie, and ties list by ID: the
	// order checked below needs dave's to come a millisecond later.
	time.Sleep(2 * time.Millisecond)
	s.write("/v1/follow", "dave", "alice")
	if got := s.list("followers", "alice", 1, ""); strings.Join(got, ",") != "dave,bob" {
		t.Fatalf("followers of alice: %v", got)
	}
	if got := s.list("following", "alice", 500, "&consistency=linearizable"); len(got) != 2 {
		t.Fatalf("following of alice: %v", got)
	}
	if got := s.list("mutual", "alice", 100, "&consistency=any"); strings.Join(got, ",") != "bob" {
		t.Fatalf("mutual of alice: %v", got)
	}
	var infos results
	s.do("POST", "/v1/info", `{"users":["alice","nobody",""],"consistency":"any"}`).decode(t, &infos)
	if in := infos.Results; len(in) != 3 || in[0].Following != 2 || in[0].Followers != 2 || in[0].Mutual != 1 ||
		in[1].Code != 0 || in[1].Followers != 0 || in[2].Code != codes.InvalidParam {
		t.Fatalf("info: %+v", in)
	}
	var checks results
	s.do("POST", "/v1/check", `{"actor":"alice","targets":["bob","carol","dave","alice","\u0000"]}`).decode(t, &checks)
	types := []uint8{3, 2, 1, 0, 0}
	for i, c := range checks.Results {
		if c.FollowType != types[i] || (i < 4) != (c.Code == 0) {
			t.Fatalf("check: %+v", checks.Results)
		}
	}
	res = s.write("/v1/unfollow", "alice", "bob", "zed")
	if res[0].Code != 0 || res[1].Code != 0 {
		t.Fatalf("unfollow: %+v", res)
	}
	if got := s.list("mutual", "alice", 10, ""); len(got) != 0 {
		t.Fatalf("mutual after unfollow: %v", got)
	}
	var st struct {
		Node   string
		Shards []struct{ Ready bool }
	}
	s.do("GET", "/v1/status", "").decode(t, &st)
	if st.Node == "" || len(st.Shards) != 4 || !st.Shards[0].Ready {
		t.Fatalf("status: %+v", st)
	}
	var m struct {
		Shards  int
		Leaders []struct{ Addr string }
	}
	s.do("GET", "/v1/shardmap", "").decode(t, &m)
	if m.Shards != 4 || len(m.Leaders) != 4 || m.Leaders[0].Addr != s.node.Addr {
		t.Fatalf("shard map: %+v", m)
	}
}

// The set queries: known followers, common following, relationships.
func TestSetQueries(t *testing.T) {
	s := startAPI(t, nil, nil)
	for _, a := range []string{"a", "b", "c"} {
		s.write("/v1/follow", a, "x", "y", "z")
	}
	s.write("/v1/follow", "v", "a", "c", "x")
	s.write("/v1/follow", "b", "q")
	type setPage struct {
		page
		Total uint64 `json:"total"`
	}
	all := func(path string) ([]string, uint64) {
		var ids []string
		var total uint64
		cursor := ""
		for {
			var p setPage
			r := s.do("GET", path+"&limit=1&cursor="+url.QueryEscape(cursor), "")
			if r.status != 200 {
				t.Fatalf("%s: %d %s", path, r.status, r.raw)
			}
			r.decode(t, &p)
			for _, it := range p.Items {
				ids = append(ids, it.UserID)
			}
			total = p.Total
			if cursor = p.NextCursor; cursor == "" {
				return ids, total
			}
		}
	}
	// x's followers are a, b, c and v; v follows a and c.
	if ids, total := all("/v1/users/x/known-followers?viewer=v"); total != 2 || len(ids) != 2 || !(ids[0] == "c" && ids[1] == "a" || ids[0] == "a" && ids[1] == "c") {
		t.Fatalf("known followers: %v (total %d)", ids, total)
	}
	if ids, total := all("/v1/users/a/common-following?other=b"); total != 3 || len(ids) != 3 {
		t.Fatalf("common following: %v (total %d)", ids, total)
	}
	var rel struct {
		Results []struct {
			From, To   string
			Code       codes.Code
			FollowType uint8
		}
	}
	s.do("POST", "/v1/relationships", `{"pairs":[{"from":"v","to":"a"},{"from":"x","to":"a"},{"from":"b","to":"c"},{"from":"b","to":""}],"consistency":"any"}`).decode(t, &rel)
	if r := rel.Results; len(r) != 4 || r[0].FollowType != 2 || r[1].FollowType != 1 || r[2].FollowType != 0 || r[3].Code != codes.InvalidParam || r[0].From != "v" || r[0].To != "a" {
		t.Fatalf("relationships: %+v", rel.Results)
	}
	many := make([]map[string]string, 101)
	for i := range many {
		many[i] = map[string]string{"from": "a", "to": fmt.Sprint(i)}
	}
	s.do("POST", "/v1/relationships", mustJSON(map[string]any{"pairs": many})).wantError(t, 400, codes.InvalidParam)
	s.do("GET", "/v1/users/x/known-followers", "").wantError(t, 400, codes.InvalidParam)
	s.do("GET", "/v1/users/x/known-followers?viewer=", "").wantError(t, 400, codes.InvalidParam)
	s.do("GET", "/v1/users/x/known-followers?viewer=v&other=a", "").wantError(t, 400, codes.InvalidParam)
}

// A user ID with a slash and other reserved characters works in a path
// when escaped.
func TestEscapedUserInPath(t *testing.T) {
	s := startAPI(t, nil, nil)
	odd := "a/b c?d%e#é"
	s.write("/v1/follow", odd, "x")
	if got := s.list("following", odd, 10, ""); len(got) != 1 || got[0] != "x" {
		t.Fatalf("following of %q: %v", odd, got)
	}
	if got := s.list("followers", "x", 10, ""); len(got) != 1 || got[0] != odd {
		t.Fatalf("followers of x: %q", got)
	}
}

// The binary protocol's limits, with its codes.
func TestLimits(t *testing.T) {
	s := startAPI(t, func(c *httpapi.Config) { c.MaxBody = 4096 }, nil)
	many := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("u%d", i)
		}
		return out
	}
	for name, c := range map[string]struct{ method, path, body string }{
		"21 targets":        {"POST", "/v1/follow", mustJSON(map[string]any{"actor": "a", "targets": many(21)})},
		"no targets":        {"POST", "/v1/unfollow", `{"actor":"a","targets":[]}`},
		"101 users":         {"POST", "/v1/info", mustJSON(map[string]any{"users": many(101)})},
		"101 targets":       {"POST", "/v1/check", mustJSON(map[string]any{"actor": "a", "targets": many(101)})},
		"invalid actor":     {"POST", "/v1/check", `{"actor":"","targets":["b"]}`},
		"long target":       {"POST", "/v1/follow", mustJSON(map[string]any{"actor": "a", "targets": []string{strings.Repeat("x", 257)}})},
		"limit 501":         {"GET", "/v1/users/a/followers?limit=501", ""},
		"limit -1":          {"GET", "/v1/users/a/followers?limit=-1", ""},
		"limit twice":       {"GET", "/v1/users/a/followers?limit=1&limit=2", ""},
		"bad cursor":        {"GET", "/v1/users/a/followers?cursor=nope", ""},
		"long cursor":       {"GET", "/v1/users/a/followers?cursor=" + strings.Repeat("c", 257), ""},
		"bad consistency":   {"GET", "/v1/users/a/mutual?consistency=eventual", ""},
		"unknown parameter": {"GET", "/v1/users/a/following?page=2", ""},
		"long user in path": {"GET", "/v1/users/" + strings.Repeat("u", 300) + "/following", ""},
		"invalid user":      {"GET", "/v1/users/%01/following", ""},
		"status query":      {"GET", "/v1/status?x=1", ""},
	} {
		t.Run(name, func(t *testing.T) { s.do(c.method, c.path, c.body).wantError(t, 400, codes.InvalidParam) })
	}
	big := mustJSON(map[string]any{"actor": "a", "targets": []string{strings.Repeat("x", 5000)}})
	s.do("POST", "/v1/follow", big).wantError(t, 413, codes.FrameTooLarge)
	// Without a length the limit holds too (chunked upload).
	req, _ := http.NewRequest("POST", s.url+"/v1/check", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	resp, err := s.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	response{status: resp.StatusCode, header: resp.Header, raw: raw}.wantError(t, 413, codes.FrameTooLarge)
}

// Bad requests of every kind get a JSON error, and the connection serves
// the next request.
func TestBadRequests(t *testing.T) {
	s := startAPI(t, nil, nil)
	for name, c := range map[string]struct{ method, path, body string }{
		"empty body":     {"POST", "/v1/check", ""},
		"not JSON":       {"POST", "/v1/check", "actor=a"},
		"array":          {"POST", "/v1/info", `["a"]`},
		"truncated":      {"POST", "/v1/follow", `{"actor":"a","targets":["b"`},
		"trailing data":  {"POST", "/v1/follow", `{"actor":"a","targets":["b"]}{}`},
		"unknown field":  {"POST", "/v1/follow", `{"actor":"a","targets":["b"],"synk":true}`},
		"case differs":   {"POST", "/v1/follow", `{"Actor":"a","targets":["b"]}`},
		"wrong type":     {"POST", "/v1/follow", `{"actor":"a","targets":"b"}`},
		"number target":  {"POST", "/v1/check", `{"actor":"a","targets":[1]}`},
		"string sync":    {"POST", "/v1/follow", `{"actor":"a","targets":["b"],"sync":"yes"}`},
		"missing actor":  {"POST", "/v1/check", `{"targets":["b"]}`},
		"bad escape":     {"POST", "/v1/check", `{"actor":"a\q","targets":["b"]}`},
		"control char":   {"POST", "/v1/check", "{\"actor\":\"a\x01\",\"targets\":[\"b\"]}"},
		"consistency 1":  {"POST", "/v1/info", `{"users":["a"],"consistency":1}`},
		"no such op":     {"GET", "/v1/users/a/friends", ""},
		"nested user":    {"GET", "/v1/users/a/b/followers", ""},
		"v1 root":        {"GET", "/v1/", ""},
		"wrong method 1": {"GET", "/v1/follow", ""},
		"wrong method 2": {"DELETE", "/v1/users/a/followers", ""},
		"wrong method 3": {"POST", "/v1/openapi.json", "{}"},
	} {
		t.Run(name, func(t *testing.T) {
			r := s.do(c.method, c.path, c.body)
			switch {
			case strings.HasPrefix(name, "wrong method"):
				r.wantError(t, 405, codes.UnknownOp)
				if r.header.Get("Allow") == "" {
					t.Fatal("no Allow header")
				}
			case strings.HasPrefix(name, "no such") || strings.HasPrefix(name, "nested") || strings.HasPrefix(name, "v1 root"):
				r.wantError(t, 404, codes.UnknownOp)
			default:
				r.wantError(t, 400, codes.InvalidParam)
			}
		})
	}
	if r := s.do("POST", "/v1/check", `{"actor":"a","targets":["b"]}`); r.status != 200 {
		t.Fatalf("after the bad requests: %d %s", r.status, r.raw)
	}
}

// A panic in the handler is a JSON 500 with code 30006, and the API goes
// on serving.
func TestPanicIsInternalError(t *testing.T) {
	s := startAPI(t, nil, func(h wire.Handler) wire.Handler { return panicky{h} })
	s.do("POST", "/v1/check", `{"actor":"boom","targets":["b"]}`).wantError(t, 500, codes.Internal)
	if r := s.do("POST", "/v1/check", `{"actor":"a","targets":["b"]}`); r.status != 200 {
		t.Fatalf("after the panic: %d %s", r.status, r.raw)
	}
}

// panicky panics on a check by the actor "boom".
type panicky struct{ wire.Handler }

func (p panicky) Check(ctx context.Context, req wire.CheckRequest) ([]wire.Check, error) {
	if req.Actor == "boom" {
		panic("boom")
	}
	return p.Handler.Check(ctx, req)
}

func tokenStore(t testing.TB) *tokens.Store {
	t.Helper()
	slow := tokens.New("slow", tokens.RoleRead, "slow-secret")
	slow.Rate, slow.Burst = 0.5, 1
	st, err := tokens.NewStore([]tokens.Token{
		tokens.New("reader", tokens.RoleRead, "r-secret"),
		tokens.New("writer", tokens.RoleWrite, "w-secret"),
		tokens.New(tokens.DefaultName, tokens.RoleAdmin, "admin-secret"),
		slow,
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Tokens, roles and rates as on the binary port.
func TestAuth(t *testing.T) {
	st := tokenStore(t)
	obs := &tokenObserver{}
	s := startAPI(t, func(c *httpapi.Config) { c.Tokens, c.Observer = st, obs }, nil)
	follow := `{"actor":"a","targets":["b"]}`
	check := `{"actor":"a","targets":["b"]}`
	bearer := func(secret, name string) []string {
		return []string{"Authorization", "Bearer " + secret, httpapi.TokenNameHeader, name}
	}
	basic := func(name, secret string) []string {
		return []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(name+":"+secret))}
	}
	r := s.do("POST", "/v1/check", check)
	r.wantError(t, 401, codes.AuthFailed)
	if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("401 without WWW-Authenticate: %v", r.header)
	}
	s.do("POST", "/v1/check", check, bearer("wrong", "reader")...).wantError(t, 401, codes.AuthFailed)
	s.do("POST", "/v1/check", check, bearer("r-secret", "nobody")...).wantError(t, 401, codes.AuthFailed)
	s.do("POST", "/v1/check", check, "Authorization", "Digest x").wantError(t, 401, codes.AuthFailed)
	if r := s.do("POST", "/v1/check", check, bearer("r-secret", "reader")...); r.status != 200 {
		t.Fatalf("reader checks: %d %s", r.status, r.raw)
	}
	e := s.do("POST", "/v1/follow", follow, bearer("r-secret", "reader")...).wantError(t, 403, codes.NotAllowed)
	if !strings.Contains(e.Message, "write role") {
		t.Fatalf("403 message: %s", e.Message)
	}
	if r := s.do("POST", "/v1/follow", follow, basic("writer", "w-secret")...); r.status != 200 {
		t.Fatalf("writer follows: %d %s", r.status, r.raw)
	}
	// No name: the token named default, as on the binary port.
	for _, h := range [][]string{bearer("admin-secret", ""), basic("", "admin-secret")} {
		if r := s.do("GET", "/v1/status", "", h...); r.status != 200 {
			t.Fatalf("default token: %d %s", r.status, r.raw)
		}
	}
	// The OpenAPI document needs no token.
	if r := s.do("GET", "/v1/openapi.json", ""); r.status != 200 {
		t.Fatalf("openapi without a token: %d", r.status)
	}
	// Rate: a burst of 1 at 0.5/s; the refused request says when to retry.
	if r := s.do("GET", "/v1/users/a/followers", "", bearer("slow-secret", "slow")...); r.status != 200 {
		t.Fatalf("slow token's first request: %d %s", r.status, r.raw)
	}
	r = s.do("GET", "/v1/users/a/followers", "", bearer("slow-secret", "slow")...)
	r.wantError(t, 429, codes.RateLimited)
	if r.header.Get("Retry-After") != "2" {
		t.Fatalf("Retry-After %q, want 2 (0.5 requests/s)", r.header.Get("Retry-After"))
	}
	// A reload without the reader's token: refused at once.
	if err := st.Replace([]tokens.Token{tokens.New("writer", tokens.RoleWrite, "w-secret")}); err != nil {
		t.Fatal(err)
	}
	s.do("POST", "/v1/check", check, bearer("r-secret", "reader")...).wantError(t, 401, codes.AuthFailed)
	if got := obs.String(); !strings.Contains(got, "reader follow 40012") || !strings.Contains(got, "slow followers 40011") || !strings.Contains(got, "writer follow 0") {
		t.Fatalf("token metrics: %s", got)
	}
}

// tokenObserver records the API's token metrics calls.
type tokenObserver struct {
	mu  sync.Mutex
	log []string
}

func (o *tokenObserver) Request(wire.Op, codes.Code, time.Duration) {}

func (o *tokenObserver) TokenRequest(token string, op wire.Op, code codes.Code) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.log = append(o.log, fmt.Sprintf("%s %s %d", token, op, code))
}

func (o *tokenObserver) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.log, "\n")
}

// Without tokens, credentials are ignored: the API is open, as the
// binary port.
func TestOpenWithoutTokens(t *testing.T) {
	s := startAPI(t, nil, nil)
	if r := s.do("POST", "/v1/follow", `{"actor":"a","targets":["b"]}`, "Authorization", "Bearer whatever"); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tune := range []func(*httpapi.Config){
		func(c *httpapi.Config) { c.MaxBody = 10 },
		func(c *httpapi.Config) { c.MaxBody = 2 << 30 },
		func(c *httpapi.Config) { c.RequestTimeout = 0 },
	} {
		c := httpapi.DefaultConfig()
		tune(&c)
		if c.Validate() == nil {
			t.Fatalf("%+v validated", c)
		}
		if _, err := httpapi.New(c, nil); err == nil {
			t.Fatal("New accepted an invalid config")
		}
	}
	c := httpapi.DefaultConfig()
	if _, err := httpapi.New(c, nil); err == nil {
		t.Fatal("New accepted a nil handler")
	}
}
