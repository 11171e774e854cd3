package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/followgraph/followgraph/shard"
)

// Edge files, read by import (and written by export).
//
// JSONL: one object per line, {"actor":"alice","target":"bob","followTime":1700000000000}:
// the three keys in any order, no others; followTime an integer, Unix
// milliseconds from 0 to shard.MaxFollowTime.
//
// CSV (RFC 4180): three columns actor,target,followTime; a first line that
// is exactly that header is skipped. Fields holding a comma or a quote are
// quoted. Blank lines are skipped in both formats.
//
// Every line, the last included, ends with a newline: a last line without
// one is taken for a truncated file and refused, since a cut CSV line
// ("alice,bob,17") would otherwise parse as a wrong edge.

const csvHeader = "actor,target,followTime"

// edgeFormat is the format of an edge file.
type edgeFormat int

const (
	formatAuto edgeFormat = iota
	formatJSONL
	formatCSV
)

func parseFormat(s string) (edgeFormat, error) {
	switch s {
	case "auto", "":
		return formatAuto, nil
	case "jsonl", "json":
		return formatJSONL, nil
	case "csv":
		return formatCSV, nil
	}
	return formatAuto, usageErrorf("--format must be auto, jsonl or csv, not %q", s)
}

// maxLine is the longest line read: three fields of escaped 64-byte IDs
// fit many times over.
const maxLine = 16 << 10

// edge is one parsed line.
type edge struct {
	actor, target string
	time          int64
	line          int
}

// lineError is a line that cannot be imported.
type lineError struct {
	Line    int    `json:"line"`
	Message string `json:"message"`
}

func (e lineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Message) }

// edgeReader reads an edge file line by line.
type edgeReader struct {
	r      *bufio.Reader
	format edgeFormat
	line   int   // number of the last line read
	offset int64 // bytes read, to the end of the last line
}

func newEdgeReader(r io.Reader, f edgeFormat) *edgeReader {
	return &edgeReader{r: bufio.NewReaderSize(r, 1<<20), format: f}
}

// next returns the next edge, a *lineError for a line that is not one
// (the caller decides whether to go on), or io.EOF.
func (er *edgeReader) next() (edge, error) {
	for {
		b, err := er.readLine()
		if err != nil {
			return edge{}, err
		}
		b = bytes.TrimRight(b, "\r")
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		if er.format == formatAuto {
			er.format = formatCSV
			if b[0] == '{' {
				er.format = formatJSONL
			}
		}
		if er.format == formatCSV && er.line == 1 && string(b) == csvHeader {
			continue
		}
		e, perr := er.parse(b)
		if perr != nil {
			return edge{}, &lineError{er.line, perr.Error()}
		}
		e.line = er.line
		return e, nil
	}
}

// readLine returns the next line without its newline, a *lineError for a
// line too long or a last line cut short, or io.EOF.
func (er *edgeReader) readLine() ([]byte, error) {
	b, err := er.r.ReadSlice('\n')
	er.offset += int64(len(b))
	if len(b) == 0 && err == io.EOF {
		return nil, io.EOF
	}
	er.line++
	switch {
	case errors.Is(err, bufio.ErrBufferFull) || len(b) > maxLine:
		for errors.Is(err, bufio.ErrBufferFull) {
			b, err = er.r.ReadSlice('\n')
			er.offset += int64(len(b))
		}
		return nil, &lineError{er.line, fmt.Sprintf("line longer than %d bytes", maxLine)}
	case err == io.EOF:
		return nil, &lineError{er.line, "truncated: the input does not end with a newline"}
	case err != nil:
		return nil, err
	}
	return b[:len(b)-1], nil
}

func (er *edgeReader) parse(b []byte) (edge, error) {
	var e edge
	var err error
	if er.format == formatJSONL {
		e, err = parseJSONEdge(b)
	} else {
		e, err = parseCSVEdge(b)
	}
	if err != nil {
		return e, err
	}
	return e, checkEdge(e)
}

// checkEdge applies the server's rules to an edge, so that a bad line is
// reported with its number before anything is sent.
func checkEdge(e edge) error {
	switch {
	case !shard.ValidUserID(e.actor):
		return fmt.Errorf("invalid actor %q: want 1-%d bytes of UTF-8 without control characters", clip(e.actor), shard.MaxUserIDLen)
	case !shard.ValidUserID(e.target):
		return fmt.Errorf("invalid target %q: want 1-%d bytes of UTF-8 without control characters", clip(e.target), shard.MaxUserIDLen)
	case e.actor == e.target:
		return fmt.Errorf("%q follows itself", e.actor)
	case e.time < 0 || e.time > shard.MaxFollowTime:
		return fmt.Errorf("followTime %d out of range (0 to %d, Unix ms)", e.time, int64(shard.MaxFollowTime))
	}
	return nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func parseCSVEdge(b []byte) (edge, error) {
	var fields [][]byte
	if bytes.IndexByte(b, '"') < 0 {
		fields = bytes.Split(b, []byte{','})
	} else {
		r := csv.NewReader(bytes.NewReader(b))
		r.FieldsPerRecord = -1
		rec, err := r.Read()
		if err != nil {
			return edge{}, fmt.Errorf("bad CSV: %v", err)
		}
		for _, f := range rec {
			fields = append(fields, []byte(f))
		}
	}
	if len(fields) != 3 {
		return edge{}, fmt.Errorf("%d columns, want 3 (%s)", len(fields), csvHeader)
	}
	t, err := strconv.ParseInt(string(fields[2]), 10, 64)
	if err != nil {
		return edge{}, fmt.Errorf("followTime %q is not an integer", clip(string(fields[2])))
	}
	return edge{actor: string(fields[0]), target: string(fields[1]), time: t}, nil
}

// parseJSONEdge reads one edge object. The common form (no escapes) is
// scanned by hand; anything else goes through encoding/json.
func parseJSONEdge(b []byte) (edge, error) {
	if e, ok := scanJSONEdge(b); ok {
		return e, nil
	}
	var v struct {
		Actor      *string      `json:"actor"`
		Target     *string      `json:"target"`
		FollowTime *json.Number `json:"followTime"`
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return edge{}, fmt.Errorf("bad JSON: %v", err)
	}
	if d.More() {
		return edge{}, errors.New("bad JSON: more than one value on the line")
	}
	if v.Actor == nil || v.Target == nil || v.FollowTime == nil {
		return edge{}, errors.New(`want the keys "actor", "target" and "followTime"`)
	}
	t, err := strconv.ParseInt(v.FollowTime.String(), 10, 64)
	if err != nil {
		return edge{}, fmt.Errorf("followTime %s is not an integer", v.FollowTime)
	}
	return edge{actor: *v.Actor, target: *v.Target, time: t}, nil
}

// scanJSONEdge parses {"k":v,...} with the three keys, string values
// without escapes and an integer time, and whitespace anywhere between
// tokens; ok is false for anything else (the slow path decides).
func scanJSONEdge(b []byte) (e edge, ok bool) {
	s := jscan{b: b}
	if !s.tok('{') {
		return e, false
	}
	var seen [3]bool
	for i := range 3 {
		if i > 0 && !s.tok(',') {
			return e, false
		}
		key, ok := s.str()
		k := slices.Index(jsonKeys[:], key)
		if !ok || k < 0 || seen[k] || !s.tok(':') {
			return e, false
		}
		seen[k] = true
		switch k {
		case 0:
			e.actor, ok = s.str()
		case 1:
			e.target, ok = s.str()
		default:
			e.time, ok = s.int()
		}
		if !ok {
			return e, false
		}
	}
	if !s.tok('}') {
		return e, false
	}
	s.ws()
	return e, s.i == len(b)
}

// jsonKeys are the keys of an edge object.
var jsonKeys = [3]string{"actor", "target", "followTime"}

type jscan struct {
	b []byte
	i int
}

func (s *jscan) ws() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t') {
		s.i++
	}
}

func (s *jscan) tok(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *jscan) str() (string, bool) {
	if !s.tok('"') {
		return "", false
	}
	start := s.i
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return string(s.b[start : s.i-1]), true
		case c == '\\' || c < 0x20:
			return "", false
		}
		s.i++
	}
	return "", false
}

func (s *jscan) int() (int64, bool) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	v, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	return v, err == nil && s.i > start
}
