// Package h1 is followd's HTTP/1.1 server: keep-alive and pipelined
// requests served in order on each connection, with a fraction of
// net/http's cost per request.
//
// net/http's server pays, on every request, a fresh request, response
// and context, and a background read of the connection (a goroutine
// wake-up and two extra system calls) so that it can cancel a handler
// whose client went away. For the JSON API (small requests answered in
// microseconds) that cost is most of the work. This server reuses one
// request, header map and response buffer per connection, parses the
// request head itself into a single string, and writes the responses of
// pipelined requests together: when a response is done and the next
// request is already buffered, the response waits for it.
//
// What it does not do, on purpose: HTTP/2 (over TLS it offers only
// http/1.1), streaming responses (a response is buffered whole and sent
// with its Content-Length; no handler on followd's port streams),
// Hijack, 1xx responses from handlers, and cancelling a request's
// context when its client goes away (handlers bound their own work with
// timeouts). A request's context is the server's: cancelled by Close.
//
// Handlers must not keep the request, its header or the response writer
// after they return: all three are reused for the connection's next
// request.
package h1

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("h1: server closed")

// Config configures a Server. Start from DefaultConfig.
type Config struct {
	// ReadHeaderTimeout bounds the reading of a request's head (and a
	// TLS handshake), from its first byte.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds the reading of a whole request, body included,
	// from its first byte.
	ReadTimeout time.Duration
	// WriteTimeout bounds the writing of responses: each write to the
	// connection has at least half of it, at most all of it.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's head: the request line and the
	// header fields (431 beyond it). No line may pass the read buffer
	// (8 KiB).
	MaxHeaderBytes int
	// TLS, if set, serves HTTPS (HTTP/1.1 only) with this configuration.
	TLS *tls.Config
	// TLSFailed, if set, is called with each failed TLS handshake.
	TLSFailed func(remote net.Addr, err error)
	// ErrorBody, if set, writes the body (and sets the content type) of
	// the server's own error responses: malformed requests and the like.
	// The default is one line of plain text.
	ErrorBody func(h http.Header, status int, msg string) []byte
	// OnPanic, if set, is told of a handler's panic (the value and the
	// stack); the connection is closed without a response.
	OnPanic func(r *http.Request, p any, stack []byte)
}

// DefaultConfig returns followd's HTTP port settings.
func DefaultConfig() Config {
	return Config{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      75 * time.Second,
		IdleTimeout:       5 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case c.ReadHeaderTimeout <= 0 || c.ReadTimeout <= 0 || c.WriteTimeout <= 0 || c.IdleTimeout <= 0:
		return errors.New("h1: every timeout must be positive")
	case c.ReadTimeout < c.ReadHeaderTimeout:
		return fmt.Errorf("h1: ReadTimeout (%s) is shorter than ReadHeaderTimeout (%s)", c.ReadTimeout, c.ReadHeaderTimeout)
	case c.MaxHeaderBytes < 1024:
		return fmt.Errorf("h1: MaxHeaderBytes (%d) must be at least 1 KiB", c.MaxHeaderBytes)
	}
	return nil
}

// Server serves HTTP/1.1 with one handler. Serve may be called on
// several listeners; Shutdown or Close stops them all.
type Server struct {
	cfg     Config
	h       http.Handler
	ctx     context.Context // every request's; cancelled by Close
	cancel  context.CancelFunc
	closing atomic.Bool

	mu    sync.Mutex
	lns   map[net.Listener]struct{}
	conns map[*conn]struct{}
	wg    sync.WaitGroup // connection goroutines
}

// NewServer returns a server of h.
func NewServer(cfg Config, h http.Handler) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("h1: nil handler")
	}
	if cfg.TLS != nil {
		cfg.TLS = cfg.TLS.Clone()
		cfg.TLS.NextProtos = []string{"http/1.1"}
	}
	if cfg.ErrorBody == nil {
		cfg.ErrorBody = textError
	}
	s := &Server{cfg: cfg, h: h, lns: map[net.Listener]struct{}{}, conns: map[*conn]struct{}{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Serve accepts connections on ln until Shutdown or Close, which make
// it return ErrServerClosed; any other accept error is returned as is
// (a temporary one is retried with backoff). ln is closed on return.
func (s *Server) Serve(ln net.Listener) error {
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	var backoff time.Duration
	for {
		rwc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := newConn(s, rwc)
		if !s.track(c) {
			rwc.Close()
			return ErrServerClosed
		}
		go c.serve()
	}
}

// isTemporary says whether an accept error says it is temporary (EMFILE
// and the like): the listener is still good.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// track registers a new connection; false once the server is closing.
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// setIdle marks c as waiting for a request (closed by Shutdown) or as
// serving one; false if the server is closing, when c must stop.
func (s *Server) setIdle(c *conn, idle bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.idle = idle
	return !s.closing.Load()
}

// Shutdown stops accepting, closes idle connections, and waits for
// those serving a request to answer it and close, or for ctx to end
// (then it closes them and returns ctx's error).
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeListeners()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.closeIdle() == 0 {
			s.wg.Wait()
			return nil
		}
		select {
		case <-ctx.Done():
			s.Close()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close closes the listeners and every connection at once, and waits
// for their goroutines.
func (s *Server) Close() error {
	s.closeListeners()
	s.cancel()
	s.mu.Lock()
	for c := range s.conns {
		c.rwc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing.Store(true)
	for ln := range s.lns {
		ln.Close()
	}
}

// closeIdle closes the idle connections and returns how many remain.
func (s *Server) closeIdle() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.idle {
			c.rwc.Close()
		}
	}
	return len(s.conns)
}
