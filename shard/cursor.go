package shard

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"

	"github.com/followgraph/followgraph/codes"
)

// Cursors.
//
// A cursor names the last entry a page returned: its followTime and user ID,
// which together are the entry's unique position in list order. The next page
// starts strictly after that position, so paging is stable: entries before it
// never shift, and an entry that stays in the list is returned exactly once.
//
// Layout before base64url (no padding):
//
//	version (1 byte, = 1) | kind (1) | followTime (uvarint) |
//	len(userID) (1) | userID | mac (8)
//
// mac is HMAC-SHA256 over (owner's user ID, 0x00, everything before mac),
// keyed with Config.CursorKey and truncated to 8 bytes. It binds the cursor
// to its list and owner and rejects forged or corrupted cursors with
// codes.InvalidParam instead of silently starting somewhere else.

const (
	cursorVersion = 1
	cursorMACLen  = 8
	// maxCursorLen bounds the encoded form: 1+1+10+1+64+8 = 85 bytes
	// encode to 114 characters.
	maxCursorLen = 120
)

// Kind selects one of a user's lists.
type Kind uint8

// List kinds. The numbers are part of the wire protocol.
const (
	Following Kind = 1
	Followers Kind = 2
	Mutual    Kind = 3
)

func (k Kind) valid() bool { return k >= Following && k <= Mutual }

func (k Kind) set() setKind {
	switch k {
	case Following:
		return kFollowing
	case Followers:
		return kFollowers
	}
	return kMutual
}

// String names the list.
func (k Kind) String() string {
	switch k {
	case Following:
		return "following"
	case Followers:
		return "followers"
	case Mutual:
		return "mutual"
	}
	return "unknown"
}

type cursorPos struct {
	t  int64
	id []byte
}

func cursorMAC(key []byte, owner string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(owner))
	m.Write([]byte{0})
	m.Write(body)
	return m.Sum(nil)[:cursorMACLen]
}

func encodeCursor(key []byte, owner string, k Kind, t int64, id []byte) string {
	var buf [1 + 1 + binary.MaxVarintLen64 + 1 + maxIDLen + cursorMACLen]byte
	b := append(buf[:0], cursorVersion, byte(k))
	b = binary.AppendUvarint(b, uint64(t))
	b = append(b, byte(len(id)))
	b = append(b, id...)
	b = append(b, cursorMAC(key, owner, b)...)
	return cursorEncoding.EncodeToString(b)
}

var cursorEncoding = base64.RawURLEncoding.Strict()

var errBadCursor = codes.New(codes.InvalidParam, "invalid cursor: malformed, forged, or made for another list")

// decodeCursor parses c, which must have been made by encodeCursor with the
// same key, owner and kind.
func decodeCursor(key []byte, owner string, k Kind, c string) (cursorPos, error) {
	if len(c) > maxCursorLen {
		return cursorPos{}, errBadCursor
	}
	var buf [maxCursorLen]byte
	n, err := cursorEncoding.Decode(buf[:], []byte(c))
	// The decoder skips CR and LF; insist on the canonical text.
	if err != nil || cursorEncoding.EncodedLen(n) != len(c) {
		return cursorPos{}, errBadCursor
	}
	b := buf[:n]
	if len(b) < 2+1+1+cursorMACLen || b[0] != cursorVersion || Kind(b[1]) != k {
		return cursorPos{}, errBadCursor
	}
	body, mac := b[:len(b)-cursorMACLen], b[len(b)-cursorMACLen:]
	if !hmac.Equal(mac, cursorMAC(key, owner, body)) {
		return cursorPos{}, errBadCursor
	}
	t, vn := binary.Uvarint(body[2:])
	if vn <= 0 || t > maxTime {
		return cursorPos{}, errBadCursor
	}
	rest := body[2+vn:]
	if len(rest) < 1 || int(rest[0]) != len(rest)-1 || !ValidUserID(string(rest[1:])) {
		return cursorPos{}, errBadCursor
	}
	return cursorPos{t: int64(t), id: append([]byte(nil), rest[1:]...)}, nil
}
