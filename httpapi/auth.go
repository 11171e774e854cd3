package httpapi

import (
	"encoding/base64"
	"errors"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/internal/tokens"
	"github.com/followgraph/followgraph/wire"
)

// TokenNameHeader names the token of a bearer credential (absent or
// empty: "default", the token of followd --token).
const TokenNameHeader = "X-Followgraph-Token-Name"

// Authenticator checks HTTP requests against followd's client tokens with
// the binary port's rules: the credential must match a token in force,
// then the token's role must allow the operation, then its rate budget
// (shared with the binary port's connections of the same token) must have
// room. Without tokens it admits everything.
//
// HTTP has no connection state, so every request carries its credential,
// in one of two forms:
//
//	Authorization: Bearer SECRET          (with X-Followgraph-Token-Name: NAME, optional)
//	Authorization: Basic base64(NAME:SECRET)  (an empty NAME means "default")
//
// A token removed or changed by a reload of the token file stops working
// at the next request. It is safe for concurrent use.
type Authenticator struct {
	tokens *tokens.Store
	obs    func(token string, op wire.Op, code codes.Code)
}

// NewAuthenticator returns an authenticator over st (nil: no tokens, every
// request admitted). obs, if not nil, is told of every request checked
// against a token's role and rate, with its outcome (OK, NotAllowed,
// RateLimited), like wire.Observer.TokenRequest.
func NewAuthenticator(st *tokens.Store, obs func(token string, op wire.Op, code codes.Code)) *Authenticator {
	return &Authenticator{tokens: st, obs: obs}
}

// Admit authenticates r and admits one request of op. It returns the
// token's name ("" without tokens), or an error carrying 40004 (missing or
// bad credential), 40012 (role) or 40011 (rate; RetryAfter tells how long
// to wait). StatusOf maps them to 401, 403 and 429; WriteError writes them
// as this API does.
func (a *Authenticator) Admit(r *http.Request, op wire.Op) (string, error) {
	if a.tokens == nil {
		_, err := wire.AdmitClient(nil, op)
		return "", err
	}
	name, secret, ok := Credentials(r)
	if !ok {
		return "", errMissingCredentials
	}
	tok, ok := a.tokens.Authenticate(name, secret)
	if !ok {
		return "", errBadCredentials
	}
	checked, err := wire.AdmitClient(tok, op)
	if checked && a.obs != nil {
		a.obs(tok.Name, op, codes.Of(err))
	}
	if codes.Of(err) == codes.RateLimited {
		err = &retryError{err: err, after: retryAfter(tok.Rate)}
	}
	return tok.Name, err
}

var (
	errMissingCredentials = codes.New(codes.AuthFailed, "missing credentials: send Authorization: Bearer TOKEN (and %s: NAME for a named token) or Basic NAME:TOKEN", TokenNameHeader)
	// One message for a bad name and a bad secret, as on the binary
	// port: the answer must not tell which names exist.
	errBadCredentials = codes.New(codes.AuthFailed, "bad or missing token")
)

// Credentials returns the token name and secret of r's Authorization
// header (see Authenticator), and false if it has none in a form this API
// reads.
func Credentials(r *http.Request) (name, secret string, ok bool) {
	auth := r.Header.Get("Authorization")
	scheme, rest, found := strings.Cut(auth, " ")
	if !found {
		return "", "", false
	}
	rest = strings.TrimSpace(rest)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return r.Header.Get(TokenNameHeader), rest, rest != ""
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return "", "", false
		}
		name, secret, found = strings.Cut(string(raw), ":")
		return name, secret, found
	}
	return "", "", false
}

// retryError is a 40011 with the wait its token's rate implies.
type retryError struct {
	err   error
	after time.Duration
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// retryAfter is the time one request's worth of budget takes to refill
// at rate requests per second.
func retryAfter(rate float64) time.Duration {
	if rate <= 0 {
		return time.Second
	}
	return time.Duration(math.Ceil(float64(time.Second) / rate))
}

// RetryAfter returns how long a client refused with err should wait before
// it retries: for a 40011 from Admit, the time its token's budget takes to
// refill one request; for other retryable codes of overload or shutdown,
// one second; otherwise 0 (no advice).
func RetryAfter(err error) time.Duration {
	var re *retryError
	if errors.As(err, &re) {
		return re.after
	}
	switch codes.Of(err) {
	case codes.RateLimited, codes.Overloaded, codes.ShuttingDown, codes.ShardUnavailable:
		return time.Second
	}
	return 0
}
