package raftmux

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/hashicorp/yamux"
)

// waitTimeout bounds every poll in these tests. It is generous because the
// suite must pass under -race on a loaded 2-core machine; polls return as
// soon as their condition holds, so it costs nothing when things are fast.
const waitTimeout = 15 * time.Second

// eventually polls cond until it returns nil or waitTimeout passes.
func eventually(t testing.TB, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, waitTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// listenLoopback listens on a free loopback port. The caller closes the
// listener, or hands it to New, which then owns it.
func listenLoopback(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// dialRaw opens a bare TCP connection to addr, for a peer that speaks the
// protocol by hand (or not at all). The caller closes it.
func dialRaw(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newTestMux starts a Mux on a free loopback port, closed when the test
// ends; mod, if set, adjusts its Config first.
func newTestMux(t testing.TB, mod func(*Config)) *Mux {
	t.Helper()
	ln := listenLoopback(t)
	cfg := Config{Listener: ln}
	if mod != nil {
		mod(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		_ = ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// settledGoroutines waits until the goroutine count stops changing, so a
// baseline is not inflated by goroutines of an earlier test still exiting.
func settledGoroutines() int {
	prev := runtime.NumGoroutine()
	for range 50 {
		time.Sleep(50 * time.Millisecond)
		n := runtime.NumGoroutine()
		if n == prev {
			return n
		}
		prev = n
	}
	return prev
}

// checkGoroutines waits for the goroutine count to come back to base+slack
// and dumps all stacks if it does not.
func checkGoroutines(t testing.TB, base, slack int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		n := runtime.NumGoroutine()
		if n <= base+slack {
			return
		}
		if time.Now().After(deadline) {
			var buf bytes.Buffer
			_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
			t.Fatalf("goroutines: %d now, %d before (slack %d); stacks:\n%s", n, base, slack, buf.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readUntilClosed reads c until it fails and returns what failed it, or
// fails the test if c stays open past the timeout.
func readUntilClosed(t testing.TB, c net.Conn) error {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
	_, err := io.Copy(io.Discard, c)
	if err == nil {
		err = io.EOF // io.Copy reports a clean EOF as nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", waitTimeout)
	}
	return err
}

func dialLayer(t testing.TB, l *Layer, to *Mux) net.Conn {
	t.Helper()
	c, err := l.Dial(raft.ServerAddress(to.Addr()), 5*time.Second)
	if err != nil {
		t.Fatalf("dial shard %d to %s: %v", l.Shard(), to.Addr(), err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// acceptWithin accepts on l, failing the test if nothing arrives in time.
func acceptWithin(t testing.TB, l *Layer) net.Conn {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := l.Accept()
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("accept shard %d: %v", l.Shard(), r.err)
		}
		t.Cleanup(func() { _ = r.c.Close() })
		return r.c
	case <-time.After(waitTimeout):
		_ = l.Close() // unblock the goroutine above
		t.Fatalf("accept shard %d: nothing within %v", l.Shard(), waitTimeout)
		return nil
	}
}

func echoOnce(t testing.TB, dialer, acceptor net.Conn, msg string) {
	t.Helper()
	if _, err := dialer.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	_ = acceptor.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := io.ReadFull(acceptor, buf); err != nil {
		t.Fatal(err)
	}
	if _, err := acceptor.Write(buf); err != nil {
		t.Fatal(err)
	}
	_ = dialer.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := io.ReadFull(dialer, buf); err != nil {
		t.Fatal(err)
	}
	if string(buf) != msg {
		t.Fatalf("echo: got %q, want %q", buf, msg)
	}
}

func TestLayerDialAccept(t *testing.T) {
	a, b := newTestMux(t, nil), newTestMux(t, nil)
	la, lb := a.Layer(1), b.Layer(1)
	other := b.Layer(2)

	c := dialLayer(t, la, b)
	s := acceptWithin(t, lb)
	echoOnce(t, c, s, "hello shard 1")

	// Raft logs and compares addresses: both ends report advertised node
	// addresses, not the session's ephemeral port.
	if got := s.RemoteAddr().String(); got != a.Addr() {
		t.Errorf("accepted RemoteAddr = %q, want %q", got, a.Addr())
	}
	if got := s.LocalAddr().String(); got != b.Addr() {
		t.Errorf("accepted LocalAddr = %q, want %q", got, b.Addr())
	}
	if got := lb.Addr().String(); got != b.Addr() {
		t.Errorf("Layer.Addr = %q, want %q", got, b.Addr())
	}

	// The stream went to shard 1 only.
	if n := len(other.queue); n != 0 {
		t.Errorf("shard 2 queue has %d streams, want 0", n)
	}

	// Same Layer while open.
	if a.Layer(1) != la {
		t.Error("Layer(1) returned a different layer while the first is open")
	}
}

func TestConcurrentDialsShareOneSession(t *testing.T) {
	a, b := newTestMux(t, nil), newTestMux(t, nil)
	const shards, perShard = 16, 4
	for s := range uint32(shards) {
		b.Layer(s)
	}
	var wg sync.WaitGroup
	errs := make(chan error, shards*perShard)
	conns := make(chan net.Conn, shards*perShard)
	for s := range uint32(shards) {
		l := a.Layer(s)
		for range perShard {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := l.Dial(raft.ServerAddress(b.Addr()), 5*time.Second)
				if err != nil {
					errs <- err
					return
				}
				conns <- c
			}()
		}
	}
	wg.Wait()
	close(errs)
	close(conns)
	for err := range errs {
		t.Error(err)
	}
	n := 0
	for c := range conns {
		n++
		t.Cleanup(func() { _ = c.Close() })
	}
	if n != shards*perShard {
		t.Fatalf("%d streams dialed, want %d", n, shards*perShard)
	}
	eventually(t, "streams accepted", func() error {
		total := 0
		for s := range uint32(shards) {
			total += len(b.Layer(s).queue)
		}
		if total != shards*perShard {
			return fmt.Errorf("%d streams queued on b, want %d", total, shards*perShard)
		}
		return nil
	})
	if st := a.Stats(); st.Outgoing != 1 || st.Incoming != 0 {
		t.Errorf("a: %+v; want exactly one outgoing session", st)
	}
	if st := b.Stats(); st.Incoming != 1 || st.Outgoing != 0 {
		t.Errorf("b: %+v; want exactly one incoming session", st)
	}
	if st := a.Stats(); st.Peers[b.Addr()].Streams != shards*perShard {
		t.Errorf("a: %d streams to b, want %d", st.Peers[b.Addr()].Streams, shards*perShard)
	}
}

func TestStreamHeldUntilLayerExists(t *testing.T) {
	a := newTestMux(t, nil)
	b := newTestMux(t, nil)
	c := dialLayer(t, a.Layer(7), b)
	if _, err := c.Write([]byte("early")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "stream held on b", func() error {
		if h := b.Stats().Held; h != 1 {
			return fmt.Errorf("held = %d, want 1", h)
		}
		return nil
	})
	s := acceptWithin(t, b.Layer(7))
	buf := make([]byte, 5)
	_ = s.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "early" {
		t.Fatalf("read %q, %v; want \"early\"", buf, err)
	}
	if h := b.Stats().Held; h != 0 {
		t.Errorf("held = %d after Layer, want 0", h)
	}
}

func TestHeldStreamExpires(t *testing.T) {
	a := newTestMux(t, nil)
	b := newTestMux(t, func(c *Config) { c.HoldTimeout = 100 * time.Millisecond })
	c := dialLayer(t, a.Layer(8), b)
	readUntilClosed(t, c)
	eventually(t, "held stream dropped", func() error {
		if h := b.Stats().Held; h != 0 {
			return fmt.Errorf("held = %d, want 0", h)
		}
		return nil
	})
}

func TestAcceptQueueFullClosesNewStreams(t *testing.T) {
	a := newTestMux(t, nil)
	b := newTestMux(t, func(c *Config) { c.AcceptQueue = 2 })
	lb := b.Layer(3)
	la := a.Layer(3)
	const n = 5
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dialLayer(t, la, b)
		// Tag each stream so the accepted ones can be matched up below.
		if _, err := conns[i].Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Exactly n-AcceptQueue streams are closed by b; watch them all.
	closedCh := make(chan int, n)
	for i, c := range conns {
		go func() {
			_, _ = io.Copy(io.Discard, c)
			closedCh <- i
		}()
	}
	closed := map[int]bool{}
	timeout := time.After(waitTimeout)
	for len(closed) < n-2 {
		select {
		case i := <-closedCh:
			closed[i] = true
		case <-timeout:
			t.Fatalf("only %d of %d overflow streams closed", len(closed), n-2)
		}
	}
	if q := len(lb.queue); q != 2 {
		t.Fatalf("queue holds %d streams, want 2", q)
	}
	// The queued ones are exactly the others, and work.
	for range 2 {
		s := acceptWithin(t, lb)
		tag := make([]byte, 1)
		_ = s.SetReadDeadline(time.Now().Add(waitTimeout))
		if _, err := io.ReadFull(s, tag); err != nil {
			t.Fatal(err)
		}
		if closed[int(tag[0])] {
			t.Errorf("stream %d both closed and queued", tag[0])
		}
	}
}

func TestLayerCloseLeavesMuxAndOtherShards(t *testing.T) {
	a, b := newTestMux(t, nil), newTestMux(t, nil)
	lb1, lb2 := b.Layer(1), b.Layer(2)
	c1 := dialLayer(t, a.Layer(1), b)
	s1 := acceptWithin(t, lb1)
	echoOnce(t, c1, s1, "x")

	// A reader blocked on an accepted stream, as raft's connection handler
	// is, must be woken by Layer.Close.
	readErr := make(chan error, 1)
	go func() {
		_, err := s1.Read(make([]byte, 1))
		readErr <- err
	}()

	if err := lb1.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-readErr:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("blocked Read returned %v, want net.ErrClosed", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Layer.Close did not wake a reader blocked on its stream")
	}
	if _, err := lb1.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
	if _, err := lb1.Dial(raft.ServerAddress(a.Addr()), time.Second); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Dial after Close: %v, want net.ErrClosed", err)
	}
	if err := lb1.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// The peer sees its stream end.
	readUntilClosed(t, c1)

	// Shard 2 still works over the same session.
	c2 := dialLayer(t, a.Layer(2), b)
	echoOnce(t, c2, acceptWithin(t, lb2), "y")

	// Shard 1 can be reopened.
	lb1b := b.Layer(1)
	if lb1b == lb1 {
		t.Fatal("Layer(1) after Close returned the closed layer")
	}
	c3 := dialLayer(t, a.Layer(1), b)
	echoOnce(t, c3, acceptWithin(t, lb1b), "z")

	if st := a.Stats(); st.Sessions != 1 {
		t.Errorf("a has %d sessions, want 1", st.Sessions)
	}
}

func TestBlock(t *testing.T) {
	a, b := newTestMux(t, nil), newTestMux(t, nil)
	la, lb := a.Layer(1), b.Layer(1)
	c := dialLayer(t, la, b)
	echoOnce(t, c, acceptWithin(t, lb), "before")
	// b -> a session too, so both directions exist.
	cb := dialLayer(t, lb, a)
	echoOnce(t, cb, acceptWithin(t, la), "back")

	a.Block(b.Addr(), true)
	if st := a.Stats(); st.Sessions != 0 {
		t.Errorf("a still has sessions after Block: %+v", st)
	}
	readUntilClosed(t, c)
	if _, err := la.Dial(raft.ServerAddress(b.Addr()), time.Second); !errors.Is(err, ErrBlocked) {
		t.Errorf("a->b Dial while blocked: %v, want ErrBlocked", err)
	}
	// b is refused at the hello, so its Dial fails instead of returning a
	// stream on a session that is already dead.
	eventually(t, "b's dial to a refused", func() error {
		c, err := lb.Dial(raft.ServerAddress(a.Addr()), time.Second)
		if err == nil {
			_ = c.Close()
			return errors.New("dial succeeded")
		}
		if !strings.Contains(err.Error(), "rejected") {
			return err
		}
		return nil
	})

	a.Block(b.Addr(), false)
	c2 := dialLayer(t, la, b)
	echoOnce(t, c2, acceptWithin(t, lb), "after")
	c3 := dialLayer(t, lb, a)
	echoOnce(t, c3, acceptWithin(t, la), "after back")
}

func TestDialHonorsTimeout(t *testing.T) {
	// A peer that accepts TCP but never answers the hello.
	ln := listenLoopback(t)
	defer func() { _ = ln.Close() }()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			_ = c.Close()
		}
		mu.Unlock()
	}()

	a := newTestMux(t, nil)
	l := a.Layer(1)
	start := time.Now()
	_, err := l.Dial(raft.ServerAddress(ln.Addr().String()), 300*time.Millisecond)
	if err == nil {
		t.Fatal("dial to a silent peer succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("dial took %v with a 300ms timeout", d)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("dial error %v is not a timeout", err)
	}
}

func TestCustomDialAndFailure(t *testing.T) {
	b := newTestMux(t, nil)
	var calls int
	var mu sync.Mutex
	fail := true
	a := newTestMux(t, func(c *Config) {
		c.Dial = func(addr string, timeout time.Duration) (net.Conn, error) {
			mu.Lock()
			calls++
			f := fail
			mu.Unlock()
			if f {
				return nil, errors.New("injected partition")
			}
			return net.DialTimeout("tcp", addr, timeout)
		}
	})
	la, lb := a.Layer(1), b.Layer(1)
	if _, err := la.Dial(raft.ServerAddress(b.Addr()), time.Second); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("dial through failing Dial: %v", err)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	c := dialLayer(t, la, b)
	echoOnce(t, c, acceptWithin(t, lb), "ok")
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 {
		t.Errorf("Dial called %d times, want 2", calls)
	}
}

func TestBadHellos(t *testing.T) {
	m := newTestMux(t, nil)
	lm := m.Layer(1)
	longLen := append([]byte(helloMagic), 0xff, 0xff)
	zeroLen := append([]byte(helloMagic), 0, 0)
	for name, payload := range map[string][]byte{
		"junk":      []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"bad magic": []byte("FGMUX9\x00\x05a:123"),
		"huge len":  longLen,
		"zero len":  zeroLen,
	} {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, m.Addr())
			defer func() { _ = c.Close() }()
			if _, err := c.Write(payload); err != nil {
				t.Fatal(err)
			}
			readUntilClosed(t, c)
		})
	}

	// A valid hello followed by bytes that are not yamux frames: the
	// session dies and is forgotten.
	t.Run("junk after hello", func(t *testing.T) {
		c := dialRaw(t, m.Addr())
		defer func() { _ = c.Close() }()
		hello, _ := encodeHello("junk-peer:1")
		if _, err := c.Write(hello); err != nil {
			t.Fatal(err)
		}
		ack := make([]byte, 1)
		_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
		if _, err := io.ReadFull(c, ack); err != nil || ack[0] != helloAccepted {
			t.Fatalf("ack %v, %v", ack, err)
		}
		if _, err := c.Write(bytes.Repeat([]byte{0xAB}, 64)); err != nil {
			t.Fatal(err)
		}
		readUntilClosed(t, c)
		eventually(t, "junk session forgotten", func() error {
			if p, ok := m.Stats().Peers["junk-peer:1"]; ok {
				return fmt.Errorf("still tracked: %+v", p)
			}
			return nil
		})
	})

	// A real yamux client whose streams misbehave: a truncated shard id
	// and a stream that never sends one must not wedge the session.
	t.Run("truncated shard id", func(t *testing.T) {
		m2 := newTestMux(t, func(c *Config) { c.DialTimeout = 300 * time.Millisecond })
		c := dialRaw(t, m2.Addr())
		hello, _ := encodeHello("odd-peer:1")
		if _, err := c.Write(hello); err != nil {
			t.Fatal(err)
		}
		ack := make([]byte, 1)
		if _, err := io.ReadFull(c, ack); err != nil {
			t.Fatal(err)
		}
		ycfg := yamux.DefaultConfig()
		ycfg.LogOutput = io.Discard
		sess, err := yamux.Client(c, ycfg)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = sess.Close() }()
		s1, err := sess.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s1.Write([]byte{0, 0}); err != nil { // half a shard id
			t.Fatal(err)
		}
		s2, err := sess.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s2.Write(encodeShard(1)); err != nil {
			t.Fatal(err)
		}
		// s2 is delivered although s1 stalls.
		acc := acceptWithin(t, m2.Layer(1))
		echoOnce(t, s2, acc, "fine")
		// s1 is closed once the header deadline passes.
		readUntilClosed(t, s1)
	})

	// The original mux still works.
	a := newTestMux(t, nil)
	c := dialLayer(t, a.Layer(1), m)
	echoOnce(t, c, acceptWithin(t, lm), "still ok")
}

func TestPeerOpeningStreamOnDialedSessionIsRefused(t *testing.T) {
	// Only dialers open streams. Simulate a peer that violates this by
	// accepting our session with a yamux server and opening a stream back.
	ln := listenLoopback(t)
	defer func() { _ = ln.Close() }()
	stop := make(chan struct{})
	got := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var sess *yamux.Session
		got <- func() error {
			c, err := ln.Accept()
			if err != nil {
				return fmt.Errorf("accept: %w", err)
			}
			if _, err := readHello(c); err != nil {
				return fmt.Errorf("hello: %w", err)
			}
			if _, err := c.Write([]byte{helloAccepted}); err != nil {
				return fmt.Errorf("ack: %w", err)
			}
			ycfg := yamux.DefaultConfig()
			ycfg.LogOutput = io.Discard
			sess, _ = yamux.Server(c, ycfg)
			st, err := sess.OpenStream()
			if err != nil {
				return fmt.Errorf("open: %w", err)
			}
			_, _ = st.Write(encodeShard(1))
			_ = st.SetReadDeadline(time.Now().Add(waitTimeout))
			if _, err := io.Copy(io.Discard, st); err != nil {
				return fmt.Errorf("rogue stream not closed cleanly: %w", err)
			}
			return nil
		}()
		// Keep the session up until the test is done with it.
		<-stop
		if sess != nil {
			_ = sess.Close()
		}
	}()
	defer wg.Wait()
	defer close(stop)

	a := newTestMux(t, nil)
	la := a.Layer(1)
	c, err := la.Dial(raft.ServerAddress(ln.Addr().String()), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("rogue stream not closed")
	}
	if q := len(la.queue); q != 0 {
		t.Errorf("rogue stream was queued on the layer")
	}
}

type fakeListener struct{ addr net.Addr }

func (fakeListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (fakeListener) Close() error              { return nil }
func (f fakeListener) Addr() net.Addr          { return f.addr }

func TestNewRejectsUnadvertisableAddress(t *testing.T) {
	ln := fakeListener{&net.TCPAddr{IP: net.IPv4zero, Port: 7000}}
	if _, err := New(Config{Listener: ln}); err == nil {
		t.Fatal("New accepted 0.0.0.0 without Advertise")
	}
	m, err := New(Config{Listener: ln, Advertise: "10.1.2.3:7000"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Close() }()
	if m.Addr() != "10.1.2.3:7000" || m.Layer(1).Addr().String() != "10.1.2.3:7000" {
		t.Errorf("advertised address not used: %s / %s", m.Addr(), m.Layer(1).Addr())
	}
	if _, err := New(Config{}); err == nil {
		t.Fatal("New accepted a nil listener")
	}
}

func TestCloseStopsEverything(t *testing.T) {
	base := settledGoroutines()
	a := newTestMux(t, nil)
	b := newTestMux(t, nil)
	var conns []net.Conn
	for s := range uint32(4) {
		la, lb := a.Layer(s), b.Layer(s)
		c := dialLayer(t, la, b)
		acc := acceptWithin(t, lb)
		echoOnce(t, c, acc, "x")
		c2 := dialLayer(t, lb, a)
		acc2 := acceptWithin(t, la)
		echoOnce(t, c2, acc2, "y")
		conns = append(conns, c, acc, c2, acc2)
	}
	// A held stream and a half-open TCP connection must not delay Close.
	dialLayer(t, a.Layer(99), b)
	raw := dialRaw(t, b.Addr())
	defer func() { _ = raw.Close() }()

	accepted := make(chan error, 1)
	lb := b.Layer(50)
	go func() {
		_, err := lb.Accept()
		accepted <- err
	}()

	done := make(chan struct{})
	go func() {
		_ = a.Close()
		_ = b.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("Close hung")
	}
	if err := <-accepted; !errors.Is(err, net.ErrClosed) {
		t.Errorf("pending Accept returned %v, want net.ErrClosed", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, c := range conns {
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Error("stream readable after Close")
		}
	}
	if _, err := a.Layer(0).Dial(raft.ServerAddress(b.Addr()), time.Second); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Dial after Close: %v, want net.ErrClosed", err)
	}
	if _, err := a.Layer(123).Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on a layer made after Close: %v, want net.ErrClosed", err)
	}
	if _, err := net.DialTimeout("tcp", b.Addr(), time.Second); err == nil {
		t.Error("listener still accepting after Close")
	}
	if st := a.Stats(); st.Sessions != 0 || st.Layers != 0 || st.Held != 0 {
		t.Errorf("stats after Close: %+v", st)
	}
	_ = raw.Close()
	checkGoroutines(t, base, 2)
}
