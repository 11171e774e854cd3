package httpapi

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/wire"
)

// The body decoders never panic, fail only with 30001, and accept only
// what encoding/json reads the same way: on valid UTF-8, whatever they
// decode, encoding/json decodes to the same values (it is laxer: it
// ignores unknown fields and matches names case-insensitively).
func FuzzParseBodies(f *testing.F) {
	for _, s := range []string{
		`{"actor":"a","targets":["b","c"],"sync":true}`,
		`{"users":["a","b"],"consistency":"any"}`,
		`{"actor":"a","targets":["b"],"consistency":"linearizable"}`,
		`{"pairs":[{"from":"a","to":"b"}],"consistency":null}`,
		`{"actor":"\u00e9\ud83d\ude00\n","targets":[]}`,
		`{"actor":null,"targets":null,"sync":false}`,
		` { "actor" : "a" , "targets" : [ "b" ] } `,
		`{"actor":"a","actor":"b","targets":["x"]}`,
		`{"actor":"a\ud800","targets":["\/"]}`,
		`[]`, `{`, `{"a":1}`, ``, `{"targets":["a",]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		w, werr := parseWrite(body)
		i, ierr := parseInfo(body)
		c, cerr := parseCheck(body)
		r, rerr := parseRelationships(body)
		for _, err := range []error{werr, ierr, cerr, rerr} {
			if err != nil && codes.Of(err) != codes.InvalidParam {
				t.Fatalf("error %v: want 30001", err)
			}
		}
		if !utf8.Valid(body) {
			return
		}
		if werr == nil {
			var v struct {
				Actor   string
				Targets []string
				Sync    bool
			}
			same(t, body, &v, w, func() any { return wire.WriteRequest{Actor: v.Actor, Targets: v.Targets, Sync: v.Sync} })
		}
		if ierr == nil {
			var v struct {
				Users       []string
				Consistency string
			}
			same(t, body, &v, i.Users, func() any { return v.Users })
			if i.Consistency != consistencies[v.Consistency] {
				t.Fatalf("consistency %d, encoding/json %q", i.Consistency, v.Consistency)
			}
		}
		if cerr == nil {
			var v struct {
				Actor   string
				Targets []string
			}
			same(t, body, &v, wire.CheckRequest{Actor: c.Actor, Targets: c.Targets}, func() any { return wire.CheckRequest{Actor: v.Actor, Targets: v.Targets} })
		}
		if rerr == nil {
			var v struct {
				Pairs []struct{ From, To string }
			}
			same(t, body, &v, r.Pairs, func() any {
				var ps []wire.Pair
				if v.Pairs != nil {
					ps = []wire.Pair{}
				}
				for _, p := range v.Pairs {
					ps = append(ps, wire.Pair{From: p.From, To: p.To})
				}
				return ps
			})
		}
	})
}

// same decodes body with encoding/json into v and compares want() (built
// from v) with got.
func same(t *testing.T, body []byte, v any, got any, want func() any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("accepted %q, which encoding/json refuses: %v", body, err)
	}
	if w := want(); !reflect.DeepEqual(normalize(got), normalize(w)) {
		t.Fatalf("%q: decoded %#v, encoding/json %#v", body, got, w)
	}
}

// normalize treats nil and empty slices alike (the router does too: both
// are zero targets).
func normalize(v any) any {
	switch x := v.(type) {
	case []string:
		if len(x) == 0 {
			return []string(nil)
		}
	case []wire.Pair:
		if len(x) == 0 {
			return []wire.Pair(nil)
		}
	case wire.WriteRequest:
		x.Targets = normalize(x.Targets).([]string)
		return x
	case wire.CheckRequest:
		x.Targets = normalize(x.Targets).([]string)
		return x
	}
	return v
}

// The list query decoder never panics and keeps the protocol's limits.
func FuzzParseListQuery(f *testing.F) {
	f.Add("alice", "cursor=abc&limit=10&consistency=any", "")
	f.Add("a%2Fb", "viewer=v&limit=0", "viewer")
	f.Add("%zz", "limit=-1", "other")
	f.Add("x", "limit=1&limit=2", "")
	f.Fuzz(func(t *testing.T, user, query, other string) {
		if other != "" && other != "viewer" && other != "other" {
			other = "viewer"
		}
		q, err := parseListQuery(user, query, other)
		if err != nil {
			if codes.Of(err) != codes.InvalidParam {
				t.Fatalf("error %v: want 30001", err)
			}
			return
		}
		if len(q.user) > wire.MaxDecodedIDLen || len(q.other) > wire.MaxDecodedIDLen || len(q.cursor) > wire.MaxCursorLen ||
			q.limit < 0 || q.limit > wire.MaxListLimit || q.cons > wire.Any {
			t.Fatalf("accepted %+v", q)
		}
	})
}

// The string encoder writes JSON that decodes to what encoding/json's
// own encoding decodes to: the string itself when it is valid UTF-8.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "abc", "a\"b\\c\n\t\x00\x1f", "é😀", "\u2028\u2029", "\xff\xfe", "a\xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var got, want string
		if err := json.Unmarshal(appendString(nil, s), &got); err != nil {
			t.Fatalf("%q encodes as invalid JSON %q: %v", s, appendString(nil, s), err)
		}
		ref, _ := json.Marshal(s)
		json.Unmarshal(ref, &want)
		if got != want || (utf8.ValidString(s) && got != s) {
			t.Fatalf("%q: decodes as %q, want %q", s, got, want)
		}
		if strings.ContainsAny(string(appendString(nil, s)), "\n\r\u2028\u2029") {
			t.Fatalf("%q: raw line end in %q", s, appendString(nil, s))
		}
	})
}
