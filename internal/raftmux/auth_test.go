package raftmux

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/followgraph/followgraph/internal/certs"
	"github.com/hashicorp/raft"
)

// refusals records OnRefused reasons.
type refusals struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *refusals) record(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = make(map[string]int)
	}
	r.n[reason]++
}

func (r *refusals) snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.n))
	for k, v := range r.n {
		out[k] = v
	}
	return out
}

func (r *refusals) count(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[reason]
}

// waitFor waits until reason was recorded at least once.
func (r *refusals) waitFor(t testing.TB, reason string) {
	t.Helper()
	eventually(t, "refusal "+reason, func() error {
		if r.count(reason) == 0 {
			return fmt.Errorf("recorded %v", r.snapshot())
		}
		return nil
	})
}

func newCA(t testing.TB, name string) *certs.Authority {
	t.Helper()
	ca, err := certs.NewAuthority(name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// writeMaterial writes a certificate, its key and a CA into a temporary
// directory and returns the three paths.
func writeMaterial(t testing.TB, ca *certs.Authority, r certs.Request, trust []byte) (certFile, keyFile, caFile string) {
	t.Helper()
	dir := t.TempDir()
	c, k, err := ca.Issue(r)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err = certs.WriteFiles(dir, "peer", c, k)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, trust, 0o644); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, caFile
}

// nodeAuth is node id's mutual TLS Auth: a certificate of ca, trusting
// trustCA (ca itself when nil).
func nodeAuth(t testing.TB, ca, trustCA *certs.Authority, id string) *Auth {
	t.Helper()
	if trustCA == nil {
		trustCA = ca
	}
	certFile, keyFile, caFile := writeMaterial(t, ca, certs.Node(id, []string{"127.0.0.1"}, time.Hour), trustCA.CertPEM())
	a, err := NewMutualTLSAuth(certFile, keyFile, caFile, id)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// rawAuth is a mutual TLS Auth over any certificate of ca, bypassing
// NewMutualTLSAuth's checks of our own certificate (to play a peer with a
// certificate the other side must refuse).
func rawAuth(t testing.TB, ca *certs.Authority, r certs.Request, trust *certs.Authority) *Auth {
	t.Helper()
	certFile, keyFile, caFile := writeMaterial(t, ca, r, trust.CertPEM())
	files, err := certs.NewReloading(certFile, keyFile, caFile)
	if err != nil {
		t.Fatal(err)
	}
	return &Auth{mode: modeMutualTLS, nodeID: r.Name, files: files}
}

func secretAuth(t testing.TB, secret string) *Auth {
	t.Helper()
	a, err := NewSecretAuth([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// authMux is a test Mux with auth, recording its refusals.
func authMux(t testing.TB, a *Auth, nodeAt func(string) (string, bool)) (*Mux, *refusals) {
	t.Helper()
	r := &refusals{}
	m := newTestMux(t, func(c *Config) {
		c.Auth, c.NodeAt, c.OnRefused = a, nodeAt, r.record
		c.DialTimeout = 2 * time.Second
	})
	return m, r
}

// tryDial dials shard 1 of to from m and returns the error (closing any
// connection).
func tryDial(m, to *Mux) error {
	c, err := m.Layer(1).Dial(raft.ServerAddress(to.Addr()), 2*time.Second)
	if err == nil {
		_ = c.Close()
	}
	return err
}

const (
	secretA = "0123456789abcdef0123456789abcdef-A"
	secretB = "0123456789abcdef0123456789abcdef-B"
)

func TestMutualTLSStreamsFlow(t *testing.T) {
	ca := newCA(t, "cluster")
	a, _ := authMux(t, nodeAuth(t, ca, nil, "a"), nil)
	var b *Mux
	// Both sides pin: a expects b at b's address and b expects a at a's.
	b, rb := authMux(t, nodeAuth(t, ca, nil, "b"), func(addr string) (string, bool) {
		return "a", addr == a.Addr()
	})
	echoOnce(t, dialLayer(t, a.Layer(1), b), acceptWithin(t, b.Layer(1)), "over mtls")
	echoOnce(t, dialLayer(t, b.Layer(2), a), acceptWithin(t, a.Layer(2)), "and back")
	if n := rb.count(RefusedWrongNode); n != 0 {
		t.Fatalf("%d wrong_node refusals", n)
	}
}

func TestRaftOverMutualTLSAndSecret(t *testing.T) {
	ca := newCA(t, "cluster")
	for name, mk := range map[string]func(i int) *Auth{
		"mtls":   func(i int) *Auth { return nodeAuth(t, ca, nil, fmt.Sprintf("n%d", i+1)) },
		"secret": func(int) *Auth { return secretAuth(t, secretA) },
	} {
		t.Run(name, func(t *testing.T) {
			c := newClusterWith(t, 2, func(i int, cfg *Config) { cfg.Auth = mk(i) })
			for s := range 2 {
				c.waitLeader(s, c.nodes)
			}
			c.applyAll("k", 20, c.nodes)
			c.waitConverged(20, c.nodes)
		})
	}
}

func TestMutualTLSOtherCARefused(t *testing.T) {
	ca, other := newCA(t, "cluster"), newCA(t, "other")
	good, rGood := authMux(t, nodeAuth(t, ca, nil, "good"), nil)

	// A dialer with a node certificate of another CA (trusting ours).
	bad, rBad := authMux(t, rawAuth(t, other, certs.Node("bad", nil, time.Hour), ca), nil)
	err := tryDial(bad, good)
	if !errors.Is(err, ErrRefusedByPeer) {
		t.Fatalf("dial with another CA's certificate: %v, want ErrRefusedByPeer", err)
	}
	rGood.waitFor(t, RefusedCertificate)

	// An acceptor with another CA's certificate: the dialer refuses it.
	err = tryDial(good, bad)
	if !errors.Is(err, ErrPeerCertificate) {
		t.Fatalf("dial to a peer of another CA: %v, want ErrPeerCertificate", err)
	}
	if rGood.count(RefusedCertificate) < 2 {
		t.Fatalf("dialer side: refusals %v", rGood.snapshot())
	}
	_ = rBad
}

func TestMutualTLSExpiredCertificateRefused(t *testing.T) {
	ca := newCA(t, "cluster")
	good, r := authMux(t, nodeAuth(t, ca, nil, "good"), nil)
	old, _ := authMux(t, rawAuth(t, ca, certs.Node("old", nil, -time.Minute), ca), nil)
	if err := tryDial(old, good); !errors.Is(err, ErrRefusedByPeer) {
		t.Fatalf("dial with an expired certificate: %v", err)
	}
	r.waitFor(t, RefusedCertificate)
}

func TestMutualTLSCertificateWithoutNodeURIRefused(t *testing.T) {
	ca := newCA(t, "cluster")
	good, r := authMux(t, nodeAuth(t, ca, nil, "good"), nil)
	client, _ := authMux(t, rawAuth(t, ca, certs.ClientCert("admin", time.Hour), ca), nil)
	if err := tryDial(client, good); !errors.Is(err, ErrRefusedByPeer) {
		t.Fatalf("dial with a client certificate: %v", err)
	}
	r.waitFor(t, RefusedNoNodeID)
	if err := tryDial(good, client); !errors.Is(err, ErrNoNodeID) {
		t.Fatalf("dial to a peer with a client certificate: %v, want ErrNoNodeID", err)
	}

	// NewMutualTLSAuth refuses such a certificate, and one naming
	// another node, for ourselves.
	certFile, keyFile, caFile := writeMaterial(t, ca, certs.ClientCert("admin", time.Hour), ca.CertPEM())
	if _, err := NewMutualTLSAuth(certFile, keyFile, caFile, "admin"); !errors.Is(err, ErrNodeMismatch) {
		t.Fatalf("own client certificate: %v", err)
	}
	certFile, keyFile, caFile = writeMaterial(t, ca, certs.Node("n1", nil, time.Hour), ca.CertPEM())
	if _, err := NewMutualTLSAuth(certFile, keyFile, caFile, "n2"); !errors.Is(err, ErrNodeMismatch) {
		t.Fatalf("own certificate for another node: %v", err)
	}
}

func TestMutualTLSWrongNodeRefused(t *testing.T) {
	ca := newCA(t, "cluster")
	b, rb := authMux(t, nodeAuth(t, ca, nil, "b"), nil)

	// The dialer: gossip says node "x" is at b's address, b's certificate
	// says "b".
	a, ra := authMux(t, nodeAuth(t, ca, nil, "a"), func(addr string) (string, bool) {
		return "x", addr == b.Addr()
	})
	if err := tryDial(a, b); !errors.Is(err, ErrWrongNode) {
		t.Fatalf("dial to the wrong node: %v, want ErrWrongNode", err)
	}
	if ra.count(RefusedWrongNode) != 1 {
		t.Fatalf("dialer refusals %v", ra.snapshot())
	}

	// The acceptor: gossip says "z" is at a's advertised address, a's
	// certificate says "a". a gets no accept byte.
	c, rc := authMux(t, nodeAuth(t, ca, nil, "c"), func(addr string) (string, bool) {
		return "z", addr == a.Addr()
	})
	if err := tryDial(a, c); !errors.Is(err, ErrRefusedByPeer) {
		t.Fatalf("dial from an address pinned to another node: %v", err)
	}
	rc.waitFor(t, RefusedWrongNode)
	// An unknown address is let in.
	if err := tryDial(b, c); err != nil {
		t.Fatalf("dial from an address gossip does not know: %v", err)
	}
	_ = rb
}

// TestPlaintextHelloToTLSPort: an FGMUX1 hello in the clear gets no byte
// back, the connection closes, and the refusal is counted as not_tls.
func TestPlaintextHelloToTLSPort(t *testing.T) {
	ca := newCA(t, "cluster")
	for name, a := range map[string]*Auth{"mtls": nodeAuth(t, ca, nil, "a"), "secret": secretAuth(t, secretA)} {
		t.Run(name, func(t *testing.T) {
			m, r := authMux(t, a, nil)
			c := dialRaw(t, m.Addr())
			defer func() { _ = c.Close() }()
			hello, _ := encodeHello("plain-peer:1")
			if _, err := c.Write(hello); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(waitTimeout))
			got, err := io.ReadAll(c)
			if len(got) != 0 {
				t.Fatalf("the TLS port answered a plaintext hello with %x", got)
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("connection still open")
			}
			r.waitFor(t, RefusedNotTLS)
			if _, ok := m.Stats().Peers["plain-peer:1"]; ok {
				t.Fatal("plaintext peer tracked")
			}
		})
	}
}

func TestHandshakeTimeout(t *testing.T) {
	r := &refusals{}
	m := newTestMux(t, func(c *Config) {
		c.Auth, c.OnRefused, c.DialTimeout = secretAuth(t, secretA), r.record, 200*time.Millisecond
	})
	c := dialRaw(t, m.Addr())
	defer func() { _ = c.Close() }()
	readUntilClosed(t, c)
	r.waitFor(t, RefusedTimeout)
}

func TestSecretModeWorks(t *testing.T) {
	a, _ := authMux(t, secretAuth(t, secretA), nil)
	b, _ := authMux(t, secretAuth(t, secretA), nil)
	echoOnce(t, dialLayer(t, a.Layer(1), b), acceptWithin(t, b.Layer(1)), "with secret")
	echoOnce(t, dialLayer(t, b.Layer(1), a), acceptWithin(t, a.Layer(1)), "back")
}

func TestWrongSecretRefused(t *testing.T) {
	a, ra := authMux(t, secretAuth(t, secretA), nil)
	b, rb := authMux(t, secretAuth(t, secretB), nil)
	if err := tryDial(a, b); !errors.Is(err, ErrRefusedByPeer) {
		t.Fatalf("dial with the wrong secret: %v, want ErrRefusedByPeer", err)
	}
	rb.waitFor(t, RefusedBadSecret)
	if err := tryDial(b, a); !errors.Is(err, ErrRefusedByPeer) {
		t.Fatalf("dial back: %v", err)
	}
	ra.waitFor(t, RefusedBadSecret)

	// No secret at all: TLS, then a hello instead of a proof.
	noSecret := &Auth{mode: modeSecret, self: secretAuth(t, secretA).self}
	tc := tlsDial(t, a.Addr(), noSecret)
	hello, _ := encodeHello("x:1")
	_, _ = tc.Write(hello)
	if got, _ := io.ReadAll(tc); len(got) != 0 {
		t.Fatalf("answered %x", got)
	}
	eventually(t, "second bad_secret", func() error {
		if ra.count(RefusedBadSecret) < 2 {
			return errors.New("not yet")
		}
		return nil
	})
}

// tlsDial opens a TLS session to addr as a's dialer would, without any
// proof: the test then plays the protocol by hand.
func tlsDial(t testing.TB, addr string, a *Auth) *tls.Conn {
	t.Helper()
	c := dialRaw(t, addr)
	tc := tls.Client(c, a.clientConfig(addr, nil))
	_ = tc.SetDeadline(time.Now().Add(waitTimeout))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tc.Close() })
	return tc
}

func exported(t testing.TB, tc *tls.Conn) []byte {
	t.Helper()
	cs := tc.ConnectionState()
	ekm, err := cs.ExportKeyingMaterial(exporterLabel, nil, exporterLen)
	if err != nil {
		t.Fatal(err)
	}
	return ekm
}

// TestReplayedProofRefused: a proof that opened one session is worthless
// on another, since it is bound to the first session's key material.
func TestReplayedProofRefused(t *testing.T) {
	auth := secretAuth(t, secretA)
	m, r := authMux(t, auth, nil)

	first := tlsDial(t, m.Addr(), auth)
	proof := encodeProof(auth.mac(labelDialer, exported(t, first)))
	if _, err := first.Write(proof); err != nil {
		t.Fatal(err)
	}
	if _, err := readProof(first); err != nil {
		t.Fatalf("the genuine proof was refused: %v", err)
	}

	second := tlsDial(t, m.Addr(), auth)
	if _, err := second.Write(proof); err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(second); len(got) != 0 {
		t.Fatalf("a replayed proof got %x", got)
	}
	r.waitFor(t, RefusedBadSecret)
}

// TestReflectedProofRefused: a fake acceptor that does not know the secret
// sends the dialer's own proof back; the direction labels make it fail.
func TestReflectedProofRefused(t *testing.T) {
	auth := secretAuth(t, secretA)
	ln := listenLoopback(t)
	defer func() { _ = ln.Close() }()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer func() { _ = c.Close() }()
		tc := tls.Server(c, auth.serverConfig())
		_ = tc.SetDeadline(time.Now().Add(waitTimeout))
		var p [proofLen]byte
		if _, err := io.ReadFull(tc, p[:]); err == nil {
			_, _ = tc.Write(p[:]) // reflect
		}
		_, _ = io.Copy(io.Discard, tc)
	}()
	m, r := authMux(t, auth, nil)
	_, err := m.Layer(1).Dial(raft.ServerAddress(ln.Addr().String()), 2*time.Second)
	if !errors.Is(err, ErrBadSecret) {
		t.Fatalf("dial to a reflecting acceptor: %v, want ErrBadSecret", err)
	}
	if r.count(RefusedBadSecret) != 1 {
		t.Fatalf("refusals %v", r.snapshot())
	}
	<-done

	// And the MACs of the two directions differ for the same session.
	ekm := bytes.Repeat([]byte{7}, exporterLen)
	if bytes.Equal(auth.mac(labelDialer, ekm), auth.mac(labelAcceptor, ekm)) {
		t.Fatal("dialer and acceptor proofs are equal")
	}
}

func TestSecretTooShort(t *testing.T) {
	if _, err := NewSecretAuth([]byte("short")); err == nil {
		t.Fatal("a 5-byte secret was taken")
	}
}

func TestReadProof(t *testing.T) {
	mac := bytes.Repeat([]byte{1}, proofMACLen)
	got, err := readProof(bytes.NewReader(encodeProof(mac)))
	if err != nil || !bytes.Equal(got[:], mac) {
		t.Fatalf("round trip: %x, %v", got, err)
	}
	for name, in := range map[string][]byte{
		"hello":     []byte("FGMUX1\x00\x03a:1"),
		"short":     []byte("FGAUTH1\x01\x02"),
		"empty":     nil,
		"bad magic": append([]byte("FGAUTH2"), mac...),
	} {
		if _, err := readProof(bytes.NewReader(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Garbage is refused after the magic, without waiting for a MAC.
	r := &oneShotReader{b: []byte("GET / H")}
	if _, err := readProof(r); !errors.Is(err, ErrBadSecret) {
		t.Fatalf("garbage: %v", err)
	}
}

// oneShotReader returns its bytes, then blocks the test (fails) if read
// again.
type oneShotReader struct {
	b    []byte
	read bool
}

func (r *oneShotReader) Read(p []byte) (int, error) {
	if r.read {
		return 0, errors.New("read past the magic")
	}
	r.read = true
	return copy(p, r.b), nil
}

func FuzzReadProof(f *testing.F) {
	f.Add(encodeProof(bytes.Repeat([]byte{0xAB}, proofMACLen)))
	f.Add([]byte("FGAUTH1"))
	f.Add([]byte("FGMUX1\x00\x05a:123"))
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0x10})
	f.Fuzz(func(t *testing.T, b []byte) {
		mac, err := readProof(bytes.NewReader(b))
		if err != nil {
			return
		}
		// Accepted: it must be exactly the magic and a MAC, the MAC
		// returned as sent.
		if len(b) < proofLen || string(b[:len(proofMagic)]) != proofMagic || !bytes.Equal(mac[:], b[len(proofMagic):proofLen]) {
			t.Fatalf("readProof(%x) = %x", b, mac)
		}
	})
}

func TestRefusalLogRateLimited(t *testing.T) {
	var l refusalLimiter
	t0 := time.Now()
	if n, ok := l.allow("x", t0); !ok || n != 0 {
		t.Fatalf("first: %d, %v", n, ok)
	}
	for i := range 5 {
		if _, ok := l.allow("x", t0.Add(time.Duration(i+1)*time.Second)); ok {
			t.Fatal("logged again within the interval")
		}
	}
	if _, ok := l.allow("y", t0.Add(time.Second)); !ok {
		t.Fatal("another reason is limited separately")
	}
	if n, ok := l.allow("x", t0.Add(refusalLogEvery+time.Second)); !ok || n != 5 {
		t.Fatalf("after the interval: %d suppressed, %v", n, ok)
	}
}

func TestRefusalReasonOfBadHello(t *testing.T) {
	m, r := authMux(t, nil, nil)
	c := dialRaw(t, m.Addr())
	defer func() { _ = c.Close() }()
	_, _ = c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	readUntilClosed(t, c)
	r.waitFor(t, RefusedBadHello)
}

// TestMutualTLSReloadsCA: the CA file is re-read when it changes, so a CA
// rotation (trust both, then switch certificates) needs no restart.
func TestMutualTLSReloadsCA(t *testing.T) {
	oldCA, newCA := newCA(t, "old"), newCA(t, "new")
	certFile, keyFile, caFile := writeMaterial(t, oldCA, certs.Node("b", nil, time.Hour), oldCA.CertPEM())
	auth, err := NewMutualTLSAuth(certFile, keyFile, caFile, "b")
	if err != nil {
		t.Fatal(err)
	}
	auth.files.CheckEvery = 0 // check the files at every handshake
	b, r := authMux(t, auth, nil)
	// c has a certificate of the new CA and trusts both.
	c, _ := authMux(t, rawAuth(t, newCA, certs.Node("c", nil, time.Hour), oldCA), nil)
	both := append(oldCA.CertPEM(), newCA.CertPEM()...)
	if err := tryDial(c, b); !errors.Is(err, ErrRefusedByPeer) {
		t.Fatalf("before the rotation: %v", err)
	}
	r.waitFor(t, RefusedCertificate)
	// The size changes too, so the check sees it even on a coarse mtime.
	if err := os.WriteFile(caFile, both, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := tryDial(c, b); err != nil {
		t.Fatalf("after b trusts the new CA too: %v", err)
	}
}
