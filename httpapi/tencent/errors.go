package tencent

import (
	"context"
	"errors"
	"fmt"

	"github.com/followgraph/followgraph/codes"
)

// Tencent's codes that have no code of followgraph's number (ours reuse
// 30001, 30006, 30007, 32100 and 32101 already).
const (
	// codeSDKAppIDMismatch: the URL's sdkappid is not Config.SDKAppID.
	codeSDKAppIDMismatch = 30002
	// codeNeedsAdmin: "the request needs App admin permission"; we send
	// it when the token's role does not allow the operation (40012).
	codeNeedsAdmin = 30004
	// codeRateLimited: "REST call frequency exceeds the limit"; we send
	// it when the token is over its rate limit (40011).
	codeRateLimited = 60007
)

// tencentCode maps a followgraph code to the code these endpoints send:
// Tencent's where the meaning is the same, else ours (docs/HTTP.md,
// "Tencent-compatible endpoints", has the table). Tencent's clients treat every non-zero code as a
// failure, so ours stay usable, and they keep their documented meaning.
func tencentCode(c codes.Code) uint32 {
	switch c {
	case codes.NotAllowed:
		return codeNeedsAdmin
	case codes.RateLimited:
		return codeRateLimited
	}
	return uint32(c)
}

// itemInfo is a failed item's ResultInfo: the router's words, or the
// code's name; "" on success, as Tencent sends.
func itemInfo(c codes.Code, info string) string {
	switch {
	case c == codes.OK:
		return ""
	case info != "":
		return info
	case c == codes.InvalidParam:
		// The only per-item 30001 of check and info.
		return "invalid user ID"
	}
	return c.String()
}

// failure returns the code and ErrorInfo of a failed request. The info
// names our code and message, so that a code mapped to Tencent's keeps
// its precise cause.
func failure(err error) (uint32, string) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.code, ae.msg
	}
	if errors.Is(err, context.DeadlineExceeded) && codes.Of(err) == codes.Internal {
		err = codes.New(codes.Timeout, "%v", err)
	}
	c := codes.Of(err)
	var e *codes.Error
	if !errors.As(err, &e) {
		// Not ours: do not show internals beyond the message.
		return tencentCode(codes.Internal), fmt.Sprintf("internal error (30006): %v", err)
	}
	return tencentCode(c), e.Error()
}

// apiError is a failure with a Tencent code that is not one of ours.
type apiError struct {
	code uint32
	msg  string
}

func (e *apiError) Error() string { return e.msg }
