package tokens

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestParse(t *testing.T) {
	sum := sha256.Sum256([]byte("hashed"))
	file := "# clients\n\n" +
		"web    write  s3cret  rate=100 burst=200\n" +
		"  reporting read sha256:" + hex.EncodeToString(sum[:]) + " rate=2.5\n" +
		"ops admin opsecret # trailing words are not comments\n"
	_, err := Parse(strings.NewReader(file))
	if err == nil || !strings.Contains(err.Error(), "line 5") {
		t.Fatalf("a trailing comment: %v, want an error on line 5", err)
	}
	file = strings.Replace(file, " # trailing words are not comments", "", 1)
	toks, err := Parse(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 3 {
		t.Fatalf("%d tokens", len(toks))
	}
	web, rep, ops := toks[0], toks[1], toks[2]
	if web.Name != "web" || web.Role != RoleWrite || web.Rate != 100 || web.Burst != 200 || !web.Matches("s3cret") || web.Matches("s3cre") {
		t.Errorf("web: %+v", web)
	}
	if rep.Role != RoleRead || rep.Rate != 2.5 || rep.Burst != 3 || !rep.Matches("hashed") || rep.Matches("sha256:"+hex.EncodeToString(sum[:])) {
		t.Errorf("reporting: %+v", rep)
	}
	if ops.Role != RoleAdmin || ops.Rate != 0 || ops.Burst != 0 || !ops.Matches("opsecret") {
		t.Errorf("ops: %+v", ops)
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"a read", "line 1: want: name role"},
		{"a read s x=1", "unexpected"},
		{"a read s rate=1 rate=2", "unexpected"},
		{"a root s", "unknown role"},
		{"a none s", "unknown role"},
		{"a/b read s", "only A-Z"},
		{strings.Repeat("n", 65) + " read s", "1 to 64"},
		{"a read sha256:abc", "64 hex digits"},
		{"a read " + strings.Repeat("s", 1025), "longer than 1024"},
		{"a read s rate=-1", "rate"},
		{"a read s rate=NaN", "rate"},
		{"a read s rate=1e9", "rate"},
		{"a read s burst=5", "burst without a positive rate"},
		{"a read s rate=1 burst=0", "burst"},
		{"a read s rate=1 burst=x", "burst"},
		{"# one\na read s\n\nb write t\na admin u\n", "line 5: token \"a\" already named on line 2"},
		{strings.Repeat("x", 5000), "longer than 4096"},
	} {
		_, err := Parse(strings.NewReader(c.file))
		if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%.40q: %v, want %q", c.file, err, c.want)
		}
	}
}

func TestReadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(p, []byte("a read s\nb\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(p); err == nil || !strings.Contains(err.Error(), p+": ") || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("error %v does not name the file and line", err)
	}
	if _, err := ReadFile(p + ".missing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}

func TestRoles(t *testing.T) {
	if !RoleAdmin.Allows(RoleWrite) || !RoleWrite.Allows(RoleRead) || RoleRead.Allows(RoleWrite) || RoleWrite.Allows(RoleAdmin) {
		t.Fatal("role order")
	}
	if RoleAdmin.Allows(RoleNone) || RoleNone.Allows(RoleRead) {
		t.Fatal("RoleNone is never a grant, and an operation without a role is closed")
	}
	for _, r := range []Role{RoleRead, RoleWrite, RoleAdmin} {
		if got, err := ParseRole(r.String()); err != nil || got != r {
			t.Fatalf("%s: %v %v", r, got, err)
		}
	}
}

func TestStore(t *testing.T) {
	lim := New("lim", RoleRead, "l")
	lim.Rate, lim.Burst = 1, 2
	st, err := NewStore([]Token{New("a", RoleAdmin, "x"), lim, New(DefaultName, RoleAdmin, "d")})
	if err != nil {
		t.Fatal(err)
	}
	a, ok := st.Authenticate("a", "x")
	if !ok || a.Role != RoleAdmin {
		t.Fatal("a")
	}
	if _, ok := st.Authenticate("a", "y"); ok {
		t.Fatal("wrong secret accepted")
	}
	if _, ok := st.Authenticate("b", "x"); ok {
		t.Fatal("unknown name accepted")
	}
	if e, ok := st.Authenticate("", "d"); !ok || e.Name != DefaultName {
		t.Fatal("an empty name is the default token")
	}
	l, _ := st.Authenticate("lim", "l")
	got := []bool{l.Allow(), l.Allow(), l.Allow()}
	if !got[0] || !got[1] || got[2] {
		t.Fatalf("burst of 2: allowed %v", got)
	}
	// Replace: a keeps its entry; lim (changed rate) and default
	// (removed) are revoked.
	lim2 := lim
	lim2.Rate = 3
	if err := st.Replace([]Token{New("a", RoleAdmin, "x"), lim2}); err != nil {
		t.Fatal(err)
	}
	if a.Revoked() || !l.Revoked() {
		t.Fatalf("revoked: a %v lim %v", a.Revoked(), l.Revoked())
	}
	if a2, _ := st.Authenticate("a", "x"); a2 != a {
		t.Fatal("an unchanged token got a new entry")
	}
	if _, ok := st.Authenticate("", "d"); ok {
		t.Fatal("removed token still accepted")
	}
	// A bad set changes nothing.
	if err := st.Replace([]Token{New("a", RoleAdmin, "x"), New("a", RoleRead, "z")}); err == nil {
		t.Fatal("duplicate accepted")
	}
	if err := st.Replace([]Token{{Name: "r"}}); err == nil {
		t.Fatal("token without a role accepted")
	}
	if st.Len() != 2 || a.Revoked() {
		t.Fatal("a failed Replace changed the store")
	}
	es := st.Entries()
	if len(es) != 2 || es[0].Name != "a" || es[1].Name != "lim" || es[1].Rate != 3 {
		t.Fatalf("entries %+v", es)
	}
}

// TestStoreConcurrent runs authentication and rate checks against
// reloads, for the race detector.
func TestStoreConcurrent(t *testing.T) {
	lim := New("lim", RoleRead, "l")
	lim.Rate, lim.Burst = 1000, 10
	st, err := NewStore([]Token{lim})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 500 {
				if e, ok := st.Authenticate("lim", "l"); ok {
					e.Allow()
					e.Revoked()
				}
				st.Entries()
			}
		})
	}
	for i := range 50 {
		lim.Burst = 10 + i%2
		if err := st.Replace([]Token{lim}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}

// FuzzParse: the parser never panics, and whatever it accepts is within
// the documented limits, with unique names.
func FuzzParse(f *testing.F) {
	f.Add("web write s3cret rate=100 burst=200\n# c\nr read sha256:" + strings.Repeat("ab", 32) + "\n")
	f.Add("a admin x rate=0.5\n")
	f.Add("a read s\na read t\n")
	f.Add("a read s rate=1e400 burst=99999999999\n")
	f.Add("\x00\xff\n\t \r\n")
	f.Fuzz(func(t *testing.T, file string) {
		toks, err := Parse(strings.NewReader(file))
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error not ErrSyntax: %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, tk := range toks {
			if CheckName(tk.Name) != nil || seen[tk.Name] || tk.Role < RoleRead || tk.Role > RoleAdmin ||
				!(tk.Rate >= 0 && tk.Rate <= MaxRate) || tk.Burst < 0 || tk.Burst > MaxBurst || (tk.Rate > 0) != (tk.Burst > 0) {
				t.Fatalf("out of limits: %+v", tk)
			}
			seen[tk.Name] = true
		}
		if _, err := NewStore(toks); err != nil {
			t.Fatalf("parsed tokens refused by the store: %v", err)
		}
	})
}
