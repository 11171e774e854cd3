package h1

import (
	"bufio"
	"bytes"
	"io"
	"maps"
	"net/http"
	"slices"
	"testing"
)

// parseOnly runs the head parser over data as a connection's input.
func parseOnly(t *testing.T, data []byte) (*conn, error) {
	s, err := NewServer(DefaultConfig(), http.NotFoundHandler())
	if err != nil {
		t.Fatal(err)
	}
	c := &conn{s: s, header: http.Header{}}
	c.blank = *(&http.Request{}).WithContext(s.ctx)
	c.br = bufio.NewReaderSize(bytes.NewReader(data), readBufSize)
	c.bw = bufio.NewWriter(io.Discard)
	if err := c.readHead(); err != nil {
		return c, err
	}
	return c, c.parseHead()
}

// FuzzParseHead checks the request parser against net/http's: a request
// this server accepts, net/http reads the same way (the same method,
// target, host, header fields and body length). This server may refuse
// more (it is stricter about framing), never accept what net/http
// refuses or read it differently.
func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /v1/check HTTP/1.1\r\nHost: localhost:7780\r\nContent-Type: application/json\r\nContent-Length: 12\r\nAuthorization: Bearer x\r\n\r\n{\"pairs\":[]}",
		"GET /v1/users/a%2Fb/followers?limit=10&cursor=abc HTTP/1.1\r\nHost: h\r\nx-lower: v\r\nX-Dup: 1\r\nX-Dup: 2\r\n\r\n",
		"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"GET http://a.example/x?y HTTP/1.1\r\nHost: b\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"GET / HTTP/1.1\nHost: h\n\n",
		"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
		"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 0 && (data[0] == '\r' || data[0] == '\n') {
			return // this server skips blank lines before a request; net/http does not
		}
		c, err := parseOnly(t, data)
		if err != nil {
			return
		}
		want, werr := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
		if werr != nil {
			t.Fatalf("accepted what net/http refuses (%v): %q", werr, data)
		}
		got := &c.req
		switch {
		case got.Method != want.Method, got.RequestURI != want.RequestURI, got.Proto != want.Proto:
			t.Fatalf("request line: %s %s %s, net/http %s %s %s", got.Method, got.RequestURI, got.Proto, want.Method, want.RequestURI, want.Proto)
		case got.URL.String() != want.URL.String(), got.URL.EscapedPath() != want.URL.EscapedPath(), got.URL.RawQuery != want.URL.RawQuery:
			t.Fatalf("URL %#v, net/http %#v", got.URL, want.URL)
		case got.Host != want.Host:
			t.Fatalf("Host %q, net/http %q", got.Host, want.Host)
		case got.ContentLength != want.ContentLength:
			t.Fatalf("ContentLength %d, net/http %d", got.ContentLength, want.ContentLength)
		case got.Close != want.Close:
			t.Fatalf("Close %v, net/http %v", got.Close, want.Close)
		}
		wh := want.Header.Clone()
		delete(wh, "Transfer-Encoding")
		if !maps.EqualFunc(got.Header, wh, slices.Equal) {
			t.Fatalf("header %q, net/http %q", got.Header, wh)
		}
	})
}
