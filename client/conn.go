package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/wire"
)

// pool keeps ConnsPerNode connections to one node and hands them out round
// robin, replacing broken ones.
type pool struct {
	c    *Client
	addr string

	mu    sync.Mutex
	conns []*conn
	next  int
	dial  sync.Mutex // one dial at a time per node
}

func (p *pool) get(ctx context.Context) (*conn, error) {
	p.mu.Lock()
	i := p.next % len(p.conns)
	p.next++
	cn := p.conns[i]
	p.mu.Unlock()
	if cn != nil && !cn.broken.Load() {
		return cn, nil
	}
	p.dial.Lock()
	defer p.dial.Unlock()
	p.mu.Lock()
	cn = p.conns[i]
	p.mu.Unlock()
	if cn != nil && !cn.broken.Load() {
		return cn, nil
	}
	cn, err := dial(ctx, p.addr, &p.c.cfg)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.conns[i] = cn
	p.mu.Unlock()
	return cn, nil
}

func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, cn := range p.conns {
		if cn != nil {
			cn.close(ErrClosed)
		}
	}
}

// conn is one pipelined connection: callers queue framed requests, one
// writer goroutine sends them (many per write when they queue up), one
// reader goroutine matches responses to callers by request id.
type conn struct {
	nc       net.Conn
	welcome  wire.Welcome
	maxFrame int

	queue  chan *call
	sem    chan struct{}
	nextID atomic.Uint32

	mu      sync.Mutex
	pending map[uint32]*call
	err     error // set once the connection is broken
	broken  atomic.Bool
	done    chan struct{}
	// draining is set (under mu) when the server said it is going away:
	// no request is sent on the connection any more (see goAway).
	draining bool
	drain    chan struct{} // closed with draining set
}

type call struct {
	frame []byte
	id    uint32
	resp  []byte
	err   error
	done  chan struct{}
}

var (
	callPool  = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}
	frameBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}
)

func dial(ctx context.Context, addr string, cfg *Config) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	var nc net.Conn
	var err error
	if cfg.Dial != nil {
		nc, err = cfg.Dial(ctx, addr)
	} else {
		var d net.Dialer
		nc, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, codes.New(codes.ShardUnavailable, "connect to %s: %v", addr, err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	// Handshake, synchronously.
	dl, _ := ctx.Deadline()
	nc.SetDeadline(dl)
	if nc, err = startTLS(ctx, nc, addr, cfg); err != nil {
		return nil, err
	}
	b, start := wire.AppendRequestHeader(nil, 0, wire.OpHello)
	b = wire.EndFrame(wire.AppendHello(b, wire.Hello{Version: wire.ProtocolVersion, Token: cfg.Token, Client: cfg.Name, Name: cfg.TokenName}), start)
	if _, err := nc.Write(b); err != nil {
		nc.Close()
		return nil, helloError(addr, cfg, err)
	}
	br := bufio.NewReaderSize(nc, 32<<10)
	payload, err := wire.ReadFrame(br, nil, cfg.MaxFrame)
	if err != nil {
		nc.Close()
		return nil, helloError(addr, cfg, err)
	}
	_, body, err := wire.ParseResponseHeader(payload)
	if err != nil {
		nc.Close()
		return nil, err // the server's reason: auth, version, ...
	}
	w, err := wire.ParseWelcome(body)
	if err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	cn := &conn{
		nc: nc, welcome: w, maxFrame: min(cfg.MaxFrame, w.MaxFrame),
		queue:   make(chan *call, cfg.MaxInflight),
		sem:     make(chan struct{}, cfg.MaxInflight),
		pending: map[uint32]*call{},
		done:    make(chan struct{}),
		drain:   make(chan struct{}),
	}
	go cn.writer()
	go cn.reader(br, cfg.MaxFrame)
	return cn, nil
}

// call sends one request and waits for its response body.
func (cn *conn) call(ctx context.Context, op wire.Op, body func([]byte) []byte) ([]byte, error) {
	select {
	case cn.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, codes.New(codes.Timeout, "waiting for a connection slot: %v", ctx.Err())
	case <-cn.done:
		return nil, cn.failure()
	}
	defer func() { <-cn.sem }()
	cl := callPool.Get().(*call)
	cl.id = cn.nextID.Add(1)
	if cl.id == 0 {
		// Id 0 is what the server uses for connection-level errors.
		cl.id = cn.nextID.Add(1)
	}
	bp := frameBufs.Get().(*[]byte)
	b, start := wire.AppendRequestHeader((*bp)[:0], cl.id, op)
	b = wire.EndFrame(body(b), start)
	if len(b)-4 > cn.maxFrame {
		*bp = b
		frameBufs.Put(bp)
		callPool.Put(cl)
		return nil, codes.New(codes.FrameTooLarge, "request of %d bytes exceeds the frame limit %d", len(b)-4, cn.maxFrame)
	}
	cl.frame = b
	cn.mu.Lock()
	if cn.err != nil {
		cn.mu.Unlock()
		return nil, cn.failure()
	}
	if cn.draining {
		cn.mu.Unlock()
		return nil, cn.goneAway()
	}
	cn.pending[cl.id] = cl
	cn.mu.Unlock()
	select {
	case cn.queue <- cl:
	case <-cn.done:
		return nil, cn.failure()
	case <-ctx.Done():
		cn.mu.Lock()
		delete(cn.pending, cl.id)
		cn.mu.Unlock()
		return nil, codes.New(codes.Timeout, "%v before the request was sent", ctx.Err())
	}
	select {
	case <-cl.done:
		resp, err := cl.resp, cl.err
		*bp = cl.frame[:0]
		frameBufs.Put(bp)
		cl.resp, cl.err, cl.frame = nil, nil, nil
		callPool.Put(cl)
		return resp, err
	case <-ctx.Done():
		// Abandon the call: the reader drops its response when it comes.
		cn.mu.Lock()
		delete(cn.pending, cl.id)
		cn.mu.Unlock()
		return nil, codes.New(codes.Timeout, "%v (the request may still be applied; retrying is safe)", ctx.Err())
	case <-cn.done:
		return nil, cn.lostInFlight()
	}
}

// errConnLost marks errors of broken connections (the node may be down).
var errConnLost = errors.New("connection lost")

// lostInFlight is the error of a request that was (or may have been) sent
// on a connection that then broke: the server may have applied it, so it
// is a timeout (outcome unknown), never a code that promises nothing was
// done.
func (cn *conn) lostInFlight() error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if errors.Is(cn.err, ErrClosed) {
		return cn.err
	}
	return fmt.Errorf("%w: %w", codes.New(codes.Timeout, "connection to %s lost with the request in flight (it may have been applied): %v", cn.nc.RemoteAddr(), cn.err), errConnLost)
}

// failure is the error of a request that was not sent because the
// connection is broken.
func (cn *conn) failure() error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	var ce *codes.Error
	if errors.As(cn.err, &ce) || errors.Is(cn.err, ErrClosed) {
		return cn.err
	}
	return fmt.Errorf("%w: %w", codes.New(codes.ShardUnavailable, "connection to %s lost: %v", cn.nc.RemoteAddr(), cn.err), errConnLost)
}

func (cn *conn) writer() {
	bw := bufio.NewWriterSize(cn.nc, 32<<10)
	for {
		var cl *call
		select {
		case cl = <-cn.queue:
		case <-cn.drain:
			cn.drainWrites(bw)
			return
		case <-cn.done:
			return
		}
		if _, err := bw.Write(cl.frame); err != nil {
			cn.close(err)
			return
		}
		if len(cn.queue) == 0 {
			// Give goroutines about to send a chance to queue, so that
			// under load many requests share one write; idle, this costs
			// a scheduler round trip (well under a microsecond).
			runtime.Gosched()
		}
		if len(cn.queue) == 0 {
			if err := bw.Flush(); err != nil {
				cn.close(err)
				return
			}
		}
	}
}

// drainWrites, after the server's go-away, sends the requests already
// queued (their callers saw no notice), half-closes the connection, and
// refuses what callers still queue until it closes (they checked before
// the notice came).
func (cn *conn) drainWrites(bw *bufio.Writer) {
	for more := true; more; {
		select {
		case cl := <-cn.queue:
			bw.Write(cl.frame)
		default:
			more = false
		}
	}
	bw.Flush()
	if tc, ok := cn.nc.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
	for {
		select {
		case cl := <-cn.queue:
			cn.mu.Lock()
			_, mine := cn.pending[cl.id]
			delete(cn.pending, cl.id)
			cn.mu.Unlock()
			if mine {
				cl.err = cn.goneAway()
				cl.done <- struct{}{}
			}
			cn.closeIfDrained()
		case <-cn.done:
			return
		}
	}
}

func (cn *conn) reader(br *bufio.Reader, max int) {
	for {
		payload, err := wire.ReadFrame(br, nil, max)
		if err != nil {
			cn.close(err)
			return
		}
		id, body, err := wire.ParseResponseHeader(payload)
		var ce *codes.Error
		if err != nil && !errors.As(err, &ce) {
			cn.close(fmt.Errorf("malformed response: %w", err))
			return
		}
		if id == 0 && err != nil && isGoAway(err) {
			cn.goAway()
			continue
		}
		if id == 0 && err != nil {
			// A connection-level error from the server (for example
			// overloaded); it closes the connection.
			cn.close(err)
			return
		}
		cn.mu.Lock()
		cl := cn.pending[id]
		delete(cn.pending, id)
		cn.mu.Unlock()
		if cl == nil {
			continue // abandoned by its caller
		}
		cl.resp, cl.err = body, err
		cl.done <- struct{}{}
		cn.closeIfDrained()
	}
}

// isGoAway reports whether a connection-level error is the server's
// go-away notice (it is stopping).
func isGoAway(err error) bool {
	var ce *codes.Error
	return errors.As(err, &ce) && ce.Code == codes.ShuttingDown && strings.HasPrefix(ce.Msg, wire.GoAwayMessage)
}

// goAway handles the server's go-away notice: the server answers every
// request it read before the notice and refuses (40008) the rest, so the
// connection takes no new requests (the pool replaces it), the writer
// sends what is already queued and half-closes, and the connection closes
// once every request sent is answered. Callers whose requests were not
// sent get a 40008 that promises nothing was applied, and retry elsewhere.
func (cn *conn) goAway() {
	cn.mu.Lock()
	if !cn.draining {
		cn.draining = true
		cn.broken.Store(true)
		close(cn.drain)
	}
	cn.mu.Unlock()
	cn.closeIfDrained()
}

// closeIfDrained closes a draining connection once no request is pending.
func (cn *conn) closeIfDrained() {
	cn.mu.Lock()
	done := cn.draining && len(cn.pending) == 0
	cn.mu.Unlock()
	if done {
		cn.close(cn.goneAway())
	}
}

// goneAway is the error of a request not sent because the server is going
// away: certainly not applied.
func (cn *conn) goneAway() error {
	return codes.New(codes.ShuttingDown, "%s is shutting down; the request was not sent", cn.nc.RemoteAddr())
}

// close breaks the connection and fails its pending calls.
func (cn *conn) close(err error) {
	cn.mu.Lock()
	if cn.err != nil {
		cn.mu.Unlock()
		return
	}
	cn.err = err
	cn.broken.Store(true)
	pending := cn.pending
	cn.pending = map[uint32]*call{}
	close(cn.done)
	cn.mu.Unlock()
	cn.nc.Close()
	for _, cl := range pending {
		cl.err = cn.lostInFlight()
		cl.done <- struct{}{}
	}
}
