package main

import (
	"net/http"

	"github.com/followgraph/followgraph/httpapi/tencent"
)

// mountTencent serves the Tencent Cloud Chat compatible follow endpoints
// (docs/HTTP.md, "Tencent-compatible endpoints") on mux, over the client port's handler and
// tokens, so that they answer and admit exactly as the binary port does
// (and count in the same token metrics).
func (d *daemon) mountTencent(mux *http.ServeMux, m *metrics) {
	mux.Handle("/v4/follow/", tencent.New(tencent.Config{Tokens: d.tokens, Observer: m}, d.server.Handler()))
}
