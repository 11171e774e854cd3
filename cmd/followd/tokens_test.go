package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/internal/tokens"
)

func TestLoadTokens(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(file, []byte("app write w rate=2\n"), 0o600)
	toks, err := loadTokens(&options{tokenFile: file, token: "root"})
	if err != nil || len(toks) != 2 || toks[1].Name != tokens.DefaultName || toks[1].Role != tokens.RoleAdmin || !toks[1].Matches("root") {
		t.Fatalf("file and --token: %+v, %v", toks, err)
	}
	if toks, err := loadTokens(&options{}); toks != nil || err != nil {
		t.Fatalf("no tokens: %v, %v", toks, err)
	}
	os.WriteFile(file, []byte("# none\n"), 0o600)
	if _, err := loadTokens(&options{tokenFile: file}); err == nil || !strings.Contains(err.Error(), "no tokens") {
		t.Fatalf("empty file: %v", err)
	}
	os.WriteFile(file, []byte("default read x\n"), 0o600)
	if _, err := loadTokens(&options{tokenFile: file, token: "root"}); err == nil {
		t.Fatal("a file token named default with --token accepted")
	}
}

// TestReloadTokens drives the daemon's reload (what SIGHUP calls): a
// good file replaces the tokens; a bad one keeps them.
func TestReloadTokens(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(file, []byte("a admin one\n"), 0o600)
	d, cancel, done := startDaemon(t, "--token-file", file)
	defer func() { cancel(); <-done }()
	addr := d.ln.Addr().String()
	ctx := context.Background()
	dial := func(name, secret string) error {
		c, err := client.New(ctx, client.Config{Addrs: []string{addr}, TokenName: name, Token: secret})
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial("a", "one"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(file, []byte("b read two\n"), 0o600)
	if err := d.reloadTokens(); err != nil {
		t.Fatal(err)
	}
	if err := dial("a", "one"); !errors.Is(err, client.ErrAuthFailed) {
		t.Fatalf("removed token: %v", err)
	}
	if err := dial("b", "two"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(file, []byte("b read two\nb read three\n"), 0o600)
	if err := d.reloadTokens(); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad file: %v", err)
	}
	if err := dial("b", "two"); err != nil {
		t.Fatalf("after a failed reload: %v", err)
	}
	d2, cancel2, done2 := startDaemon(t)
	defer func() { cancel2(); <-done2 }()
	if err := d2.reloadTokens(); !errors.Is(err, errNoTokenFile) {
		t.Fatalf("reload without a file: %v", err)
	}
}
