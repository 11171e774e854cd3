package certs

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// handshake runs a TLS handshake over loopback TCP (buffered, unlike
// net.Pipe, so an alert written by one side never blocks it) and returns
// both sides' errors.
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		done <- tls.Server(c, server).Handshake()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	tc := tls.Client(c, client)
	clientErr = tc.Handshake()
	if clientErr == nil {
		// In TLS 1.3 the server verifies the client's certificate after
		// the client's handshake returns: a read surfaces its verdict.
		tc.Read(make([]byte, 1))
	}
	c.Close()
	return <-done, clientErr
}

func writeCA(t *testing.T, dir, name string) *Authority {
	t.Helper()
	ca, err := NewAuthority(name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return ca
}

func issue(t *testing.T, ca *Authority, dir, name string, r Request) (string, string) {
	t.Helper()
	c, k, err := ca.Issue(r)
	if err != nil {
		t.Fatal(err)
	}
	cf, kf, err := WriteFiles(dir, name, c, k)
	if err != nil {
		t.Fatal(err)
	}
	return cf, kf
}

func TestMutualTLSWithIssuedCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := writeCA(t, dir, "ca")
	other := writeCA(t, dir, "other")
	nodeCrt, nodeKey := issue(t, ca, dir, "node1", Node("node1", []string{"localhost", "127.0.0.1"}, time.Hour))
	cliCrt, cliKey := issue(t, ca, dir, "alice", ClientCert("alice", time.Hour))
	strCrt, strKey := issue(t, other, dir, "mallory", ClientCert("mallory", time.Hour))

	srv, err := Server(nodeCrt, nodeKey, filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	good, err := Client(filepath.Join(dir, "ca.crt"), cliCrt, cliKey, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if se, ce := handshake(t, srv, good); se != nil || ce != nil {
		t.Fatalf("good client: server %v, client %v", se, ce)
	}
	stranger, err := Client(filepath.Join(dir, "ca.crt"), strCrt, strKey, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if se, _ := handshake(t, srv, stranger); se == nil {
		t.Fatal("a client certificate from another CA was accepted")
	}
	noCert, err := Client(filepath.Join(dir, "ca.crt"), "", "", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if se, _ := handshake(t, srv, noCert); se == nil {
		t.Fatal("a client without a certificate was accepted by a mutual-TLS server")
	}
	wrongName, err := Client(filepath.Join(dir, "ca.crt"), cliCrt, cliKey, "evil.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, ce := handshake(t, srv, wrongName); ce == nil || !strings.Contains(ce.Error(), "evil.example") {
		t.Fatalf("server-name mismatch: client error %v", ce)
	}
}

func TestIdentities(t *testing.T) {
	ca, err := NewAuthority("ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	n, err := ca.IssueTLS(Node("node-7", nil, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := NodeID(n.Leaf); !ok || id != "node-7" {
		t.Fatalf("NodeID = %q, %v", id, ok)
	}
	if _, ok := ClientName(n.Leaf); ok {
		t.Fatal("a node certificate names a client")
	}
	c, err := ca.IssueTLS(ClientCert("bob", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if name, ok := ClientName(c.Leaf); !ok || name != "bob" {
		t.Fatalf("ClientName = %q, %v", name, ok)
	}
	if _, ok := NodeID(c.Leaf); ok {
		t.Fatal("a client certificate names a node")
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	os.WriteFile(empty, []byte("not pem"), 0o644)
	if _, err := LoadPool(empty); err == nil {
		t.Fatal("a file without certificates loaded as a pool")
	}
	if _, err := LoadPool(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing CA file loaded")
	}
	if _, err := Client("", "a.crt", "", ""); err == nil {
		t.Fatal("a certificate without its key was accepted")
	}
	if _, err := Server(filepath.Join(dir, "x.crt"), filepath.Join(dir, "x.key"), ""); err == nil {
		t.Fatal("missing server key pair loaded")
	}
}

func TestLoadAuthorityIssuesUnderTheSameCA(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewAuthority("ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	cf, kf, err := WriteFiles(dir, "ca", ca.CertPEM(), k)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadAuthority(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := again.IssueTLS(ClientCert("bob", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(leaf.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("issued by the loaded CA, not trusted by the original: %v", err)
	}
	// A leaf certificate is not a CA.
	lc, lk := issue(t, ca, dir, "leaf", ClientCert("x", time.Hour))
	if _, err := LoadAuthority(lc, lk); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Fatalf("leaf as CA: %v", err)
	}
}
