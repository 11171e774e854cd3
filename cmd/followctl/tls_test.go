package main

import (
	"crypto/tls"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/followgraph/followgraph/cluster/clustertest"
	"github.com/followgraph/followgraph/internal/certs"
	"github.com/followgraph/followgraph/wire"
)

// tlsNode starts a node whose client port requires mutual TLS and writes
// ca.crt, admin.crt and admin.key into a directory it returns.
func tlsNode(t *testing.T) (addr, dir string) {
	t.Helper()
	dir = t.TempDir()
	ca, err := certs.NewAuthority("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := certs.WriteFiles(dir, "ca", ca.CertPEM(), []byte("unused")); err != nil {
		t.Fatal(err)
	}
	c, k, err := ca.Issue(certs.ClientCert("admin", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := certs.WriteFiles(dir, "admin", c, k); err != nil {
		t.Fatal(err)
	}
	server, err := ca.IssueTLS(certs.Node("node1", []string{"127.0.0.1"}, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	n := clustertest.Start(t, clustertest.Options{Server: func(c *wire.ServerConfig) {
		c.TLS = &tls.Config{Certificates: []tls.Certificate{server}, ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	}})
	return n.Addr, dir
}

func TestTLSFlags(t *testing.T) {
	addr, dir := tlsNode(t)
	ca, crt, key := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key")
	// Global flags before the command, the command's after.
	mustOK(t, "--tls-ca", ca, "--tls-cert", crt, "--tls-key", key, "--addr", addr, "follow", "a", "b", "--sync")
	if out := mustOK(t, "followers", "b", "--addr", addr, "--tls-ca", ca, "--tls-cert", crt, "--tls-key", key); !strings.Contains(out, "a") {
		t.Fatalf("followers over TLS: %q", out)
	}
	// From the environment.
	t.Setenv("FOLLOWCTL_TLS_CA", ca)
	t.Setenv("FOLLOWCTL_TLS_CERT", crt)
	t.Setenv("FOLLOWCTL_TLS_KEY", key)
	mustOK(t, "--addr", addr, "status")
	t.Setenv("FOLLOWCTL_TLS_CERT", "")
	t.Setenv("FOLLOWCTL_TLS_KEY", "")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "client certificate"},                                   // CA only: mutual TLS refuses it
		{[]string{"--tls-ca", ""}, wire.NotTLSMessage},                // plaintext
		{[]string{"--tls-server-name", "other"}, "--tls-server-name"}, // wrong name
		{[]string{"--tls-cert", crt}, "both its certificate and its key"},
	} {
		status, _, errOut := ctl(t, append([]string{"--addr", addr, "--timeout", "2s", "status"}, tc.args...)...)
		if status != exitFailed || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: status %d, stderr %q; want 1 and %q", tc.args, status, errOut, tc.want)
		}
	}
}

func TestTLSFlagsInHelp(t *testing.T) {
	out := mustOK(t, "help", "status")
	for _, f := range tlsFlags {
		if !strings.Contains(out, "--"+f+" ") {
			t.Errorf("help lacks --%s:\n%s", f, out)
		}
	}
}
