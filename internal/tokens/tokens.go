// Package tokens holds followd's named client tokens: each names a client,
// gives it a role (what it may do) and optionally a rate limit (how fast
// it may do it), and is read from a token file that the operator may
// change while the daemon runs.
//
// The token file has one token per line:
//
//	name role secret [rate=N] [burst=M]
//
// Blank lines and lines starting with # are ignored. The name is 1 to 64
// of the characters A-Z a-z 0-9 . _ - and is unique in the file. The role
// is read, write or admin. The secret is either the token itself (1 to
// 1024 bytes with no white space) or sha256:<64 hex digits>, the SHA-256
// of the token, so that the file need not hold the secret. rate is in
// requests per second (a decimal, 0 or absent: unlimited) and burst the
// number of requests allowed at once (default: the rate rounded up, at
// least 1); burst without a positive rate is an error.
package tokens

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// Role says which operations a token may use. Each role may do what the
// roles below it may.
type Role uint8

const (
	// RoleNone is no role; no token has it. It exists so that the zero
	// Role is not a grant.
	RoleNone Role = iota
	// RoleRead may read the graph, the status and the shard map, and ping.
	RoleRead
	// RoleWrite may also follow and unfollow.
	RoleWrite
	// RoleAdmin may do everything: the maintenance operations (drain,
	// recover, user scan, import, export, remove user), the change feed
	// and the cluster's key management.
	RoleAdmin
)

var roleNames = [...]string{RoleNone: "none", RoleRead: "read", RoleWrite: "write", RoleAdmin: "admin"}

// String returns the role's name as written in the token file.
func (r Role) String() string {
	if int(r) < len(roleNames) {
		return roleNames[r]
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// ParseRole parses a role name (read, write or admin).
func ParseRole(s string) (Role, error) {
	for r, n := range roleNames {
		if r != int(RoleNone) && n == s {
			return Role(r), nil
		}
	}
	return RoleNone, fmt.Errorf("unknown role %q (want read, write or admin)", s)
}

// Allows reports whether a token of role r may use an operation that
// needs role need. An operation that names no role (RoleNone) is allowed
// to no one, so that one added without a role is closed, not open.
func (r Role) Allows(need Role) bool { return need != RoleNone && r >= need }

// DefaultName is the name of the token given by followd's --token, and the
// name a hello without one looks up.
const DefaultName = "default"

// Limits of the file's fields.
const (
	MaxNameLen   = 64
	MaxSecretLen = 1024
	// MaxRate bounds rate= so that a typo cannot overflow the limiter's
	// arithmetic; it is far above what one node serves.
	MaxRate  = 1e7
	MaxBurst = 1 << 24
)

// ErrSyntax marks a token file that does not parse; its message names the
// line.
var ErrSyntax = errors.New("tokens: bad token file")

// Token is one line of the token file.
type Token struct {
	Name string
	Role Role
	// Sum is the SHA-256 of the secret.
	Sum [32]byte
	// Rate is in requests per second; 0 means unlimited.
	Rate float64
	// Burst is how many requests may come at once (0 when Rate is 0).
	Burst int
}

// New returns a token with the plaintext secret, unlimited.
func New(name string, role Role, secret string) Token {
	return Token{Name: name, Role: role, Sum: sha256.Sum256([]byte(secret))}
}

// Matches compares secret with the token's in constant time (over the
// length too: the secret is hashed first).
func (t *Token) Matches(secret string) bool {
	s := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(s[:], t.Sum[:]) == 1
}

// ReadFile parses the token file at path.
func ReadFile(path string) ([]Token, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	toks, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return toks, nil
}

// maxLine bounds one line, so that a wrong file (a binary) fails fast
// instead of filling memory.
const maxLine = 4096

// Parse parses a token file (see the package documentation). Errors wrap
// ErrSyntax and name the line.
func Parse(r io.Reader) ([]Token, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxLine)
	var toks []Token
	lines := map[string]int{}
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		t, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrSyntax, n, err)
		}
		if prev, dup := lines[t.Name]; dup {
			return nil, fmt.Errorf("%w: line %d: token %q already named on line %d", ErrSyntax, n, t.Name, prev)
		}
		lines[t.Name] = n
		toks = append(toks, t)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("a line is longer than %d bytes", maxLine)
		}
		return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	return toks, nil
}

func parseLine(line string) (Token, error) {
	f := strings.Fields(line)
	if len(f) < 3 || len(f) > 5 {
		return Token{}, errors.New("want: name role secret [rate=N] [burst=M]")
	}
	var t Token
	var err error
	if err = CheckName(f[0]); err != nil {
		return t, err
	}
	t.Name = f[0]
	if t.Role, err = ParseRole(f[1]); err != nil {
		return t, err
	}
	if t.Sum, err = parseSecret(f[2]); err != nil {
		return t, err
	}
	burst := -1
	for _, opt := range f[3:] {
		k, v, _ := strings.Cut(opt, "=")
		switch {
		case k == "rate" && t.Rate == 0:
			t.Rate, err = strconv.ParseFloat(v, 64)
			if err != nil || !(t.Rate >= 0 && t.Rate <= MaxRate) {
				return t, fmt.Errorf("rate %q: want requests per second from 0 to %g", v, float64(MaxRate))
			}
		case k == "burst" && burst < 0:
			b, err := strconv.Atoi(v)
			if err != nil || b < 1 || b > MaxBurst {
				return t, fmt.Errorf("burst %q: want a whole number from 1 to %d", v, MaxBurst)
			}
			burst = b
		default:
			return t, fmt.Errorf("unexpected %q (want rate=N or burst=M, each at most once)", opt)
		}
	}
	switch {
	case burst > 0 && t.Rate == 0:
		return t, errors.New("burst without a positive rate")
	case burst > 0:
		t.Burst = burst
	case t.Rate > 0:
		t.Burst = int(max(1, math.Ceil(t.Rate)))
	}
	return t, nil
}

// CheckName reports whether name is a valid token name.
func CheckName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("name %q: want 1 to %d characters", name, MaxNameLen)
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("name %q: only A-Z a-z 0-9 . _ - are allowed", name)
		}
	}
	return nil
}

func parseSecret(s string) ([32]byte, error) {
	var sum [32]byte
	if h, ok := strings.CutPrefix(s, "sha256:"); ok {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != len(sum) {
			return sum, errors.New("secret: sha256: must be followed by 64 hex digits")
		}
		copy(sum[:], b)
		return sum, nil
	}
	if len(s) > MaxSecretLen {
		return sum, fmt.Errorf("secret: longer than %d bytes", MaxSecretLen)
	}
	return sha256.Sum256([]byte(s)), nil
}
