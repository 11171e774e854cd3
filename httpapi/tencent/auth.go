package tencent

import (
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/internal/tokens"
	"github.com/followgraph/followgraph/wire"
)

// authorize checks a request's identifier (a token's name; "" means
// tokens.DefaultName) and usersig (its secret) against st, then the
// role op needs and the token's rate limit, in the binary port's order.
// A nil st allows everything.
func authorize(st *tokens.Store, identifier, usersig string, op wire.Op) error {
	if st == nil {
		return nil
	}
	e, ok := st.Authenticate(identifier, usersig)
	switch {
	case !ok:
		// Which of the two was wrong is not said, as on the binary port.
		return codes.New(codes.AuthFailed, "bad or missing identifier or usersig")
	case !e.Role.Allows(op.Role()):
		return codes.New(codes.NotAllowed, "%s needs the %s role; identifier %q has %s", op, op.Role(), e.Name, e.Role)
	case !e.Allow():
		return codes.New(codes.RateLimited, "identifier %q is over its rate limit (%g requests/s, burst %d); retry after a backoff", e.Name, e.Rate, e.Burst)
	}
	return nil
}
