// Package tencent serves followgraph over HTTP in the shape of Tencent
// Cloud Chat's follow REST API (v4/follow/follow_add, follow_delete,
// follow_check, follow_get and follow_get_info), so that a backend that
// calls Tencent's server API moves to followgraph by changing its base
// URL.
//
// Requests are Tencent's: POST, a JSON body, and the URL parameters
// sdkappid, identifier, usersig, random and contenttype. Responses are
// Tencent's too, field for field and in the same order and spacing as
// its samples, always with HTTP status 200 and the outcome in
// ActionStatus, ErrorCode and ErrorInfo. The handler calls a
// wire.Handler (the node's router) in process, so in a cluster the
// router forwards what this node does not lead.
//
// identifier and usersig are a token's name and secret (package
// tokens), checked against the role the operation has on the binary
// port. docs/HTTP.md ("Tencent-compatible endpoints") maps every field and code, and lists the
// differences from Tencent's service.
package tencent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/wire"
)

// Paths of the endpoints, as in Tencent's URLs.
const (
	PathAdd     = "/v4/follow/follow_add"
	PathDelete  = "/v4/follow/follow_delete"
	PathCheck   = "/v4/follow/follow_check"
	PathGet     = "/v4/follow/follow_get"
	PathGetInfo = "/v4/follow/follow_get_info"
)

// endpoint is one API: the op whose role it needs, and how it runs.
type endpoint struct {
	op    wire.Op
	serve func(s *server, ctx context.Context, body []byte) ([]byte, error)
}

var endpoints = map[string]endpoint{
	PathAdd:     {wire.OpFollow, (*server).add},
	PathDelete:  {wire.OpUnfollow, (*server).delete},
	PathCheck:   {wire.OpCheck, (*server).check},
	PathGet:     {wire.OpFollowers, (*server).get},
	PathGetInfo: {wire.OpInfo, (*server).getInfo},
}

type server struct {
	cfg Config
	h   wire.Handler
}

// New returns the handler of the five endpoints over h. It panics if cfg
// is invalid (check it with Validate first): a configuration is the
// program's, not a request's. Mount it at "/v4/follow/"; any other path
// under it gets a Tencent-shaped error.
func New(cfg Config, h wire.Handler) http.Handler {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &server{cfg: cfg.withDefaults(), h: h}
}

// ServeHTTP answers every request with status 200 and a JSON body, as
// Tencent does, errors included.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	defer func() {
		// A bug must not become a 500 with a stack: say 30006, and let
		// the client retry.
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			code, info := failure(fmt.Errorf("panic serving %s: %v", r.URL.Path, v))
			w.Write(appendError(nil, code, info))
		}
	}()
	out, err := s.serve(w, r)
	if err != nil {
		code, info := failure(err)
		out = appendError(out[:0], code, info)
	}
	w.Write(out)
}

func (s *server) serve(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	ep, ok := endpoints[r.URL.Path]
	switch {
	case !ok:
		return nil, codes.New(codes.UnknownOp, "unknown API %q: want one of v4/follow/follow_add, follow_delete, follow_check, follow_get, follow_get_info", r.URL.Path)
	case r.Method != http.MethodPost:
		return nil, codes.New(codes.InvalidParam, "method %s: the REST API takes POST", r.Method)
	}
	if err := s.admit(r, ep.op); err != nil {
		return nil, err
	}
	// With w, a body over the limit also closes the connection after
	// the answer, rather than read the rest.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, codes.New(codes.InvalidParam, "request body over %d bytes", s.cfg.MaxBody)
	case err != nil:
		return nil, codes.New(codes.InvalidParam, "reading the request body: %v", err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
	defer cancel()
	return ep.serve(s, ctx, body)
}

// admit checks the URL's parameters and the token they name.
func (s *server) admit(r *http.Request, op wire.Op) error {
	q := r.URL.Query()
	if ct := q.Get("contenttype"); ct != "" && ct != "json" {
		return codes.New(codes.InvalidParam, "contenttype %q: only json is served", ct)
	}
	if s.cfg.SDKAppID != "" && q.Get("sdkappid") != s.cfg.SDKAppID {
		return &apiError{codeSDKAppIDMismatch, fmt.Sprintf("sdkappid %q is not this server's", q.Get("sdkappid"))}
	}
	return authorize(s.cfg.Tokens, s.cfg.Observer, q.Get("identifier"), q.Get("usersig"), op)
}

func (s *server) add(ctx context.Context, body []byte) ([]byte, error) {
	req, err := parseAdd(body)
	if err != nil {
		return nil, err
	}
	rs, err := s.h.Write(ctx, wire.OpFollow, req)
	if err != nil {
		return nil, err
	}
	return appendResults(nil, rs), nil
}

func (s *server) delete(ctx context.Context, body []byte) ([]byte, error) {
	req, err := parseDelete(body)
	if err != nil {
		return nil, err
	}
	rs, err := s.h.Write(ctx, wire.OpUnfollow, req)
	if err != nil {
		return nil, err
	}
	return appendResults(nil, rs), nil
}

func (s *server) check(ctx context.Context, body []byte) ([]byte, error) {
	req, err := parseCheck(body)
	if err != nil {
		return nil, err
	}
	cs, err := s.h.Check(ctx, req)
	if err != nil {
		return nil, err
	}
	return appendChecks(nil, cs), nil
}

func (s *server) getInfo(ctx context.Context, body []byte) ([]byte, error) {
	req, err := parseInfo(body)
	if err != nil {
		return nil, err
	}
	is, err := s.h.Info(ctx, req)
	if err != nil {
		return nil, err
	}
	return appendInfos(nil, is), nil
}

// listPage is the largest page of the binary protocol's list operations
// (shard.Config.MaxPage); a WantNum above it takes several.
const listPage = 500

// get reads up to WantNum entries, in as many list pages as that takes,
// and answers the cursor after the last one.
func (s *server) get(ctx context.Context, body []byte) ([]byte, error) {
	req, err := parseGet(body)
	if err != nil {
		return nil, err
	}
	// About 70 bytes an entry: one allocation for most pages.
	b := appendGetStart(make([]byte, 0, 128+80*req.WantNum))
	n, cursor := 0, req.Cursor
	for n < req.WantNum {
		got := 0
		next, err := s.h.List(ctx, req.Op, wire.ListRequest{User: req.User, Cursor: cursor, Limit: min(req.WantNum-n, listPage)}, func(id []byte, t int64) {
			b = appendGetItem(b, n+got, id, t)
			got++
		})
		if err != nil {
			return nil, err
		}
		n, cursor = n+got, next
		if next == "" || got == 0 {
			break // the end, or entries removed since: the client carries on
		}
	}
	return appendGetEnd(b, cursor), nil
}
