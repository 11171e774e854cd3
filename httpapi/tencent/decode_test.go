package tencent

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/followgraph/followgraph/codes"
)

var decodeSeeds = []string{
	`{"From_Account":"UserID_001","FollowItem":[{"To_Account":"UserID_002"},{"To_Account":"UserID_003"}]}`,
	`{"From_Account":"UserID_001","To_Account":["UserID_002", "UserID_003"]}`,
	`{"From_Account":"UserID_001","FollowType":1,"StartCursor":"","WantNum":100,}`,
	`{"From_Account":"a","To_Account":["b",],}`,
	`{"From_Account":"a\",]","To_Account":["\\",]}`,
	`[1,]`, `{,}`, `{"a":1,,}`, `null`, ``, `{"WantNum":1e400}`,
}

// FuzzDecode runs every decoder on any body: none panics, and what one
// accepts keeps Tencent's limits.
func FuzzDecode(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if w, err := parseAdd(body); err == nil && (w.Actor == "" || len(w.Targets) < 1 || len(w.Targets) > maxWriteAccounts) {
			t.Fatalf("parseAdd accepted %+v", w)
		} else if err != nil && codes.Of(err) != codes.InvalidParam {
			t.Fatalf("parseAdd: %v", err)
		}
		if w, err := parseDelete(body); err == nil && (w.Actor == "" || len(w.Targets) < 1 || len(w.Targets) > maxWriteAccounts) {
			t.Fatalf("parseDelete accepted %+v", w)
		}
		if c, err := parseCheck(body); err == nil && (c.Actor == "" || len(c.Targets) < 1 || len(c.Targets) > maxCheckAccounts) {
			t.Fatalf("parseCheck accepted %+v", c)
		}
		if u, err := parseInfo(body); err == nil && (len(u.Users) < 1 || len(u.Users) > maxInfoAccounts) {
			t.Fatalf("parseInfo accepted %+v", u)
		}
		g, err := parseGet(body)
		if err == nil && (g.User == "" || g.WantNum < 1 || g.WantNum > maxWantNum || len(g.Cursor) > maxCursor || g.Op == 0) {
			t.Fatalf("parseGet accepted %+v", g)
		} else if err != nil && codes.Of(err) != codes.InvalidParam {
			t.Fatalf("parseGet: %v", err)
		}
	})
}

// FuzzLenient: valid JSON passes unchanged; otherwise only commas go,
// and what remains is the input without them.
func FuzzLenient(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out := lenient(in)
		if json.Valid(in) && !bytes.Equal(out, in) {
			t.Fatalf("valid JSON changed: %q -> %q", in, out)
		}
		if len(out) > len(in) || !bytes.Equal(bytes.ReplaceAll(in, []byte(","), nil), bytes.ReplaceAll(out, []byte(","), nil)) {
			t.Fatalf("more than commas changed: %q -> %q", in, out)
		}
		if again := lenient(out); json.Valid(out) && !bytes.Equal(again, out) {
			t.Fatalf("not idempotent on valid output: %q", out)
		}
	})
}

// FuzzAppendString: the encoder writes valid JSON that reads back as the
// string, with each byte that is not UTF-8 as U+FFFD.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "UserID_001", "\"\\\x00\x1f\x7f", "é\xff\xfe<&>", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%q -> %s: %v", s, b, err)
		}
		want := s
		if !utf8.ValidString(s) {
			want = string([]rune(s))
		}
		if back != want {
			t.Fatalf("%q -> %s -> %q", s, b, back)
		}
	})
}

func TestLenient(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":1,}`:         `{"a":1}`,
		`{"a":[1, 2 ,] ,}`: `{"a":[1, 2 ] }`,
		`{"a":"x,}",}`:     `{"a":"x,}"}`,
		`{"a":"\",}",}`:    `{"a":"\",}"}`,
		`[,]`:              `[,]`,
		`{,}`:              `{,}`,
		`[1,,]`:            `[1,,]`,
		`{"a":1}`:          `{"a":1}`,
		`,}`:               `,}`,
		"{\"a\":1,\n\t}\n": "{\"a\":1\n\t}\n",
	} {
		if got := string(lenient([]byte(in))); got != want {
			t.Errorf("lenient(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	if c := (Config{}).withDefaults(); c != DefaultConfig() {
		t.Fatalf("zero config is %+v, want the defaults %+v", c, DefaultConfig())
	}
	for _, c := range []Config{{MaxBody: 10}, {MaxBody: 2 << 30}, {Timeout: -1}, {SDKAppID: string(make([]byte, 65))}} {
		if c.Validate() == nil {
			t.Errorf("%+v: valid, want an error", c)
		}
	}
}
