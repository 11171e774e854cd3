package shard

import (
	"unicode"
	"unicode/utf8"

	"github.com/followgraph/followgraph/codes"
)

// MaxUserIDLen is the longest user ID, in bytes.
const MaxUserIDLen = maxIDLen

// MaxFollowTime is the latest followTime (Unix ms) a Store keeps: times
// fit in 48 bits.
const MaxFollowTime = maxTime

// ValidateUserID checks that id is a user ID: 1 to 64 bytes of valid UTF-8
// without control characters. The error carries codes.InvalidParam.
func ValidateUserID(id string) error {
	if len(id) > MaxUserIDLen {
		return codes.New(codes.InvalidParam, "invalid user ID %q: %d bytes, at most %d", truncate(id), len(id), MaxUserIDLen)
	}
	if !ValidUserID(id) {
		return codes.New(codes.InvalidParam, "invalid user ID %q: want 1-64 bytes of UTF-8 without control characters", truncate(id))
	}
	return nil
}

// ValidUserID is ValidateUserID without the error value.
func ValidUserID(id string) bool {
	if len(id) == 0 || len(id) > MaxUserIDLen {
		return false
	}
	for i := 0; i < len(id); {
		c := id[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(id[i:])
		if r == utf8.RuneError && n <= 1 {
			return false
		}
		if unicode.IsControl(r) {
			return false
		}
		i += n
	}
	return true
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
