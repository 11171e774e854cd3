package httpapi_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/followgraph/followgraph/httpapi"
)

// benchAPI is an API over a real node with star followed by 200 users.
func benchAPI(b *testing.B) (*httpapi.API, *server) {
	b.Helper()
	s := startAPI(b, nil, nil)
	for i := range 200 {
		s.write("/v1/follow", fmt.Sprintf("fan%03d", i), "star")
	}
	api, err := httpapi.New(httpapi.DefaultConfig(), s.node.Router)
	if err != nil {
		b.Fatal(err)
	}
	return api, s
}

// The API's own cost per request, in process: routing, decoding, the
// router's read and the JSON encoding, without the network or net/http's
// connection handling.
func BenchmarkHandler(b *testing.B) {
	api, _ := benchAPI(b)
	for _, c := range []struct{ name, method, path, body string }{
		{"check", "POST", "/v1/check", `{"actor":"star","targets":["fan001"]}`},
		{"info", "POST", "/v1/info", `{"users":["star"]}`},
		{"followers-page100", "GET", "/v1/users/star/followers?limit=100", ""},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var body io.Reader
				if c.body != "" {
					body = strings.NewReader(c.body)
				}
				w := httptest.NewRecorder()
				api.ServeHTTP(w, httptest.NewRequest(c.method, c.path, body))
				if w.Code != 200 {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}

// A check over loopback HTTP/1.1 keep-alive connections, with parallel
// clients: what a request costs end to end on this machine, client
// included.
func BenchmarkCheckOverHTTP(b *testing.B) {
	_, s := benchAPI(b)
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	hc := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := hc.Post(s.url+"/v1/check", "application/json", strings.NewReader(`{"actor":"star","targets":["fan001"]}`))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatal(resp.Status)
			}
		}
	})
}
