package httpapi

import (
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/wire"
)

// A small strict JSON reader for the request bodies, whose values are
// only strings, arrays of strings and booleans: it decodes a body with one
// allocation per string and none for the structure, where encoding/json's
// reflection costs several times the rest of a check or info request.
// Its grammar is RFC 8259's; a body it cannot read fails with 30001 and
// a message that says where.

// jsonReader reads one JSON value after another from b.
type jsonReader struct {
	b   []byte
	i   int
	err error
}

// fail records the first error: a syntax error at the current offset.
func (r *jsonReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = codes.New(codes.InvalidParam, "invalid JSON at byte %d: "+format, append([]any{r.i}, args...)...)
	}
}

func (r *jsonReader) ws() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte (0 at the end).
func (r *jsonReader) peek() byte {
	r.ws()
	if r.i >= len(r.b) {
		return 0
	}
	return r.b[r.i]
}

// kind names the JSON type of the value about to be read, for errors.
func (r *jsonReader) kind() string {
	switch c := r.peek(); {
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == '"':
		return "string"
	case c == 't' || c == 'f':
		return "boolean"
	case c == 'n':
		return "null"
	case c == '-' || c >= '0' && c <= '9':
		return "number"
	}
	return "value"
}

// literal reads the literal word (true, false, null) if it comes next.
func (r *jsonReader) literal(word string) bool {
	r.ws()
	if len(r.b)-r.i >= len(word) && string(r.b[r.i:r.i+len(word)]) == word {
		r.i += len(word)
		return true
	}
	return false
}

// str reads a string.
func (r *jsonReader) str() string {
	if r.peek() != '"' {
		r.fail("want a string")
		return ""
	}
	r.i++
	start := r.i
	for r.i < len(r.b) {
		c := r.b[r.i]
		switch {
		case c == '"':
			s := string(r.b[start:r.i])
			r.i++
			return s
		case c == '\\':
			return r.escaped(start)
		case c < 0x20:
			r.fail("control character in a string")
			return ""
		}
		r.i++
	}
	r.fail("unterminated string")
	return ""
}

// escaped finishes a string that started at start and has an escape at
// r.i.
func (r *jsonReader) escaped(start int) string {
	out := append([]byte(nil), r.b[start:r.i]...)
	for r.i < len(r.b) {
		c := r.b[r.i]
		switch {
		case c == '"':
			r.i++
			return string(out)
		case c < 0x20:
			r.fail("control character in a string")
			return ""
		case c != '\\':
			out = append(out, c)
			r.i++
			continue
		}
		if r.i+1 >= len(r.b) {
			break
		}
		e := r.b[r.i+1]
		r.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			out = utf8.AppendRune(out, r.unicode())
		default:
			r.i -= 2
			r.fail("bad escape \\%c", e)
			return ""
		}
		if r.err != nil {
			return ""
		}
	}
	r.fail("unterminated string")
	return ""
}

// unicode reads the XXXX of a \uXXXX escape (and the low half of a
// surrogate pair after it); a lone surrogate is U+FFFD, as encoding/json
// has it.
func (r *jsonReader) unicode() rune {
	c := r.hex4()
	if !utf16.IsSurrogate(c) {
		return c
	}
	if r.i+1 < len(r.b) && r.b[r.i] == '\\' && r.b[r.i+1] == 'u' {
		save := r.i
		r.i += 2
		if d := utf16.DecodeRune(c, r.hex4()); d != utf8.RuneError {
			return d
		}
		r.i = save
	}
	return utf8.RuneError
}

func (r *jsonReader) hex4() rune {
	if len(r.b)-r.i < 4 {
		r.fail("short \\u escape")
		return 0
	}
	v, err := strconv.ParseUint(string(r.b[r.i:r.i+4]), 16, 16)
	if err != nil {
		r.fail("bad \\u escape")
		return 0
	}
	r.i += 4
	return rune(v)
}

// object reads an object, calling field for each key with the reader
// positioned at its value; field must read the value (or fail).
func (r *jsonReader) object(field func(key string)) {
	if r.peek() != '{' {
		r.fail("want an object")
		return
	}
	r.i++
	if r.peek() == '}' {
		r.i++
		return
	}
	for r.err == nil {
		key := r.str()
		if r.peek() != ':' {
			r.fail("want ':' after an object key")
			return
		}
		r.i++
		if field(key); r.err != nil {
			return
		}
		switch r.peek() {
		case ',':
			r.i++
		case '}':
			r.i++
			return
		default:
			r.fail("want ',' or '}' in an object")
		}
	}
}

// strings reads an array of strings; null reads as nil. bad reports a
// value of another type (r.err stays nil for the caller to explain).
func (r *jsonReader) strings() (out []string, bad bool) {
	if r.literal("null") {
		return nil, false
	}
	if r.peek() != '[' {
		return nil, true
	}
	r.i++
	if r.peek() == ']' {
		r.i++
		return []string{}, false
	}
	for r.err == nil {
		if r.peek() != '"' {
			return nil, true
		}
		out = append(out, r.str())
		switch r.peek() {
		case ',':
			r.i++
		case ']':
			r.i++
			return out, false
		default:
			r.fail("want ',' or ']' in an array")
		}
	}
	return nil, false
}

// end checks that nothing but white space follows the value.
func (r *jsonReader) end() {
	if r.peek() != 0 {
		r.fail("data after the JSON object")
	}
}

// field reads the value of one field of a request body, with errors that
// name the field.
type field struct {
	r    *jsonReader
	what string // the body, for errors: "check request"
	key  string
	err  error
}

func (f *field) wrongType(want string) {
	if f.err == nil {
		f.err = codes.New(codes.InvalidParam, "malformed %s body: field %q: want %s, not a JSON %s", f.what, f.key, want, f.r.kind())
	}
}

// string reads a string or null (present false).
func (f *field) string() (s string, present bool) {
	switch {
	case f.r.literal("null"):
		return "", false
	case f.r.peek() != '"':
		f.wrongType("a string")
		return "", false
	}
	return f.r.str(), true
}

// optional reads a string or null (nil).
func (f *field) optional() *string {
	if s, ok := f.string(); ok {
		return &s
	}
	return nil
}

// strings reads an array of strings or null.
func (f *field) strings() []string {
	out, bad := f.r.strings()
	if bad {
		f.wrongType("an array of strings")
	}
	return out
}

// pairs reads an array of {"from": "a", "to": "b"} objects, or null.
func (f *field) pairs() []wire.Pair {
	if f.r.literal("null") {
		return nil
	}
	if f.r.peek() != '[' {
		f.wrongType("an array of {\"from\", \"to\"} objects")
		return nil
	}
	f.r.i++
	out := []wire.Pair{}
	if f.r.peek() == ']' {
		f.r.i++
		return out
	}
	for f.err == nil && f.r.err == nil {
		p, ok := f.pair(len(out) + 1)
		if !ok {
			return nil
		}
		out = append(out, p)
		switch f.r.peek() {
		case ',':
			f.r.i++
		case ']':
			f.r.i++
			return out
		default:
			f.r.fail("want ',' or ']' in an array")
		}
	}
	return nil
}

// pair reads one {"from", "to"} object, both fields required.
func (f *field) pair(n int) (wire.Pair, bool) {
	if f.r.peek() != '{' {
		f.wrongType("an array of {\"from\", \"to\"} objects")
		return wire.Pair{}, false
	}
	var p wire.Pair
	var from, to bool
	f.r.object(func(key string) {
		sub := &field{r: f.r, what: f.what, key: fmt.Sprintf("pairs[%d].%s", n-1, key)}
		switch key {
		case "from":
			p.From, from = sub.string()
		case "to":
			p.To, to = sub.string()
		default:
			sub.err = codes.New(codes.InvalidParam, "malformed %s body: unknown field %q in pair %d", f.what, truncate(key), n)
		}
		if sub.err != nil && f.err == nil {
			f.err = sub.err
			f.r.fail("stopped")
		}
	})
	if f.err == nil && f.r.err == nil && (!from || !to) {
		f.err = codes.New(codes.InvalidParam, "malformed %s body: pair %d needs \"from\" and \"to\"", f.what, n)
	}
	return p, f.err == nil && f.r.err == nil
}

// bool reads true, false or null (false).
func (f *field) bool() bool {
	switch {
	case f.r.literal("true"):
		return true
	case f.r.literal("false"), f.r.literal("null"):
		return false
	}
	f.wrongType("true or false")
	return false
}

// readObject reads body, a JSON object, calling fn for each field; fn
// returns false for a field it does not know.
func readObject(body []byte, what string, fn func(f *field) bool) error {
	r := &jsonReader{b: body}
	if r.peek() == 0 {
		return codes.New(codes.InvalidParam, "malformed %s body: empty body; want a JSON object", what)
	}
	if r.peek() != '{' {
		return codes.New(codes.InvalidParam, "malformed %s body: want a JSON object, not a JSON %s", what, r.kind())
	}
	var ferr error
	f := &field{r: r, what: what} // one for every field: fn gets a pointer
	r.object(func(key string) {
		f.key, f.err = key, nil
		if !fn(f) {
			f.err = codes.New(codes.InvalidParam, "malformed %s body: unknown field %q", what, truncate(key))
		}
		if f.err != nil && ferr == nil {
			ferr = f.err
			r.fail("stopped") // stop reading; ferr is reported
		}
	})
	if ferr != nil {
		return ferr
	}
	r.end()
	if r.err != nil {
		return codes.New(codes.InvalidParam, "malformed %s body: %s", what, r.err.(*codes.Error).Msg)
	}
	return nil
}
