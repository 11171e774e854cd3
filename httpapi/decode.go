package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/wire"
)

// Request decoding. Bodies are JSON objects decoded strictly: unknown
// fields, wrong types, trailing data and null where a value is needed are
// errors (30001), so that a typo in a field name does not silently mean
// "absent". The binary protocol's decoder limits apply too (a user ID over
// wire.MaxDecodedIDLen bytes, an array over wire.MaxListElements), with
// its messages; the router checks the rest (counts, page sizes, IDs).

// writeBody is the body of POST /v1/follow and /v1/unfollow.
type writeBody struct {
	Actor   *string  `json:"actor"`
	Targets []string `json:"targets"`
	Sync    bool     `json:"sync"`
}

// infoBody is the body of POST /v1/info.
type infoBody struct {
	Users       []string `json:"users"`
	Consistency string   `json:"consistency"`
}

// checkBody is the body of POST /v1/check.
type checkBody struct {
	Actor       *string  `json:"actor"`
	Targets     []string `json:"targets"`
	Consistency string   `json:"consistency"`
}

// decodeStrict decodes one JSON object from body into v.
func decodeStrict(body []byte, v any, what string) error {
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return malformed(what, err)
	}
	if _, err := d.Token(); err != io.EOF {
		return codes.New(codes.InvalidParam, "malformed %s body: data after the JSON object", what)
	}
	return nil
}

// malformed explains a JSON decoding error.
func malformed(what string, err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te) && te.Field != "":
		return codes.New(codes.InvalidParam, "malformed %s body: field %q: want %s, not a JSON %s", what, te.Field, jsonType(te.Type.String()), te.Value)
	case errors.As(err, &te):
		return codes.New(codes.InvalidParam, "malformed %s body: want a JSON object, not a JSON %s", what, te.Value)
	case errors.As(err, &se):
		return codes.New(codes.InvalidParam, "malformed %s body: invalid JSON at byte %d: %v", what, se.Offset, err)
	case errors.Is(err, io.EOF):
		return codes.New(codes.InvalidParam, "malformed %s body: empty body; want a JSON object", what)
	}
	// Unknown fields and truncated bodies: encoding/json's words.
	return codes.New(codes.InvalidParam, "malformed %s body: %v", what, err)
}

// jsonType names a Go type as JSON knows it.
func jsonType(t string) string {
	switch t {
	case "string", "*string":
		return "a string"
	case "[]string":
		return "an array of strings"
	case "bool":
		return "true or false"
	}
	return t
}

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

// parseWrite decodes a follow or unfollow body.
func parseWrite(body []byte) (wire.WriteRequest, error) {
	var v writeBody
	if err := decodeStrict(body, &v, "write request"); err != nil {
		return wire.WriteRequest{}, err
	}
	actor, err := checkActor("write request", v.Actor)
	if err == nil {
		err = checkIDs("write request", "target", v.Targets)
	}
	return wire.WriteRequest{Actor: actor, Targets: v.Targets, Sync: v.Sync}, err
}

// parseInfo decodes an info body.
func parseInfo(body []byte) (wire.UsersRequest, error) {
	var v infoBody
	if err := decodeStrict(body, &v, "info request"); err != nil {
		return wire.UsersRequest{}, err
	}
	c, err := parseConsistency("info request", v.Consistency)
	if err == nil {
		err = checkIDs("info request", "user", v.Users)
	}
	return wire.UsersRequest{Users: v.Users, Consistency: c}, err
}

// parseCheck decodes a check body.
func parseCheck(body []byte) (wire.CheckRequest, error) {
	var v checkBody
	if err := decodeStrict(body, &v, "check request"); err != nil {
		return wire.CheckRequest{}, err
	}
	actor, err := checkActor("check request", v.Actor)
	var c wire.Consistency
	if err == nil {
		c, err = parseConsistency("check request", v.Consistency)
	}
	if err == nil {
		err = checkIDs("check request", "target", v.Targets)
	}
	return wire.CheckRequest{Actor: actor, Targets: v.Targets, Consistency: c}, err
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
