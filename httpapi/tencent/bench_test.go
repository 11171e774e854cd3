package tencent_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/followgraph/followgraph/cluster/clustertest"
	"github.com/followgraph/followgraph/httpapi/tencent"
	"github.com/followgraph/followgraph/wire"
)

// benchNode is a node where "star" has 1,000 fans.
func benchNode(b *testing.B) (*clustertest.Node, string) {
	n := clustertest.Start(b, clustertest.Options{})
	req := wire.ImportRequest{Sync: true}
	for i := range 1000 {
		req.Commands = append(req.Commands, wire.ImportCommand{Actor: fmt.Sprintf("fan%04d", i), Targets: []string{"star"}, Times: []int64{1_700_000_000_000 + int64(i)}})
	}
	if _, err := n.Router.Import(context.Background(), req); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(tencent.New(tencent.DefaultConfig(), n.Router))
	b.Cleanup(srv.Close)
	return n, srv.URL
}

// BenchmarkGetHTTP is a follow_get of 100 fans over HTTP (loopback, keep-
// alive); BenchmarkGetDirect is the same page from the router, to show
// what the HTTP layer and JSON add.
func BenchmarkGetHTTP(b *testing.B) {
	_, url := benchNode(b)
	body := `{"From_Account":"star","FollowType":1,"StartCursor":"","WantNum":100}`
	for b.Loop() {
		resp, err := http.Post(url+tencent.PathGet, "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func BenchmarkGetDirect(b *testing.B) {
	n, _ := benchNode(b)
	for b.Loop() {
		k := 0
		if _, err := n.Router.List(context.Background(), wire.OpFollowers, wire.ListRequest{User: "star", Limit: 100}, func([]byte, int64) { k++ }); err != nil || k != 100 {
			b.Fatal(err, k)
		}
	}
}

// BenchmarkGetHandler is BenchmarkGetHTTP without the network: the
// handler's own cost (decoding, the list, encoding 100 items).
func BenchmarkGetHandler(b *testing.B) {
	n, _ := benchNode(b)
	h := tencent.New(tencent.DefaultConfig(), n.Router)
	body := `{"From_Account":"star","FollowType":1,"StartCursor":"","WantNum":100}`
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, tencent.PathGet, strings.NewReader(body)))
		if w.Body.Len() < 5000 {
			b.Fatal(w.Body.String())
		}
	}
}
