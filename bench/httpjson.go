package bench

import (
	"encoding/json"
	"errors"
	"strconv"
)

// A minimal reader of the JSON API's response bodies, so that decoding
// them costs the load generator about what decoding the binary protocol's
// frames does (encoding/json's reflection was most of the http:// target's
// CPU per followers page). It reads any valid JSON of the expected shapes,
// skipping unknown fields; it is not a validator: bodies come from the
// server under test.

var errBadJSON = errors.New("bad JSON in the response")

type jsonReader struct {
	b []byte
	i int
}

func (r *jsonReader) ws() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\r', '\n':
			r.i++
		default:
			return
		}
	}
}

// next returns the next non-space byte without consuming it (0 at the end).
func (r *jsonReader) next() byte {
	r.ws()
	if r.i < len(r.b) {
		return r.b[r.i]
	}
	return 0
}

func (r *jsonReader) want(c byte) error {
	if r.next() != c {
		return errBadJSON
	}
	r.i++
	return nil
}

// more reports whether a list (object or array) ending in end goes on,
// consuming the comma or the end; first is true for the first element.
func (r *jsonReader) more(end byte, first bool) (bool, error) {
	c := r.next()
	if c == end {
		r.i++
		return false, nil
	}
	if !first {
		if c != ',' {
			return false, errBadJSON
		}
		r.i++
	}
	return true, nil
}

// str reads a string; one with escapes is decoded by encoding/json.
func (r *jsonReader) str() (string, error) {
	if r.next() != '"' {
		return "", errBadJSON
	}
	start, escaped := r.i, false
	for r.i++; r.i < len(r.b); r.i++ {
		switch r.b[r.i] {
		case '\\':
			escaped = true
			r.i++
		case '"':
			r.i++
			if !escaped {
				return string(r.b[start+1 : r.i-1]), nil
			}
			var s string
			err := json.Unmarshal(r.b[start:r.i], &s)
			return s, err
		}
	}
	return "", errBadJSON
}

func (r *jsonReader) int() (int64, error) {
	r.ws()
	start := r.i
	for r.i < len(r.b) && (r.b[r.i] == '-' || r.b[r.i] >= '0' && r.b[r.i] <= '9') {
		r.i++
	}
	return strconv.ParseInt(string(r.b[start:r.i]), 10, 64)
}

// skip skips one value of any kind.
func (r *jsonReader) skip() error {
	switch c := r.next(); {
	case c == '"':
		_, err := r.str()
		return err
	case c == '{' || c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		r.i++
		for first := true; ; first = false {
			ok, err := r.more(end, first)
			if err != nil || !ok {
				return err
			}
			if c == '{' {
				if _, err := r.str(); err != nil {
					return err
				}
				if err := r.want(':'); err != nil {
					return err
				}
			}
			if err := r.skip(); err != nil {
				return err
			}
		}
	default: // number, true, false, null
		start := r.i
		for r.i < len(r.b) && !isJSONDelim(r.b[r.i]) {
			r.i++
		}
		if r.i == start {
			return errBadJSON
		}
		return nil
	}
}

func isJSONDelim(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\r', '\n', ':':
		return true
	}
	return false
}

// object reads an object, calling field for each key (field reads the
// value, or skips it).
func (r *jsonReader) object(field func(key string) error) error {
	if err := r.want('{'); err != nil {
		return err
	}
	for first := true; ; first = false {
		ok, err := r.more('}', first)
		if err != nil || !ok {
			return err
		}
		key, err := r.str()
		if err != nil {
			return err
		}
		if err := r.want(':'); err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
	}
}

// array reads an array, calling elem for each element.
func (r *jsonReader) array(elem func() error) error {
	if err := r.want('['); err != nil {
		return err
	}
	for first := true; ; first = false {
		ok, err := r.more(']', first)
		if err != nil || !ok {
			return err
		}
		if err := elem(); err != nil {
			return err
		}
	}
}

// end checks that nothing but space follows the value.
func (r *jsonReader) end() error {
	if r.next() != 0 {
		return errBadJSON
	}
	return nil
}

// httpResult is one result of a write, check or info response.
type httpResult struct {
	UserID     string
	Code       int64
	Info       string
	FollowType int64
	Following  int64
	Followers  int64
	Mutual     int64
}

// decodeResults reads {"results":[{...},...]}.
func decodeResults(b []byte, out []httpResult) ([]httpResult, error) {
	r := &jsonReader{b: b}
	err := r.object(func(key string) error {
		if key != "results" {
			return r.skip()
		}
		return r.array(func() error {
			var res httpResult
			err := r.object(func(key string) (err error) {
				switch key {
				case "userId":
					res.UserID, err = r.str()
				case "info":
					res.Info, err = r.str()
				case "code":
					res.Code, err = r.int()
				case "followType":
					res.FollowType, err = r.int()
				case "following":
					res.Following, err = r.int()
				case "followers":
					res.Followers, err = r.int()
				case "mutual":
					res.Mutual, err = r.int()
				default:
					err = r.skip()
				}
				return err
			})
			out = append(out, res)
			return err
		})
	})
	if err == nil {
		err = r.end()
	}
	return out, err
}

// decodePage reads {"items":[{"userId":..,"followTime":..},...],
// "nextCursor":..}.
func decodePage(b []byte) (Page, error) {
	var p Page
	r := &jsonReader{b: b}
	err := r.object(func(key string) (err error) {
		switch key {
		case "nextCursor":
			p.Next, err = r.str()
			return err
		case "items":
			return r.array(func() error {
				var it Item
				err := r.object(func(key string) (err error) {
					switch key {
					case "userId":
						it.User, err = r.str()
					case "followTime":
						it.Time, err = r.int()
					default:
						err = r.skip()
					}
					return err
				})
				p.Items = append(p.Items, it)
				return err
			})
		}
		return r.skip()
	})
	if err == nil {
		err = r.end()
	}
	return p, err
}
