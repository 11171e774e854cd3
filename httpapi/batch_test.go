package httpapi

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// pipeListener accepts the server end of one net.Pipe, counting its writes.
type pipeListener struct {
	conns chan net.Conn
}

func (l *pipeListener) Accept() (net.Conn, error) {
	c, ok := <-l.conns
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}
func (l *pipeListener) Close() error   { return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{} }

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// Pipelined requests to batched paths are answered with one write, in
// order; a request outside the prefix is written as it comes (a streaming
// handler's flushed part arrives before the handler ends).
func TestBatchListener(t *testing.T) {
	var writes atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/echo", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.URL.RawQuery) })
	release := make(chan struct{})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "first")
		w.(http.Flusher).Flush()
		<-release
	})
	srv := &http.Server{Handler: Batch(mux, "/v1/"), ConnContext: BatchConnContext}
	ln := &pipeListener{conns: make(chan net.Conn, 1)}
	cli, s := net.Pipe()
	ln.conns <- countingConn{s, &writes}
	close(ln.conns)
	go srv.Serve(BatchListener(ln))
	defer srv.Close()
	defer cli.Close()

	const n = 10
	var req strings.Builder
	for i := range n {
		fmt.Fprintf(&req, "GET /v1/echo?%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
	}
	go cli.Write([]byte(req.String())) // one write: the server reads all at once
	br := bufio.NewReader(cli)
	for i := range n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		var body [8]byte
		m, _ := resp.Body.Read(body[:])
		resp.Body.Close()
		if got := string(body[:m]); got != fmt.Sprint(i) {
			t.Fatalf("response %d: %q", i, got)
		}
	}
	if w := writes.Load(); w != 1 {
		t.Errorf("%d pipelined responses took %d writes, want 1", n, w)
	}

	go cli.Write([]byte("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	var first [5]byte
	if _, err := resp.Body.Read(first[:]); err != nil || string(first[:]) != "first" {
		t.Fatalf("streamed part: %q %v", first, err)
	}
	close(release)
	resp.Body.Close()
}

// Under TLS the batching rules still answer pipelined requests in order.
func TestBatchListenerTLS(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/echo", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.URL.RawQuery) })
	mux.HandleFunc("/other", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "other") })
	ts := httptest.NewUnstartedServer(Batch(mux, "/v1/"))
	ts.Listener = BatchListener(ts.Listener)
	ts.Config.ConnContext = BatchConnContext
	ts.StartTLS()
	defer ts.Close()
	tc := ts.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	tc.NextProtos = []string{"http/1.1"}
	c, err := tls.Dial("tcp", ts.Listener.Addr().String(), tc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var req strings.Builder
	want := []string{}
	for i := range 20 {
		path := fmt.Sprintf("/v1/echo?%d", i)
		if i%7 == 3 {
			path = "/other"
		}
		want = append(want, strings.TrimPrefix(path, "/v1/echo?"))
		fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	}
	go c.Write([]byte(req.String()))
	br := bufio.NewReader(c)
	for i, w := range want {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if w == "/other" {
			w = "other"
		}
		if string(body) != w {
			t.Fatalf("response %d: %q, want %q", i, body, w)
		}
	}
}
