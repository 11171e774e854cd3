// Package gossipkey reads and names gossip encryption keys.
//
// A gossip key is an AES key of 16, 24 or 32 bytes (AES-128, -192 or -256:
// the sizes memberlist accepts), written as standard base64 wherever a
// person or a protocol handles it: followd's --gossip-key, followctl
// gossip-key and the key field of wire op 19. Keys are secrets, so what
// logs, metrics and listings show of a key is its Fingerprint, never the
// key.
package gossipkey

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is a key that is not base64 of 16, 24 or 32 bytes.
var ErrInvalid = errors.New("gossip key must be standard base64 of 16, 24 or 32 bytes (AES-128, -192 or -256)")

// MaxEncodedLen bounds the base64 form of a key (32 bytes: 44 characters);
// decoders refuse longer input before decoding it.
const MaxEncodedLen = 44

// Decode reads a base64 key; white space around it (a key file's
// newline) is ignored, and none is allowed inside.
func Decode(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxEncodedLen {
		return nil, fmt.Errorf("%w: %d characters", ErrInvalid, len(s))
	}
	k, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	// The decoder skips line breaks inside the input: one key has one
	// spelling, so that what is accepted is what Encode writes.
	if Encode(k) != s {
		return nil, fmt.Errorf("%w: not in its canonical form (a line break inside it?)", ErrInvalid)
	}
	if n := len(k); n != 16 && n != 24 && n != 32 {
		return nil, fmt.Errorf("%w: it decodes to %d bytes", ErrInvalid, n)
	}
	return k, nil
}

// Encode writes a key as base64.
func Encode(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

// Fingerprint names a key without revealing it: the first 8 bytes of its
// SHA-256, in hex. Eight bytes tell apart the handful of keys a keyring
// holds, and reveal nothing usable about a 128-bit or larger key.
func Fingerprint(k []byte) string {
	sum := sha256.Sum256(k)
	return hex.EncodeToString(sum[:8])
}

// New returns a new random 32-byte key (AES-256).
func New() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}
