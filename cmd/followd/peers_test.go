package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/followgraph/followgraph/internal/certs"
	"github.com/followgraph/followgraph/internal/raftmux"
	"github.com/hashicorp/go-hclog"
)

// The peer flags go together as documented, and their files are checked
// before the node starts.
func TestPeerAuthFlags(t *testing.T) {
	dir := t.TempDir()
	ca, err := certs.NewAuthority("cluster", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, k, _ := ca.Issue(certs.Node("n1", []string{"127.0.0.1"}, time.Hour))
	crt, key, _ := certs.WriteFiles(dir, "n1", c, k)
	caFile := filepath.Join(dir, "ca.crt")
	os.WriteFile(caFile, ca.CertPEM(), 0o644)
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte(strings.Repeat("s", 40)+"\n"), 0o600)
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("  "+strings.Repeat("s", 31)+"\n\n"), 0o600)

	cl := []string{"--join", "127.0.0.1:1", "--node-id", "n1"}
	tlsArgs := []string{"--peer-cert", crt, "--peer-key", key, "--peer-ca", caFile}
	for name, args := range map[string][]string{
		"cert without ca": append(cl, "--peer-cert", crt, "--peer-key", key),
		"ca alone":        append(cl, "--peer-ca", caFile),
		"both modes":      append(append(cl, tlsArgs...), "--cluster-secret-file", secret),
		"single node":     {"--cluster-secret-file", secret},
	} {
		var ue usageError
		if _, err := parseFlags(args, io.Discard); !errors.As(err, &ue) {
			t.Errorf("%s: %v, want a usage error", name, err)
		}
	}

	log := hclog.NewNullLogger()
	auth := func(args ...string) (*raftmux.Auth, error) {
		o, err := parseFlags(append(append([]string{}, cl...), args...), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		return o.peers.auth(o.nodeID, log)
	}
	if a, err := auth(tlsArgs...); err != nil || a.Mode() != "mtls" {
		t.Fatalf("mtls: %v, %v", a.Mode(), err)
	}
	if a, err := auth("--cluster-secret-file", secret); err != nil || a.Mode() != "secret" {
		t.Fatalf("secret: %v, %v", a.Mode(), err)
	}
	if a, err := auth(); err != nil || a != nil {
		t.Fatalf("none: %v, %v", a, err)
	}
	if _, err := auth("--cluster-secret-file", short); err == nil || strings.Contains(err.Error(), "sss") {
		t.Fatalf("short secret: %v", err)
	}
	if _, err := auth(append(tlsArgs, "--node-id", "n2")...); !errors.Is(err, raftmux.ErrNodeMismatch) {
		t.Fatalf("certificate of another node: %v", err)
	}
}
