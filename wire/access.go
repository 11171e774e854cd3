package wire

import (
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/internal/tokens"
)

// Access rules shared by every client-facing port: the binary port's
// connections (conn.admit) and followd's HTTP APIs (package httpapi), so
// that an operation needs the same role wherever it arrives (Op.Role
// gives the role alone).

// AdmitClient applies the client port's rules to one request of op from a
// client that authenticated with tok (nil: the server has no tokens, and
// every client may do everything): the operation must be known and open
// to clients, then tok's role must allow it, then tok's rate limit must
// have room (a request refused for its role takes nothing from the
// budget). checked reports whether tok's role and rate were looked at,
// which is when the token metrics count the request.
func AdmitClient(tok *tokens.Entry, op Op) (checked bool, err error) {
	spec := ops[op]
	switch {
	case op == OpHello:
		return false, codes.New(codes.InvalidParam, "hello is only valid as the first frame")
	case spec == nil:
		return false, codes.New(codes.UnknownOp, "unknown operation %d", op)
	case spec.peerOnly:
		return false, codes.New(codes.NotAllowed, "%s is only accepted from other nodes, over the raft port", op)
	case tok == nil:
		return false, nil
	case !tok.Role.Allows(spec.role):
		return true, codes.New(codes.NotAllowed, "%s needs the %s role; token %q has %s", op, spec.role, tok.Name, tok.Role)
	case !tok.Allow():
		return true, codes.New(codes.RateLimited, "token %q is over its rate limit (%g requests/s, burst %d); retry after a backoff", tok.Name, tok.Rate, tok.Burst)
	}
	return true, nil
}

// Decoder limits of the binary protocol that other front ends (package
// httpapi) apply too, so that a request is refused alike on every port.
const (
	// MaxDecodedIDLen bounds a user ID string in a request; longer ones
	// fail the whole request. IDs of MaxDecodedIDLen bytes or fewer but
	// over shard.MaxUserIDLen fail per item instead.
	MaxDecodedIDLen = maxIDLen * 4
	// MaxCursorLen bounds a list request's cursor.
	MaxCursorLen = maxCursorLen
	// MaxListElements bounds a request's target or user array.
	MaxListElements = maxList
	// MaxListLimit bounds the limit value of a list request (the router
	// allows at most 500; larger values up to this one get its message).
	MaxListLimit = 1 << 20
)
