package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// start serves h on a loopback port with cfg and returns its address;
// the server is closed at the end of the test.
func start(t *testing.T, cfg Config, h http.Handler) (*Server, string) {
	t.Helper()
	s, err := NewServer(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return s, ln.Addr().String()
}

// echo answers with the method, path, query, host, a header and the body.
func echo(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "%s %s %s %s %s %d [%s]", r.Method, r.URL.Path, r.URL.RawQuery, r.Host, r.Header.Get("X-Test"), r.ContentLength, b)
}

// raw sends in on a new connection, half-closes it, and returns all the
// server wrote.
func raw(t *testing.T, addr, in string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, in); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	out, _ := io.ReadAll(c)
	return string(out)
}

// responses reads every response of out (to requests of the given
// methods), in order.
func responses(t *testing.T, out string, n int) []*http.Response {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(out))
	var rs []*http.Response
	for range n {
		r, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d of %q: %v", len(rs), out, err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		rs = append(rs, r)
	}
	if rest, _ := io.ReadAll(br); len(rest) > 0 {
		t.Fatalf("%d bytes after %d responses: %q", len(rest), n, rest)
	}
	return rs
}

func bodyOf(r *http.Response) string {
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

func TestClientKeepAlive(t *testing.T) {
	var conns atomic.Int32
	_, addr := start(t, DefaultConfig(), http.HandlerFunc(echo))
	tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		conns.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, a)
	}}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr}
	for i := range 5 {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/p/a?x=1", strings.NewReader(fmt.Sprint("body", i)))
		req.Header.Set("X-Test", "v")
		res, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got := bodyOf(res)
		res.Body.Close()
		want := fmt.Sprintf("POST /p/a x=1 %s v 5 [body%d]", addr, i)
		if res.StatusCode != 200 || got != want || res.Header.Get("Date") == "" || res.ContentLength != int64(len(want)) {
			t.Fatalf("request %d: %d %q %v, want %q", i, res.StatusCode, got, res.Header, want)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 5 requests, want 1 (keep-alive)", n)
	}
}

func TestPipelinedInOrder(t *testing.T) {
	_, addr := start(t, DefaultConfig(), http.HandlerFunc(echo))
	in := "GET /a HTTP/1.1\r\nHost: h\r\n\r\n" +
		"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz" +
		"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\nX-Trailer: t\r\n\r\n" +
		"HEAD /d HTTP/1.1\r\nHost: h\r\n\r\n" +
		"GET /e HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n" +
		"GET /never HTTP/1.1\r\nHost: h\r\n\r\n"
	out := raw(t, addr, in)
	// Five responses: the request after Connection: close is not read.
	br := bufio.NewReader(strings.NewReader(out))
	want := []string{"GET /a  h  0 []", "POST /b  h  3 [xyz]", "POST /c  h  -1 [abc]", "", "GET /e  h  0 []"}
	methods := []string{"GET", "POST", "POST", "HEAD", "GET"}
	for i, w := range want {
		res, err := http.ReadResponse(br, &http.Request{Method: methods[i]})
		if err != nil {
			t.Fatalf("response %d: %v in %q", i, err, out)
		}
		if got := bodyOf(res); got != w || res.StatusCode != 200 {
			t.Errorf("response %d: %d %q, want %q", i, res.StatusCode, got, w)
		}
		if i == 3 && res.ContentLength != int64(len("HEAD /d  h  0 []")) {
			t.Errorf("HEAD: Content-Length %d", res.ContentLength)
		}
		if i == 4 && !res.Close {
			t.Errorf("the answer to Connection: close does not say close")
		}
	}
	if rest, _ := io.ReadAll(br); len(rest) > 0 {
		t.Errorf("after the close: %q", rest)
	}
}

// TestPipelinedBatched: responses to requests that arrive together leave
// in one write.
func TestPipelinedBatched(t *testing.T) {
	_, addr := start(t, DefaultConfig(), http.HandlerFunc(echo))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, strings.Repeat("GET /x HTTP/1.1\r\nHost: h\r\n\r\n", 20))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64<<10)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(buf[:n]), "HTTP/1.1 200 OK"); got != 20 {
		t.Errorf("the first read holds %d responses, want all 20", got)
	}
}

// TestNoHoldWhileWaiting: a response is never held while the server
// waits for input, here a stray line end after a body (which old clients
// send) with nothing after it.
func TestNoHoldWhileWaiting(t *testing.T) {
	_, addr := start(t, DefaultConfig(), http.HandlerFunc(echo))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx\r\n")
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("the answer was held: %v", err)
	}
	if got := bodyOf(res); got != "POST /a  h  1 [x]" {
		t.Errorf("answer %q", got)
	}
}

// TestWriteDeadlineMoves: a connection's write deadline is renewed for
// later responses, also for those the full buffer writes out before a
// flush (a batch of large pipelined responses).
func TestWriteDeadlineMoves(t *testing.T) {
	cfg := DefaultConfig()
	cfg.WriteTimeout = 200 * time.Millisecond
	big := strings.Repeat("x", 4<<10)
	_, addr := start(t, cfg, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, big) }))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for round := range 3 {
		io.WriteString(c, strings.Repeat("GET / HTTP/1.1\r\nHost: h\r\n\r\n", 10))
		for i := range 10 {
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("round %d, response %d: %v", round, i, err)
			}
			if got := bodyOf(res); len(got) != len(big) {
				t.Fatalf("round %d, response %d: %d bytes", round, i, len(got))
			}
		}
		time.Sleep(300 * time.Millisecond) // past the first deadline
	}
}

func TestHTTP10(t *testing.T) {
	_, addr := start(t, DefaultConfig(), http.HandlerFunc(echo))
	rs := responses(t, raw(t, addr, "GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n"), 1)
	if got := bodyOf(rs[0]); got != "GET /a    0 []" || !rs[0].Close {
		t.Errorf("HTTP/1.0 without keep-alive: %q close=%v", got, rs[0].Close)
	}
	rs = responses(t, raw(t, addr, "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n"), 2)
	if bodyOf(rs[1]) != "GET /b    0 []" {
		t.Errorf("HTTP/1.0 keep-alive: %v", rs)
	}
}

func TestExpectContinue(t *testing.T) {
	_, addr := start(t, DefaultConfig(), http.HandlerFunc(echo))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("before the body: %q %v", line, err)
	}
	br.ReadString('\n')
	io.WriteString(c, "abcd")
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := bodyOf(res); got != "POST /e  h  4 [abcd]" {
		t.Errorf("after 100 Continue: %q", got)
	}

	// A handler that does not read the body: no 100 Continue, and the
	// connection closes after the answer.
	_, addr2 := start(t, DefaultConfig(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "no") }))
	rs := responses(t, raw(t, addr2, "POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"), 1)
	if bodyOf(rs[0]) != "no" || !rs[0].Close {
		t.Errorf("unread body behind Expect: %v", rs[0])
	}
}

// TestRefused: malformed or unsupported requests get their status and
// the connection closes.
func TestRefused(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxHeaderBytes = 2048
	_, addr := start(t, cfg, http.HandlerFunc(echo))
	for _, tc := range []struct {
		in     string
		status int
	}{
		{"GET /\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\n\r\n", 400}, // no Host
		{"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
		{"GET / FOO\r\nHost: h\r\n\r\n", 400},
		{"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: h\r\nBad Name: v\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -3\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"POST / HTTP/1.1\r\nHost: h\r\nExpect: magic\r\n\r\n", 417},
		{"GET /" + strings.Repeat("a", readBufSize) + " HTTP/1.1\r\nHost: h\r\n\r\n", 414},
		{"GET / HTTP/1.1\r\nHost: h\r\n" + strings.Repeat("X-Long: 0123456789\r\n", 200) + "\r\n", 431},
		{"GET /a\x7fb HTTP/1.1\r\nHost: h\r\n\r\n", 400},
		{"GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	} {
		rs := responses(t, raw(t, addr, tc.in+"GET / HTTP/1.1\r\nHost: h\r\n\r\n"), 1)
		if rs[0].StatusCode != tc.status || !rs[0].Close || !strings.HasPrefix(rs[0].Header.Get("Content-Type"), "text/plain") {
			t.Errorf("%q: %d close=%v %q, want %d and a close", tc.in, rs[0].StatusCode, rs[0].Close, bodyOf(rs[0]), tc.status)
		}
	}
}

func TestTargets(t *testing.T) {
	_, addr := start(t, DefaultConfig(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%q %q %q %q", r.URL.Path, r.URL.EscapedPath(), r.URL.RawQuery, r.Host)
	}))
	for in, want := range map[string]string{
		"/v1/users/a%2Fb/followers?limit=2": `"/v1/users/a/b/followers" "/v1/users/a%2Fb/followers" "limit=2" "h"`,
		"/plain?":                           `"/plain" "/plain" "" "h"`,
		"/v1/users/a!(b)*/following":        `"/v1/users/a!(b)*/following" "/v1/users/a!(b)*/following" "" "h"`,
		"http://other:80/abs?q":             `"/abs" "/abs" "q" "other:80"`,
	} {
		rs := responses(t, raw(t, addr, "GET "+in+" HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"), 1)
		if got := bodyOf(rs[0]); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

func TestResponseHeaders(t *testing.T) {
	_, addr := start(t, DefaultConfig(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
			if _, err := w.Write([]byte("x")); err != http.ErrBodyNotAllowed {
				panic("a body was allowed on 204")
			}
		case "/inject":
			w.Header().Set("X-Evil", "a\r\nSet-Cookie: b")
			w.Header().Set("Content-Length", "999")
			w.WriteHeader(201)
			w.WriteHeader(500) // ignored: the status is set once
			io.WriteString(w, "<html>hi</html>")
		case "/close":
			w.Header().Set("Connection", "close")
		}
	}))
	in := "GET /nocontent HTTP/1.1\r\nHost: h\r\n\r\nGET /inject HTTP/1.1\r\nHost: h\r\n\r\nGET /close HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"
	rs := responses(t, raw(t, addr, in), 3)
	if rs[0].StatusCode != 204 || rs[0].ContentLength > 0 || bodyOf(rs[0]) != "" {
		t.Errorf("204: %+v", rs[0])
	}
	r := rs[1]
	if r.StatusCode != 201 || r.Header.Get("X-Evil") != "a  Set-Cookie: b" || r.Header.Get("Set-Cookie") != "" ||
		r.ContentLength != 15 || r.Header.Get("Content-Type") != "text/html; charset=utf-8" || bodyOf(r) != "<html>hi</html>" {
		t.Errorf("handler headers: %d %v", r.StatusCode, r.Header)
	}
	if !rs[2].Close || rs[2].ContentLength != 0 {
		t.Errorf("a handler's Connection: close: %+v", rs[2])
	}
}

func TestPanicClosesConnection(t *testing.T) {
	var told atomic.Int32
	cfg := DefaultConfig()
	cfg.OnPanic = func(r *http.Request, p any, stack []byte) {
		if r.URL.Path == "/boom" && p == "boom" && len(stack) > 0 {
			told.Add(1)
		}
	}
	_, addr := start(t, cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/boom":
			panic("boom")
		case "/abort":
			panic(http.ErrAbortHandler)
		}
		io.WriteString(w, "ok")
	}))
	// The answer before the panic is sent; nothing after it.
	rs := responses(t, raw(t, addr, "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /boom HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n"), 1)
	if bodyOf(rs[0]) != "ok" {
		t.Errorf("before the panic: %v", rs[0])
	}
	responses(t, raw(t, addr, "GET /abort HTTP/1.1\r\nHost: h\r\n\r\n"), 0)
	if told.Load() != 1 {
		t.Errorf("OnPanic told %d times, want once (not for ErrAbortHandler)", told.Load())
	}
}

func TestTimeouts(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ReadHeaderTimeout, cfg.ReadTimeout, cfg.IdleTimeout = 200*time.Millisecond, 400*time.Millisecond, 300*time.Millisecond
	_, addr := start(t, cfg, http.HandlerFunc(echo))
	for name, in := range map[string]string{
		"silent client":   "",
		"slow head":       "GET / HTTP/1.1\r\nHost",
		"slow body":       "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nab",
		"idle keep-alive": "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, in)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		out, err := io.ReadAll(c) // ends when the server closes
		c.Close()
		if err != nil || time.Since(start) > 3*time.Second {
			t.Errorf("%s: not closed by the server (%v after %s)", name, err, time.Since(start))
		}
		if name != "idle keep-alive" && strings.Contains(string(out), "200 OK") {
			t.Errorf("%s: answered %q", name, out)
		}
	}
}

func TestShutdown(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	s, addr := start(t, DefaultConfig(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		io.WriteString(w, "done")
	}))
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	idleOut := bufio.NewReader(idle)
	if res, err := http.ReadResponse(idleOut, nil); err != nil || bodyOf(res) != "done" {
		t.Fatal(res, err)
	}
	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	<-entered
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	// The idle connection is closed; the busy one gets its answer, with
	// Connection: close, then Shutdown returns.
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := idleOut.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("idle connection after Shutdown: %d bytes, %v", n, err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	busy.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil || bodyOf(res) != "done" || !res.Close {
		t.Fatalf("the request in flight: %v %v", res, err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Errorf("still accepting after Shutdown")
	}
}

func TestTLS(t *testing.T) {
	ts := httptest.NewUnstartedServer(nil) // for its test certificate
	ts.StartTLS()
	certPool := ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	tlsCfg := ts.TLS.Clone()
	ts.Close()
	var failures atomic.Int32
	cfg := DefaultConfig()
	cfg.TLS = tlsCfg
	cfg.TLSFailed = func(net.Addr, error) { failures.Add(1) }
	_, addr := start(t, cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls=%v proto=%s", r.TLS != nil && r.TLS.HandshakeComplete, r.Proto)
	}))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certPool, ServerName: "example.com"}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	if got := bodyOf(res); got != "tls=true proto=HTTP/1.1" || res.ProtoMajor != 1 {
		t.Errorf("over TLS: %q (%s)", got, res.Proto)
	}
	out := raw(t, addr, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if !strings.Contains(out, "400 Bad Request") || !strings.Contains(out, "HTTP request to an HTTPS server") {
		t.Errorf("plain HTTP to the TLS port: %q", out)
	}
	if failures.Load() != 1 {
		t.Errorf("TLSFailed told %d times, want 1", failures.Load())
	}
}

func TestConfigValidate(t *testing.T) {
	for name, mut := range map[string]func(*Config){
		"zero timeout":        func(c *Config) { c.IdleTimeout = 0 },
		"read under header":   func(c *Config) { c.ReadTimeout = time.Second },
		"tiny header limit":   func(c *Config) { c.MaxHeaderBytes = 100 },
		"negative write time": func(c *Config) { c.WriteTimeout = -1 },
	} {
		cfg := DefaultConfig()
		mut(&cfg)
		if _, err := NewServer(cfg, http.NotFoundHandler()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewServer(DefaultConfig(), nil); err == nil {
		t.Errorf("nil handler accepted")
	}
}
