package certs

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// rewrite writes b to file and moves its modification time forward, so
// that a check sees the change even where timestamps are coarse.
func rewrite(t *testing.T, file string, b []byte, bump int) {
	t.Helper()
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(time.Duration(bump) * time.Second)
	if err := os.Chtimes(file, at, at); err != nil {
		t.Fatal(err)
	}
}

func TestReloadingRotatesWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	ca1 := writeCA(t, dir, "ca1")
	ca2, err := NewAuthority("ca2", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	crt, key := issue(t, ca1, dir, "node", Node("a", []string{"127.0.0.1"}, time.Hour))
	caFile := filepath.Join(dir, "clients.crt")
	rewrite(t, caFile, ca1.CertPEM(), 0)
	r, err := NewReloading(crt, key, caFile)
	if err != nil {
		t.Fatal(err)
	}
	r.CheckEvery = 0
	var loadErrs, reloads int
	r.OnError = func(error) { loadErrs++ }
	r.OnReload = func() { reloads++ }
	server := r.Config(true)

	served := ""
	client := func(ca *Authority) *tls.Config {
		cc, err := ca.IssueTLS(ClientCert("alice", time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return &tls.Config{RootCAs: ca1.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cc, nil },
			VerifyConnection: func(cs tls.ConnectionState) error {
				served = cs.PeerCertificates[0].Subject.CommonName
				return nil
			}}
	}
	if se, ce := handshake(t, server, client(ca1)); se != nil || ce != nil || served != "a" {
		t.Fatalf("first certificate: server %v, client %v, served %q", se, ce, served)
	}

	// A new node certificate: served from the next handshake.
	c, k, err := ca1.Issue(Node("b", []string{"127.0.0.1"}, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	rewrite(t, crt, c, 1)
	rewrite(t, key, k, 1)
	if se, ce := handshake(t, server, client(ca1)); se != nil || ce != nil || served != "b" {
		t.Fatalf("after rotation: server %v, client %v, served %q", se, ce, served)
	}

	// A file that does not load: the previous material keeps serving.
	rewrite(t, crt, []byte("half written"), 2)
	if se, ce := handshake(t, server, client(ca1)); se != nil || ce != nil || served != "b" || loadErrs == 0 {
		t.Fatalf("bad file: server %v, client %v, served %q, load errors %d", se, ce, served, loadErrs)
	}
	rewrite(t, crt, c, 3)

	// The client CA: a client of CA 2 is refused until the file trusts it.
	if se, _ := handshake(t, server, client(ca2)); se == nil {
		t.Fatal("a client of CA 2 accepted before the CA file names it")
	}
	rewrite(t, caFile, append(ca1.CertPEM(), ca2.CertPEM()...), 4)
	if se, ce := handshake(t, server, client(ca2)); se != nil || ce != nil {
		t.Fatalf("client of CA 2 after the CA file names it: server %v, client %v", se, ce)
	}
	if reloads != 3 {
		t.Fatalf("reloads: %d, want 3", reloads)
	}
}

// Within CheckEvery the files are not looked at.
func TestReloadingChecksAtMostEvery(t *testing.T) {
	dir := t.TempDir()
	ca := writeCA(t, dir, "ca")
	crt, key := issue(t, ca, dir, "node", Node("a", []string{"127.0.0.1"}, time.Hour))
	r, err := NewReloading(crt, key, "")
	if err != nil {
		t.Fatal(err)
	}
	r.CheckEvery = time.Hour
	before := r.current().cert
	c, k, _ := ca.Issue(Node("b", nil, time.Hour))
	rewrite(t, crt, c, 1)
	rewrite(t, key, k, 1)
	if r.current().cert != before {
		t.Fatal("reloaded within CheckEvery")
	}
	r.mu.Lock()
	r.CheckEvery = 0
	r.mu.Unlock()
	if got := r.current().cert; got == before || got.Leaf.Subject.CommonName != "b" {
		t.Fatal("not reloaded once CheckEvery passed")
	}
}
