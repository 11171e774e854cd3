package tencent

import (
	"errors"
	"fmt"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/internal/tokens"
	"github.com/followgraph/followgraph/wire"
)

// Config configures the Tencent-compatible endpoints.
type Config struct {
	// Tokens, when set, are the tokens a request must present: the URL's
	// identifier names the token and usersig is its secret. Each request
	// is checked against the token's role (that of the operation on the
	// binary port: read for check, get and get_info, write for add and
	// delete) and rate limit. Nil: every request is allowed.
	Tokens *tokens.Store
	// Observer, when set, counts the requests checked against a token,
	// as the binary port counts them (followd's token metrics).
	Observer Observer
	// SDKAppID, when set, must equal the URL's sdkappid (else 30002, as
	// Tencent answers a mismatch). Empty: any sdkappid is accepted.
	SDKAppID string
	// MaxBody is the largest request body read, in bytes; a larger one
	// is refused with 30001. 0 means DefaultConfig's.
	MaxBody int64
	// Timeout bounds each request's call to the graph (its commit, or a
	// forward to another node); past it the answer is 30007. 0 means
	// DefaultConfig's.
	Timeout time.Duration
}

// Observer is told of each request checked against a token: its name,
// the op whose role it needed, and OK, NotAllowed or RateLimited.
// wire.Observer is one.
type Observer interface {
	TokenRequest(token string, op wire.Op, code codes.Code)
}

// DefaultConfig returns a configuration without tokens, a 1 MiB body
// limit (the binary port's default frame size) and a 10 s timeout (its
// request timeout).
func DefaultConfig() Config {
	return Config{MaxBody: 1 << 20, Timeout: 10 * time.Second}
}

// withDefaults fills the zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxBody == 0 {
		c.MaxBody = d.MaxBody
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	return c
}

// Validate reports the first invalid field (zero fields take the
// defaults, and are valid).
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.MaxBody < 1<<10 || c.MaxBody > 1<<30:
		return fmt.Errorf("tencent: MaxBody (%d) must be between 1 KiB and 1 GiB", c.MaxBody)
	case c.Timeout < 0:
		return fmt.Errorf("tencent: Timeout (%s) must be positive", c.Timeout)
	case len(c.SDKAppID) > 64:
		return errors.New("tencent: SDKAppID is over 64 bytes")
	}
	return nil
}
