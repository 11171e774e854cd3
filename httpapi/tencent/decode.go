package tencent

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/wire"
)

// Tencent's limits per request, which these endpoints keep even where
// the binary protocol allows more (info takes 100 users there).
const (
	maxWriteAccounts = 20
	maxCheckAccounts = 100
	maxInfoAccounts  = 20
	maxWantNum       = 1000
	defaultWantNum   = 100
	// maxCursor is the binary protocol's cursor limit.
	maxCursor = 256
)

// The request bodies, as Tencent documents them. encoding/json matches
// keys case-insensitively and ignores unknown ones; both are lenient,
// neither changes the meaning of a well-formed request.
type (
	addBody struct {
		FromAccount *string `json:"From_Account"`
		FollowItem  []struct {
			ToAccount string `json:"To_Account"`
		} `json:"FollowItem"`
	}
	accountsBody struct {
		FromAccount *string  `json:"From_Account"`
		ToAccount   []string `json:"To_Account"`
	}
	getBody struct {
		FromAccount *string `json:"From_Account"`
		FollowType  *int    `json:"FollowType"`
		StartCursor string  `json:"StartCursor"`
		WantNum     *int    `json:"WantNum"`
	}
)

// getRequest is a follow_get: which list, whose, from where, how many.
type getRequest struct {
	Op      wire.Op
	User    string
	Cursor  string
	WantNum int
}

// listOps maps follow_get's FollowType to the list operation.
var listOps = map[int]wire.Op{1: wire.OpFollowers, 2: wire.OpFollowing, 3: wire.OpMutual}

func parseAdd(body []byte) (wire.WriteRequest, error) {
	var v addBody
	if err := unmarshal(body, &v); err != nil {
		return wire.WriteRequest{}, err
	}
	w := wire.WriteRequest{Targets: make([]string, len(v.FollowItem))}
	for i, it := range v.FollowItem {
		w.Targets[i] = it.ToAccount
	}
	var err error
	if w.Actor, err = from(v.FromAccount); err == nil {
		err = count("FollowItem", len(w.Targets), maxWriteAccounts)
	}
	return w, err
}

func parseDelete(body []byte) (wire.WriteRequest, error) {
	actor, to, err := parseAccounts(body, maxWriteAccounts)
	return wire.WriteRequest{Actor: actor, Targets: to}, err
}

func parseCheck(body []byte) (wire.CheckRequest, error) {
	actor, to, err := parseAccounts(body, maxCheckAccounts)
	return wire.CheckRequest{Actor: actor, Targets: to}, err
}

// parseInfo requires From_Account, as Tencent does, though the counts
// do not depend on it.
func parseInfo(body []byte) (wire.UsersRequest, error) {
	_, to, err := parseAccounts(body, maxInfoAccounts)
	return wire.UsersRequest{Users: to}, err
}

func parseAccounts(body []byte, limit int) (string, []string, error) {
	var v accountsBody
	if err := unmarshal(body, &v); err != nil {
		return "", nil, err
	}
	actor, err := from(v.FromAccount)
	if err == nil {
		err = count("To_Account", len(v.ToAccount), limit)
	}
	return actor, v.ToAccount, err
}

func parseGet(body []byte) (getRequest, error) {
	var v getBody
	if err := unmarshal(body, &v); err != nil {
		return getRequest{}, err
	}
	actor, err := from(v.FromAccount)
	if err != nil {
		return getRequest{}, err
	}
	g := getRequest{User: actor, Cursor: v.StartCursor, WantNum: defaultWantNum}
	var ok bool
	switch {
	case v.FollowType == nil:
		return g, invalid("FollowType is required: 1 fans, 2 following, 3 mutual")
	case len(g.Cursor) > maxCursor:
		return g, invalid("StartCursor is %d bytes: not a cursor of this server", len(g.Cursor))
	case v.WantNum != nil && (*v.WantNum < 0 || *v.WantNum > maxWantNum):
		return g, invalid("WantNum %d: want 1 to %d (0 or absent: %d)", *v.WantNum, maxWantNum, defaultWantNum)
	}
	if g.Op, ok = listOps[*v.FollowType]; !ok {
		return g, invalid("FollowType %d: want 1 fans, 2 following or 3 mutual", *v.FollowType)
	}
	if v.WantNum != nil && *v.WantNum > 0 {
		g.WantNum = *v.WantNum
	}
	return g, nil
}

func from(p *string) (string, error) {
	if p == nil || *p == "" {
		return "", invalid("From_Account is required")
	}
	return *p, nil
}

func count(field string, n, limit int) error {
	if n < 1 || n > limit {
		return invalid("%d %s: want 1 to %d", n, field, limit)
	}
	return nil
}

func invalid(format string, args ...any) error {
	return codes.New(codes.InvalidParam, format, args...)
}

// unmarshal decodes a JSON object into v, after dropping trailing
// commas (see lenient), and words decoding errors for the caller.
func unmarshal(body []byte, v any) error {
	err := json.Unmarshal(lenient(body), v)
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &syn):
		return invalid("request body is not valid JSON: %s (at byte %d)", syn, syn.Offset)
	case errors.As(err, &typ) && typ.Field != "":
		return invalid("field %s: want a JSON %s, got %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.As(err, &typ):
		return invalid("request body must be a JSON object, got %s", typ.Value)
	}
	return invalid("request body is not valid JSON: %v", err)
}

// jsonKind names a Go kind as the JSON type it decodes from.
func jsonKind(k string) string {
	switch k {
	case "string":
		return "string"
	case "slice":
		return "array"
	case "struct":
		return "object"
	case "ptr":
		return "value of another type"
	}
	return fmt.Sprintf("integer (%s)", k)
}

// lenient returns body without its trailing commas: a comma outside
// strings followed (after white space) by } or ], after a value. The
// official follow_get sample request has one, so code copied from it
// must work; JSON without them is returned unchanged. Other errors are
// left for the decoder.
func lenient(body []byte) []byte {
	var out []byte // nil until a comma is dropped
	inStr, esc := false, false
	var last byte // the last byte outside strings that is not white space
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr, last = true, '"'
		case c == ',' && last != ',' && last != '{' && last != '[' && last != 0 && closesNext(body[i+1:]):
			if out == nil {
				out = append(make([]byte, 0, len(body)), body[:i]...)
			}
			continue // drop it
		case c != ' ' && c != '\t' && c != '\n' && c != '\r':
			last = c
		}
		if out != nil {
			out = append(out, c)
		}
	}
	if out == nil {
		return body
	}
	return out
}

// closesNext reports whether b starts, after white space, with } or ].
func closesNext(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '}', ']':
			return true
		}
		return false
	}
	return false
}
