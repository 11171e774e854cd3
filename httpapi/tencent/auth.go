package tencent

import (
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/internal/tokens"
	"github.com/followgraph/followgraph/wire"
)

// authorize checks a request's identifier (a token's name; "" means
// tokens.DefaultName) and usersig (its secret) against st, then the
// role op needs and the token's rate limit, in the binary port's order.
// A nil st allows everything. obs, if not nil, counts the requests whose
// token was found.
func authorize(st *tokens.Store, obs Observer, identifier, usersig string, op wire.Op) error {
	if st == nil {
		return nil
	}
	e, ok := st.Authenticate(identifier, usersig)
	if !ok {
		// Which of the two was wrong is not said, as on the binary port.
		return codes.New(codes.AuthFailed, "bad or missing identifier or usersig")
	}
	var err error
	switch {
	case !e.Role.Allows(op.Role()):
		err = codes.New(codes.NotAllowed, "%s needs the %s role; identifier %q has %s", op, op.Role(), e.Name, e.Role)
	case !e.Allow():
		err = codes.New(codes.RateLimited, "identifier %q is over its rate limit (%g requests/s, burst %d); retry after a backoff", e.Name, e.Rate, e.Burst)
	}
	if obs != nil {
		obs.TokenRequest(e.Name, op, codes.Of(err))
	}
	return err
}
