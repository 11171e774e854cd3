package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/followgraph/followgraph/fsm"
	"github.com/followgraph/followgraph/wire"
)

// receiver records the calls it gets; fail decides the answer of each
// (nil: accept).
type receiver struct {
	mu    sync.Mutex
	calls []got
	fail  func(n int) (status int, body string)
}

type got struct {
	query           map[string]string
	id, sig         string
	body            []byte
	decoded         map[string]any
	acceptedAttempt bool
}

func (rv *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rv.mu.Lock()
	defer rv.mu.Unlock()
	g := got{query: map[string]string{}, id: r.Header.Get(HeaderEventID), sig: r.Header.Get(HeaderSignature), body: b}
	for k := range r.URL.Query() {
		g.query[k] = r.URL.Query().Get(k)
	}
	json.Unmarshal(b, &g.decoded)
	n := len(rv.calls)
	if rv.fail != nil {
		if status, body := rv.fail(n); status != 0 {
			rv.calls = append(rv.calls, g)
			w.WriteHeader(status)
			io.WriteString(w, body)
			return
		}
	}
	g.acceptedAttempt = true
	rv.calls = append(rv.calls, g)
	io.WriteString(w, `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}`)
}

func (rv *receiver) accepted() []got {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	var out []got
	for _, g := range rv.calls {
		if g.acceptedAttempt {
			out = append(out, g)
		}
	}
	return out
}

func newHook(t *testing.T, url string, mod func(*Config)) *Hook {
	t.Helper()
	cfg := DefaultConfig()
	cfg.URLs, cfg.Secret, cfg.SDKAppID, cfg.MinBackoff, cfg.MaxBackoff = []string{url}, "s3cret", "1400000000", time.Millisecond, 5*time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	hs, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return hs[0]
}

var sample = []fsm.Event{
	{Offset: fsm.OffsetOf(5, 0), Time: 1702018343678, FollowTime: 1702018343678, Kind: wire.FollowingAdded, User: "alice", Other: "bob"},
	{Offset: fsm.OffsetOf(5, 1), Time: 1702018343678, FollowTime: 1702018343678, Kind: wire.FollowingAdded, User: "alice", Other: "carol"},
	{Offset: fsm.OffsetOf(5, 2), Time: 1702018343678, Kind: wire.FollowerAdded, User: "bob", Other: "alice"},
	{Offset: fsm.OffsetOf(6, 0), Time: 1702018343700, FollowTime: 1702018343678, Kind: wire.FollowingRemoved, User: "alice", Other: "bob"},
	{Offset: fsm.OffsetOf(7, 0), Time: 1702018343800, FollowTime: 1702018343800, Kind: wire.FollowingAdded, User: "dave", Other: "bob"},
}

func TestTencentCallbacks(t *testing.T) {
	rv := &receiver{}
	srv := httptest.NewServer(rv)
	defer srv.Close()
	h := newHook(t, srv.URL+"/cb?app=x", nil)
	if err := h.Deliver(context.Background(), 3, sample); err != nil {
		t.Fatal(err)
	}
	calls := rv.accepted()
	if len(calls) != 3 {
		t.Fatalf("%d calls, want 3 (alice's two follows, her unfollow, dave's follow)", len(calls))
	}
	want := []string{
		`{"CallbackCommand":"Follow.CallbackAfterFollowAdd","From_Account":"alice","FollowList":[{"To_Account":"bob"},{"To_Account":"carol"}],"EventTime":1702018343678}`,
		`{"CallbackCommand":"Follow.CallbackAfterFollowDelete","From_Account":"alice","To_Account":["bob"],"EventTime":1702018343700}`,
		`{"CallbackCommand":"Follow.CallbackAfterFollowAdd","From_Account":"dave","FollowList":[{"To_Account":"bob"}],"EventTime":1702018343800}`,
	}
	commands := []string{CommandFollowAdd, CommandFollowDelete, CommandFollowAdd}
	ids := []string{"3:83886080", "3:100663296", "3:117440512"}
	for i, c := range calls {
		if string(c.body) != want[i] {
			t.Errorf("call %d body\n%s\nwant\n%s", i, c.body, want[i])
		}
		q := c.query
		if q["SdkAppid"] != "1400000000" || q["CallbackCommand"] != commands[i] || q["contenttype"] != "json" || q["app"] != "x" {
			t.Errorf("call %d query %v", i, q)
		}
		if _, ok := q["ClientIP"]; !ok {
			t.Errorf("call %d: no ClientIP parameter", i)
		}
		if _, ok := q["OptPlatform"]; !ok {
			t.Errorf("call %d: no OptPlatform parameter", i)
		}
		if c.sig != Sign("s3cret", c.body) || c.id != ids[i] {
			t.Errorf("call %d: signature %q id %q", i, c.sig, c.id)
		}
	}
	if s := h.Stats(); s.Calls != 3 || s.Events != 4 || s.Failures != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestNativeCall(t *testing.T) {
	rv := &receiver{}
	srv := httptest.NewServer(rv)
	defer srv.Close()
	h := newHook(t, srv.URL, func(c *Config) { c.Format, c.Secret = FormatNative, "" })
	if err := h.Deliver(context.Background(), 1, sample); err != nil {
		t.Fatal(err)
	}
	calls := rv.accepted()
	if len(calls) != 1 || calls[0].sig != "" {
		t.Fatalf("%d calls (signature %q), want 1 unsigned", len(calls), calls[0].sig)
	}
	var b NativeBody
	if err := json.Unmarshal(calls[0].body, &b); err != nil || b.Command != CommandNative || len(b.Events) != len(sample) {
		t.Fatalf("native body %s: %v", calls[0].body, err)
	}
	if e := b.Events[2]; e.Kind != "follower_added" || e.User != "bob" || e.Other != "alice" || e.ID != "1:83886082" || e.Shard != 1 {
		t.Fatalf("event 2: %+v", e)
	}
}

// TestRetriesUntilAccepted: an error status, a body that is not the
// expected answer, an ErrorCode other than 0 and a timeout are all
// retried, and the call is then delivered once.
func TestRetriesUntilAccepted(t *testing.T) {
	block := make(chan struct{})
	rv := &receiver{fail: func(n int) (int, string) {
		switch n {
		case 0:
			return 500, "oops"
		case 1:
			return 200, "OK"
		case 2:
			return 200, `{"ActionStatus":"FAIL","ErrorCode":1}`
		case 3:
			return 200, `{"ActionStatus":"OK"}`
		}
		return 0, ""
	}}
	srv := httptest.NewServer(rv)
	defer srv.Close()
	h := newHook(t, srv.URL, nil)
	if err := h.Deliver(context.Background(), 0, sample[:1]); err != nil {
		t.Fatal(err)
	}
	if n := len(rv.accepted()); n != 1 {
		t.Fatalf("%d accepted calls", n)
	}
	if s := h.Stats(); s.Failures != 4 || s.Retries != 4 || s.Calls != 1 || s.LastError == "" {
		t.Fatalf("stats %+v", s)
	}
	// An endpoint that never answers: the attempt times out, and Deliver
	// returns when its context ends.
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer stuck.Close()
	defer close(block) // before Close, which waits for the handlers
	h = newHook(t, stuck.URL, func(c *Config) { c.Timeout = 50 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := h.Deliver(ctx, 0, sample[:1]); err == nil || h.Stats().Failures == 0 {
		t.Fatalf("deliver to a stuck endpoint: %v, stats %+v", err, h.Stats())
	}
}

func TestConfigValidation(t *testing.T) {
	for _, mod := range []func(*Config){
		func(c *Config) { c.URLs = []string{"ftp://x/"} },
		func(c *Config) { c.URLs = []string{"http://"} },
		func(c *Config) { c.Format = "xml" },
		func(c *Config) { c.Timeout = 0 },
	} {
		c := DefaultConfig()
		c.URLs = []string{"http://127.0.0.1:1/"}
		mod(&c)
		if _, err := New(c); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}
