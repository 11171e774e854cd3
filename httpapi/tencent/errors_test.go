package tencent_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/followgraph/followgraph/cluster/clustertest"
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/httpapi/tencent"
	"github.com/followgraph/followgraph/internal/tokens"
	"github.com/followgraph/followgraph/wire"
)

// failed is the answer to a request that failed as a whole.
func failed(code int, info string) string {
	return fmt.Sprintf(`{"ActionStatus": "FAIL","ErrorCode": %d,"ErrorInfo": %q,"ErrorDisplay": ""}`, code, info)
}

func accounts(n int) string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%q", fmt.Sprintf("u%d", i))
	}
	return "[" + strings.Join(ids, ",") + "]"
}

func followItems(n int) string {
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf(`{"To_Account":"u%d"}`, i)
	}
	return "[" + strings.Join(items, ",") + "]"
}

// Requests that fail as a whole: limits, malformed bodies, wrong types,
// and the wrong method, path or parameters, each with HTTP 200 and a
// Tencent-shaped error.
func TestRequestErrors(t *testing.T) {
	cfg := tencent.DefaultConfig()
	cfg.MaxBody = 4096
	a := newAPI(t, clustertest.Options{}, cfg)
	const p = "invalid parameter (30001): "
	for _, c := range []struct{ path, body, want string }{
		{tencent.PathGet, `{"From_Account":"a","FollowType":1,"WantNum":1001}`, failed(30001, p+"WantNum 1001: want 1 to 1000 (0 or absent: 100)")},
		{tencent.PathGet, `{"From_Account":"a","FollowType":1,"WantNum":-1}`, failed(30001, p+"WantNum -1: want 1 to 1000 (0 or absent: 100)")},
		{tencent.PathGet, `{"From_Account":"a","FollowType":4}`, failed(30001, p+"FollowType 4: want 1 fans, 2 following or 3 mutual")},
		{tencent.PathGet, `{"From_Account":"a"}`, failed(30001, p+"FollowType is required: 1 fans, 2 following, 3 mutual")},
		{tencent.PathGet, `{"From_Account":"a","FollowType":1,"StartCursor":"bogus"}`, failed(30001, p+"invalid cursor: malformed, forged, or made for another list")},
		{tencent.PathGet, `{"From_Account":"a","FollowType":"1"}`, failed(30001, p+"field FollowType: want a JSON integer (int), got string")},
		{tencent.PathGet, `{"From_Account":"a","FollowType":1,"WantNum":1.5}`, failed(30001, p+"field WantNum: want a JSON integer (int), got number 1.5")},
		{tencent.PathAdd, `{"From_Account":"a","FollowItem":` + followItems(21) + `}`, failed(30001, p+"21 FollowItem: want 1 to 20")},
		{tencent.PathAdd, `{"From_Account":"a","FollowItem":[]}`, failed(30001, p+"0 FollowItem: want 1 to 20")},
		{tencent.PathAdd, `{"FollowItem":[{"To_Account":"b"}]}`, failed(30001, p+"From_Account is required")},
		{tencent.PathAdd, `{"From_Account":7,"FollowItem":[{"To_Account":"b"}]}`, failed(30001, p+"field From_Account: want a JSON string, got number")},
		{tencent.PathAdd, `{"From_Account":"a","FollowItem":["b"]}`, failed(30001, p+"field FollowItem: want a JSON object, got string")},
		{tencent.PathAdd, `{"From_Account":"` + strings.Repeat("x", 65) + `","FollowItem":[{"To_Account":"b"}]}`, failed(30001, p+`invalid user ID "`+strings.Repeat("x", 65)+`": 65 bytes, at most 64`)},
		{tencent.PathDelete, `{"From_Account":"a","To_Account":` + accounts(21) + `}`, failed(30001, p+"21 To_Account: want 1 to 20")},
		{tencent.PathDelete, `{"From_Account":"a","To_Account":"b"}`, failed(30001, p+"field To_Account: want a JSON array, got string")},
		{tencent.PathCheck, `{"From_Account":"a","To_Account":` + accounts(101) + `}`, failed(30001, p+"101 To_Account: want 1 to 100")},
		{tencent.PathGetInfo, `{"From_Account":"a","To_Account":` + accounts(21) + `}`, failed(30001, p+"21 To_Account: want 1 to 20")},
		{tencent.PathGetInfo, `{"To_Account":["a"]}`, failed(30001, p+"From_Account is required")},
		{tencent.PathCheck, `{"From_Account":"a","To_Account":["b"]`, failed(30001, p+"request body is not valid JSON: unexpected end of JSON input (at byte 38)")},
		{tencent.PathCheck, `{"From_Account":"a",,"To_Account":["b"]}`, failed(30001, p+"request body is not valid JSON: invalid character ',' looking for beginning of object key string (at byte 21)")},
		{tencent.PathCheck, `["a"]`, failed(30001, p+"request body must be a JSON object, got array")},
		{tencent.PathCheck, ``, failed(30001, p+"request body is not valid JSON: unexpected end of JSON input (at byte 0)")},
		{tencent.PathCheck, `{"From_Account":"a","To_Account":["` + strings.Repeat("x", 4096) + `"]}`, failed(30001, p+"request body over 4096 bytes")},
		{"/v4/follow/follow_list", `{}`, failed(40007, `unknown operation (40007): unknown API "/v4/follow/follow_list": want one of v4/follow/follow_add, follow_delete, follow_check, follow_get, follow_get_info`)},
	} {
		if got := a.post(c.path, c.body); got != c.want {
			t.Errorf("%s %.80s:\n got %s\nwant %s", c.path, c.body, got, c.want)
		}
	}
	expect(t, "GET", a.do(http.MethodGet, tencent.PathCheck+query, ""), failed(30001, p+"method GET: the REST API takes POST"))
	expect(t, "contenttype", a.do(http.MethodPost, tencent.PathCheck+"?contenttype=xml", `{}`), failed(30001, p+`contenttype "xml": only json is served`))
}

// A trailing comma, as in the official follow_get sample, is accepted in
// any object or array; two are not.
func TestTrailingComma(t *testing.T) {
	a := newAPI(t, clustertest.Options{}, tencent.DefaultConfig())
	expect(t, "comma", a.post(tencent.PathCheck, `{"From_Account":"a","To_Account":["b", ] , }`),
		`{"ResultItem": [{"To_Account": "b","ResultCode": 0,"ResultInfo": "","FollowType": 0}],"ActionStatus": "OK","ErrorCode": 0,"ErrorInfo": "","ErrorDisplay": ""}`)
	expect(t, "in a string", a.post(tencent.PathCheck, `{"From_Account":"a","To_Account":["b,]"]}`),
		`{"ResultItem": [{"To_Account": "b,]","ResultCode": 0,"ResultInfo": "","FollowType": 0}],"ActionStatus": "OK","ErrorCode": 0,"ErrorInfo": "","ErrorDisplay": ""}`)
	if got := a.post(tencent.PathCheck, `{"From_Account":"a","To_Account":["b",,]}`); !strings.HasPrefix(got, `{"ActionStatus": "FAIL","ErrorCode": 30001,`) {
		t.Fatalf("two commas: %s", got)
	}
}

// identifier and usersig are a token's name and secret; the role is the
// binary port's for the op, then the rate limit.
func TestAuth(t *testing.T) {
	st, err := tokens.NewStore([]tokens.Token{
		tokens.New("admin", tokens.RoleAdmin, "s3cret"),
		tokens.New("reader", tokens.RoleRead, "r"),
		{Name: "slow", Role: tokens.RoleWrite, Sum: tokens.New("", 0, "w").Sum, Rate: 0.001, Burst: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := tencent.DefaultConfig()
	rec := &recorder{seen: map[string]bool{}}
	cfg.Tokens, cfg.SDKAppID, cfg.Observer = st, "1400000001", rec
	a := newAPI(t, clustertest.Options{}, cfg)
	add := `{"From_Account":"a","FollowItem":[{"To_Account":"b"}]}`
	check := `{"From_Account":"a","To_Account":["b"]}`
	url := func(path, id, sig string) string {
		return path + "?sdkappid=1400000001&identifier=" + id + "&usersig=" + sig + "&random=1&contenttype=json"
	}
	okAdd := `{"ResultItem": [{"To_Account": "b","ResultCode": 0,"ResultInfo": ""}],"ActionStatus": "OK","ErrorCode": 0,"ErrorInfo": "","ErrorDisplay": ""}`
	badToken := failed(40004, "authentication failed (40004): bad or missing identifier or usersig")
	for _, c := range []struct{ path, body, want string }{
		{url(tencent.PathAdd, "admin", "s3cret"), add, okAdd},
		{url(tencent.PathAdd, "admin", "wrong"), add, badToken},
		{url(tencent.PathAdd, "nobody", "s3cret"), add, badToken},
		{tencent.PathAdd + "?sdkappid=1400000001", add, badToken},
		{url(tencent.PathAdd, "reader", "r"), add, failed(30004, `not allowed (40012): follow needs the write role; identifier "reader" has read`)},
		{url(tencent.PathDelete, "reader", "r"), `{"From_Account":"a","To_Account":["b"]}`, failed(30004, `not allowed (40012): unfollow needs the write role; identifier "reader" has read`)},
		{url(tencent.PathCheck, "reader", "r"), check, `{"ResultItem": [{"To_Account": "b","ResultCode": 0,"ResultInfo": "","FollowType": 2}],"ActionStatus": "OK","ErrorCode": 0,"ErrorInfo": "","ErrorDisplay": ""}`},
		{url(tencent.PathGetInfo, "reader", "r"), check, `{"FollowInfo": [{"To_Account": "b","ResultCode": 0,"ResultInfo": "","FollowerCount": 1,"FollowingCount": 0,"MutualFollowingCount": 0}],"ActionStatus": "OK","ErrorCode": 0,"ErrorInfo": "","ErrorDisplay": ""}`},
		{url(tencent.PathGet, "reader", "r"), `{"From_Account":"nobody","FollowType":2}`, `{"FollowItem": [],"NextCursor": "","ActionStatus": "OK","ErrorCode": 0,"ErrorInfo": "","ErrorDisplay": ""}`},
		{url(tencent.PathAdd, "slow", "w"), add, okAdd},
		{url(tencent.PathAdd, "slow", "w"), add, failed(60007, `rate limited (40011): identifier "slow" is over its rate limit (0.001 requests/s, burst 1); retry after a backoff`)},
		{strings.Replace(url(tencent.PathAdd, "admin", "s3cret"), "1400000001", "1400000002", 1), add, failed(30002, `sdkappid "1400000002" is not this server's`)},
	} {
		if strings.HasPrefix(c.path, tencent.PathGetInfo) {
			a.eventually(c.path, c.body, c.want) // b's side may land a little later
			continue
		}
		if got := a.do(http.MethodPost, c.path, c.body); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.path, got, c.want)
		}
	}
	// Counted as the binary port counts: requests whose token was found.
	want := []string{"admin follow ok", "reader follow not allowed", "reader unfollow not allowed", "reader check ok", "reader info ok", "reader followers ok", "slow follow ok", "slow follow rate limited"}
	for _, w := range want {
		if !rec.seen[w] {
			t.Errorf("observer: no %q in %v", w, rec.seen)
		}
	}
	if len(rec.seen) != len(want) {
		t.Errorf("observer saw %v, want only %v", rec.seen, want)
	}
}

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (r *recorder) TokenRequest(token string, op wire.Op, code codes.Code) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen[fmt.Sprintf("%s %s %s", token, op, code)] = true
}

// stuck blocks every write until its context ends, and panics on check.
type stuck struct{ wire.Handler }

func (stuck) Write(ctx context.Context, _ wire.Op, _ wire.WriteRequest) ([]wire.Result, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (stuck) Check(context.Context, wire.CheckRequest) ([]wire.Check, error) {
	panic("a bug")
}

// A write past Config.Timeout answers 30007; a panic answers 30006 with
// status 200, not a 500 with a stack.
func TestTimeoutAndPanic(t *testing.T) {
	n := clustertest.Start(t, clustertest.Options{})
	cfg := tencent.DefaultConfig()
	cfg.Timeout = 50 * time.Millisecond
	srv := httptest.NewServer(tencent.New(cfg, stuck{n.Router}))
	t.Cleanup(srv.Close)
	a := &api{t: t, url: srv.URL, node: n}
	expect(t, "timeout", a.post(tencent.PathAdd, `{"From_Account":"a","FollowItem":[{"To_Account":"b"}]}`),
		failed(30007, "timeout (30007): context deadline exceeded"))
	expect(t, "panic", a.post(tencent.PathCheck, `{"From_Account":"a","To_Account":["b"]}`),
		failed(30006, "internal error (30006): panic serving /v4/follow/follow_check: a bug"))
	// The real handler still answers.
	if got := a.post(tencent.PathGetInfo, `{"From_Account":"a","To_Account":["a"]}`); !strings.HasPrefix(got, `{"FollowInfo": [{"To_Account": "a","ResultCode": 0,`) {
		t.Fatalf("get_info: %s", got)
	}
}
