package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The http:// target's client: HTTP/1.1 over raw TCP (or TLS) connections,
// written for the load generator to cost about what the binary protocol's
// client costs per request. Requests are built by appending bytes to a
// pooled buffer; of a response only the status line, Content-Length
// (or a chunked body), Connection: close and the body are read. Two
// modes:
//
//   - one request at a time per connection (pipeline 0): each concurrent
//     request takes an idle keep-alive connection or dials one, as Go's
//     net/http client does;
//   - pipelining (pipeline N > 0): a fixed set of connections shared by
//     all callers, each with up to N requests written before their
//     responses are read (HTTP/1.1 answers them in order). A writer
//     goroutine per connection writes every request queued so far and
//     flushes once, as the binary protocol's client batches its frames.

// errConnBroken is returned for requests caught on a connection that failed.
var errConnBroken = errors.New("HTTP connection broken")

// httpConn is one keep-alive connection.
type httpConn struct {
	nc       net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	deadline time.Time // the last deadline set on nc
	close    bool      // the server asked to close after the last response
}

func dialHTTP(addr string, tc *tls.Config) (*httpConn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	var nc net.Conn
	var err error
	if tc != nil {
		tc = tc.Clone()
		tc.NextProtos = []string{"http/1.1"}
		nc, err = tls.DialWithDialer(&d, "tcp", addr, tc)
	} else {
		nc, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	return &httpConn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10), bw: bufio.NewWriterSize(nc, 64<<10)}, nil
}

// setDeadline bounds the connection's I/O by ctx's deadline, if it has one
// (setting it only when it changes: the load's workers keep one per run).
func (c *httpConn) setDeadline(ctx context.Context) {
	d, _ := ctx.Deadline()
	if !d.Equal(c.deadline) {
		c.deadline = d
		c.nc.SetDeadline(d)
	}
}

// maxResponse bounds a response body the client accepts.
const maxResponse = 64 << 20

// readResponse reads one response, appending its body to body.
func (c *httpConn) readResponse(body []byte) (status int, _ []byte, err error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, body, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, body, fmt.Errorf("bad HTTP status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, body, fmt.Errorf("bad HTTP status line %q", line)
	}
	length, chunked := -1, false
	for {
		h, err := c.br.ReadSlice('\n')
		if err != nil {
			return 0, body, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, body, fmt.Errorf("bad HTTP header %q", h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 || length > maxResponse {
				return 0, body, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			c.close = bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case chunked:
		body, err = c.readChunked(body)
	case length >= 0:
		body, err = c.readN(body, length)
	default:
		return 0, body, errors.New("HTTP response without a length")
	}
	return status, body, err
}

func (c *httpConn) readN(body []byte, n int) ([]byte, error) {
	start := len(body)
	body = append(body, make([]byte, n)...)
	_, err := ioReadFull(c.br, body[start:])
	return body, err
}

func (c *httpConn) readChunked(body []byte) ([]byte, error) {
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return body, err
		}
		size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseUint(string(size), 16, 32)
		if err != nil || len(body)+int(n) > maxResponse {
			return body, fmt.Errorf("bad chunk size %q", line)
		}
		if n > 0 {
			if body, err = c.readN(body, int(n)); err != nil {
				return body, err
			}
		}
		if _, err := c.br.Discard(2); err != nil { // CRLF after the chunk
			return body, err
		}
		if n == 0 {
			return body, nil
		}
	}
}

func ioReadFull(br *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := br.Read(b[n:])
		n += m
		if err != nil && n < len(b) {
			return n, err
		}
	}
	return n, nil
}

// httpCall is one request and, once done, its response.
type httpCall struct {
	req    []byte
	status int
	body   []byte
	err    error
	done   chan struct{}
}

var httpCalls = sync.Pool{New: func() any { return &httpCall{done: make(chan struct{}, 1)} }}

func getCall() *httpCall { return httpCalls.Get().(*httpCall) }

// putCall returns c to the pool unless its buffers grew huge.
func putCall(c *httpCall) {
	if cap(c.req) > 1<<20 || cap(c.body) > 1<<20 {
		return
	}
	c.req, c.body, c.err, c.status = c.req[:0], c.body[:0], nil, 0
	httpCalls.Put(c)
}

// serialPool is the one-request-per-connection mode: idle keep-alive
// connections, a new one dialled when none is idle.
type serialPool struct {
	addr   string
	tls    *tls.Config
	mu     sync.Mutex
	idle   []*httpConn
	closed bool
}

func (p *serialPool) do(ctx context.Context, c *httpCall) error {
	p.serve(ctx, c)
	return nil
}

func (p *serialPool) serve(ctx context.Context, c *httpCall) {
	p.mu.Lock()
	var hc *httpConn
	if n := len(p.idle); n > 0 {
		hc, p.idle = p.idle[n-1], p.idle[:n-1]
	}
	p.mu.Unlock()
	if hc == nil {
		if hc, c.err = dialHTTP(p.addr, p.tls); c.err != nil {
			return
		}
	}
	hc.setDeadline(ctx)
	if _, c.err = hc.bw.Write(c.req); c.err == nil {
		c.err = hc.bw.Flush()
	}
	if c.err == nil {
		c.status, c.body, c.err = hc.readResponse(c.body[:0])
	}
	if c.err != nil || hc.close {
		hc.nc.Close()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		hc.nc.Close()
		return
	}
	p.idle = append(p.idle, hc)
}

func (p *serialPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, hc := range p.idle {
		hc.nc.Close()
	}
	p.idle, p.closed = nil, true
}

// pipeConn is one pipelined connection: callers queue requests on reqs;
// the writer writes them in order and hands them to the reader through
// inflight, whose capacity is the pipeline's depth.
type pipeConn struct {
	*httpConn
	reqs     chan *httpCall
	inflight chan *httpCall
	broken   atomic.Bool
	done     sync.WaitGroup
}

func newPipeConn(hc *httpConn, depth int) *pipeConn {
	p := &pipeConn{httpConn: hc, reqs: make(chan *httpCall, depth), inflight: make(chan *httpCall, depth)}
	p.done.Go(p.write)
	p.done.Go(p.read)
	return p
}

// write writes every queued request, then flushes once; it ends when
// reqs is closed, closing inflight.
func (p *pipeConn) write() {
	defer close(p.inflight)
	for c := range p.reqs {
		for {
			select {
			case p.inflight <- c:
			default: // the pipeline is full: send what is written first
				if err := p.bw.Flush(); err != nil {
					p.fail()
				}
				p.inflight <- c
			}
			if _, err := p.bw.Write(c.req); err != nil {
				p.fail()
			}
			select {
			case next, ok := <-p.reqs:
				if ok {
					c = next
					continue
				}
			default:
			}
			break
		}
		if err := p.bw.Flush(); err != nil {
			p.fail()
		}
	}
}

// read reads the responses in the order the requests were written.
func (p *pipeConn) read() {
	for c := range p.inflight {
		if p.broken.Load() {
			c.err = errConnBroken
		} else {
			c.status, c.body, c.err = p.readResponse(c.body[:0])
			if c.err != nil || p.close {
				p.fail()
			}
		}
		c.done <- struct{}{}
	}
}

// fail marks the connection broken and closes it: what is in flight fails
// and the target dials a new one.
func (p *pipeConn) fail() {
	p.broken.Store(true)
	p.nc.Close()
}

func (p *pipeConn) stop() {
	close(p.reqs)
	p.nc.Close()
	p.done.Wait()
}

// pipePool is the pipelining mode: a fixed set of connections, chosen in
// turn, redialled when broken.
type pipePool struct {
	addr  string
	tls   *tls.Config
	depth int
	next  atomic.Uint32
	mu    sync.RWMutex // held for reading while queueing on a connection
	conns []*pipeConn
}

func newPipePool(addr string, tc *tls.Config, conns, depth int) (*pipePool, error) {
	p := &pipePool{addr: addr, tls: tc, depth: depth, conns: make([]*pipeConn, conns)}
	for i := range p.conns {
		hc, err := dialHTTP(addr, tc)
		if err != nil {
			p.close()
			return nil, err
		}
		p.conns[i] = newPipeConn(hc, depth)
	}
	return p, nil
}

// do queues c on the next connection and waits for its response. An
// error of ctx is returned while the connection still owns c: the caller
// must then leave c alone.
func (p *pipePool) do(ctx context.Context, c *httpCall) error {
	p.mu.RLock()
	if p.conns == nil {
		p.mu.RUnlock()
		c.err = errConnBroken
		return nil
	}
	i := int(p.next.Add(1)) % len(p.conns)
	pc := p.conns[i]
	p.mu.RUnlock()
	if pc == nil || pc.broken.Load() {
		if pc, c.err = p.redial(i, pc); c.err != nil {
			return nil
		}
	}
	p.mu.RLock()
	if p.conns == nil || p.conns[i] != pc { // replaced or closed meanwhile
		p.mu.RUnlock()
		c.err = errConnBroken
		return nil
	}
	pc.reqs <- c
	p.mu.RUnlock()
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// redial replaces the broken connection i (still old, unless another
// caller replaced it first).
func (p *pipePool) redial(i int, old *pipeConn) (*pipeConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return nil, errConnBroken
	}
	if cur := p.conns[i]; cur != old {
		return cur, nil
	}
	if old != nil {
		old.stop()
		p.conns[i] = nil
	}
	hc, err := dialHTTP(p.addr, p.tls)
	if err != nil {
		return nil, err
	}
	p.conns[i] = newPipeConn(hc, p.depth)
	return p.conns[i], nil
}

func (p *pipePool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.conns {
		if pc != nil {
			pc.stop()
		}
	}
	p.conns = nil
}
