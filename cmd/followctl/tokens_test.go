package main

import (
	"strings"
	"testing"

	"github.com/followgraph/followgraph/cluster/clustertest"
	"github.com/followgraph/followgraph/internal/tokens"
	"github.com/followgraph/followgraph/wire"
)

// TestTokenName: --token-name (or FOLLOWCTL_TOKEN_NAME) picks the token
// of the server's token file; its role decides what the command may do.
func TestTokenName(t *testing.T) {
	st, err := tokens.NewStore([]tokens.Token{tokens.New("viewer", tokens.RoleRead, "v"), tokens.New("ops", tokens.RoleAdmin, "o")})
	if err != nil {
		t.Fatal(err)
	}
	addr := clustertest.Start(t, clustertest.Options{Server: func(c *wire.ServerConfig) { c.Tokens = st }}).Addr
	t.Setenv("FOLLOWCTL_TOKEN", "")
	t.Setenv("FOLLOWCTL_TOKEN_NAME", "")

	// A read token reads, and is refused a follow with 40012.
	jsonOK(t, "info", "a", "--token-name", "viewer", "--token", "v", "--addr", addr)
	status, out, errOut := ctl(t, "--token-name", "viewer", "--token", "v", "follow", "a", "b", "--json", "--addr", addr)
	var e errorOutput
	decodeOne(t, out, &e)
	if status != 1 || e.Error.Code != 40012 || !strings.Contains(e.Error.Message, "follow") || !strings.Contains(errOut, "40012") {
		t.Fatalf("follow with a read token: status %d, stdout %s, stderr %q; want 1 and 40012", status, out, errOut)
	}
	// The right secret under another name fails like a wrong secret.
	status, out, _ = ctl(t, "info", "a", "--token-name", "ops", "--token", "v", "--json", "--addr", addr)
	decodeOne(t, out, &e)
	if status != 1 || e.Error.Code != 40004 {
		t.Fatalf("wrong name: status %d, %s", status, out)
	}
	// From the environment.
	t.Setenv("FOLLOWCTL_TOKEN_NAME", "ops")
	t.Setenv("FOLLOWCTL_TOKEN", "o")
	jsonOK(t, "follow", "a", "b", "--addr", addr)
	// A flag still wins over the environment.
	status, _, _ = ctl(t, "--token-name", "viewer", "--token", "v", "follow", "a", "c", "--addr", addr)
	if status != 1 {
		t.Fatalf("flag over env: status %d", status)
	}
}
