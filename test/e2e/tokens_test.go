package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
)

func tokenClient(t *testing.T, addr, name, secret string) *client.Client {
	t.Helper()
	c, err := client.New(context.Background(), client.Config{Addrs: []string{addr}, TokenName: name, Token: secret})
	if err != nil {
		t.Fatalf("token %s: %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func scrape(t *testing.T, httpAddr string) string {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// poll waits up to 10s for cond.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The token file on the real binary: roles, a rate limit, /metrics, a
// reload on SIGHUP (good and bad), and SIGTERM still stopping cleanly.
func TestTokenFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	write := func(s string) {
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("# e2e\nviewer read v\napp write w rate=5 burst=5\nops admin o\n")
	p := start(t, t.TempDir(), "--token-file", file)
	ctx := context.Background()

	viewer := tokenClient(t, p.addr, "viewer", "v")
	if _, err := viewer.Info(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := viewer.Follow(ctx, "a", []string{"b"}); !errors.Is(err, client.ErrNotAllowed) {
		t.Fatalf("follow with a read token: %v", err)
	}
	app := tokenClient(t, p.addr, "app", "w")
	if err := app.Drain(ctx, "node1", true); !errors.Is(err, client.ErrNotAllowed) {
		t.Fatalf("drain with a write token: %v", err)
	}
	// The admin token gets past the role check to the drain itself,
	// which a single node refuses for its own reason.
	out, _ := exec.Command(followctl, "--addr", p.addr, "--token-name", "ops", "--token", "o", "drain", "node1", "--json").CombinedOutput()
	if !strings.Contains(string(out), "a single node cannot be drained") {
		t.Fatalf("drain with the admin token:\n%s", out)
	}

	// 20 follows at 5/s: the client backs off through the refusals and
	// every follow succeeds, in about (20-5)/5 seconds.
	start := time.Now()
	for i := range 20 {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := app.Follow(ctx, "a", []string{"t" + string(rune('a'+i))})
		cancel()
		if err != nil {
			t.Fatalf("follow %d: %v", i, err)
		}
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Fatalf("20 follows took %v; the rate limit of 5/s did not hold", took)
	}
	m := scrape(t, p.http)
	for _, want := range []string{`followgraph_token_rate_limit{token="app"} 5`, `followgraph_token_burst{token="app"} 5`,
		`followgraph_token_requests_total{result="rate_limited",token="app"}`, `followgraph_token_requests_total{result="not_allowed",token="viewer"} 1`,
		`followgraph_token_info{role="admin",token="ops"} 1`, `followgraph_requests_total{code="40012",op="follow"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Reload: viewer removed, app unlimited now.
	write("viewer2 read v2\napp write w\nops admin o\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	poll(t, "the reload", func() bool { return strings.Contains(p.log(), "token file reloaded") })
	if _, err := viewer.Info(ctx, "a"); !errors.Is(err, client.ErrAuthFailed) {
		t.Fatalf("a removed token's connection: %v", err)
	}
	if _, err := client.New(ctx, client.Config{Addrs: []string{p.addr}, TokenName: "viewer", Token: "v"}); !errors.Is(err, client.ErrAuthFailed) {
		t.Fatalf("a removed token: %v", err)
	}
	tokenClient(t, p.addr, "viewer2", "v2")
	// A bad file keeps the tokens in force.
	write("ops admin o\nops read x\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	poll(t, "the failed reload", func() bool { return strings.Contains(p.log(), "token file not reloaded") })
	if !strings.Contains(p.log(), "line 2") {
		t.Errorf("the reload error does not name the line:\n%s", p.log())
	}
	if _, err := tokenClient(t, p.addr, "viewer2", "v2").Info(ctx, "a"); err != nil {
		t.Fatalf("after a failed reload: %v", err)
	}

	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("followd exited with %v after SIGTERM:\n%s", err, p.log())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("followd did not exit after SIGTERM")
	}
}

func TestTokenFileUsage(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte("default admin x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--token-file", file, "--token", "y"}, `token "default" is --token's`},
		{[]string{"--token-file", file + ".missing"}, "no such file"},
	} {
		out, err := exec.Command(followd, append([]string{"--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--http", ""}, c.args...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("followd %q: %v, %s; want a refusal naming %q", c.args, err, out, c.want)
		}
	}
}
