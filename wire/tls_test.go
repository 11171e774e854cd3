package wire

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/internal/certs"
)

// tlsObserver counts failed TLS handshakes by reason.
type tlsObserver struct {
	nopObserver
	mu      sync.Mutex
	reasons map[string]int
}

func (o *tlsObserver) TLSHandshakeFailed(reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.reasons == nil {
		o.reasons = map[string]int{}
	}
	o.reasons[reason]++
}

// waitReason polls until reason was counted n times.
func (o *tlsObserver) waitReason(t *testing.T, reason string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		o.mu.Lock()
		got := o.reasons[reason]
		o.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			o.mu.Lock()
			defer o.mu.Unlock()
			t.Fatalf("reason %q counted %d times, want %d (all: %v)", reason, got, n, o.reasons)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testPKI is a CA, a server certificate for 127.0.0.1 and a client
// certificate, and a client certificate from another CA.
type testPKI struct {
	ca, other     *certs.Authority
	server        tls.Certificate
	client, alien tls.Certificate
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	var p testPKI
	var err error
	if p.ca, err = certs.NewAuthority("test-ca", time.Hour); err != nil {
		t.Fatal(err)
	}
	if p.other, err = certs.NewAuthority("other-ca", time.Hour); err != nil {
		t.Fatal(err)
	}
	if p.server, err = p.ca.IssueTLS(certs.Node("n1", []string{"127.0.0.1", "localhost"}, time.Hour)); err != nil {
		t.Fatal(err)
	}
	if p.client, err = p.ca.IssueTLS(certs.ClientCert("alice", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if p.alien, err = p.other.IssueTLS(certs.ClientCert("mallory", time.Hour)); err != nil {
		t.Fatal(err)
	}
	return &p
}

func (p *testPKI) serverConfig(mutual bool) *tls.Config {
	c := &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12}
	if mutual {
		c.ClientCAs, c.ClientAuth = p.ca.Pool(), tls.RequireAndVerifyClientCert
	}
	return c
}

func (p *testPKI) clientConfig(cert ...tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: p.ca.Pool(), ServerName: "127.0.0.1", Certificates: cert, MinVersion: tls.VersionTLS12}
}

// forcedClientConfig presents cert whatever CAs the server asks for (a Go
// client otherwise sends no certificate the server's CAs did not issue).
func (p *testPKI) forcedClientConfig(cert tls.Certificate) *tls.Config {
	c := p.clientConfig()
	c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	return c
}

// dialTLS connects over TLS and returns a raw conn on it, with the
// handshake's error.
func dialTLS(t *testing.T, s *Server, cfg *tls.Config) (*rawConn, error) {
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Client(c, cfg)
	err = tc.Handshake()
	return &rawConn{t: t, c: tc, br: bufio.NewReader(tc)}, err
}

func startTLSServer(t *testing.T, tc *tls.Config, mod func(*ServerConfig)) (*Server, *tlsObserver) {
	obs := &tlsObserver{}
	s := startServer(t, func(c *ServerConfig) {
		c.TLS, c.Observer = tc, obs
		if mod != nil {
			mod(c)
		}
	}, &fakeBackend{})
	return s, obs
}

func TestTLSServesTheProtocol(t *testing.T) {
	p := newTestPKI(t)
	s, _ := startTLSServer(t, p.serverConfig(false), nil)
	rc, err := dialTLS(t, s, p.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.hello(""); err != nil {
		t.Fatal(err)
	}
	rc.send(1, OpPing, AppendEmpty(nil))
	if id, _, err := rc.recv(); err != nil || id != 1 {
		t.Fatalf("ping over TLS: id %d, %v", id, err)
	}
}

// A plaintext client on a TLS port reads a plaintext 40004 that says TLS is
// required, and the connection closes: no hang, no silent close.
func TestPlaintextClientOnTLSPortIsToldWhy(t *testing.T) {
	p := newTestPKI(t)
	s, obs := startTLSServer(t, p.serverConfig(false), nil)
	rc := dialRaw(t, s)
	start := time.Now()
	err := rc.hello("")
	if !errors.Is(err, codes.ErrAuthFailed) || !strings.Contains(err.Error(), NotTLSMessage) {
		t.Fatalf("plaintext hello on a TLS port: %v", err)
	}
	if !rc.closed() {
		t.Fatal("connection open after the refusal")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("refusal took %v", d)
	}
	obs.waitReason(t, TLSFailureNotTLS, 1)
}

// A client that connects and sends nothing, or stops mid-handshake, or
// completes TLS but sends no hello, is dropped once HandshakeTimeout has
// passed since it connected.
func TestTLSHandshakeIsBounded(t *testing.T) {
	p := newTestPKI(t)
	const budget = 200 * time.Millisecond
	s, obs := startTLSServer(t, p.serverConfig(false), func(c *ServerConfig) { c.HandshakeTimeout = budget })

	silent := dialRaw(t, s)
	// A TLS record header announcing a ClientHello that never comes.
	stalled := dialRaw(t, s)
	stalled.c.Write([]byte{0x16, 0x03, 0x01, 0x01, 0x00, 0x01})
	for name, rc := range map[string]*rawConn{"silent": silent, "stalled": stalled} {
		start := time.Now()
		if !rc.closed() {
			t.Fatalf("%s connection kept open", name)
		}
		if d := time.Since(start); d > budget+time.Second {
			t.Fatalf("%s connection closed after %v", name, d)
		}
	}
	obs.waitReason(t, TLSFailureTimeout, 2)

	// TLS done, no hello: the same budget covers both.
	rc, err := dialTLS(t, s, p.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	if !rc.closed() {
		t.Fatal("TLS connection without a hello kept open")
	}
}

// With a client CA, a client without a certificate and one with a
// certificate of another CA are refused; one with a good certificate is
// served.
func TestMutualTLS(t *testing.T) {
	p := newTestPKI(t)
	s, obs := startTLSServer(t, p.serverConfig(true), nil)
	for _, tc := range []struct {
		name   string
		cfg    *tls.Config
		reason string
	}{
		{"no certificate", p.clientConfig(), TLSFailureNoCertificate},
		{"another CA", p.forcedClientConfig(p.alien), TLSFailureBadCertificate},
	} {
		rc, err := dialTLS(t, s, tc.cfg)
		if err == nil {
			// TLS 1.3: the client learns of the refusal at its first read.
			err = rc.hello("")
		}
		if err == nil {
			t.Fatalf("%s: served", tc.name)
		}
		obs.waitReason(t, tc.reason, 1)
	}
	rc, err := dialTLS(t, s, p.clientConfig(p.client))
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.hello(""); err != nil {
		t.Fatalf("good certificate: %v", err)
	}
}

// The connection limit's refusal is readable over TLS.
func TestTLSConnectionLimit(t *testing.T) {
	p := newTestPKI(t)
	s, _ := startTLSServer(t, p.serverConfig(false), func(c *ServerConfig) { c.MaxConns = 1 })
	a, err := dialTLS(t, s, p.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.hello(""); err != nil {
		t.Fatal(err)
	}
	b, err := dialTLS(t, s, p.clientConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.recv(); !errors.Is(err, codes.ErrOverloaded) {
		t.Fatalf("second connection: %v", err)
	}
}

func TestClassifyTLSError(t *testing.T) {
	for err, want := range map[error]string{
		tls.RecordHeaderError{Msg: "x"}:                         TLSFailureNotTLS,
		&tls.CertificateVerificationError{Err: errors.New("x")}: TLSFailureBadCertificate,
		errors.New("tls: client didn't provide a certificate"):  TLSFailureNoCertificate,
		io.EOF: TLSFailureClosed,
		&net.OpError{Op: "remote error", Err: errors.New("bad")}: TLSFailureClosed,
		errors.New("tls: no cipher suite supported by both"):     TLSFailureOther,
	} {
		if got := ClassifyTLSError(err); got != want {
			t.Errorf("%v: %s, want %s", err, got, want)
		}
	}
}

// scriptConn is a net.Conn that reads a fixed input, then EOF, and keeps
// what is written.
type scriptConn struct {
	net.Conn // nil: only the methods below are used
	in       *bytes.Reader
	out      bytes.Buffer
}

func (c *scriptConn) Read(b []byte) (int, error)       { return c.in.Read(b) }
func (c *scriptConn) Write(b []byte) (int, error)      { return c.out.Write(b) }
func (c *scriptConn) Close() error                     { return nil }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }
func (c *scriptConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *scriptConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }

// Whatever a client's first bytes, the server's TLS handshake on them
// ends (no panic, no hang), fails (no input here completes it), is
// counted, and a client that did not start a TLS record is answered with
// the plaintext 40004.
func FuzzTLSFirstBytes(f *testing.F) {
	f.Add([]byte{})
	f.Add(AppendHello(nil, Hello{Version: 1}))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00})
	f.Add([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28})
	f.Add([]byte{0x80, 0x2e, 0x01, 0x00, 0x02})
	p := newTestPKI(f)
	cfg := DefaultServerConfig()
	f.Fuzz(func(t *testing.T, in []byte) {
		obs := &tlsObserver{}
		cfg.Observer = obs
		s, err := NewServer(cfg, &fakeBackend{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		sc := &scriptConn{in: bytes.NewReader(in)}
		c := &conn{s: s, c: tls.Server(sc, p.serverConfig(false)), helloBy: time.Now().Add(time.Second)}
		if c.tlsHandshake(c.c.(*tls.Conn)) {
			t.Fatal("a handshake completed on fuzz input")
		}
		n := 0
		for _, v := range obs.reasons {
			n += v
		}
		if n != 1 {
			t.Fatalf("failures counted: %v", obs.reasons)
		}
		if obs.reasons[TLSFailureNotTLS] == 1 && len(in) >= 5 && in[0] != 0x16 && in[0] != 0x15 && in[0] != 0x80 {
			payload, err := ReadFrame(bytes.NewReader(sc.out.Bytes()), nil, 1<<16)
			if err != nil {
				t.Fatalf("no plaintext answer: %v (%q)", err, sc.out.Bytes())
			}
			if _, _, err := ParseResponseHeader(payload); !errors.Is(err, codes.ErrAuthFailed) {
				t.Fatalf("answer: %v", err)
			}
		}
	})
}
