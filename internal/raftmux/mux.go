package raftmux

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/followgraph/followgraph/internal/stdlog"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/yamux"
)

// ErrClosed is returned by a closed Mux or Layer. It wraps net.ErrClosed so
// callers can test errors.Is(err, net.ErrClosed) as for a closed listener.
var ErrClosed = fmt.Errorf("raftmux: %w", net.ErrClosed)

// ErrBlocked is returned by Dial to a peer that Block has cut off.
var ErrBlocked = errors.New("raftmux: peer blocked")

// errDialTimeout is returned when a Dial's deadline passes while it waits for
// another caller's dial to the same peer. It is a net.Error with Timeout()
// true so callers can treat it like any other dial timeout.
var errDialTimeout error = &timeoutError{}

type timeoutError struct{}

func (*timeoutError) Error() string   { return "raftmux: dial timeout" }
func (*timeoutError) Timeout() bool   { return true }
func (*timeoutError) Temporary() bool { return true }

const (
	defaultDialTimeout            = 5 * time.Second
	defaultKeepAliveInterval      = 10 * time.Second
	defaultConnectionWriteTimeout = 10 * time.Second
	defaultHoldTimeout            = 5 * time.Second
	defaultAcceptQueue            = 64

	// maxHeld bounds the streams held for shards that have no Layer, across
	// the whole Mux, so a peer cannot pin memory by naming unknown shards.
	maxHeld = 256

	// yamuxBacklog is yamux's per-session limit on streams opened but not yet
	// accepted. Our accept loop drains it immediately, so it only matters as
	// a bound on SYNs in flight; yamux's default is fine.
	yamuxBacklog = 256

	// streamCloseTimeout is how long yamux keeps a half-closed stream waiting
	// for the peer's FIN. Raft closes its side of every connection it drops,
	// so this only reclaims streams of a misbehaving or vanished peer; the
	// yamux default of 5 minutes keeps their buffers around far too long.
	streamCloseTimeout = 30 * time.Second
)

// Config configures a Mux. Only Listener is required.
type Config struct {
	// Listener is the node's raft listener, already bound. The Mux owns it
	// after New: Close closes it.
	Listener net.Listener

	// Advertise is the address peers use to reach this node and the address
	// every Layer reports, so it must be what raft stores as this server's
	// ServerAddress. Default: Listener.Addr(), which must then not be an
	// unspecified address such as 0.0.0.0.
	Advertise string

	// DialTimeout bounds a Dial whose caller passes no timeout, and also the
	// time an incoming connection may take to send its hello and an incoming
	// stream its shard id. Default 5s.
	DialTimeout time.Duration

	// Dial, if set, replaces net.Dialer (tests inject partitions through it).
	Dial func(addr string, timeout time.Duration) (net.Conn, error)

	// Logger receives the Mux's and yamux's logs. Default: discard.
	Logger hclog.Logger

	// KeepAliveInterval is the yamux ping interval; a ping unanswered within
	// ConnectionWriteTimeout closes the session so that a silently dead peer
	// is noticed and re-dialed. Default 10s.
	KeepAliveInterval time.Duration

	// ConnectionWriteTimeout is yamux's safety valve for a stuck TCP
	// connection. It also bounds how long an opened stream may wait for the
	// peer's acknowledgement before the session is declared dead. Default 10s.
	ConnectionWriteTimeout time.Duration

	// HoldTimeout is how long a stream for a shard with no open Layer is
	// held before it is closed. Default 5s.
	HoldTimeout time.Duration

	// OnUnknownShard, if set, is called (on its own goroutine) when a peer
	// opens a stream for a shard that has no Layer here: a node that was
	// just added to a shard's replicas opens the shard when the leader
	// first contacts it. The stream is held meanwhile (HoldTimeout).
	OnUnknownShard func(shard uint32)

	// AcceptQueue is the number of accepted streams a Layer queues before
	// raft takes them; beyond it new streams for that shard are closed
	// (raft retries). Default 64.
	AcceptQueue int

	// Auth authenticates peers on both sides of every session before the
	// hello (NewMutualTLSAuth, NewSecretAuth). Nil: no authentication, the
	// plain wire format (a single node, tests). Every node of a cluster
	// must use the same mode.
	Auth *Auth

	// NodeAt, if set, names the node expected at a raft address (the
	// cluster feeds it from gossip) so that mutual TLS pins identities: a
	// dialed peer's certificate must name the node at the dialed address,
	// and an accepted peer's the node at its advertised address. Unknown
	// addresses (a node joining) accept any valid node certificate.
	NodeAt func(raftAddr string) (nodeID string, known bool)

	// OnRefused, if set, is called for every peer refused before or at
	// the hello, incoming or (for a failure of the peer's credentials)
	// outgoing, with one of the Refused* reasons. It must not block.
	OnRefused func(reason string)
}

// Mux owns a node's raft listener and its sessions to other nodes, and hands
// out one Layer per shard. All methods are safe for concurrent use.
type Mux struct {
	cfg  Config
	ln   net.Listener
	addr string
	log  hclog.Logger
	ycfg *yamux.Config

	// ctx is cancelled by Close so that default dials in flight give up.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	closed   bool
	layers   map[uint32]*Layer
	held     []*heldStream
	out      map[string]*yamux.Session // sessions we dialed, by peer address
	dialing  map[string]*dialCall      // dials in progress, by peer address
	in       map[*yamux.Session]string // sessions we accepted -> peer address
	inByAddr map[string]*yamux.Session // newest accepted session per peer
	conns    map[net.Conn]struct{}     // TCP connections still in the hello
	blocked  map[string]bool           // peers cut off by Block

	refusals refusalLimiter

	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// heldStream is an incoming stream for a shard that has no Layer yet.
type heldStream struct {
	shard uint32
	st    *yamux.Stream
	peer  string
	timer *time.Timer
}

// dialCall lets concurrent Dials to one peer share a single session dial.
type dialCall struct {
	done chan struct{}
	sess *yamux.Session
	err  error
}

// DefaultConfig returns the defaults, without a Listener (which New
// requires). A zero field of a Config given to New also means its default.
func DefaultConfig() Config {
	return Config{
		DialTimeout:            defaultDialTimeout,
		KeepAliveInterval:      defaultKeepAliveInterval,
		ConnectionWriteTimeout: defaultConnectionWriteTimeout,
		HoldTimeout:            defaultHoldTimeout,
		AcceptQueue:            defaultAcceptQueue,
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case c.Listener == nil:
		return errors.New("raftmux: Config.Listener is required")
	case len(c.Advertise) > maxAddrLen:
		return fmt.Errorf("raftmux: advertised address longer than %d bytes", maxAddrLen)
	case c.DialTimeout < 0 || c.KeepAliveInterval < 0 || c.ConnectionWriteTimeout < 0 || c.HoldTimeout < 0:
		return errors.New("raftmux: timeouts must not be negative")
	case c.AcceptQueue < 0:
		return fmt.Errorf("raftmux: AcceptQueue (%d) must not be negative", c.AcceptQueue)
	}
	if c.Advertise == "" {
		a := c.Listener.Addr().String()
		if host, _, err := net.SplitHostPort(a); err == nil {
			if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
				return fmt.Errorf("raftmux: listener address %s is not advertisable; set Config.Advertise", a)
			}
		}
		if len(a) > maxAddrLen {
			return fmt.Errorf("raftmux: listener address longer than %d bytes; set Config.Advertise", maxAddrLen)
		}
	}
	return nil
}

// New takes ownership of cfg.Listener and starts accepting sessions.
func New(cfg Config) (*Mux, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Advertise == "" {
		cfg.Advertise = cfg.Listener.Addr().String()
	}
	d := DefaultConfig()
	cfg.DialTimeout = cmp.Or(cfg.DialTimeout, d.DialTimeout)
	cfg.KeepAliveInterval = cmp.Or(cfg.KeepAliveInterval, d.KeepAliveInterval)
	cfg.ConnectionWriteTimeout = cmp.Or(cfg.ConnectionWriteTimeout, d.ConnectionWriteTimeout)
	cfg.HoldTimeout = cmp.Or(cfg.HoldTimeout, d.HoldTimeout)
	cfg.AcceptQueue = cmp.Or(cfg.AcceptQueue, d.AcceptQueue)
	userLogger := cfg.Logger != nil
	if !userLogger {
		cfg.Logger = hclog.NewNullLogger()
	}

	ycfg := yamux.DefaultConfig()
	ycfg.AcceptBacklog = yamuxBacklog
	ycfg.EnableKeepAlive = true
	ycfg.KeepAliveInterval = cfg.KeepAliveInterval
	ycfg.ConnectionWriteTimeout = cfg.ConnectionWriteTimeout
	ycfg.StreamOpenTimeout = cfg.ConnectionWriteTimeout
	ycfg.StreamCloseTimeout = streamCloseTimeout
	ycfg.LogOutput = io.Discard
	if userLogger {
		ycfg.LogOutput = nil
		ycfg.Logger = stdlog.New(cfg.Logger.Named("yamux"), stdlog.ClosedAtShutdown)
	}
	if err := yamux.VerifyConfig(ycfg); err != nil {
		return nil, fmt.Errorf("raftmux: yamux config: %w", err)
	}

	if a := cfg.Auth; a != nil && a.files != nil {
		a.once.Do(func() {
			log := cfg.Logger.Named("peer-tls")
			a.files.OnError = func(err error) {
				log.Warn("changed peer certificate files do not load; still using the previous ones", "error", err)
			}
			a.files.OnReload = func() { log.Info("peer certificate files reloaded") }
		})
	}

	ctx, cancel := context.WithCancel(context.Background())
	m := &Mux{
		cfg:      cfg,
		ln:       cfg.Listener,
		addr:     cfg.Advertise,
		log:      cfg.Logger,
		ycfg:     ycfg,
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
		layers:   make(map[uint32]*Layer),
		out:      make(map[string]*yamux.Session),
		dialing:  make(map[string]*dialCall),
		in:       make(map[*yamux.Session]string),
		inByAddr: make(map[string]*yamux.Session),
		conns:    make(map[net.Conn]struct{}),
		blocked:  make(map[string]bool),
	}
	m.mu.Lock()
	m.spawnLocked(m.acceptLoop)
	m.mu.Unlock()
	return m, nil
}

// Addr returns the advertised address of this node.
func (m *Mux) Addr() string { return m.addr }

// spawnLocked runs f in a goroutine that Close waits for. It refuses once the
// Mux is closed, which is what makes wg.Wait in Close race-free: every Add
// happens under mu before closed is set.
func (m *Mux) spawnLocked(f func()) bool {
	if m.closed {
		return false
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f()
	}()
	return true
}

func (m *Mux) trackConnLocked(c net.Conn) bool {
	if m.closed {
		return false
	}
	m.conns[c] = struct{}{}
	return true
}

func (m *Mux) untrackConn(c net.Conn) {
	m.mu.Lock()
	delete(m.conns, c)
	m.mu.Unlock()
}

// Layer returns the StreamLayer of a shard, creating it if needed; streams
// that peers opened for the shard before this call (within HoldTimeout) are
// queued on it. While a Layer is open, Layer(shard) returns the same one:
// give it to exactly one raft transport. After that Layer is closed, the next
// call creates a fresh one (a shard reopened on this node). On a closed Mux
// the returned Layer is already closed.
func (m *Mux) Layer(shard uint32) *Layer {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l := m.layers[shard]; l != nil {
		return l
	}
	l := newLayer(m, shard)
	if m.closed {
		l.closed = true
		close(l.done)
		return l
	}
	m.layers[shard] = l
	kept := m.held[:0]
	var reject []*yamux.Stream
	for _, h := range m.held {
		if h.shard != shard {
			kept = append(kept, h)
			continue
		}
		h.timer.Stop()
		if !l.enqueue(h.st, h.peer) {
			reject = append(reject, h.st)
		}
	}
	clear(m.held[len(kept):])
	m.held = kept
	// Closing a stream may wait on its session's send queue; do it in a
	// tracked goroutine rather than under mu.
	if len(reject) > 0 {
		m.spawnLocked(func() {
			for _, st := range reject {
				_ = st.Close()
			}
		})
	}
	return l
}

// acceptLoop accepts TCP connections on the raft port and starts a handshake
// goroutine for each, so a slow or silent client never delays the others.
func (m *Mux) acceptLoop() {
	var delay time.Duration
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			if m.isClosed() {
				return
			}
			if errors.Is(err, net.ErrClosed) {
				m.log.Error("raft listener closed while the mux is open; no more incoming sessions", "error", err)
				return
			}
			// Transient failures (EMFILE, ECONNABORTED): back off instead
			// of spinning, as net/http does.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay *= 2; delay > time.Second {
				delay = time.Second
			}
			m.log.Warn("accept failed; retrying", "error", err, "delay", delay)
			select {
			case <-m.done:
				return
			case <-time.After(delay):
			}
			continue
		}
		delay = 0
		m.mu.Lock()
		ok := m.trackConnLocked(conn) && m.spawnLocked(func() { m.serveConn(conn) })
		m.mu.Unlock()
		if !ok {
			_ = conn.Close()
			return
		}
	}
}

// serveConn runs the acceptor side of the handshake and turns the
// connection into a yamux server session.
func (m *Mux) serveConn(conn net.Conn) {
	c, peer, err := m.handshakeIn(conn)
	if err != nil {
		m.refused(refusalReason(err), conn.RemoteAddr().String(), err)
		m.untrackConn(conn)
		_ = conn.Close()
		return
	}
	if m.isBlocked(peer) {
		m.untrackConn(conn)
		_ = conn.Close()
		return
	}
	if _, err := c.Write([]byte{helloAccepted}); err != nil {
		m.untrackConn(conn)
		_ = conn.Close()
		return
	}
	_ = conn.SetDeadline(time.Time{})
	sess, err := yamux.Server(joinHeaders(c), m.ycfg)
	if err != nil { // only on an invalid config, which New has verified
		m.untrackConn(conn)
		_ = conn.Close()
		return
	}

	m.mu.Lock()
	delete(m.conns, conn)
	if m.closed || m.blocked[peer] {
		m.mu.Unlock()
		_ = sess.Close()
		return
	}
	// A peer dials a new session only when it has given up on the old one,
	// so an older session from the same address is dead or dying: close it
	// now rather than wait for keepalive. This keeps one incoming session per
	// peer.
	old := m.inByAddr[peer]
	m.inByAddr[peer] = sess
	m.in[sess] = peer
	m.spawnLocked(func() { m.serveSession(sess, peer, true) })
	m.mu.Unlock()
	if old != nil {
		m.log.Debug("peer reconnected; closing its previous session", "peer", peer)
		_ = old.Close()
	}
	m.log.Debug("accepted raft session", "peer", peer)
}

// handshakeIn runs the acceptor's side up to the accept byte under one
// deadline: authentication (so that no unauthenticated peer gets a raft
// byte, nor has its hello parsed), the hello, and the identity pin of the
// advertised address. It returns the connection to speak yamux on.
func (m *Mux) handshakeIn(conn net.Conn) (net.Conn, string, error) {
	_ = conn.SetDeadline(time.Now().Add(m.cfg.DialTimeout))
	c, id := conn, ""
	if m.cfg.Auth != nil {
		var err error
		if c, id, err = m.cfg.Auth.accept(conn); err != nil {
			return nil, "", err
		}
	}
	peer, err := readHello(c)
	if err != nil {
		var ne net.Error
		if !errors.Is(err, errBadHello) && !(errors.As(err, &ne) && ne.Timeout()) {
			err = fmt.Errorf("%w: %v", errBadHello, err) // cut short
		}
		return nil, "", err
	}
	if id != "" {
		if err := checkPinned(m.cfg.NodeAt, peer, id); err != nil {
			return nil, "", err
		}
	}
	return c, peer, nil
}

// serveSession accepts the streams a session carries until it closes, then
// forgets it. On sessions we dialed the peer must not open streams (only
// dialers do), so any it opens are closed; the loop then merely notices the
// session's end.
func (m *Mux) serveSession(sess *yamux.Session, peer string, incoming bool) {
	defer m.forgetSession(sess, peer, incoming)
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		if !incoming {
			m.log.Warn("peer opened a stream on a session we dialed; closing it", "peer", peer)
			_ = st.Close()
			continue
		}
		m.mu.Lock()
		ok := m.spawnLocked(func() { m.readShard(st, peer) })
		m.mu.Unlock()
		if !ok {
			_ = st.Close()
			return
		}
	}
}

func (m *Mux) forgetSession(sess *yamux.Session, peer string, incoming bool) {
	m.mu.Lock()
	if incoming {
		delete(m.in, sess)
		if m.inByAddr[peer] == sess {
			delete(m.inByAddr, peer)
		}
	} else if m.out[peer] == sess {
		delete(m.out, peer)
	}
	m.mu.Unlock()
	_ = sess.Close()
}

// readShard reads the shard id that starts an incoming stream, in its own
// goroutine so that one slow opener does not hold up the session's other
// streams, and routes the stream.
func (m *Mux) readShard(st *yamux.Stream, peer string) {
	var hdr [shardHeaderLen]byte
	_ = st.SetReadDeadline(time.Now().Add(m.cfg.DialTimeout))
	if _, err := io.ReadFull(st, hdr[:]); err != nil {
		m.log.Debug("stream closed before its shard id", "peer", peer, "error", err)
		_ = st.Close()
		return
	}
	_ = st.SetReadDeadline(time.Time{})
	m.dispatch(binary.BigEndian.Uint32(hdr[:]), st, peer)
}

// dispatch queues a stream on its shard's Layer, or holds it for a while if
// the shard has none.
func (m *Mux) dispatch(shard uint32, st *yamux.Stream, peer string) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		_ = st.Close()
		return
	}
	if l := m.layers[shard]; l != nil {
		ok := l.enqueue(st, peer)
		m.mu.Unlock()
		if !ok {
			m.log.Warn("shard accept queue full or closed; dropping stream", "shard", shard, "peer", peer)
			_ = st.Close()
		}
		return
	}
	if len(m.held) >= maxHeld {
		m.mu.Unlock()
		m.log.Warn("too many streams for unknown shards; dropping stream", "shard", shard, "peer", peer)
		_ = st.Close()
		return
	}
	h := &heldStream{shard: shard, st: st, peer: peer}
	h.timer = time.AfterFunc(m.cfg.HoldTimeout, func() { m.expireHeld(h) })
	m.held = append(m.held, h)
	m.mu.Unlock()
	if m.cfg.OnUnknownShard != nil {
		go m.cfg.OnUnknownShard(shard)
	}
}

func (m *Mux) expireHeld(h *heldStream) {
	m.mu.Lock()
	found := false
	for i, x := range m.held {
		if x == h {
			m.held = append(m.held[:i], m.held[i+1:]...)
			found = true
			break
		}
	}
	m.mu.Unlock()
	if found {
		m.log.Debug("no layer for shard; closing held stream", "shard", h.shard, "peer", h.peer)
		_ = h.st.Close()
	}
}

// openStream opens a stream to addr for shard, dialing a session if needed.
// The whole operation (session dial, hello, stream open, shard id) shares one
// deadline.
func (m *Mux) openStream(shard uint32, addr string, timeout time.Duration) (*yamux.Stream, error) {
	if timeout <= 0 {
		timeout = m.cfg.DialTimeout
	}
	deadline := time.Now().Add(timeout)
	for attempt := 0; ; attempt++ {
		sess, err := m.session(addr, deadline)
		if err != nil {
			return nil, err
		}
		st, err := sess.OpenStream()
		if err != nil {
			// The session died between lookup and open (peer restarted or
			// said GoAway): drop it and dial once more while time remains.
			m.dropSession(addr, sess)
			if attempt == 0 && time.Now().Before(deadline) {
				continue
			}
			return nil, fmt.Errorf("raftmux: open stream to %s: %w", addr, err)
		}
		_ = st.SetWriteDeadline(deadline)
		_, err = st.Write(encodeShard(shard))
		_ = st.SetWriteDeadline(time.Time{})
		if err != nil {
			_ = st.Close()
			return nil, fmt.Errorf("raftmux: open stream to %s: %w", addr, err)
		}
		return st, nil
	}
}

// dropSession forgets and closes an outgoing session that failed.
func (m *Mux) dropSession(addr string, sess *yamux.Session) {
	m.mu.Lock()
	if m.out[addr] == sess {
		delete(m.out, addr)
	}
	m.mu.Unlock()
	_ = sess.Close()
}

// session returns the live outgoing session to addr, dialing one if there is
// none. Concurrent callers share one dial, so a burst of shards dialing the
// same peer creates one TCP connection.
func (m *Mux) session(addr string, deadline time.Time) (*yamux.Session, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	if m.blocked[addr] {
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrBlocked, addr)
	}
	if s := m.out[addr]; s != nil {
		if !s.IsClosed() {
			m.mu.Unlock()
			return s, nil
		}
		delete(m.out, addr)
	}
	if c := m.dialing[addr]; c != nil {
		m.mu.Unlock()
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		select {
		case <-c.done:
			// Share the outcome, failure included: if the peer is down,
			// every shard retrying at once must not each pay a dial.
			if c.err != nil {
				return nil, c.err
			}
			return c.sess, nil
		case <-t.C:
			return nil, errDialTimeout
		case <-m.done:
			return nil, ErrClosed
		}
	}
	c := &dialCall{done: make(chan struct{})}
	m.dialing[addr] = c
	m.mu.Unlock()

	sess, err := m.dialSession(addr, deadline)

	m.mu.Lock()
	delete(m.dialing, addr)
	if err == nil {
		switch {
		case m.closed:
			err = ErrClosed
		case m.blocked[addr]:
			err = fmt.Errorf("%w: %s", ErrBlocked, addr)
		default:
			m.out[addr] = sess
			m.spawnLocked(func() { m.serveSession(sess, addr, false) })
		}
		if err != nil {
			_ = sess.Close()
			sess = nil
		}
	}
	c.sess, c.err = sess, err
	close(c.done)
	m.mu.Unlock()
	return sess, err
}

// dialSession opens a TCP connection to addr, authenticates it (with an
// Auth), exchanges the hello and starts a yamux client on it.
func (m *Mux) dialSession(addr string, deadline time.Time) (*yamux.Session, error) {
	timeout := time.Until(deadline)
	if timeout <= 0 {
		return nil, errDialTimeout
	}
	hello, err := encodeHello(m.addr)
	if err != nil {
		return nil, err
	}
	conn, err := m.dial(addr, timeout)
	if err != nil {
		return nil, fmt.Errorf("raftmux: dial %s: %w", addr, err)
	}
	m.mu.Lock()
	ok := m.trackConnLocked(conn)
	m.mu.Unlock()
	if !ok {
		_ = conn.Close()
		return nil, ErrClosed
	}
	defer m.untrackConn(conn)

	_ = conn.SetDeadline(deadline)
	c, err := m.handshakeOut(conn, addr, hello)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	sess, err := yamux.Client(joinHeaders(c), m.ycfg)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	m.log.Debug("dialed raft session", "peer", addr)
	return sess, nil
}

// handshakeOut runs the dialer's side up to the accept byte, under conn's
// deadline: authentication, the hello, and its answer. It returns the
// connection to speak yamux on. A failure of the peer's credentials is
// reported to OnRefused; the peer refusing ours wraps ErrRefusedByPeer.
func (m *Mux) handshakeOut(conn net.Conn, addr string, hello []byte) (net.Conn, error) {
	c := conn
	if a := m.cfg.Auth; a != nil {
		var err error
		if c, err = a.dial(conn, addr, m.cfg.NodeAt); err != nil {
			if r := refusalReason(err); r != RefusedTimeout && !errors.Is(err, ErrRefusedByPeer) {
				m.refused(r, addr, err)
			}
			return nil, fmt.Errorf("raftmux: authenticating %s: %w", addr, err)
		}
	}
	if _, err := c.Write(hello); err != nil {
		return nil, fmt.Errorf("raftmux: hello to %s: %w", addr, err)
	}
	var ack [1]byte
	_, err := io.ReadFull(c, ack[:])
	switch {
	case err == nil && ack[0] == helloAccepted:
		return c, nil
	case m.cfg.Auth != nil && err != nil && errors.Is(refusedByPeer(err), ErrRefusedByPeer):
		// In mutual TLS the acceptor's verdict on our certificate comes
		// here, after our side of the TLS 1.3 handshake.
		return nil, fmt.Errorf("raftmux: %s refused the session (our credentials, or our address is not where our certificate's node is): %w", addr, refusedByPeer(err))
	case err == nil || errors.Is(err, io.EOF):
		return nil, fmt.Errorf("raftmux: %s rejected the session", addr)
	}
	return nil, fmt.Errorf("raftmux: hello to %s: %w", addr, err)
}

func (m *Mux) dial(addr string, timeout time.Duration) (net.Conn, error) {
	if m.cfg.Dial != nil {
		return m.cfg.Dial(addr, timeout)
	}
	d := net.Dialer{Timeout: timeout}
	return d.DialContext(m.ctx, "tcp", addr)
}

func (m *Mux) isClosed() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

func (m *Mux) isBlocked(addr string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.blocked[addr]
}

// Block cuts this node off from the peer advertising addr (blocked=true) or
// reconnects it (blocked=false). While blocked, Dial to addr fails with
// ErrBlocked, sessions from addr are refused at the hello, and the existing
// sessions in both directions are closed at once. It exists for partition
// tests; blocking on one side is enough to cut both directions, since the
// peer's dials are refused too.
func (m *Mux) Block(addr string, blocked bool) {
	m.mu.Lock()
	if !blocked {
		delete(m.blocked, addr)
		m.mu.Unlock()
		return
	}
	m.blocked[addr] = true
	var victims []*yamux.Session
	if s := m.out[addr]; s != nil {
		victims = append(victims, s)
	}
	for s, p := range m.in {
		if p == addr {
			victims = append(victims, s)
		}
	}
	m.mu.Unlock()
	for _, s := range victims {
		_ = s.Close()
	}
}

// Stats is a snapshot of a Mux's sessions and streams.
type Stats struct {
	// Sessions is the number of live sessions, that is raft TCP connections
	// of this node: Outgoing + Incoming.
	Sessions int
	// Outgoing counts sessions this node dialed (at most one per peer).
	Outgoing int
	// Incoming counts sessions peers dialed to this node.
	Incoming int
	// Streams counts open yamux streams over all sessions.
	Streams int
	// Layers counts open shard layers.
	Layers int
	// Held counts streams waiting for a shard Layer that does not exist.
	Held int
	// Peers breaks sessions and streams down by peer advertised address.
	Peers map[string]PeerStats
}

// PeerStats describes the sessions with one peer.
type PeerStats struct {
	Outgoing int // 0 or 1
	Incoming int // normally 0 or 1; 2 for a moment while a reconnect replaces a session
	Streams  int
}

// Stats returns current counts.
func (m *Mux) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := Stats{Layers: len(m.layers), Held: len(m.held), Peers: make(map[string]PeerStats)}
	for addr, s := range m.out {
		st.addSession(addr, s, true)
	}
	for s, addr := range m.in {
		st.addSession(addr, s, false)
	}
	st.Sessions = st.Outgoing + st.Incoming
	return st
}

// addSession counts session s with the peer at addr, dialed by this node
// when outgoing, in the totals and in the peer's figures. A closed
// session still awaiting removal is no connection and is not counted.
func (st *Stats) addSession(addr string, s *yamux.Session, outgoing bool) {
	if s.IsClosed() {
		return
	}
	n := s.NumStreams()
	p := st.Peers[addr]
	if outgoing {
		p.Outgoing++
		st.Outgoing++
	} else {
		p.Incoming++
		st.Incoming++
	}
	p.Streams += n
	st.Peers[addr] = p
	st.Streams += n
}

// Close closes the listener, every session and every Layer, and waits for
// the Mux's goroutines to finish. It is idempotent; later Dial and Accept
// calls fail with ErrClosed. Close raft transports (raft.Shutdown) before the
// Mux if you can: a transport whose Layer closes under it logs accept errors
// until it is shut down.
func (m *Mux) Close() error {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		close(m.done)
		m.cancel()
		var sessions []*yamux.Session
		for _, s := range m.out {
			sessions = append(sessions, s)
		}
		for s := range m.in {
			sessions = append(sessions, s)
		}
		conns := make([]net.Conn, 0, len(m.conns))
		for c := range m.conns {
			conns = append(conns, c)
		}
		layers := make([]*Layer, 0, len(m.layers))
		for _, l := range m.layers {
			layers = append(layers, l)
		}
		held := m.held
		m.held = nil
		m.mu.Unlock()

		if err := m.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			m.closeErr = err
		}
		for _, c := range conns {
			_ = c.Close()
		}
		// Sessions first: closing a session force-closes its streams, so
		// the Layers' stream closes below return at once instead of
		// queueing FIN frames behind possibly stuck connections.
		for _, s := range sessions {
			_ = s.Close()
		}
		for _, l := range layers {
			_ = l.Close()
		}
		for _, h := range held {
			h.timer.Stop()
			_ = h.st.Close()
		}
		m.wg.Wait()
	})
	return m.closeErr
}
