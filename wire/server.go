package wire

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/internal/tokens"
	"github.com/hashicorp/go-hclog"
)

// Observer receives the server's metrics. Methods are called concurrently.
type Observer interface {
	Request(op Op, code codes.Code, d time.Duration)
	ConnOpened()
	ConnClosed()
	ConnRejected()
	// TokenRequest reports a client request checked against its token
	// (only when the server has tokens; never for other nodes): OK when
	// admitted, NotAllowed or RateLimited when refused. The names come
	// from the operator's token file, so they are few.
	TokenRequest(token string, op Op, code codes.Code)
}

// ServerConfig configures a Server. Start from DefaultServerConfig.
type ServerConfig struct {
	// Token, when set, must be presented in the handshake: it is a
	// shorthand for Tokens holding one admin token named "default".
	Token string
	// Tokens, when set, are the named tokens a client may present (see
	// package tokens); each request is checked against its token's role
	// and rate limit. The store may be replaced while the server runs
	// (Store.Replace). With neither Token nor Tokens every client is
	// admin and unlimited.
	Tokens *tokens.Store
	// MaxFrame bounds a frame (header and body) in either direction.
	MaxFrame int
	// MaxConns bounds open connections; more are refused with 40003.
	MaxConns int
	// MaxInflight bounds the requests one connection may have in flight;
	// beyond it the server stops reading from that connection until one
	// completes (TCP back-pressure).
	MaxInflight int
	// HandshakeTimeout bounds the time from accepting a connection to
	// receiving its hello frame, the TLS handshake included.
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
	// Forwards says the handler may forward reads to other nodes (a
	// cluster): reads from clients then get a deadline too, and run beside
	// the connection's read loop instead of in it.
	Forwards bool
	// TLS, when set, makes every connection TLS (nil: plaintext). The TLS
	// handshake counts against HandshakeTimeout, with the hello frame; a
	// client whose first bytes are not TLS is refused with a plaintext
	// 40004 (see tls.go).
	TLS *tls.Config
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
	case c.Token != "" && c.Tokens != nil:
		return errors.New("wire: set Token or Tokens, not both (add the token to the store)")
	case c.HandshakeTimeout <= 0 || c.IdleTimeout <= 0 || c.ReadTimeout <= 0 || c.WriteTimeout <= 0 || c.RequestTimeout <= 0:
		return errors.New("wire: timeouts must be positive")
	}
	return nil
}

// Server serves the protocol on a listener.
type Server struct {
	cfg     ServerConfig
	handler Handler
	cluster ClusterHandler // nil: cluster operations are unknown here
	log     hclog.Logger
	obs     Observer

	mu       sync.Mutex
	ln       net.Listener
	peerLns  []net.Listener
	conns    map[*conn]struct{}
	closing  bool
	nconns   atomic.Int64
	wg       sync.WaitGroup // connection goroutines
	stopping chan struct{}
	stopCtx  context.Context // done once Shutdown begins
	stopNow  context.CancelFunc
	bufs     sync.Pool
	forwards bool

	tlsFailures tlsFailureLog
}

// NewServer returns a server of h's operations and, if ch is not nil, of
// ch's cluster operations.
func NewServer(cfg ServerConfig, h Handler, ch ClusterHandler) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.Token != "" {
		st, err := tokens.NewStore([]tokens.Token{tokens.New(tokens.DefaultName, tokens.RoleAdmin, cfg.Token)})
		if err != nil {
			return nil, err
		}
		cfg.Tokens, cfg.Token = st, ""
	}
	cfg.Welcome.Version = ProtocolVersion
	cfg.Welcome.MaxFrame = cfg.MaxFrame
	s := &Server{cfg: cfg, handler: h, cluster: ch, log: cfg.Logger, obs: cfg.Observer, conns: map[*conn]struct{}{}, stopping: make(chan struct{}), forwards: cfg.Forwards}
	s.stopCtx, s.stopNow = context.WithCancel(context.Background())
	return s, nil
}

type nopObserver struct{}

func (nopObserver) Request(Op, codes.Code, time.Duration) {}
func (nopObserver) ConnOpened()                           {}
func (nopObserver) ConnClosed()                           {}
func (nopObserver) ConnRejected()                         {}
func (nopObserver) TokenRequest(string, Op, codes.Code)   {}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("wire: server closed")

// Serve accepts client connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.serve(ln, false) }

// ServePeers accepts other nodes' connections on ln until Shutdown: ln
// must yield only authenticated peers (cluster.Node.PeerListener). Their
// requests need no token, skip the role and rate checks, may use the
// peer-only operations, and are served here, never forwarded again. The
// server's TLS is not applied: the raft port has its own.
func (s *Server) ServePeers(ln net.Listener) error { return s.serve(ln, true) }

func (s *Server) serve(ln net.Listener, peer bool) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	if peer {
		s.peerLns = append(s.peerLns, ln)
	} else {
		s.ln = ln
	}
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
		if s.cfg.TLS != nil && !peer {
			c = tls.Server(c, s.cfg.TLS)
		}
		if s.nconns.Add(1) > int64(s.cfg.MaxConns) {
			s.nconns.Add(-1)
			s.obs.ConnRejected()
			go s.reject(c)
			continue
		}
		cn := &conn{s: s, c: c, peer: peer, out: make(chan []byte, s.cfg.MaxInflight+1), sem: make(chan struct{}, s.cfg.MaxInflight)}
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
	frame := AppendError(nil, 0, codes.New(codes.Overloaded, "too many connections (%d)", s.cfg.MaxConns))
	if tc, ok := c.(*tls.Conn); ok {
		s.rejectTLS(tc, frame)
		return
	}
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write(frame)
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
		s.stopNow()
		if s.ln != nil {
			s.ln.Close()
		}
		for _, ln := range s.peerLns {
			ln.Close()
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

// stoppingCtx is done once Shutdown begins.
func (s *Server) stoppingCtx() context.Context { return s.stopCtx }

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
