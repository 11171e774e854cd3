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

// listQuery is what a list or set query path and query string say.
type listQuery struct {
	user, other, cursor string
	limit               int
	cons                wire.Consistency
}

// parseListQuery decodes the user ID of a list path (escaped) and the
// query's cursor, limit and consistency, and the other user's parameter
// otherName of a set query ("" for a list).
func parseListQuery(escapedUser, rawQuery, otherName string) (listQuery, error) {
	user, err := url.PathUnescape(escapedUser)
	if err != nil {
		return listQuery{}, codes.New(codes.InvalidParam, "malformed list request: bad escape in the user ID of the path")
	}
	if len(user) > wire.MaxDecodedIDLen {
		return listQuery{}, codes.New(codes.InvalidParam, "user ID of the user is %d bytes long: a user ID has at most 64 bytes", len(user))
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return listQuery{}, codes.New(codes.InvalidParam, "malformed list request: query: %v", err)
	}
	lq := listQuery{user: user}
	for k, vs := range q {
		if len(vs) > 1 {
			return lq, codes.New(codes.InvalidParam, "malformed list request: query parameter %q given %d times", truncate(k), len(vs))
		}
		if err := lq.set(k, vs[0], otherName); err != nil {
			return lq, err
		}
	}
	if otherName != "" {
		if _, ok := q[otherName]; !ok {
			return lq, codes.New(codes.InvalidParam, "malformed list request: query parameter %q is missing", otherName)
		}
	}
	return lq, nil
}

// parseList decodes a list request (followers, following, mutual).
func parseList(escapedUser, rawQuery string) (wire.ListRequest, error) {
	q, err := parseListQuery(escapedUser, rawQuery, "")
	return wire.ListRequest{User: q.user, Cursor: q.cursor, Limit: q.limit, Consistency: q.cons}, err
}

// set sets one query parameter.
func (q *listQuery) set(k, v, otherName string) error {
	switch {
	case k == "cursor":
		if len(v) > wire.MaxCursorLen {
			return codes.New(codes.InvalidParam, "malformed list request: cursor of %d bytes, at most %d", len(v), wire.MaxCursorLen)
		}
		q.cursor = v
	case k == "limit":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > wire.MaxListLimit {
			return codes.New(codes.InvalidParam, "malformed list request: limit %q: want a number from 0 (the default, 100) to 500", truncate(v))
		}
		q.limit = n
	case k == "consistency":
		c, err := parseConsistency("list request", v)
		if err != nil {
			return err
		}
		q.cons = c
	case k == otherName && otherName != "":
		if len(v) > wire.MaxDecodedIDLen {
			return codes.New(codes.InvalidParam, "user ID of the %s is %d bytes long: a user ID has at most 64 bytes", otherName, len(v))
		}
		q.other = v
	default:
		want := "cursor, limit, consistency"
		if otherName != "" {
			want = otherName + ", " + want
		}
		return codes.New(codes.InvalidParam, "malformed list request: unknown query parameter %q (want %s)", truncate(k), want)
	}
	return nil
}

// parseRelationships decodes a relationships body: {"pairs": [{"from":
// "a", "to": "b"}, ...], "consistency": "any"}.
func parseRelationships(body []byte) (wire.RelationshipsRequest, error) {
	var req wire.RelationshipsRequest
	var cons string
	err := readObject(body, "relationships request", func(f *field) bool {
		switch f.key {
		case "pairs":
			req.Pairs = f.pairs()
		case "consistency":
			cons, _ = f.string()
		default:
			return false
		}
		return true
	})
	if err == nil {
		req.Consistency, err = parseConsistency("relationships request", cons)
	}
	if err == nil && len(req.Pairs) > wire.MaxListElements {
		err = codes.New(codes.InvalidParam, "malformed relationships request body: %d pairs, at most %d", len(req.Pairs), wire.MaxListElements)
	}
	for i, p := range req.Pairs {
		if err != nil {
			break
		}
		switch {
		case len(p.From) > wire.MaxDecodedIDLen:
			err = codes.New(codes.InvalidParam, "user ID of from %d is %d bytes long: a user ID has at most 64 bytes", i+1, len(p.From))
		case len(p.To) > wire.MaxDecodedIDLen:
			err = codes.New(codes.InvalidParam, "user ID of to %d is %d bytes long: a user ID has at most 64 bytes", i+1, len(p.To))
		}
	}
	return req, err
}

// truncate shortens what a client sent for an error message.
func truncate(s string) string {
	if len(s) > 64 {
		return fmt.Sprintf("%.64s...", s)
	}
	return s
}
