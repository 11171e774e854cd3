package gossipkey

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	for _, n := range []int{16, 24, 32} {
		k := bytes.Repeat([]byte{byte(n)}, n)
		got, err := Decode(" " + Encode(k) + "\n")
		if err != nil || !bytes.Equal(got, k) {
			t.Fatalf("%d bytes: %x %v", n, got, err)
		}
	}
	for _, bad := range []string{"", "!!!!", Encode(make([]byte, 15)), Encode(make([]byte, 33)), Encode(make([]byte, 8)), strings.Repeat("A", 4000),
		strings.TrimRight(Encode(make([]byte, 16)), "=")} {
		if _, err := Decode(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v", bad[:min(len(bad), 20)], err)
		}
	}
}

func TestFingerprint(t *testing.T) {
	a, b := New(), New()
	if len(a) != 32 || bytes.Equal(a, b) {
		t.Fatal("New does not return fresh 32-byte keys")
	}
	fa := Fingerprint(a)
	if len(fa) != 16 || fa == Fingerprint(b) || fa != Fingerprint(bytes.Clone(a)) || strings.Contains(Encode(a), fa) {
		t.Fatalf("fingerprints %s %s", fa, Fingerprint(b))
	}
}

// FuzzDecode: Decode never panics, accepts only keys of a valid size,
// and what it accepts re-encodes to the input without its white space.
func FuzzDecode(f *testing.F) {
	f.Add(Encode(bytes.Repeat([]byte{1}, 16)))
	f.Add(Encode(bytes.Repeat([]byte{2}, 32)) + "\n")
	f.Add("AAAA")
	f.Add(strings.Repeat("=", 50))
	f.Fuzz(func(t *testing.T, s string) {
		k, err := Decode(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if n := len(k); n != 16 && n != 24 && n != 32 {
			t.Fatalf("accepted a %d-byte key", n)
		}
		if Encode(k) != strings.TrimSpace(s) {
			t.Fatalf("%q decodes to a key that encodes as %q", s, Encode(k))
		}
	})
}
