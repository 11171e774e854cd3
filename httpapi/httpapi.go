// Package httpapi is followgraph's native HTTP/JSON API: the client
// operations of the binary protocol (follow, unfollow, the three lists,
// info, check, status and the shard map) as JSON over HTTP/1.1, for
// clients that cannot speak the binary protocol. docs/HTTP.md documents it
// and openapi.json (served at /v1/openapi.json) describes it.
//
// The API calls the node's router in process through wire.Handler, the
// interface the binary server calls: validation, limits, per-item codes,
// read consistency and forwarding to shard leaders are the router's, so
// both ports answer alike. Access follows the binary port's rules too
// (wire.AdmitClient): the same tokens, roles and rate budgets, with the
// credentials in each request's Authorization header (Authenticator,
// which other HTTP front ends may reuse).
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/internal/tokens"
	"github.com/followgraph/followgraph/wire"
	"github.com/hashicorp/go-hclog"
)

// Observer receives the API's metrics; followd's binary-port metrics
// implement it, so both ports count in the same series. Methods are
// called concurrently.
type Observer interface {
	// Request reports one admitted request, by operation and result.
	Request(op wire.Op, code codes.Code, d time.Duration)
	// TokenRequest reports a request checked against its token's role
	// and rate (only when the server has tokens): OK when admitted,
	// NotAllowed or RateLimited when refused.
	TokenRequest(token string, op wire.Op, code codes.Code)
}

// Config configures the API. Start from DefaultConfig.
type Config struct {
	// Tokens are the client tokens, as the binary port's (nil: no
	// authentication, every client may do everything).
	Tokens *tokens.Store
	// MaxBody bounds a request body in bytes, like the binary port's
	// frame limit; a larger body gets 40005 (413).
	MaxBody int
	// RequestTimeout bounds each request's handling, as the binary
	// port's does.
	RequestTimeout time.Duration
	// Logger logs panics (nil: discard).
	Logger hclog.Logger
	// Observer, if set, receives metrics.
	Observer Observer
	// Forwards says the handler may forward reads to other nodes (a
	// cluster): reads then get RequestTimeout too, as on the binary
	// port; on a single node they never wait, and only writes get it.
	Forwards bool
}

// DefaultConfig returns the defaults: the binary port's frame limit and
// request timeout, no tokens.
func DefaultConfig() Config {
	return Config{MaxBody: wire.DefaultMaxFrame, RequestTimeout: 10 * time.Second}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case c.MaxBody < 1024 || c.MaxBody > 1<<30:
		return fmt.Errorf("httpapi: MaxBody (%d) must be between 1 KiB and 1 GiB", c.MaxBody)
	case c.RequestTimeout <= 0:
		return errors.New("httpapi: RequestTimeout must be positive")
	}
	return nil
}

// API serves the JSON API. It is an http.Handler for the paths under
// /v1/; mount it at "/v1/".
type API struct {
	cfg  Config
	h    wire.Handler
	auth *Authenticator
	log  hclog.Logger
	bufs sync.Pool
}

// New returns the API of handler h (the node's router).
func New(cfg Config, h wire.Handler) (*API, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("httpapi: nil handler")
	}
	a := &API{cfg: cfg, h: h, log: cfg.Logger}
	if a.log == nil {
		a.log = hclog.NewNullLogger()
	}
	var obs func(string, wire.Op, codes.Code)
	if cfg.Observer != nil {
		obs = cfg.Observer.TokenRequest
	}
	a.auth = NewAuthenticator(cfg.Tokens, obs)
	return a, nil
}

// Prefix is the path prefix of every endpoint.
const Prefix = "/v1/"

// endpoint is one operation of the API: its method, the protocol
// operation it runs (for roles, rates and metrics) and its handler,
// which returns the response body appended to b.
type endpoint struct {
	method string
	op     wire.Op
	serve  func(a *API, ctx context.Context, r *http.Request, op wire.Op, arg string, b []byte) ([]byte, error)
}

// endpoints are the fixed paths; the list paths (/v1/users/ID/LIST) are
// matched by route.
var endpoints = map[string]endpoint{
	"/v1/follow":   {http.MethodPost, wire.OpFollow, serveWrite},
	"/v1/unfollow": {http.MethodPost, wire.OpUnfollow, serveWrite},
	"/v1/info":     {http.MethodPost, wire.OpInfo, serveInfo},
	"/v1/check":    {http.MethodPost, wire.OpCheck, serveCheck},
	"/v1/status":   {http.MethodGet, wire.OpStatus, serveStatus},
	"/v1/shardmap": {http.MethodGet, wire.OpShardMap, serveShardMap},
	// The set queries.
	"/v1/relationships": {http.MethodPost, wire.OpRelationships, serveRelationships},
}

// userPaths are the paths /v1/users/ID/NAME, by NAME.
var userPaths = map[string]endpoint{
	"followers":        {http.MethodGet, wire.OpFollowers, serveList},
	"following":        {http.MethodGet, wire.OpFollowing, serveList},
	"mutual":           {http.MethodGet, wire.OpMutual, serveList},
	"known-followers":  {http.MethodGet, wire.OpKnownFollowers, serveSetQuery},
	"common-following": {http.MethodGet, wire.OpCommonFollowing, serveSetQuery},
}

// route finds the endpoint of a path, and the escaped user ID of a list
// path. ok is false for a path the API does not have.
func route(path string) (e endpoint, arg string, ok bool) {
	if e, ok := endpoints[path]; ok {
		return e, "", true
	}
	rest, found := strings.CutPrefix(path, "/v1/users/")
	if !found {
		return endpoint{}, "", false
	}
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 {
		return endpoint{}, "", false
	}
	e, known := userPaths[rest[i+1:]]
	if !known || strings.IndexByte(rest[:i], '/') >= 0 {
		return endpoint{}, "", false
	}
	return e, rest[:i], true
}

// ServeHTTP serves one request: route, method, credentials, then the
// operation. Every answer, errors included, is JSON.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer a.recoverPanic(w, r)
	path := r.URL.EscapedPath()
	if path == "/v1/openapi.json" {
		a.serveOpenAPI(w, r)
		return
	}
	e, arg, ok := route(path)
	switch {
	case !ok:
		writeError(w, codes.New(codes.UnknownOp, "no endpoint %s %s (see /v1/openapi.json)", r.Method, path), http.StatusNotFound)
		return
	case r.Method != e.method:
		w.Header().Set("Allow", e.method)
		writeError(w, codes.New(codes.UnknownOp, "%s %s: method not allowed; use %s", r.Method, path, e.method), http.StatusMethodNotAllowed)
		return
	}
	start := time.Now()
	if _, err := a.auth.Admit(r, e.op); err != nil {
		// Counted, as the binary port counts its refusals.
		if a.cfg.Observer != nil {
			a.cfg.Observer.Request(e.op, codes.Of(err), time.Since(start))
		}
		writeError(w, err, 0)
		return
	}
	ctx := r.Context()
	if a.cfg.Forwards || e.op == wire.OpFollow || e.op == wire.OpUnfollow {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.cfg.RequestTimeout)
		defer cancel()
	}
	bp := a.getBuf()
	b, err := e.serve(a, ctx, r, e.op, arg, (*bp)[:0])
	if a.cfg.Observer != nil {
		a.cfg.Observer.Request(e.op, codes.Of(err), time.Since(start))
	}
	if err != nil {
		a.putBuf(bp, b)
		writeError(w, err, 0)
		return
	}
	writeJSON(w, http.StatusOK, b)
	a.putBuf(bp, b)
}

// recoverPanic turns a panic while serving a request into a JSON 500
// (logged with its stack): a bug reached by one request must not take
// the connection, or the node, down. http.ErrAbortHandler keeps its
// meaning (abort the response).
func (a *API) recoverPanic(w http.ResponseWriter, r *http.Request) {
	p := recover()
	if p == nil {
		return
	}
	if p == http.ErrAbortHandler {
		panic(p)
	}
	a.log.Error("panic while serving an HTTP request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	writeError(w, codes.New(codes.Internal, "internal error"), http.StatusInternalServerError)
}

// getBuf returns a response buffer from the pool.
func (a *API) getBuf() *[]byte {
	if p, ok := a.bufs.Get().(*[]byte); ok {
		return p
	}
	b := make([]byte, 0, 4096)
	return &b
}

// putBuf returns b (grown from *p) to the pool, unless it grew huge.
func (a *API) putBuf(p *[]byte, b []byte) {
	if cap(b) > 1<<20 {
		return
	}
	*p = b[:0]
	a.bufs.Put(p)
}

var jsonContentType = []string{"application/json"}

// writeJSON sends a complete JSON body with its length, so that
// keep-alive connections need no chunking. net/http measures bodies
// shorter than its chunking buffer (2 KiB) itself: the header is set only
// for longer ones, an allocation spared on most responses.
func writeJSON(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	if len(b) >= 2048 {
		h["Content-Length"] = []string{strconv.Itoa(len(b))}
	}
	w.WriteHeader(status)
	w.Write(b)
}
