package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/internal/certs"
)

// TestSecureCluster runs a cluster with every security option at once, as
// docker-compose.tls.yml does: mutual TLS on the client ports, HTTPS on
// the HTTP ports, peers authenticated with mutual TLS on the raft ports,
// encrypted gossip, and named tokens with roles. Everything a cluster does
// must still work: forming, forwarding (a client that reaches one node
// only), the relay of reverse edges, replication; and each option must
// still refuse what it is there to refuse.
func TestSecureCluster(t *testing.T) {
	dir := t.TempDir()
	out, err := exec.Command(gencerts, "-out", dir, "-gossip-key", "-node", "n1=127.0.0.1", "-node", "n2=127.0.0.1", "-node", "n3=127.0.0.1",
		"-client", "app", "-client", "viewer").CombinedOutput()
	if err != nil {
		t.Fatalf("gencerts: %v\n%s", err, out)
	}
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("app write app-secret\nviewer read viewer-secret\nops admin ops-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := func(name string) string { return filepath.Join(dir, name) }
	procs := startClusterEach(t, 4, func(i int) []string {
		n := fmt.Sprintf("n%d", i+1)
		return []string{"--tls-cert", f(n + ".crt"), "--tls-key", f(n + ".key"), "--tls-client-ca", f("ca.crt"),
			"--peer-cert", f(n + ".crt"), "--peer-key", f(n + ".key"), "--peer-ca", f("ca.crt"),
			"--gossip-key-file", f("gossip.key"), "--token-file", tokens}
	})
	for _, p := range procs {
		if log := p.log(); strings.Contains(log, "raft port is unauthenticated") || strings.Contains(log, "gossip is not encrypted") {
			t.Fatalf("a node runs an option off:\n%s", grepLines(log, "WARN"))
		}
	}
	secure := func(cert, name, secret string, dial func(ctx context.Context, addr string) (net.Conn, error)) *client.Client {
		var addrs []string
		for _, p := range procs {
			addrs = append(addrs, p.addr)
		}
		c, err := client.New(context.Background(), client.Config{Addrs: addrs, TLS: tlsConfig(t, dir, cert), TokenName: name, Token: secret,
			Dial: dial, RequestTimeout: 10 * time.Second, RetryBackoff: 20 * time.Millisecond})
		if err != nil {
			t.Fatalf("client %s: %v", name, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	ops := secure("app", "ops", "ops-secret", nil)
	waitMap(t, ops, 60*time.Second)

	// Every connection of this client goes to n1, whatever node it asks
	// for: n1 forwards each request to the shard's leader, and the leaders
	// relay reverse edges, all over the authenticated raft ports.
	var d net.Dialer
	toN1 := func(ctx context.Context, _ string) (net.Conn, error) { return d.DialContext(ctx, "tcp", procs[0].addr) }
	app := secure("app", "app", "app-secret", toN1)
	ctx := context.Background()
	const fans = 20
	for i := range fans {
		if res, err := app.Follow(ctx, fmt.Sprintf("fan%d", i), []string{"star"}, client.Sync()); err != nil || res[0].Code != 0 {
			t.Fatalf("follow through n1: %+v %v", res, err)
		}
	}
	viewer := secure("viewer", "viewer", "viewer-secret", nil)
	poll(t, "star's followers, relayed", func() bool {
		in, err := viewer.Info(ctx, "star")
		return err == nil && in[0].Followers == fans
	})
	if _, err := viewer.Follow(ctx, "viewer", []string{"star"}); !errors.Is(err, client.ErrNotAllowed) {
		t.Fatalf("follow with a read token: %v", err)
	}
	if err := app.Drain(ctx, "n2", true); !errors.Is(err, client.ErrNotAllowed) {
		t.Fatalf("drain with a write token: %v", err)
	}
	checkSecureRefusals(t, procs, dir)
}

// checkSecureRefusals knocks on each port of a secure node without the
// credential that port wants.
func checkSecureRefusals(t *testing.T, procs []*proc, dir string) {
	// Client port: plaintext, and TLS without a client certificate.
	failsPromptly(t, client.Config{Addrs: []string{procs[1].addr}, TokenName: "ops", Token: "ops-secret"}, "requires TLS")
	if _, err := client.New(context.Background(), client.Config{Addrs: []string{procs[1].addr}, TLS: tlsConfig(t, dir, ""), TokenName: "ops", Token: "ops-secret",
		DialTimeout: 2 * time.Second}); err == nil {
		t.Fatal("a client without a certificate got in")
	}
	// Raft port: a plaintext hello and a client certificate of the right
	// CA (no node identity) get nothing.
	raft := raftAddr(t, procs[1])
	plaintextHello(t, raft)
	kp, err := certs.LoadKeyPair(filepath.Join(dir, "app.crt"), filepath.Join(dir, "app.key"))
	if err != nil {
		t.Fatal(err)
	}
	if tc, err := tls.Dial("tcp", raft, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS13}); err == nil {
		_, _ = tc.Write([]byte("FGMUX1\x00\x0b127.0.0.1:1"))
		expectNoAnswer(t, tc, "a client certificate on the raft port")
		tc.Close()
	}
	// HTTPS: the metrics say what was refused.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig(t, dir, "")}}
	want := regexp.MustCompile(`(?m)^followgraph_peer_refused_total\{port="raft",reason="(not_tls|no_node_id)"\} [1-9]`)
	poll(t, "refusals in /metrics over HTTPS", func() bool {
		resp, err := hc.Get("https://" + procs[1].http + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return len(want.FindAllString(string(b), -1)) == 2
	})
}
