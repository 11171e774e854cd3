package main

import (
	"net/http"

	"github.com/followgraph/followgraph/httpapi/tencent"
)

// mountTencent serves the Tencent Cloud Chat compatible follow endpoints
// (docs/HTTP-TENCENT.md) on mux, over the client port's handler and
// tokens, so that they answer and admit exactly as the binary port does.
func (d *daemon) mountTencent(mux *http.ServeMux) {
	mux.Handle("/v4/follow/", tencent.New(tencent.Config{Tokens: d.tokens}, d.server.Handler()))
}
