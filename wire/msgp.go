package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"
)

// A minimal msgpack: exactly the types the protocol uses (nil, bool,
// integers, str, array), appended to and read from byte slices with no
// reflection and no allocation except for the strings a caller asks to keep.
// Any msgpack encoder produces frames this reader accepts (integers may use
// any width, strings any of the str formats).

// ErrMsgpack reports malformed or unexpected msgpack.
var ErrMsgpack = errors.New("wire: malformed msgpack")

func appendArray(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return append(b, 0xdc, byte(n>>8), byte(n))
	}
	return append(b, 0xdd, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v < 128:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return append(b, 0xcd, byte(v>>8), byte(v))
	case v <= math.MaxUint32:
		return append(b, 0xce, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), v)
}

func appendInt(b []byte, v int64) []byte {
	if v >= 0 {
		return appendUint(b, uint64(v))
	}
	if v >= -32 {
		return append(b, byte(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

func appendStrHeader(b []byte, n int) []byte {
	switch {
	case n < 32:
		return append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		return append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		return append(b, 0xda, byte(n>>8), byte(n))
	}
	return append(b, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func appendStr(b []byte, s string) []byte { return append(appendStrHeader(b, len(s)), s...) }

func appendStrBytes(b []byte, s []byte) []byte { return append(appendStrHeader(b, len(s)), s...) }

// reader reads msgpack values from a byte slice. The first error sticks;
// later reads return zero values.
type reader struct {
	b   []byte
	off int
	err error
	// field names what is being read, for a too-long string's error.
	field string
}

// tooLongError is a string over its limit: a malformed body, told apart
// so that the error can say which field was too long.
type tooLongError struct {
	field string
	n     uint64
	max   int
}

func (e tooLongError) Error() string {
	return fmt.Sprintf("%s: string of %d bytes, at most %d", e.field, e.n, e.max)
}

func (e tooLongError) Is(target error) bool { return target == ErrMsgpack }

func (r *reader) fail() {
	if r.err == nil {
		r.err = ErrMsgpack
	}
}

func (r *reader) byte() byte {
	if r.err != nil || r.off >= len(r.b) {
		r.fail()
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) n(k int) []byte {
	if r.err != nil || k < 0 || len(r.b)-r.off < k {
		r.fail()
		return nil
	}
	s := r.b[r.off : r.off+k]
	r.off += k
	return s
}

func (r *reader) be(k int) uint64 {
	var v uint64
	for _, c := range r.n(k) {
		v = v<<8 | uint64(c)
	}
	return v
}

// array reads an array header of at most max elements.
func (r *reader) array(max int) int {
	c := r.byte()
	var n uint64
	switch {
	case c&0xf0 == 0x90:
		n = uint64(c & 0x0f)
	case c == 0xdc:
		n = r.be(2)
	case c == 0xdd:
		n = r.be(4)
	default:
		r.fail()
	}
	if r.err != nil || n > uint64(max) {
		r.fail()
		return 0
	}
	return int(n)
}

// arrayN reads an array header that must have exactly n elements.
func (r *reader) arrayN(n int) {
	if r.array(n) != n {
		r.fail()
	}
}

// upTo reads an unsigned integer of at most max (which fits an int), and
// fails the body on a larger one: converting an unchecked uint64 to int or
// to a narrower type would wrap around and let, say, 2^64-1 pass a
// "<= limit" check as -1.
func (r *reader) upTo(max int) int {
	v := r.uint()
	if v > uint64(max) {
		r.fail()
		return 0
	}
	return int(v)
}

func (r *reader) uint() uint64 {
	c := r.byte()
	switch {
	case c <= 0x7f:
		return uint64(c)
	case c == 0xcc:
		return r.be(1)
	case c == 0xcd:
		return r.be(2)
	case c == 0xce:
		return r.be(4)
	case c == 0xcf:
		return r.be(8)
	case c == 0xd0, c == 0xd1, c == 0xd2, c == 0xd3:
		// Signed encodings of non-negative values are accepted.
		v := r.sint(c)
		if v < 0 {
			r.fail()
			return 0
		}
		return uint64(v)
	}
	r.fail()
	return 0
}

func (r *reader) sint(c byte) int64 {
	switch c {
	case 0xd0:
		return int64(int8(r.be(1)))
	case 0xd1:
		return int64(int16(r.be(2)))
	case 0xd2:
		return int64(int32(r.be(4)))
	}
	return int64(r.be(8))
}

func (r *reader) int() int64 {
	if r.err != nil || r.off >= len(r.b) {
		r.fail()
		return 0
	}
	c := r.b[r.off]
	switch {
	case c >= 0xe0:
		r.off++
		return int64(int8(c))
	case c >= 0xd0 && c <= 0xd3:
		r.off++
		return r.sint(c)
	}
	v := r.uint()
	if v > math.MaxInt64 {
		r.fail()
		return 0
	}
	return int64(v)
}

func (r *reader) bool() bool {
	switch r.byte() {
	case 0xc2:
		return false
	case 0xc3:
		return true
	}
	r.fail()
	return false
}

// strBytes reads a str of at most max bytes, returning a view into the
// frame (valid only as long as the frame buffer).
func (r *reader) strBytes(max int) []byte {
	c := r.byte()
	var n uint64
	switch {
	case c&0xe0 == 0xa0:
		n = uint64(c & 0x1f)
	case c == 0xd9:
		n = r.be(1)
	case c == 0xda:
		n = r.be(2)
	case c == 0xdb:
		n = r.be(4)
	default:
		r.fail()
		return nil
	}
	if n > uint64(max) {
		if r.err == nil {
			r.err = tooLongError{r.field, n, max}
		}
		return nil
	}
	return r.n(int(n))
}

// str reads a str of at most max bytes as a new string.
func (r *reader) str(max int) string { return string(r.strBytes(max)) }

// strView reads a str of at most max bytes as a string that shares the
// frame's memory: valid only while the frame buffer is not reused.
func (r *reader) strView(max int) string {
	b := r.strBytes(max)
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// done fails unless every byte was read.
func (r *reader) done() error {
	if r.err == nil && r.off != len(r.b) {
		r.fail()
	}
	return r.err
}
