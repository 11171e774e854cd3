package main

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/followgraph/followgraph/internal/certs"
)

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", file)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGencerts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	if err := run([]string{"-out", dir, "-node", "node1=node1,127.0.0.1", "-node", "node2=node2,127.0.0.1", "-client", "admin"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	pool, err := certs.LoadPool(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	// Node certificates: the node's URI, its hosts, server and client use.
	n1 := readCert(t, filepath.Join(dir, "node1.crt"))
	if id, ok := certs.NodeID(n1); !ok || id != "node1" {
		t.Fatalf("node1's ID: %q %v", id, ok)
	}
	if !slices.Equal(n1.DNSNames, []string{"node1"}) || len(n1.IPAddresses) != 1 || n1.IPAddresses[0].String() != "127.0.0.1" {
		t.Fatalf("node1's hosts: %v %v", n1.DNSNames, n1.IPAddresses)
	}
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := n1.Verify(x509.VerifyOptions{Roots: pool, DNSName: "node1", KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
			t.Fatalf("node1 for %v: %v", u, err)
		}
	}
	// Every pair loads as followd and followctl load them.
	if _, err := certs.Server(filepath.Join(dir, "node2.crt"), filepath.Join(dir, "node2.key"), filepath.Join(dir, "ca.crt")); err != nil {
		t.Fatal(err)
	}
	if _, err := certs.Client(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key"), ""); err != nil {
		t.Fatal(err)
	}
	if name, ok := certs.ClientName(readCert(t, filepath.Join(dir, "admin.crt"))); !ok || name != "admin" {
		t.Fatalf("admin's name: %q %v", name, ok)
	}
	for _, f := range []string{"ca.key", "node1.key", "admin.key"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, fi.Mode(), err)
		}
	}

	// A second run reuses the CA: a node added later is trusted.
	if err := run([]string{"-out", dir, "-node", "node3=node3"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := readCert(t, filepath.Join(dir, "node3.crt")).Verify(x509.VerifyOptions{Roots: pool, DNSName: "node3"}); err != nil {
		t.Fatalf("node3 under the first CA: %v", err)
	}
	// -new-ca replaces it.
	if err := run([]string{"-out", dir, "-new-ca", "-client", "other"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := readCert(t, filepath.Join(dir, "other.crt")).Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Fatal("a certificate of the new CA verifies under the old one")
	}
}

func TestGencertsRefusesBadLines(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"-out", dir},
		{"-out", dir, "-node", "node1"},
		{"-out", dir, "-node", "=h"},
		{"-out", dir, "-client", "ca"},
		{"-out", dir, "-client", "../x"},
		{"-out", dir, "-client", "a", "extra"},
	} {
		if err := run(args, io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		} else if strings.Contains(err.Error(), "panic") {
			t.Errorf("%q: %v", args, err)
		}
	}
}

// The gossip key and the cluster secret are random, private, and kept
// once written, so that every node of a cluster gets the same ones.
func TestGencertsKeys(t *testing.T) {
	dir := t.TempDir()
	if err := run([]string{"-out", dir, "-gossip-key", "-cluster-secret"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	read := func(name string, n int) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(raw) != n {
			t.Fatalf("%s: %d bytes, %v; want base64 of %d", name, len(raw), err, n)
		}
		if st, _ := os.Stat(filepath.Join(dir, name)); st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v", name, st.Mode())
		}
		return string(b)
	}
	g, s := read("gossip.key", 32), read("cluster.secret", 48)
	if _, err := os.Stat(filepath.Join(dir, "ca.crt")); err == nil {
		t.Fatal("keys alone made a CA")
	}
	if err := run([]string{"-out", dir, "-gossip-key", "-cluster-secret"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if read("gossip.key", 32) != g || read("cluster.secret", 48) != s {
		t.Fatal("a second run replaced the keys")
	}
	other := t.TempDir()
	if err := run([]string{"-out", other, "-gossip-key"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(other, "gossip.key")); string(b) == g {
		t.Fatal("two directories got the same gossip key")
	}
}
