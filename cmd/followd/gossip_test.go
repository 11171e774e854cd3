package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/followgraph/followgraph/internal/gossipkey"
	"github.com/hashicorp/go-hclog"
)

// --gossip-key, FOLLOWD_GOSSIP_KEY and --gossip-key-file give the key;
// a bad one is a usage error that names the flag and never the key.
func TestGossipKeyFlags(t *testing.T) {
	key := gossipkey.New()
	b64 := gossipkey.Encode(key)
	cl := []string{"--join", "127.0.0.1:1"}
	o, err := parseFlags(append(cl, "--gossip-key", b64), io.Discard)
	if err != nil || !bytes.Equal(o.gossip.decoded, key) {
		t.Fatalf("--gossip-key: %v", err)
	}
	if cfg := o.nodeConfig(hclog.NewNullLogger(), "127.0.0.1:7700"); !bytes.Equal(cfg.Membership.GossipKey, key) {
		t.Fatal("the key does not reach the node's configuration")
	}
	file := filepath.Join(t.TempDir(), "gossip.key")
	os.WriteFile(file, []byte(b64+"\n"), 0o600)
	if o, err := parseFlags(append(cl, "--gossip-key-file", file), io.Discard); err != nil || !bytes.Equal(o.gossip.decoded, key) {
		t.Fatalf("--gossip-key-file: %v", err)
	}
	if o, err := parseFlags(cl, io.Discard); err != nil || o.gossip.decoded != nil {
		t.Fatalf("no key: %v", err)
	}
	secret := strings.Repeat("c2VjcmV0", 5) // base64, but 30 bytes
	for name, args := range map[string][]string{
		"bad base64":   append(cl, "--gossip-key", "not*base64"),
		"wrong size":   append(cl, "--gossip-key", secret),
		"both":         append(cl, "--gossip-key", b64, "--gossip-key-file", file),
		"missing file": append(cl, "--gossip-key-file", filepath.Join(t.TempDir(), "none")),
		"single node":  {"--gossip-key", b64},
	} {
		_, err := parseFlags(args, io.Discard)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "gossip-key") || strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), b64) {
			t.Errorf("%s: %v", name, err)
		}
	}
	big := filepath.Join(t.TempDir(), "big")
	os.WriteFile(big, bytes.Repeat([]byte("A"), maxKeyFile+1), 0o600)
	if _, err := parseFlags(append(cl, "--gossip-key-file", big), io.Discard); err == nil || !strings.Contains(err.Error(), "not a key file") {
		t.Errorf("big file: %v", err)
	}
	t.Setenv("FOLLOWD_GOSSIP_KEY", b64)
	if o, err := parseFlags(cl, io.Discard); err != nil || !bytes.Equal(o.gossip.decoded, key) {
		t.Fatalf("FOLLOWD_GOSSIP_KEY: %v", err)
	}
}
