package httpapi

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/wire"
)

// Request decoding. Bodies are JSON objects decoded strictly (jsonread.go):
// unknown fields, wrong types and trailing data are errors (30001), so
// that a typo in a field name does not silently mean "absent"; null means
// absent. The binary protocol's decoder limits apply too (a user ID over
// wire.MaxDecodedIDLen bytes, an array over wire.MaxListElements), with
// its messages; the router checks the rest (counts, page sizes, IDs).

// checkIDs applies the binary decoder's limits to a request's user IDs:
// at most wire.MaxListElements of them, none over wire.MaxDecodedIDLen
// bytes (longer ones fail the whole request, shorter invalid ones fail
// their item in the router).
func checkIDs(what, role string, ids []string) error {
	if len(ids) > wire.MaxListElements {
		return codes.New(codes.InvalidParam, "malformed %s body: %d %ss, at most %d", what, len(ids), role, wire.MaxListElements)
	}
	for i, id := range ids {
		if len(id) > wire.MaxDecodedIDLen {
			return codes.New(codes.InvalidParam, "user ID of %s %d is %d bytes long: a user ID has at most 64 bytes", role, i+1, len(id))
		}
	}
	return nil
}

// checkActor is checkIDs for a request's single actor, which must be
// present.
func checkActor(what string, actor *string) (string, error) {
	switch {
	case actor == nil:
		return "", codes.New(codes.InvalidParam, "malformed %s body: field \"actor\" is missing", what)
	case len(*actor) > wire.MaxDecodedIDLen:
		return "", codes.New(codes.InvalidParam, "user ID of the actor is %d bytes long: a user ID has at most 64 bytes", len(*actor))
	}
	return *actor, nil
}

// parseWrite decodes a follow or unfollow body: {"actor": "a",
// "targets": ["b", ...], "sync": false}.
func parseWrite(body []byte) (wire.WriteRequest, error) {
	var req wire.WriteRequest
	var actor *string
	err := readObject(body, "write request", func(f *field) bool {
		switch f.key {
		case "actor":
			actor = f.optional()
		case "targets":
			req.Targets = f.strings()
		case "sync":
			req.Sync = f.bool()
		default:
			return false
		}
		return true
	})
	if err == nil {
		req.Actor, err = checkActor("write request", actor)
	}
	if err == nil {
		err = checkIDs("write request", "target", req.Targets)
	}
	return req, err
}

// parseInfo decodes an info body: {"users": [...], "consistency": "any"}.
func parseInfo(body []byte) (wire.UsersRequest, error) {
	var req wire.UsersRequest
	var cons string
	err := readObject(body, "info request", func(f *field) bool {
		switch f.key {
		case "users":
			req.Users = f.strings()
		case "consistency":
			cons, _ = f.string()
		default:
			return false
		}
		return true
	})
	if err == nil {
		req.Consistency, err = parseConsistency("info request", cons)
	}
	if err == nil {
		err = checkIDs("info request", "user", req.Users)
	}
	return req, err
}

// parseCheck decodes a check body: {"actor": "a", "targets": [...],
// "consistency": "leader"}.
func parseCheck(body []byte) (wire.CheckRequest, error) {
	var req wire.CheckRequest
	var actor *string
	var cons string
	err := readObject(body, "check request", func(f *field) bool {
		switch f.key {
		case "actor":
			actor = f.optional()
		case "targets":
			req.Targets = f.strings()
		case "consistency":
			cons, _ = f.string()
		default:
			return false
		}
		return true
	})
	if err == nil {
		req.Actor, err = checkActor("check request", actor)
	}
	if err == nil {
		req.Consistency, err = parseConsistency("check request", cons)
	}
	if err == nil {
		err = checkIDs("check request", "target", req.Targets)
	}
	return req, err
}

// Consistency names, as docs/PROTOCOL.md section 8.8 gives them.
var consistencies = map[string]wire.Consistency{"": wire.Leader, "leader": wire.Leader, "linearizable": wire.Linearizable, "any": wire.Any}

func parseConsistency(what, s string) (wire.Consistency, error) {
	c, ok := consistencies[s]
	if !ok {
		return 0, codes.New(codes.InvalidParam, "malformed %s: consistency %q: want leader, linearizable or any", what, truncate(s))
	}
	return c, nil
}

// parseList decodes a list request: the user ID from the path (escaped)
// and the query's cursor, limit and consistency.
func parseList(escapedUser, rawQuery string) (wire.ListRequest, error) {
	user, err := url.PathUnescape(escapedUser)
	if err != nil {
		return wire.ListRequest{}, codes.New(codes.InvalidParam, "malformed list request: bad escape in the user ID of the path")
	}
	if len(user) > wire.MaxDecodedIDLen {
		return wire.ListRequest{}, codes.New(codes.InvalidParam, "user ID of the user is %d bytes long: a user ID has at most 64 bytes", len(user))
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return wire.ListRequest{}, codes.New(codes.InvalidParam, "malformed list request: query: %v", err)
	}
	req := wire.ListRequest{User: user}
	for k, vs := range q {
		if len(vs) > 1 {
			return req, codes.New(codes.InvalidParam, "malformed list request: query parameter %q given %d times", truncate(k), len(vs))
		}
		if err := setListParam(&req, k, vs[0]); err != nil {
			return req, err
		}
	}
	return req, nil
}

// setListParam sets one query parameter of a list request.
func setListParam(req *wire.ListRequest, k, v string) error {
	switch k {
	case "cursor":
		if len(v) > wire.MaxCursorLen {
			return codes.New(codes.InvalidParam, "malformed list request: cursor of %d bytes, at most %d", len(v), wire.MaxCursorLen)
		}
		req.Cursor = v
	case "limit":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > wire.MaxListLimit {
			return codes.New(codes.InvalidParam, "malformed list request: limit %q: want a number from 0 (the default, 100) to 500", truncate(v))
		}
		req.Limit = n
	case "consistency":
		c, err := parseConsistency("list request", v)
		if err != nil {
			return err
		}
		req.Consistency = c
	default:
		return codes.New(codes.InvalidParam, "malformed list request: unknown query parameter %q (want cursor, limit, consistency)", truncate(k))
	}
	return nil
}

// truncate shortens what a client sent for an error message.
func truncate(s string) string {
	if len(s) > 64 {
		return fmt.Sprintf("%.64s...", s)
	}
	return s
}
