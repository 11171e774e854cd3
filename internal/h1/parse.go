package h1

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
)

// readBufSize is each connection's read buffer, and so the longest line
// of a request head.
const readBufSize = 8 << 10

// reqError is a request the server answers itself, then closes the
// connection: the status and why.
type reqError struct {
	status int
	msg    string
}

func (e *reqError) Error() string { return fmt.Sprintf("%d %s", e.status, e.msg) }

func badRequest(format string, args ...any) error {
	return &reqError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// readHead reads a request head (the request line and header fields, up
// to the empty line) into c.head, one line after another without their
// line ends, and notes where each line ends. Empty lines before the
// request line are skipped, as robust servers do.
func (c *conn) readHead() error {
	c.head, c.lines = c.head[:0], c.lines[:0]
	total := 0
	for {
		line, err := c.br.ReadSlice('\n')
		total += len(line)
		switch {
		case errors.Is(err, bufio.ErrBufferFull) && len(c.lines) == 0:
			return &reqError{http.StatusRequestURITooLong, fmt.Sprintf("the request line is over %d bytes", readBufSize)}
		case errors.Is(err, bufio.ErrBufferFull):
			return &reqError{http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("a header field is over %d bytes", readBufSize)}
		case total > c.s.cfg.MaxHeaderBytes:
			return &reqError{http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("the request head is over %d bytes", c.s.cfg.MaxHeaderBytes)}
		case errors.Is(err, io.EOF) && (total > 0 || len(c.lines) > 0):
			return io.ErrUnexpectedEOF
		case err != nil:
			return err
		}
		line = line[:len(line)-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 {
			if len(c.lines) == 0 {
				continue
			}
			return nil
		}
		c.head = append(c.head, line...)
		c.lines = append(c.lines, len(c.head))
	}
}

// parseHead fills c.req from the head read by readHead. The head becomes
// one string, and every field of the request is a part of it: one
// allocation for the whole head.
func (c *conn) parseHead() error {
	s := string(c.head)
	rl := s[:c.lines[0]]
	method, rest, ok1 := strings.Cut(rl, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !validToken(method) || target == "" {
		return badRequest("malformed request line %q", rl)
	}
	req := &c.req
	*req = c.blank // keeps the server's context
	req.Method, req.RequestURI, req.Proto = method, target, proto
	req.RemoteAddr, req.TLS = c.remote, c.tlsState
	switch proto {
	case "HTTP/1.1":
		req.ProtoMajor, req.ProtoMinor = 1, 1
	case "HTTP/1.0":
		req.ProtoMajor, req.ProtoMinor = 1, 0
	default:
		if strings.HasPrefix(proto, "HTTP/") {
			return &reqError{http.StatusHTTPVersionNotSupported, fmt.Sprintf("%s is not supported: use HTTP/1.1", proto)}
		}
		return badRequest("malformed request line %q", rl)
	}
	if err := c.parseTarget(target); err != nil {
		return err
	}
	clear(c.header)
	req.Header = c.header
	c.vals = c.vals[:0]
	for i := 1; i < len(c.lines); i++ {
		if err := c.parseField(s[c.lines[i-1]:c.lines[i]]); err != nil {
			return err
		}
	}
	return c.framing()
}

// parseTarget sets c.url from the request target: the origin form
// (/path?query) without percent escapes is split in place; anything
// else goes through url.ParseRequestURI.
func (c *conn) parseTarget(target string) error {
	for i := 0; i < len(target); i++ {
		if b := target[i]; b <= ' ' || b == 0x7f {
			return badRequest("invalid byte %#x in the request target", b)
		}
	}
	c.req.URL = &c.url
	if target[0] == '/' && strings.IndexByte(target, '%') < 0 {
		path, query, hasQuery := strings.Cut(target, "?")
		c.url = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
		if !pathAsIs(path) {
			c.url.RawPath = path // as url.Parse keeps it: EscapedPath returns it
		}
		return nil
	}
	if target == "*" {
		c.url = url.URL{Path: "*"}
		return nil
	}
	u, err := url.ParseRequestURI(target)
	if err != nil || (target[0] != '/' && u.Host == "") {
		return badRequest("malformed request target %q", target)
	}
	c.url = *u
	return nil
}

// pathAsIs says whether package url writes path (without escapes) as it
// is: only unreserved bytes and those of $&+,/:;=@.
func pathAsIs(path string) bool {
	for i := 0; i < len(path); i++ {
		switch b := path[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case strings.IndexByte("-_.~$&+,/:;=@", b) >= 0:
		default:
			return false
		}
	}
	return true
}

// parseField adds one header field to c.header. The value slices come
// from c.vals, one per field name, so that a head costs no allocation
// per field.
func (c *conn) parseField(line string) error {
	if line[0] == ' ' || line[0] == '\t' {
		return badRequest("obsolete line folding in the header")
	}
	name, value, ok := strings.Cut(line, ":")
	if !ok || !validToken(name) {
		return badRequest("malformed header field %q", line)
	}
	value = strings.Trim(value, " \t")
	for i := 0; i < len(value); i++ {
		if b := value[i]; (b < ' ' && b != '\t') || b == 0x7f {
			return badRequest("invalid byte %#x in header field %s", b, name)
		}
	}
	key := textproto.CanonicalMIMEHeaderKey(name)
	if vs, ok := c.header[key]; ok {
		c.header[key] = append(vs, value)
		return nil
	}
	c.vals = append(c.vals, value)
	n := len(c.vals)
	c.header[key] = c.vals[n-1 : n : n]
	return nil
}

var chunked = []string{"chunked"}

// framing applies the fields that frame the request and the connection:
// Host, Content-Length, Transfer-Encoding, Connection and Expect. A
// request that could be read two ways (a body length given twice, or by
// both Content-Length and Transfer-Encoding) is refused: a proxy in
// front might read it the other way.
func (c *conn) framing() error {
	req, h := &c.req, c.header
	hosts := h["Host"]
	switch {
	case len(hosts) > 1:
		return badRequest("more than one Host header")
	case len(hosts) == 0 && req.ProtoMinor == 1:
		return badRequest("missing required Host header")
	case len(hosts) == 1:
		req.Host = hosts[0]
		delete(h, "Host")
	}
	if c.url.Host != "" {
		req.Host = c.url.Host
	}
	c.body = body{c: c}
	if err := c.bodyLength(); err != nil {
		return err
	}
	keepAlive := false
	for _, v := range h["Connection"] {
		for _, tok := range strings.Split(v, ",") {
			switch tok = strings.TrimSpace(tok); {
			case strings.EqualFold(tok, "close"):
				req.Close = true
			case strings.EqualFold(tok, "keep-alive"):
				keepAlive = true
			}
		}
	}
	if req.ProtoMinor == 0 && !keepAlive {
		req.Close = true
	}
	if ex := h["Expect"]; len(ex) > 0 {
		if len(ex) > 1 || !strings.EqualFold(ex[0], "100-continue") {
			return &reqError{http.StatusExpectationFailed, fmt.Sprintf("unsupported expectation %q", ex[0])}
		}
		c.body.expect = req.ContentLength != 0 && req.ProtoMinor == 1
	}
	if req.ContentLength != 0 {
		req.Body = &c.body
	} else {
		req.Body = http.NoBody
	}
	return nil
}

// bodyLength sets the request's body from Content-Length or chunked
// Transfer-Encoding.
func (c *conn) bodyLength() error {
	req, h := &c.req, c.header
	cls, te := h["Content-Length"], h["Transfer-Encoding"]
	if len(te) > 0 {
		switch {
		case len(cls) > 0:
			return badRequest("both Content-Length and Transfer-Encoding")
		case len(te) > 1 || !strings.EqualFold(te[0], "chunked"):
			return &reqError{http.StatusNotImplemented, fmt.Sprintf("unsupported Transfer-Encoding %q", strings.Join(te, ", "))}
		}
		delete(h, "Transfer-Encoding")
		req.TransferEncoding, req.ContentLength = chunked, -1
		c.body.chunked = httputil.NewChunkedReader(c.br)
		return nil
	}
	if len(cls) == 0 {
		return nil
	}
	for _, v := range cls[1:] {
		if v != cls[0] {
			return badRequest("conflicting Content-Length headers")
		}
	}
	h["Content-Length"] = cls[:1]
	n, err := strconv.ParseUint(cls[0], 10, 63)
	if err != nil || cls[0][0] == '+' {
		return badRequest("malformed Content-Length %q", cls[0])
	}
	req.ContentLength, c.body.n = int64(n), int64(n)
	return nil
}

// validToken says whether s is an HTTP token (a method or a field name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenByte(s[i]) {
			return false
		}
	}
	return true
}

func isTokenByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}

// body is a request's body: Content-Length bytes from the connection's
// reader, or its chunked decoding. Before its first read it sends
// "100 Continue" to a client that waits for one.
type body struct {
	c       *conn
	n       int64     // bytes left, for a Content-Length body
	chunked io.Reader // for a chunked one
	expect  bool      // 100 Continue not sent yet
	eof     bool      // a chunked body read to its end
}

func (b *body) Read(p []byte) (int, error) {
	if b.expect {
		b.expect = false
		b.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		if err := b.c.flush(); err != nil {
			return 0, err
		}
	}
	if b.chunked != nil {
		n, err := b.chunked.Read(p)
		if errors.Is(err, io.EOF) && !b.eof {
			b.eof = true
			if terr := b.skipTrailer(); terr != nil {
				return n, terr
			}
		}
		return n, err
	}
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.c.br.Read(p)
	b.n -= int64(n)
	switch {
	case errors.Is(err, io.EOF):
		return n, io.ErrUnexpectedEOF
	case err == nil && b.n == 0:
		return n, io.EOF
	}
	return n, err
}

func (b *body) Close() error { return nil }

// maxTrailer bounds the trailer fields after a chunked body.
const maxTrailer = 4 << 10

// skipTrailer reads the trailer fields after the last chunk, up to the
// empty line that ends the request (the chunked reader stops before
// them), and drops them: no handler here reads trailers.
func (b *body) skipTrailer() error {
	total := 0
	for {
		line, err := b.c.br.ReadSlice('\n')
		total += len(line)
		switch {
		case err != nil && !errors.Is(err, io.EOF):
			return err
		case total > maxTrailer:
			return errors.New("h1: chunked body trailer too long")
		case len(line) == 0:
			return io.ErrUnexpectedEOF
		case len(line) <= 2 && (line[0] == '\n' || string(line) == "\r\n"):
			return nil
		}
	}
}

// maxDrain is how much of a body its handler left unread the server
// reads and discards to keep the connection; past it the connection is
// closed after the response.
const maxDrain = 256 << 10

// finish discards what the handler left of the body; false if the
// connection cannot carry another request.
func (b *body) finish() bool {
	if b.c.req.Body == http.NoBody {
		return true
	}
	if b.expect {
		// The client still waits for 100 Continue before it sends the
		// body: the body never comes, and the connection is done.
		return false
	}
	if b.chunked != nil {
		if !b.eof {
			io.CopyN(io.Discard, b, maxDrain)
		}
		return b.eof
	}
	if b.n > maxDrain {
		return false
	}
	d, err := b.c.br.Discard(int(b.n))
	b.n -= int64(d)
	return err == nil
}
