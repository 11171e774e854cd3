package httpapi

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/wire"
)

// readBody reads r's body whole, up to MaxBody bytes: a larger one is
// refused with 40005 before the rest is read.
func (a *API) readBody(r *http.Request, b []byte) ([]byte, error) {
	if r.ContentLength > int64(a.cfg.MaxBody) {
		return nil, codes.New(codes.FrameTooLarge, "body of %d bytes; the limit is %d", r.ContentLength, a.cfg.MaxBody)
	}
	lr := io.LimitReader(r.Body, int64(a.cfg.MaxBody)+1)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if len(b) > a.cfg.MaxBody {
			return nil, codes.New(codes.FrameTooLarge, "body over the limit of %d bytes", a.cfg.MaxBody)
		}
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return nil, codes.New(codes.InvalidParam, "reading the body: %v", err)
		}
	}
}

// withBody reads the request body into a pooled buffer, calls fn with it
// and returns the buffer (the parsed request copies what it keeps: the
// JSON decoder makes its own strings).
func (a *API) withBody(r *http.Request, fn func(body []byte) error) error {
	bp := a.getBuf()
	body, err := a.readBody(r, (*bp)[:0])
	if err == nil {
		err = fn(body)
	}
	a.putBuf(bp, body)
	return err
}

func serveWrite(a *API, ctx context.Context, r *http.Request, op wire.Op, _ string, b []byte) ([]byte, error) {
	var req wire.WriteRequest
	err := a.withBody(r, func(body []byte) (err error) {
		req, err = parseWrite(body)
		return err
	})
	if err != nil {
		return b, err
	}
	res, err := a.h.Write(ctx, op, req)
	if err != nil {
		return b, err
	}
	return appendResults(b, res), nil
}

func serveList(a *API, ctx context.Context, r *http.Request, op wire.Op, user string, b []byte) ([]byte, error) {
	req, err := parseList(user, r.URL.RawQuery)
	if err != nil {
		return b, err
	}
	b = pageStart(b)
	first := true
	next, err := a.h.List(ctx, op, req, func(id []byte, t int64) {
		b = appendItem(b, first, unsafeString(id), t)
		first = false
	})
	if err != nil {
		return b[:0], err
	}
	return pageEnd(b, next), nil
}

func serveInfo(a *API, ctx context.Context, r *http.Request, _ wire.Op, _ string, b []byte) ([]byte, error) {
	var req wire.UsersRequest
	err := a.withBody(r, func(body []byte) (err error) {
		req, err = parseInfo(body)
		return err
	})
	if err != nil {
		return b, err
	}
	is, err := a.h.Info(ctx, req)
	if err != nil {
		return b, err
	}
	return appendInfos(b, is), nil
}

func serveCheck(a *API, ctx context.Context, r *http.Request, _ wire.Op, _ string, b []byte) ([]byte, error) {
	var req wire.CheckRequest
	err := a.withBody(r, func(body []byte) (err error) {
		req, err = parseCheck(body)
		return err
	})
	if err != nil {
		return b, err
	}
	cs, err := a.h.Check(ctx, req)
	if err != nil {
		return b, err
	}
	return appendChecks(b, cs), nil
}

// serveSetQuery serves known followers (/v1/users/ID/known-followers?
// viewer=V: ID's followers whom V follows) and common following
// (/v1/users/ID/common-following?other=B: the users both ID and B follow).
func serveSetQuery(a *API, ctx context.Context, r *http.Request, op wire.Op, user string, b []byte) ([]byte, error) {
	var p wire.SetPage
	if op == wire.OpKnownFollowers {
		q, err := parseListQuery(user, r.URL.RawQuery, "viewer")
		if err != nil {
			return b, err
		}
		p, err = a.h.KnownFollowers(ctx, wire.KnownFollowersRequest{Viewer: q.other, User: q.user, Cursor: q.cursor, Limit: q.limit, Consistency: q.cons})
		if err != nil {
			return b, err
		}
	} else {
		q, err := parseListQuery(user, r.URL.RawQuery, "other")
		if err != nil {
			return b, err
		}
		p, err = a.h.CommonFollowing(ctx, wire.CommonFollowingRequest{A: q.user, B: q.other, Cursor: q.cursor, Limit: q.limit, Consistency: q.cons})
		if err != nil {
			return b, err
		}
	}
	return appendSetPage(b, p), nil
}

func serveRelationships(a *API, ctx context.Context, r *http.Request, _ wire.Op, _ string, b []byte) ([]byte, error) {
	var req wire.RelationshipsRequest
	err := a.withBody(r, func(body []byte) (err error) {
		req, err = parseRelationships(body)
		return err
	})
	if err != nil {
		return b, err
	}
	rs, err := a.h.Relationships(ctx, req)
	if err != nil {
		return b, err
	}
	return appendRelationships(b, rs), nil
}

// noQuery refuses parameters on endpoints that take none.
func noQuery(r *http.Request) error {
	if r.URL.RawQuery != "" {
		return codes.New(codes.InvalidParam, "%s takes no query parameters", r.URL.Path)
	}
	return nil
}

func serveStatus(a *API, ctx context.Context, r *http.Request, _ wire.Op, _ string, b []byte) ([]byte, error) {
	if err := noQuery(r); err != nil {
		return b, err
	}
	st, err := a.h.Status(ctx)
	if err != nil {
		return b, err
	}
	return appendJSON(b, statusJSON(st))
}

func serveShardMap(a *API, ctx context.Context, r *http.Request, _ wire.Op, _ string, b []byte) ([]byte, error) {
	if err := noQuery(r); err != nil {
		return b, err
	}
	m, err := a.h.ShardMap(ctx)
	if err != nil {
		return b, err
	}
	return appendJSON(b, shardMapJSON(m))
}

func appendJSON(b []byte, v any) ([]byte, error) {
	out, err := json.Marshal(v)
	if err != nil {
		return b, codes.New(codes.Internal, "encoding the response: %v", err)
	}
	return append(b, out...), nil
}

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the API's OpenAPI 3 document (JSON).
func OpenAPI() []byte { return openAPI }

// serveOpenAPI serves the OpenAPI document, to anyone: it describes the
// API and holds nothing about the node.
func (a *API) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, codes.New(codes.UnknownOp, "%s %s: method not allowed; use GET", r.Method, r.URL.Path), http.StatusMethodNotAllowed)
		return
	}
	writeJSON(w, http.StatusOK, openAPI)
}
