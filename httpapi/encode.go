package httpapi

import (
	"strconv"
	"unicode/utf8"

	"github.com/followgraph/followgraph/wire"
)

// Append-style encoders of the hot responses (writes, lists, info,
// check): they append straight into a pooled buffer, with no reflection
// and no allocation per item. Status and the shard map, rare and large,
// go through encoding/json (serve.go).

const hex = "0123456789abcdef"

// jsonSafe marks the bytes a JSON string holds as they are: printable
// ASCII but the quote and the backslash.
var jsonSafe = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as with encoding/json (valid user IDs are UTF-8, so IDs round-trip).
// Most IDs need no escape: they are copied whole.
func appendString(b []byte, s string) []byte {
	i := 0
	for i < len(s) && jsonSafe[s[i]] {
		i++
	}
	b = append(b, '"')
	if i == len(s) {
		b = append(b, s...)
		return append(b, '"')
	}
	return appendEscaped(b, s, i)
}

// appendEscaped appends the rest of a JSON string from s[i:], where the
// first byte to escape or decode is, and the closing quote.
func appendEscaped(b []byte, s string, i int) []byte {
	start := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but end lines in JavaScript.
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += n
			start = i
			continue
		}
		i += n
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendResults encodes write results: {"results":[{"userId":..,
// "code":..,"info":..}...]}.
func appendResults(b []byte, rs []wire.Result) []byte {
	b = append(b, `{"results":[`...)
	for i, r := range rs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"userId":`...)
		b = appendString(b, r.UserID)
		b = append(b, `,"code":`...)
		b = strconv.AppendUint(b, uint64(r.Code), 10)
		b = append(b, `,"info":`...)
		b = appendString(b, r.Info)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// pageStart begins a list page; each item is appended with appendItem
// (first tells whether it is the first), and pageEnd closes it.
func pageStart(b []byte) []byte { return append(b, `{"items":[`...) }

func appendItem(b []byte, first bool, id string, t int64) []byte {
	if !first {
		b = append(b, ',')
	}
	b = append(b, `{"userId":`...)
	b = appendString(b, id)
	b = append(b, `,"followTime":`...)
	b = strconv.AppendInt(b, t, 10)
	return append(b, '}')
}

func pageEnd(b []byte, next string) []byte {
	b = append(b, `],"nextCursor":`...)
	b = appendString(b, next)
	return append(b, '}')
}

// appendInfos encodes info results: {"results":[{"userId":..,"code":..,
// "following":..,"followers":..,"mutual":..}...]}.
func appendInfos(b []byte, is []wire.Info) []byte {
	b = append(b, `{"results":[`...)
	for i, in := range is {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"userId":`...)
		b = appendString(b, in.UserID)
		b = append(b, `,"code":`...)
		b = strconv.AppendUint(b, uint64(in.Code), 10)
		b = append(b, `,"following":`...)
		b = strconv.AppendUint(b, in.Following, 10)
		b = append(b, `,"followers":`...)
		b = strconv.AppendUint(b, in.Followers, 10)
		b = append(b, `,"mutual":`...)
		b = strconv.AppendUint(b, in.Mutual, 10)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendChecks encodes check results: {"results":[{"userId":..,"code":..,
// "followType":..}...]}.
func appendChecks(b []byte, cs []wire.Check) []byte {
	b = append(b, `{"results":[`...)
	for i, c := range cs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"userId":`...)
		b = appendString(b, c.UserID)
		b = append(b, `,"code":`...)
		b = strconv.AppendUint(b, uint64(c.Code), 10)
		b = append(b, `,"followType":`...)
		b = strconv.AppendUint(b, uint64(c.FollowType), 10)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendSetPage encodes a set query's page: {"items":[...],
// "nextCursor":..,"total":..}.
func appendSetPage(b []byte, p wire.SetPage) []byte {
	b = pageStart(b)
	for i, it := range p.Items {
		b = appendItem(b, i == 0, it.UserID, it.FollowTime)
	}
	b = append(b, `],"nextCursor":`...)
	b = appendString(b, p.NextCursor)
	b = append(b, `,"total":`...)
	b = strconv.AppendUint(b, p.Total, 10)
	return append(b, '}')
}

// appendRelationships encodes relationship results: {"results":[{"from":
// ..,"to":..,"code":..,"followType":..}...]}.
func appendRelationships(b []byte, rs []wire.Relationship) []byte {
	b = append(b, `{"results":[`...)
	for i, x := range rs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"from":`...)
		b = appendString(b, x.From)
		b = append(b, `,"to":`...)
		b = appendString(b, x.To)
		b = append(b, `,"code":`...)
		b = strconv.AppendUint(b, uint64(x.Code), 10)
		b = append(b, `,"followType":`...)
		b = strconv.AppendUint(b, uint64(x.FollowType), 10)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}
