package h1

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"time"
)

// conn is one connection and everything its requests reuse.
type conn struct {
	s        *Server
	rwc      net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	idle     bool // waiting for a request; guarded by s.mu
	remote   string
	tlsState *tls.ConnectionState
	writeBy  time.Time // the write deadline set (extendWrite)

	blank  http.Request // a request with only the server's context
	req    http.Request
	url    url.URL
	header http.Header
	vals   []string // the header's value slices
	head   []byte   // the request head, without line ends
	lines  []int    // where each line of head ends
	body   body
	resp   response
}

func newConn(s *Server, rwc net.Conn) *conn {
	c := &conn{s: s, rwc: rwc, remote: rwc.RemoteAddr().String(), header: http.Header{}}
	c.blank = *(&http.Request{}).WithContext(s.ctx)
	c.resp = response{c: c, header: http.Header{}}
	return c
}

// serve reads and answers requests until the connection ends, fails, or
// must close.
func (c *conn) serve() {
	defer c.s.untrack(c)
	defer c.rwc.Close()
	if tc, ok := c.rwc.(*tls.Conn); ok && !c.handshake(tc) {
		return
	}
	c.br = bufio.NewReaderSize(connReader{c}, readBufSize)
	c.bw = bufio.NewWriterSize(c.rwc, 16<<10)
	cfg := &c.s.cfg
	wait := cfg.ReadHeaderTimeout // for the first request; then IdleTimeout
	for {
		if c.br.Buffered() == 0 {
			if c.flush() != nil || !c.s.setIdle(c, true) {
				return
			}
			c.rwc.SetReadDeadline(time.Now().Add(wait))
			_, err := c.br.Peek(1)
			if !c.s.setIdle(c, false) || err != nil {
				return
			}
		}
		wait = cfg.IdleTimeout
		start := time.Now()
		c.rwc.SetReadDeadline(start.Add(cfg.ReadHeaderTimeout))
		err := c.readHead()
		if err == nil {
			err = c.parseHead()
		}
		if err != nil {
			c.refuse(err)
			return
		}
		if c.req.Body != http.NoBody {
			c.rwc.SetReadDeadline(start.Add(cfg.ReadTimeout))
		}
		if !c.handle() {
			c.flush()
			return
		}
		done := !c.body.finish() || c.req.Close || c.s.closing.Load()
		if c.writeResponse(done) {
			c.flush()
			c.lingeringClose()
			return
		}
	}
}

// handshake runs the TLS handshake within ReadHeaderTimeout. A client
// that spoke plain HTTP is told so, as net/http does.
func (c *conn) handshake(tc *tls.Conn) bool {
	tc.SetDeadline(time.Now().Add(c.s.cfg.ReadHeaderTimeout))
	err := tc.HandshakeContext(c.s.ctx)
	if err != nil {
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader[:]) {
			io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		if c.s.cfg.TLSFailed != nil {
			c.s.cfg.TLSFailed(c.rwc.RemoteAddr(), err)
		}
		return false
	}
	tc.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	c.tlsState = &st
	return true
}

func looksLikeHTTP(hdr []byte) bool {
	switch string(hdr) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH":
		return true
	}
	return false
}

// handle runs the handler; false if it panicked (the connection is then
// closed without an answer to this request, as net/http does).
func (c *conn) handle() (ok bool) {
	c.resp.reset()
	defer func() {
		if p := recover(); p != nil {
			ok = false
			if p != http.ErrAbortHandler && c.s.cfg.OnPanic != nil {
				c.s.cfg.OnPanic(&c.req, p, debug.Stack())
			}
		}
	}()
	c.s.h.ServeHTTP(&c.resp, &c.req)
	return true
}

// refuse answers a request the server could not read, if it can say
// why, and closes the connection.
func (c *conn) refuse(err error) {
	var re *reqError
	if !errors.As(err, &re) {
		return // the connection ended or timed out: nobody to answer
	}
	c.resp.reset()
	w := &c.resp
	w.body = append(w.body, c.s.cfg.ErrorBody(w.header, re.status, re.msg)...)
	w.WriteHeader(re.status)
	c.req.Method = http.MethodGet
	c.writeResponse(true)
	c.flush()
	c.lingeringClose()
}

// connReader reads the connection for its bufio.Reader. Before it waits
// for input it sends the responses held for a batch: they are held only
// while the next request is already in the buffer, never while the
// server waits for the client.
type connReader struct{ c *conn }

func (r connReader) Read(p []byte) (int, error) {
	if err := r.c.flush(); err != nil {
		return 0, err
	}
	return r.c.rwc.Read(p)
}

// flush writes the held responses, within WriteTimeout.
func (c *conn) flush() error {
	if c.bw.Buffered() == 0 {
		return nil
	}
	c.extendWrite()
	return c.bw.Flush()
}

// extendWrite gives the connection's next writes at least half of
// WriteTimeout: the deadline moves only once half of it has passed,
// which spares a timer update per response. It is called before every
// response is buffered (the buffer may write itself out when full) and
// before every flush.
func (c *conn) extendWrite() {
	now := time.Now()
	if c.writeBy.Sub(now) < c.s.cfg.WriteTimeout/2 {
		c.writeBy = now.Add(c.s.cfg.WriteTimeout)
		c.rwc.SetWriteDeadline(c.writeBy)
	}
}

// lingeringClose half-closes the connection and reads what the client
// still sends, for up to half a second, before the deferred close: a
// close with unread input would reset the connection, and the client
// could lose the response.
func (c *conn) lingeringClose() {
	cw, ok := c.rwc.(interface{ CloseWrite() error })
	if !ok {
		return
	}
	cw.CloseWrite()
	c.rwc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.CopyN(io.Discard, c.rwc, 1<<20)
}
