package httpapi

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
)

// Response batching for pipelining clients. net/http writes each response
// to the connection as soon as its handler returns: a client with many
// requests in flight on one connection costs a write(2) per response. A
// BatchListener's connections hold back the responses of handlers marked
// by Batch and write them all when the server next waits for input, so a
// batch of pipelined requests is answered with one write, as the binary
// protocol does. A client that sends one request at a time sees no
// difference: the server waits for its next request at once, which sends
// the held response.
//
// Held-back bytes are written before any read of more than one byte (the
// server reading the next request or a body; the one-byte read is
// net/http's background check for a closed connection, which it cancels
// when the handler returns), when a handler that is not batched starts (a
// streaming one must not be held), and before closing. Under TLS
// (tls.Conn wraps these connections and reads whole records, so any of
// its reads sends what is held) batches are smaller, but the rules hold.

// BatchListener wraps ln so that Batch's handlers may hold back their
// responses on its connections. The server must use BatchConnContext as
// its ConnContext.
func BatchListener(ln net.Listener) net.Listener { return batchListener{ln} }

type batchListener struct{ net.Listener }

func (l batchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &batchConn{Conn: c}, nil
}

type batchConnKey struct{}

// BatchConnContext is an http.Server's ConnContext for a BatchListener:
// it lets Batch find the request's connection.
func BatchConnContext(ctx context.Context, c net.Conn) context.Context {
	if bc, ok := c.(*batchConn); ok {
		return context.WithValue(ctx, batchConnKey{}, bc)
	}
	return ctx
}

// Batch serves next, letting the responses to paths under prefix be held
// back (they must be written whole by their handlers: the JSON API's
// are); any other request first sends what is held and is not batched.
func Batch(next http.Handler, prefix string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if bc, ok := r.Context().Value(batchConnKey{}).(*batchConn); ok {
			bc.setBatching(strings.HasPrefix(r.URL.Path, prefix))
		}
		next.ServeHTTP(w, r)
	})
}

// batchConn holds back writes while batching, until the next real read.
type batchConn struct {
	net.Conn
	mu       sync.Mutex
	batching bool
	held     []byte
	err      error // of a write of held bytes, returned by the next write
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if !c.batching {
		return c.Conn.Write(p)
	}
	c.held = append(c.held, p...)
	if len(c.held) >= 64<<10 { // enough to be worth a write of its own
		c.flushLocked()
	}
	return len(p), c.err
}

func (c *batchConn) Read(p []byte) (int, error) {
	if len(p) > 1 {
		c.mu.Lock()
		err := c.flushLocked()
		c.mu.Unlock()
		if err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

func (c *batchConn) flushLocked() error {
	if len(c.held) > 0 && c.err == nil {
		_, c.err = c.Conn.Write(c.held)
	}
	if cap(c.held) > 1<<20 {
		c.held = nil
	}
	c.held = c.held[:0]
	return c.err
}

func (c *batchConn) setBatching(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !on {
		c.flushLocked()
	}
	c.batching = on
}

func (c *batchConn) Close() error {
	c.mu.Lock()
	c.flushLocked()
	c.mu.Unlock()
	return c.Conn.Close()
}

// CloseWrite sends what is held, then half-closes, as net/http does
// before closing a connection it answered with Connection: close.
func (c *batchConn) CloseWrite() error {
	c.mu.Lock()
	c.flushLocked()
	c.mu.Unlock()
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
