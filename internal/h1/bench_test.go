package h1

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
)

// BenchmarkServe compares this server with net/http's on the same
// handler (a small JSON answer) over loopback: one connection, requests
// one at a time ("serial") or 16 pipelined. Both run in the same process
// and run, so their ratio is the figure to read; allocs/op are the
// server's (the client here allocates nothing per request).
func BenchmarkServe(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"application/json"}
		w.Write([]byte(`{"items":[{"code":0,"follows":true}]}`))
	})
	servers := map[string]func(net.Listener) func(){
		"h1": func(ln net.Listener) func() {
			s, _ := NewServer(DefaultConfig(), h)
			go s.Serve(ln)
			return func() { s.Close() }
		},
		"net-http": func(ln net.Listener) func() {
			s := &http.Server{Handler: h}
			go s.Serve(ln)
			return func() { s.Close() }
		},
	}
	for _, depth := range []int{1, 16} {
		for _, name := range []string{"h1", "net-http"} {
			b.Run(name+"/depth="+map[int]string{1: "1", 16: "16"}[depth], func(b *testing.B) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				stop := servers[name](ln)
				defer stop()
				benchClient(b, ln.Addr().String(), depth)
			})
		}
	}
}

// benchClient sends b.N requests, depth at a time, and reads each batch
// of responses by their Content-Length.
func benchClient(b *testing.B, addr string, depth int) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /v1/users/u1/followers?limit=10 HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer secret\r\n\r\n")
	batch := bytes.Repeat(req, depth)
	br := bufio.NewReaderSize(c, 64<<10)
	b.ReportAllocs()
	b.ResetTimer()
	for sent := 0; sent < b.N; sent += depth {
		if _, err := c.Write(batch); err != nil {
			b.Fatal(err)
		}
		for range depth {
			if err := skipResponse(br); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// skipResponse reads one response head and its body without allocating.
func skipResponse(br *bufio.Reader) error {
	n := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			n = 0
			for _, d := range bytes.TrimSpace(v) {
				n = n*10 + int(d-'0')
			}
		}
	}
	if n < 0 {
		return io.ErrUnexpectedEOF
	}
	_, err := br.Discard(n)
	return err
}
