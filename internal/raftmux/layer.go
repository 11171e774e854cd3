package raftmux

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/hashicorp/yamux"
)

var _ raft.StreamLayer = (*Layer)(nil)

// Layer is one shard's raft.StreamLayer. Its connections are yamux streams
// on the Mux's sessions. Give each Layer to exactly one
// raft.NetworkTransport; closing the transport closes the Layer.
type Layer struct {
	mux   *Mux
	shard uint32
	addr  net.Addr
	queue chan *streamConn
	done  chan struct{}

	mu     sync.Mutex
	closed bool
	// conns holds every stream of this shard that is queued or in use, in
	// either direction, so Close can end them. Raft's NetworkTransport does
	// not close the connections its handler goroutines read from when it
	// shuts down, and a yamux stream closed locally still blocks readers
	// until the peer answers; without this, those goroutines would outlive
	// the transport.
	conns map[*streamConn]struct{}
}

func newLayer(m *Mux, shard uint32) *Layer {
	return &Layer{
		mux:   m,
		shard: shard,
		addr:  addr(m.addr),
		queue: make(chan *streamConn, m.cfg.AcceptQueue),
		done:  make(chan struct{}),
		conns: make(map[*streamConn]struct{}),
	}
}

// Shard returns the shard id of the Layer.
func (l *Layer) Shard() uint32 { return l.shard }

// Addr returns the node's advertised address (what raft reports as
// LocalAddr and sends to peers).
func (l *Layer) Addr() net.Addr { return l.addr }

// Accept waits for the next stream a peer opened for this shard. After the
// Layer or the Mux is closed it returns an error wrapping net.ErrClosed.
func (l *Layer) Accept() (net.Conn, error) {
	select {
	case c := <-l.queue:
		select {
		case <-l.done:
			// Closed concurrently: Close owns every queued stream.
			_ = c.Close()
			return nil, l.closedErr()
		default:
			return c, nil
		}
	case <-l.done:
		return nil, l.closedErr()
	}
}

func (l *Layer) closedErr() error {
	return fmt.Errorf("raftmux: shard %d layer: %w", l.shard, ErrClosed)
}

// Dial opens a stream to the same shard on the node advertising address.
// The timeout (the Mux's DialTimeout if zero) covers dialing the session if
// none is open, the hello, and opening the stream.
func (l *Layer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if l.isClosed() {
		return nil, l.closedErr()
	}
	st, err := l.mux.openStream(l.shard, string(address), timeout)
	if err != nil {
		return nil, err
	}
	c := l.newConn(st, string(address))
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		_ = c.Close()
		return nil, l.closedErr()
	}
	l.conns[c] = struct{}{}
	l.mu.Unlock()
	return c, nil
}

// Close closes this shard's Layer and its streams; the Mux and other shards
// are unaffected. Streams peers open for the shard afterwards are held as for
// a shard that has no Layer. Close is idempotent.
func (l *Layer) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.done)
	conns := make([]*streamConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()

	m := l.mux
	m.mu.Lock()
	if m.layers[l.shard] == l {
		delete(m.layers, l.shard)
	}
	m.mu.Unlock()

	// Wake every reader and writer now; that is what raft's handler
	// goroutines wait for. Sending the FINs can block on a congested
	// session (up to ConnectionWriteTimeout each), so it happens in a
	// tracked goroutine and raft's transport Close does not wait for it.
	// Queued streams are in conns too.
	var fins []*yamux.Stream
	for _, c := range conns {
		if c.closeLocal() {
			fins = append(fins, c.st)
		}
	}
	if len(fins) > 0 {
		m.mu.Lock()
		async := m.spawnLocked(func() { closeStreams(fins) })
		m.mu.Unlock()
		if !async {
			// The Mux is closing and has closed its sessions already, so
			// these return at once.
			closeStreams(fins)
		}
	}
	for {
		select {
		case <-l.queue:
		default:
			return nil
		}
	}
}

func (l *Layer) isClosed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// enqueue hands an accepted stream to Accept. It reports false if the Layer
// is closed or its queue is full; the caller then closes the stream. It is
// called with m.mu held (lock order: Mux.mu, then Layer.mu).
func (l *Layer) enqueue(st *yamux.Stream, peer string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	c := l.newConn(st, peer)
	select {
	case l.queue <- c:
		l.conns[c] = struct{}{}
		return true
	default:
		return false
	}
}

func (l *Layer) forget(c *streamConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

func (l *Layer) newConn(st *yamux.Stream, peer string) *streamConn {
	return &streamConn{st: st, layer: l, remote: addr(peer)}
}

// addr is a net.Addr for an advertised address. Raft only ever uses
// String(), which must round-trip to the raft.ServerAddress of the node.
type addr string

func (addr) Network() string  { return "tcp" }
func (a addr) String() string { return string(a) }

// streamConn is the net.Conn a Layer hands to raft: a yamux stream that also
// deregisters from its Layer on Close, reports advertised node addresses
// instead of the session's ephemeral TCP port, and makes Close unblock local
// readers at once (a yamux Close is only a half-close).
type streamConn struct {
	st     *yamux.Stream
	layer  *Layer
	remote net.Addr
	closed atomic.Bool
	// mu orders Close against the deadline setters (see SetDeadline).
	mu sync.Mutex
}

var _ net.Conn = (*streamConn)(nil)

func (c *streamConn) Read(b []byte) (int, error) {
	n, err := c.st.Read(b)
	if err != nil && c.closed.Load() {
		err = ErrClosed
	}
	return n, err
}

func (c *streamConn) Write(b []byte) (int, error) {
	n, err := c.st.Write(b)
	if err != nil && c.closed.Load() {
		err = ErrClosed
	}
	return n, err
}

// Close sends the stream's FIN and wakes any Read or Write blocked on it. A
// deadline in the past is how yamux lets us wake them: its Close alone leaves
// readers waiting for the peer's FIN.
func (c *streamConn) Close() error {
	if !c.closeLocal() {
		return nil
	}
	return c.st.Close()
}

// closeLocal marks the conn closed, wakes blocked readers and writers and
// deregisters it, without sending anything. It reports false if the conn was
// already closed.
func (c *streamConn) closeLocal() bool {
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		return false
	}
	c.closed.Store(true)
	_ = c.st.SetDeadline(time.Unix(1, 0))
	c.mu.Unlock()
	c.layer.forget(c)
	return true
}

func closeStreams(sts []*yamux.Stream) {
	for _, st := range sts {
		_ = st.Close()
	}
}

func (c *streamConn) LocalAddr() net.Addr  { return c.layer.addr }
func (c *streamConn) RemoteAddr() net.Addr { return c.remote }

// The deadline setters fail after Close so that raft, setting a deadline on
// a pooled connection the Layer has closed, cannot lift the past deadline
// Close set and leave a reader blocked.
func (c *streamConn) SetDeadline(t time.Time) error {
	return c.setDeadline(c.st.SetDeadline, t)
}

func (c *streamConn) SetReadDeadline(t time.Time) error {
	return c.setDeadline(c.st.SetReadDeadline, t)
}

func (c *streamConn) SetWriteDeadline(t time.Time) error {
	return c.setDeadline(c.st.SetWriteDeadline, t)
}

func (c *streamConn) setDeadline(set func(time.Time) error, t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return ErrClosed
	}
	return set(t)
}
