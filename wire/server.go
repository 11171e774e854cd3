package wire

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/hashicorp/go-hclog"
)

// Backend serves the operations. cluster.Node, through an adapter in
// cmd/followd, is the real one. Implementations must be safe for concurrent
// use. Strings passed to List, Info and Check may share a frame buffer:
// they must not be kept after the call returns.
type Backend interface {
	Write(ctx context.Context, op Op, req WriteRequest) ([]Result, error)
	// List calls fn for each entry of the page, in order, and returns the
	// next cursor. id is only valid during fn.
	List(ctx context.Context, op Op, req ListRequest, fn func(id []byte, t int64)) (next string, err error)
	Info(ctx context.Context, req UsersRequest) ([]Info, error)
	Check(ctx context.Context, req CheckRequest) ([]Check, error)
	Status(ctx context.Context) (Status, error)
	ShardMap(ctx context.Context) (ShardMap, error)
	// Deliver applies relayed reverse edges (cluster-internal).
	Deliver(ctx context.Context, req DeliverRequest) (uint64, error)
	// Drain marks a node as draining (or active again).
	Drain(ctx context.Context, req DrainRequest) error
	// ScanUsers lists the users of a shard this node leads.
	ScanUsers(ctx context.Context, req ScanRequest) (UserPage, error)
}

type peerKey struct{}

// FromPeer reports whether a request came from another node (which
// identified itself with PeerName): such requests are not forwarded again.
func FromPeer(ctx context.Context) bool {
	v, _ := ctx.Value(peerKey{}).(bool)
	return v
}

// Observer receives the server's metrics. Methods are called concurrently.
type Observer interface {
	Request(op Op, code codes.Code, d time.Duration)
	ConnOpened()
	ConnClosed()
	ConnRejected()
}

// ServerConfig configures a Server. Start from DefaultServerConfig.
type ServerConfig struct {
	// Token, when set, must be presented in the handshake.
	Token string
	// MaxFrame bounds a frame (header and body) in either direction.
	MaxFrame int
	// MaxConns bounds open connections; more are refused with 40003.
	MaxConns int
	// MaxInflight bounds the requests one connection may have in flight;
	// beyond it the server stops reading from that connection until one
	// completes (TCP back-pressure).
	MaxInflight int
	// HandshakeTimeout bounds the time to receive the hello frame.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a connection that sends nothing for this long
	// while it has nothing in flight.
	IdleTimeout time.Duration
	// ReadTimeout bounds the time to receive the rest of a frame once its
	// length has arrived (a slow sender cannot hold a reader forever).
	ReadTimeout time.Duration
	// WriteTimeout bounds each write of responses to a connection.
	WriteTimeout time.Duration
	// RequestTimeout bounds each request's handling.
	RequestTimeout time.Duration
	// Welcome is sent to every client after a good handshake.
	Welcome Welcome
	// WelcomeFunc, if set, is called at each handshake instead, for what
	// changes while the server runs (a new cluster node learns its
	// cluster ID only at bootstrap). Version and MaxFrame are filled in.
	WelcomeFunc func() Welcome
	Logger      hclog.Logger
	Observer    Observer
	// Forwards says the backend may forward reads to other nodes (a
	// cluster): reads from clients then get a deadline too, and run beside
	// the connection's read loop instead of in it.
	Forwards bool
}

// DefaultServerConfig returns the defaults.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		MaxFrame:         DefaultMaxFrame,
		MaxConns:         10000,
		MaxInflight:      256,
		HandshakeTimeout: 5 * time.Second,
		IdleTimeout:      5 * time.Minute,
		ReadTimeout:      10 * time.Second,
		WriteTimeout:     10 * time.Second,
		RequestTimeout:   10 * time.Second,
	}
}

// Validate reports the first invalid field.
func (c *ServerConfig) Validate() error {
	switch {
	case c.MaxFrame < 1024 || c.MaxFrame > 1<<30:
		return fmt.Errorf("wire: MaxFrame (%d) must be between 1 KiB and 1 GiB", c.MaxFrame)
	case c.MaxConns < 1 || c.MaxInflight < 1:
		return fmt.Errorf("wire: MaxConns (%d) and MaxInflight (%d) must be positive", c.MaxConns, c.MaxInflight)
	case c.HandshakeTimeout <= 0 || c.IdleTimeout <= 0 || c.ReadTimeout <= 0 || c.WriteTimeout <= 0 || c.RequestTimeout <= 0:
		return errors.New("wire: timeouts must be positive")
	}
	return nil
}

// Server serves the protocol on a listener.
type Server struct {
	cfg     ServerConfig
	backend Backend
	log     hclog.Logger
	obs     Observer

	mu       sync.Mutex
	ln       net.Listener
	conns    map[*conn]struct{}
	closing  bool
	nconns   atomic.Int64
	wg       sync.WaitGroup // connection goroutines
	stopping chan struct{}
	bufs     sync.Pool
	forwards bool
}

// NewServer returns a server for backend.
func NewServer(cfg ServerConfig, backend Backend) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	cfg.Welcome.Version = ProtocolVersion
	cfg.Welcome.MaxFrame = cfg.MaxFrame
	return &Server{cfg: cfg, backend: backend, log: cfg.Logger, obs: cfg.Observer, conns: map[*conn]struct{}{}, stopping: make(chan struct{}), forwards: cfg.Forwards}, nil
}

type nopObserver struct{}

func (nopObserver) Request(Op, codes.Code, time.Duration) {}
func (nopObserver) ConnOpened()                           {}
func (nopObserver) ConnClosed()                           {}
func (nopObserver) ConnRejected()                         {}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("wire: server closed")

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.ln = ln
	s.mu.Unlock()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			select {
			case <-s.stopping:
				return ErrServerClosed
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of descriptors or a transient error: back off
				// rather than spin.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed, backing off", "error", err, "backoff", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		if s.nconns.Add(1) > int64(s.cfg.MaxConns) {
			s.nconns.Add(-1)
			s.obs.ConnRejected()
			go s.reject(c)
			continue
		}
		cn := &conn{s: s, c: c, out: make(chan []byte, s.cfg.MaxInflight+1), sem: make(chan struct{}, s.cfg.MaxInflight)}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			s.nconns.Add(-1)
			c.Close()
			continue
		}
		s.conns[cn] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.obs.ConnOpened()
		go cn.serve()
	}
}

// reject answers a connection over the limit with an error frame.
func (s *Server) reject(c net.Conn) {
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write(AppendError(nil, 0, codes.New(codes.Overloaded, "too many connections (%d)", s.cfg.MaxConns)))
	c.Close()
}

// Addr returns the listener's address, once serving.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Shutdown stops accepting, stops reading new requests, lets requests in
// flight finish and their responses go out, then closes the connections.
// When ctx ends first, remaining connections are closed at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		close(s.stopping)
		if s.ln != nil {
			s.ln.Close()
		}
		for c := range s.conns {
			c.stopReading()
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.c.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

func (s *Server) getBuf() []byte {
	if b, ok := s.bufs.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, 2048)
}

func (s *Server) putBuf(b []byte) {
	if cap(b) > 64<<10 {
		return // do not pin large buffers
	}
	s.bufs.Put(&b)
}

type conn struct {
	s    *Server
	c    net.Conn
	peer bool // the client is another node
	out  chan []byte
	sem  chan struct{}
	wg   sync.WaitGroup // handlers in flight

	stopped atomic.Bool
}

func (c *conn) stopReading() {
	c.stopped.Store(true)
	c.c.SetReadDeadline(time.Now())
}

func (c *conn) serve() {
	s := c.s
	defer func() {
		c.close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.nconns.Add(-1)
		s.obs.ConnClosed()
		s.wg.Done()
	}()
	br := bufio.NewReaderSize(c.c, 32<<10)
	if !c.handshake(br) {
		return
	}
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); c.writer() }()
	c.readLoop(br)
	c.wg.Wait()
	close(c.out)
	<-writerDone
}

// Lingering close: bounds on reading what the client still sends after a
// graceful stop.
const (
	lingerTime  = time.Second
	lingerBytes = 1 << 20
)

// close closes the connection. After a graceful stop it first sends FIN
// and reads (discarding) what the client still sends, until it closes
// too: closing a socket with unread requests in it sends a reset, and a
// reset makes the client's kernel drop the responses it has not read yet
// - answered writes would look lost (found by the graceful-shutdown test
// once lost connections stopped counting as refusals). Requests the
// server never read get no answer and were not applied.
func (c *conn) close() {
	if tc, ok := c.c.(interface{ CloseWrite() error }); ok && c.stopped.Load() && tc.CloseWrite() == nil {
		c.c.SetReadDeadline(time.Now().Add(lingerTime))
		io.Copy(io.Discard, io.LimitReader(c.c, lingerBytes))
	}
	c.c.Close()
}

// sendNow writes one frame synchronously (handshake and fatal errors).
func (c *conn) sendNow(frame []byte) {
	c.c.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
	c.c.Write(frame)
}

func (c *conn) handshake(br *bufio.Reader) bool {
	cfg := &c.s.cfg
	c.c.SetReadDeadline(time.Now().Add(cfg.HandshakeTimeout))
	payload, err := ReadFrame(br, nil, min(cfg.MaxFrame, 64<<10))
	switch {
	case errors.Is(err, ErrFrameTooLarge):
		c.sendNow(AppendError(nil, 0, codes.New(codes.FrameTooLarge, "expected a hello frame: %v", err)))
		return false
	case err != nil:
		if errors.Is(err, ErrFrameEmpty) {
			c.sendNow(AppendError(nil, 0, codes.New(codes.InvalidParam, "expected a hello frame: %v", err)))
		}
		return false
	}
	id, op, body, err := ParseRequestHeader(payload)
	if err != nil || op != OpHello {
		c.sendNow(AppendError(nil, id, codes.New(codes.InvalidParam, "the first frame must be a hello (op 0)")))
		return false
	}
	h, err := ParseHello(body)
	if err != nil {
		c.sendNow(AppendError(nil, id, err))
		return false
	}
	if h.Version != ProtocolVersion {
		c.sendNow(AppendError(nil, id, codes.New(codes.UnsupportedVersion, "protocol version %d is not supported; this server speaks %d", h.Version, ProtocolVersion)))
		return false
	}
	if cfg.Token != "" && !tokenEqual(h.Token, cfg.Token) {
		c.s.log.Warn("handshake: bad token", "remote", c.c.RemoteAddr())
		c.sendNow(AppendError(nil, id, codes.New(codes.AuthFailed, "bad or missing token")))
		return false
	}
	c.peer = h.Client == PeerName
	b, start := AppendResponseHeader(nil, id, codes.OK)
	w := cfg.Welcome
	if cfg.WelcomeFunc != nil {
		w = cfg.WelcomeFunc()
		w.Version, w.MaxFrame = ProtocolVersion, cfg.MaxFrame
	}
	c.sendNow(EndFrame(AppendWelcome(b, w), start))
	return true
}

// tokenEqual compares in constant time, also over the length: both sides
// are hashed first.
func tokenEqual(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// writer sends queued responses, flushing only when the queue is empty, so
// that many responses share one write under load.
func (c *conn) writer() {
	s := c.s
	bw := bufio.NewWriterSize(c.c, 32<<10)
	broken := false
	for frame := range c.out {
		if !broken {
			if bw.Buffered() == 0 {
				c.c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			}
			if _, err := bw.Write(frame); err != nil {
				broken = true
			} else if len(c.out) == 0 {
				// Let handlers about to respond queue first, so that
				// responses share a write under load.
				runtime.Gosched()
			}
			if !broken && len(c.out) == 0 {
				if err := bw.Flush(); err != nil {
					broken = true
				}
			}
			if broken {
				// The client is gone or too slow: stop reading too. The
				// loop keeps draining so handlers never block.
				c.c.Close()
			}
		}
		s.putBuf(frame)
	}
}

func (c *conn) readLoop(br *bufio.Reader) {
	s := c.s
	cfg := &s.cfg
	var buf []byte
	var hdr [4]byte
	for {
		// Deadlines are armed only when a read may block: pipelined
		// requests already buffered are parsed without touching timers.
		// Requests finish within RequestTimeout, far below IdleTimeout,
		// so the idle deadline can stay armed while some are in flight.
		if br.Buffered() < 4 {
			c.c.SetReadDeadline(time.Now().Add(cfg.IdleTimeout))
		}
		// stopReading may have set its deadline just before ours.
		if c.stopped.Load() {
			return
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			c.readError(err, "")
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n == 0 || uint64(n) > uint64(cfg.MaxFrame) {
			// The body is not read, so framing is lost: say why, close.
			c.queueError(0, codes.New(codes.FrameTooLarge, "frame of %d bytes; the limit is %d", n, cfg.MaxFrame))
			return
		}
		if br.Buffered() < int(n) {
			c.c.SetReadDeadline(time.Now().Add(cfg.ReadTimeout))
		}
		payload, err := readPayload(br, buf, int(n))
		if err != nil {
			c.readError(err, "frame body")
			return
		}
		buf = payload[:cap(payload)]
		id, op, body, err := ParseRequestHeader(payload)
		if err != nil {
			// The frame was read whole, so the connection stays usable.
			c.queueError(0, codes.New(codes.InvalidParam, "malformed request header"))
			continue
		}
		// Back-pressure: wait for a slot before taking more requests.
		select {
		case c.sem <- struct{}{}:
		case <-s.stopping:
			c.queueError(id, codes.New(codes.ShuttingDown, "server is shutting down"))
			return
		}
		c.wg.Add(1)
		switch op {
		case OpFollow, OpUnfollow:
			req, err := ParseWriteRequest(body)
			if err != nil {
				c.finish(id, op, time.Now(), nil, err)
				continue
			}
			go c.handleWrite(id, op, req)
		case OpDeliver:
			if !c.peer {
				// Deliveries write reverse edges with no check of their
				// forward side: only the relay of another node sends them.
				// The client name is not a credential (the token is); this
				// keeps ordinary clients from corrupting the graph by
				// mistake.
				c.finish(id, op, time.Now(), nil, codes.New(codes.InvalidParam, "deliver is only accepted from other nodes (hello client %q)", PeerName))
				continue
			}
			req, err := ParseDeliverRequest(body)
			if err != nil {
				c.finish(id, op, time.Now(), nil, err)
				continue
			}
			go c.handleDeliver(id, req)
		default:
			if c.s.forwards && !c.peer {
				// In a cluster a read may be forwarded to another node or
				// wait for a quorum (linearizable): serve it beside the
				// read loop, so that the connection's other requests do
				// not queue behind it. The frame buffer is reused for the
				// next frame, so the body is copied.
				go c.handleRead(id, op, append([]byte(nil), body...))
			} else {
				c.handleRead(id, op, body)
			}
		}
		if len(buf) > 1<<20 && cap(buf) > 4*int(n) {
			buf = nil // do not keep a huge buffer for small frames
		}
	}
}

func (c *conn) readError(err error, where string) {
	if c.stopped.Load() {
		return
	}
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF) && where == "":
		// The client closed the connection.
	case errors.As(err, &ne) && ne.Timeout():
		if where == "" {
			c.s.log.Debug("closing idle connection", "remote", c.c.RemoteAddr())
		} else {
			c.queueError(0, codes.New(codes.Timeout, "%s not received within %s", where, c.s.cfg.ReadTimeout))
		}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		c.s.log.Debug("connection closed mid-frame", "remote", c.c.RemoteAddr())
	case errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrDeadlineExceeded):
	default:
		c.s.log.Debug("read failed", "remote", c.c.RemoteAddr(), "error", err)
	}
}

// queueError sends an error response from the read loop.
func (c *conn) queueError(id uint32, err error) {
	c.wg.Add(1)
	c.sem <- struct{}{}
	c.finish(id, 0xff, time.Time{}, nil, err)
}

// finish queues a response (or an error) and frees the request's slot.
func (c *conn) finish(id uint32, op Op, start time.Time, frame []byte, err error) {
	if err != nil {
		frame = AppendError(c.s.getBuf(), id, err)
	}
	if !start.IsZero() {
		c.s.obs.Request(op, codes.Of(err), time.Since(start))
	}
	c.out <- frame
	<-c.sem
	c.wg.Done()
}

func (c *conn) base() context.Context {
	if c.peer {
		return context.WithValue(context.Background(), peerKey{}, true)
	}
	return context.Background()
}

func (c *conn) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.base(), c.s.cfg.RequestTimeout)
}

// safely runs f, one request's work, and turns a panic in it into an
// internal error for that request (logged with its stack): a bug reached
// by one request must not take down the connections and shards of
// everyone else.
func (c *conn) safely(op Op, f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			c.s.log.Error("panic while serving a request", "op", op.String(), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = codes.New(codes.Internal, "internal error")
		}
	}()
	return f()
}

func (c *conn) handleWrite(id uint32, op Op, req WriteRequest) {
	start := time.Now()
	ctx, cancel := c.ctx()
	defer cancel()
	var res []Result
	err := c.safely(op, func() (err error) {
		res, err = c.s.backend.Write(ctx, op, req)
		return err
	})
	if err != nil {
		c.finish(id, op, start, nil, err)
		return
	}
	b, st := AppendResponseHeader(c.s.getBuf(), id, codes.OK)
	c.finish(id, op, start, EndFrame(AppendResults(b, res), st), nil)
}

func (c *conn) handleDeliver(id uint32, req DeliverRequest) {
	start := time.Now()
	ctx, cancel := c.ctx()
	defer cancel()
	var applied uint64
	err := c.safely(OpDeliver, func() (err error) {
		applied, err = c.s.backend.Deliver(ctx, req)
		return err
	})
	if err != nil {
		c.finish(id, OpDeliver, start, nil, err)
		return
	}
	b, st := AppendResponseHeader(c.s.getBuf(), id, codes.OK)
	c.finish(id, OpDeliver, start, EndFrame(AppendUint64(b, applied), st), nil)
}

// handleRead serves a read. On a single node it runs inline in the read
// loop: reads take microseconds, and the frame buffer they may point into
// is only reused after they return. See readLoop for the cluster case.
func (c *conn) handleRead(id uint32, op Op, body []byte) {
	start := time.Now()
	// Reads never block, so they get no deadline timer (on this node; a
	// forwarded read gets one below).
	ctx := c.base()
	if !c.peer && c.s.forwards {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.s.cfg.RequestTimeout)
		defer cancel()
	}
	b, st := AppendResponseHeader(c.s.getBuf(), id, codes.OK)
	err := c.safely(op, func() (err error) {
		b, err = c.serveRead(ctx, op, body, b)
		return err
	})
	if err != nil {
		c.s.putBuf(b)
		c.finish(id, op, start, nil, err)
		return
	}
	if len(b)-st-4 > c.s.cfg.MaxFrame {
		c.s.putBuf(b)
		c.finish(id, op, start, nil, codes.New(codes.FrameTooLarge, "response of %d bytes exceeds the frame limit", len(b)-st-4))
		return
	}
	c.finish(id, op, start, EndFrame(b, st), nil)
}

// serveRead runs a read (or control) operation and appends its response
// body to b.
func (c *conn) serveRead(ctx context.Context, op Op, body, b []byte) (_ []byte, err error) {
	switch op {
	case OpFollowers, OpFollowing, OpMutual:
		var req ListRequest
		if req, err = ParseListRequest(body); err != nil {
			break
		}
		b = appendArray(b, 2)
		at := len(b)
		b = append(b, 0xdd, 0, 0, 0, 0) // item count, patched below
		n := 0
		var next string
		next, err = c.s.backend.List(ctx, op, req, func(id []byte, t int64) {
			b = AppendItem(b, id, t)
			n++
		})
		binary.BigEndian.PutUint32(b[at+1:], uint32(n))
		b = AppendPageEnd(b, next)
	case OpInfo:
		var req UsersRequest
		if req, err = ParseUsersRequest(body); err != nil {
			break
		}
		var is []Info
		if is, err = c.s.backend.Info(ctx, req); err == nil {
			b = AppendInfos(b, is)
		}
	case OpCheck:
		var req CheckRequest
		if req, err = ParseCheckRequest(body); err != nil {
			break
		}
		var cs []Check
		if cs, err = c.s.backend.Check(ctx, req); err == nil {
			b = AppendChecks(b, cs)
		}
	case OpStatus:
		if err = ParseEmpty(body); err != nil {
			break
		}
		var st Status
		if st, err = c.s.backend.Status(ctx); err == nil {
			b = AppendStatus(b, st)
		}
	case OpShardMap:
		if err = ParseEmpty(body); err != nil {
			break
		}
		var m ShardMap
		if m, err = c.s.backend.ShardMap(ctx); err == nil {
			b = AppendShardMap(b, m)
		}
	case OpPing:
		if err = ParseEmpty(body); err == nil {
			b = AppendEmpty(b)
		}
	case OpDrain:
		var req DrainRequest
		if req, err = ParseDrainRequest(body); err != nil {
			break
		}
		if err = c.s.backend.Drain(ctx, req); err == nil {
			b = AppendEmpty(b)
		}
	case OpScanUsers:
		var req ScanRequest
		if req, err = ParseScanRequest(body); err != nil {
			break
		}
		var p UserPage
		if p, err = c.s.backend.ScanUsers(ctx, req); err == nil {
			b = AppendUserPage(b, p)
		}
	case OpHello:
		err = codes.New(codes.InvalidParam, "hello is only valid as the first frame")
	default:
		err = codes.New(codes.UnknownOp, "unknown operation %d", op)
	}
	return b, err
}
