package httpapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/followgraph/followgraph/codes"
)

// StatusOf returns the HTTP status of an error of the API: each result
// code (package codes) has one; see docs/HTTP.md.
func StatusOf(err error) int {
	switch codes.Of(err) {
	case codes.OK:
		return http.StatusOK
	case codes.InvalidParam:
		return http.StatusBadRequest
	case codes.AuthFailed:
		return http.StatusUnauthorized
	case codes.NotAllowed:
		return http.StatusForbidden
	case codes.RateLimited:
		return http.StatusTooManyRequests
	case codes.FrameTooLarge:
		return http.StatusRequestEntityTooLarge
	case codes.UnknownOp:
		return http.StatusNotFound
	case codes.FollowingLimit, codes.FollowersLimit, codes.UserRemoving:
		return http.StatusConflict
	case codes.FeedExpired, codes.ExportExpired:
		return http.StatusGone
	case codes.NotLeader, codes.ShardUnavailable, codes.Overloaded, codes.ShuttingDown:
		return http.StatusServiceUnavailable
	case codes.Timeout:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// WriteError writes err as this API's error body, {"code": N, "message":
// "..."}, with StatusOf's status, a Retry-After header when RetryAfter
// gives a wait, and WWW-Authenticate on a 401. Errors without a code are
// internal errors (30006), and their text is not shown.
func WriteError(w http.ResponseWriter, err error) { writeError(w, err, 0) }

// writeError is WriteError with an explicit status (0: StatusOf's).
func writeError(w http.ResponseWriter, err error, status int) {
	if status == 0 {
		status = StatusOf(err)
	}
	h := w.Header()
	if d := RetryAfter(err); d > 0 {
		h.Set("Retry-After", strconv.Itoa(int((d+999_999_999)/1_000_000_000)))
	}
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="followgraph"`)
	}
	writeJSON(w, status, AppendError(nil, err))
}

// AppendError appends err's JSON body: {"code": N, "message": "..."}. An
// error that carries no code is shown as a bare internal error.
func AppendError(b []byte, err error) []byte {
	c, msg := codes.Internal, "internal error"
	var ce *codes.Error
	if errors.As(err, &ce) {
		c, msg = ce.Code, ce.Msg
		if msg == "" {
			msg = ce.Code.String()
		}
	}
	b = append(b, `{"code":`...)
	b = strconv.AppendUint(b, uint64(c), 10)
	b = append(b, `,"message":`...)
	b = appendString(b, msg)
	return append(b, '}')
}

// ProtocolErrorBody is the body of the HTTP server's own refusals (a
// request it cannot read: malformed, or a head over its limits), in the
// API's error shape: 40005 for a head too large, else 30001, with the
// server's reason as the message. It sets the content type in h.
func ProtocolErrorBody(h http.Header, status int, msg string) []byte {
	code := codes.InvalidParam
	if status == http.StatusRequestHeaderFieldsTooLarge || status == http.StatusRequestURITooLong {
		code = codes.FrameTooLarge
	}
	h["Content-Type"] = jsonContentType
	return AppendError(nil, codes.New(code, "%s", msg))
}
