// Package codes defines followgraph's numeric result codes and the error type
// that carries them.
//
// A Code is part of the wire protocol and of every per-item result, so the
// numbers are stable: they never change meaning once released. Where Tencent
// Cloud Chat's follow API has a code with the same meaning, followgraph reuses
// its number (30001, 30006, 30007, 32100, 32101); conditions that only a
// distributed, self-hosted service has (not leader, shard unavailable,
// overloaded, auth, framing, protocol version) get numbers of our own in the
// 40000 range.
//
// Errors returned by followgraph packages are *Error values (possibly
// wrapped). errors.Is(err, codes.ErrInvalidParam) reports whether err carries
// code InvalidParam, whatever its message.
package codes

import (
	"errors"
	"fmt"
)

// Code is a numeric result code. Zero means success.
type Code uint32

// Result codes. Keep this list, the names below, Retryable and
// docs/PROTOCOL.md in step.
const (
	OK Code = 0

	// InvalidParam: a malformed request or item: bad user ID, self-follow,
	// a list over its limit, a malformed or forged cursor.
	InvalidParam Code = 30001
	// Internal: an unexpected server-side failure. Safe to retry.
	Internal Code = 30006
	// Timeout: the operation did not complete in time; its outcome is
	// unknown. Follow and Unfollow are idempotent, so retrying is safe.
	Timeout Code = 30007
	// FollowingLimit: the actor already follows the maximum number of users.
	FollowingLimit Code = 32100
	// FollowersLimit: the target already has the configured maximum number
	// of followers.
	FollowersLimit Code = 32101
	// UserRemoving: the user's graph is being removed (a remove-user job
	// is running); writes that involve the user are refused until it ends,
	// and the user is then a fresh one.
	UserRemoving Code = 32200

	// NotLeader: this node does not lead the user's shard. The error message
	// carries the leader's client address when known. Retry there.
	NotLeader Code = 40001
	// ShardUnavailable: the shard has no leader or cannot reach a quorum.
	ShardUnavailable Code = 40002
	// Overloaded: the server sheds load (queue full, too many connections).
	Overloaded Code = 40003
	// AuthFailed: the handshake token is missing or wrong.
	AuthFailed Code = 40004
	// FrameTooLarge: a frame exceeds the negotiated maximum size.
	FrameTooLarge Code = 40005
	// UnsupportedVersion: the client's protocol version is not supported.
	UnsupportedVersion Code = 40006
	// UnknownOp: the operation code is not known to this server.
	UnknownOp Code = 40007
	// ShuttingDown: the server is shutting down and takes no new requests.
	ShuttingDown Code = 40008
	// FeedExpired: a change-feed position older than what the replica
	// retains; the events after it may be gone. The consumer must resync
	// (read the lists again, or import an export) and watch from "now".
	FeedExpired Code = 40009
	// ExportExpired: an export session the node does not hold (released
	// after its idle timeout, or the node restarted since). The export
	// of that shard must start again, from a new point in time.
	ExportExpired Code = 40010
	// RateLimited: the request is over its token's rate limit (requests
	// per second and burst, from the token file) and was not applied.
	// Retry after a backoff; retrying at once is refused again.
	RateLimited Code = 40011
	// NotAllowed: the connection's token has a role that does not allow
	// the operation (a read token following, a write token draining).
	// Not retryable: only another token can succeed.
	NotAllowed Code = 40012
)

var names = map[Code]string{
	OK:                 "ok",
	InvalidParam:       "invalid parameter",
	Internal:           "internal error",
	Timeout:            "timeout",
	FollowingLimit:     "following limit reached",
	FollowersLimit:     "followers limit reached",
	UserRemoving:       "user being removed",
	NotLeader:          "not leader",
	ShardUnavailable:   "shard unavailable",
	Overloaded:         "overloaded",
	AuthFailed:         "authentication failed",
	FrameTooLarge:      "frame too large",
	UnsupportedVersion: "unsupported protocol version",
	UnknownOp:          "unknown operation",
	ShuttingDown:       "shutting down",
	FeedExpired:        "feed position expired",
	ExportExpired:      "export session expired",
	RateLimited:        "rate limited",
	NotAllowed:         "not allowed",
}

// String returns a short, stable description of c.
func (c Code) String() string {
	if n, ok := names[c]; ok {
		return n
	}
	return fmt.Sprintf("code %d", uint32(c))
}

// Known reports whether c is one of the codes defined here.
func (c Code) Known() bool {
	_, ok := names[c]
	return ok
}

// Retryable reports whether a request that failed with c may succeed if
// sent again unchanged (possibly to another node). Writes are idempotent,
// so this holds for them too.
func (c Code) Retryable() bool {
	switch c {
	case Internal, Timeout, NotLeader, ShardUnavailable, Overloaded, ShuttingDown, RateLimited:
		return true
	}
	return false
}

// Error is an error that carries a Code.
type Error struct {
	Code Code
	Msg  string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Msg == "" {
		return fmt.Sprintf("%s (%d)", e.Code, uint32(e.Code))
	}
	return fmt.Sprintf("%s (%d): %s", e.Code, uint32(e.Code), e.Msg)
}

// Is makes errors.Is match any *Error with the same Code, so the sentinels
// below work whatever the message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// New returns an *Error with code c and a formatted message.
func New(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Msg: fmt.Sprintf(format, args...)}
}

// Of returns the Code carried by err: OK for nil, the code of the first
// *Error in its chain, and Internal for any other error.
func Of(err error) Code {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// Sentinel errors, one per code, for errors.Is.
var (
	ErrInvalidParam       = &Error{Code: InvalidParam}
	ErrInternal           = &Error{Code: Internal}
	ErrTimeout            = &Error{Code: Timeout}
	ErrFollowingLimit     = &Error{Code: FollowingLimit}
	ErrFollowersLimit     = &Error{Code: FollowersLimit}
	ErrNotLeader          = &Error{Code: NotLeader}
	ErrShardUnavailable   = &Error{Code: ShardUnavailable}
	ErrOverloaded         = &Error{Code: Overloaded}
	ErrAuthFailed         = &Error{Code: AuthFailed}
	ErrFrameTooLarge      = &Error{Code: FrameTooLarge}
	ErrUnsupportedVersion = &Error{Code: UnsupportedVersion}
	ErrUnknownOp          = &Error{Code: UnknownOp}
	ErrShuttingDown       = &Error{Code: ShuttingDown}
	ErrFeedExpired        = &Error{Code: FeedExpired}
	ErrUserRemoving       = &Error{Code: UserRemoving}
	ErrExportExpired      = &Error{Code: ExportExpired}
	ErrRateLimited        = &Error{Code: RateLimited}
	ErrNotAllowed         = &Error{Code: NotAllowed}
)
