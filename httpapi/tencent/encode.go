package tencent

import (
	"strconv"
	"unicode/utf8"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/wire"
)

// The responses are written by hand, in the field order and spacing of
// Tencent's samples (`"Key": value`, items joined by a bare comma), so
// that a client comparing bytes, or a test, sees what Tencent sends.

// appendKey appends `"key": ` after a comma unless it opens an object.
func appendKey(b []byte, key string) []byte {
	if n := len(b); n > 0 && b[n-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, key...)
	return append(b, `": `...)
}

func appendStrField(b []byte, key, v string) []byte { return appendString(appendKey(b, key), v) }

func appendIntField(b []byte, key string, v int64) []byte {
	return strconv.AppendInt(appendKey(b, key), v, 10)
}

func appendUintField(b []byte, key string, v uint64) []byte {
	return strconv.AppendUint(appendKey(b, key), v, 10)
}

// appendStatus closes a response with its status fields.
func appendStatus(b []byte, code uint32, info string) []byte {
	status := "OK"
	if code != 0 {
		status = "FAIL"
	}
	b = appendStrField(b, "ActionStatus", status)
	b = appendUintField(b, "ErrorCode", uint64(code))
	b = appendStrField(b, "ErrorInfo", info)
	b = appendStrField(b, "ErrorDisplay", "")
	return append(b, '}')
}

// appendItemStart opens one element of a result array.
func appendItemStart(b []byte, i int, account string, code codes.Code, info string) []byte {
	if i > 0 {
		b = append(b, ',')
	}
	b = append(b, '{')
	b = appendStrField(b, "To_Account", account)
	b = appendUintField(b, "ResultCode", uint64(tencentCode(code)))
	return appendStrField(b, "ResultInfo", itemInfo(code, info))
}

// appendResults encodes follow_add and follow_delete's answer.
func appendResults(b []byte, rs []wire.Result) []byte {
	b = append(appendKey(append(b, '{'), "ResultItem"), '[')
	for i, r := range rs {
		b = append(appendItemStart(b, i, r.UserID, r.Code, r.Info), '}')
	}
	return appendStatus(append(b, ']'), 0, "")
}

// appendChecks encodes follow_check's answer. Our followType has the
// numbering of Tencent's REST API: 1 To follows From, 2 From follows To.
func appendChecks(b []byte, cs []wire.Check) []byte {
	b = append(appendKey(append(b, '{'), "ResultItem"), '[')
	for i, c := range cs {
		b = appendItemStart(b, i, c.UserID, c.Code, "")
		b = append(appendUintField(b, "FollowType", uint64(c.FollowType)), '}')
	}
	return appendStatus(append(b, ']'), 0, "")
}

// appendInfos encodes follow_get_info's answer.
func appendInfos(b []byte, is []wire.Info) []byte {
	b = append(appendKey(append(b, '{'), "FollowInfo"), '[')
	for i, in := range is {
		b = appendItemStart(b, i, in.UserID, in.Code, "")
		b = appendUintField(b, "FollowerCount", in.Followers)
		b = appendUintField(b, "FollowingCount", in.Following)
		b = append(appendUintField(b, "MutualFollowingCount", in.Mutual), '}')
	}
	return appendStatus(append(b, ']'), 0, "")
}

// appendGetStart opens follow_get's answer; appendGetItem adds the n-th
// entry and appendGetEnd closes it.
func appendGetStart(b []byte) []byte { return append(appendKey(append(b, '{'), "FollowItem"), '[') }

// appendGetItem adds an entry. FollowTime is in seconds, as in Tencent's
// sample (ours are milliseconds). ProfileItem is always empty: profiles
// are not followgraph's data.
func appendGetItem(b []byte, n int, id []byte, ms int64) []byte {
	if n > 0 {
		b = append(b, ',')
	}
	b = append(b, '{')
	b = appendString(appendKey(b, "To_Account"), id)
	b = appendIntField(b, "FollowTime", ms/1000)
	return append(appendKey(b, "ProfileItem"), "[]}"...)
}

func appendGetEnd(b []byte, next string) []byte {
	return appendStatus(appendStrField(append(b, ']'), "NextCursor", next), 0, "")
}

// appendError encodes a failed request.
func appendError(b []byte, code uint32, info string) []byte {
	return appendStatus(append(b, '{'), code, info)
}

const hex = "0123456789abcdef"

// appendString appends s as a JSON string. Only what JSON requires is
// escaped (", \ and control characters); bytes that are not UTF-8 become
// U+FFFD, as encoding/json does.
func appendString[S ~string | ~[]byte](b []byte, s S) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
			if r == utf8.RuneError && n == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+n]...)
			}
			i += n
			continue
		}
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
		i++
	}
	return append(b, '"')
}
