package main

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/internal/certs"
	"github.com/followgraph/followgraph/wire"
)

// testCerts writes a CA, a node certificate for 127.0.0.1 and a client
// certificate into a temporary directory.
type testCerts struct {
	dir, ca, nodeCrt, nodeKey string
	authority                 *certs.Authority
	client                    tls.Certificate
}

func writeTestCerts(t *testing.T) *testCerts {
	t.Helper()
	dir := t.TempDir()
	ca, err := certs.NewAuthority("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tc := &testCerts{dir: dir, ca: filepath.Join(dir, "ca.crt"), authority: ca}
	if _, _, err := certs.WriteFiles(dir, "ca", ca.CertPEM(), []byte("unused")); err != nil {
		t.Fatal(err)
	}
	c, k, err := ca.Issue(certs.Node("node1", []string{"127.0.0.1", "localhost"}, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if tc.nodeCrt, tc.nodeKey, err = certs.WriteFiles(dir, "node1", c, k); err != nil {
		t.Fatal(err)
	}
	if tc.client, err = ca.IssueTLS(certs.ClientCert("alice", time.Hour)); err != nil {
		t.Fatal(err)
	}
	return tc
}

func (tc *testCerts) clientTLS(withCert bool) *tls.Config {
	c := &tls.Config{RootCAs: tc.authority.Pool()}
	if withCert {
		c.Certificates = []tls.Certificate{tc.client}
	}
	return c
}

func httpsGet(tc *tls.Config, url string) (int, string, error) {
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 5 * time.Second}
	resp, err := hc.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// tlsFailures reads followgraph_tls_handshake_failures_total{port, reason}.
func tlsFailures(t *testing.T, tc *tls.Config, base, port, reason string) int {
	t.Helper()
	_, body, err := httpsGet(tc, base+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^followgraph_tls_handshake_failures_total\{port="` + port + `",reason="` + reason + `"\} (\d+)$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no failure count for %s/%s", port, reason)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func TestTLSFlagsChecked(t *testing.T) {
	for args, want := range map[string]string{
		"--tls-cert a":       "go together",
		"--tls-key a":        "go together",
		"--tls-client-ca ca": "needs --tls-cert",
		"--tls-cert a --tls-key b --http-tls yes":        "must be on, mtls or off",
		"--tls-cert a --tls-key b --http-tls mtls":       "needs --tls-client-ca",
		"--tls-cert a --tls-key b --tls-check-every -1s": "must not be negative",
	} {
		_, err := parseFlags(strings.Fields(args), io.Discard)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want a usage error with %q", args, err, want)
		}
	}
	// Files that do not load stop the start.
	err := run(context.Background(), []string{"--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--http", "", "--tls-cert", "/nonexistent.crt", "--tls-key", "/nonexistent.key"}, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "--tls-cert") {
		t.Fatalf("missing files: %v", err)
	}
}

// With --tls-cert, both ports speak TLS; plaintext clients are refused and
// counted.
func TestTLSOnEveryPort(t *testing.T) {
	tc := writeTestCerts(t)
	d, cancel, done := startDaemon(t, "--tls-cert", tc.nodeCrt, "--tls-key", tc.nodeKey)
	defer func() { cancel(); <-done }()
	addr, base := d.ln.Addr().String(), "https://"+d.httpLn.Addr().String()
	ctx := context.Background()
	c, err := client.New(ctx, client.Config{Addrs: []string{addr}, TLS: tc.clientTLS(false)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Follow(ctx, "a", []string{"b"}); err != nil {
		t.Fatal(err)
	}
	_, err = client.New(ctx, client.Config{Addrs: []string{addr}})
	if !errors.Is(err, client.ErrAuthFailed) || !strings.Contains(err.Error(), wire.NotTLSMessage) {
		t.Fatalf("plaintext client: %v", err)
	}
	if code, body, err := httpsGet(tc.clientTLS(false), base+"/readyz"); err != nil || code != 200 || body != "ready\n" {
		t.Fatalf("https readyz: %d %q %v", code, body, err)
	}
	// Plain HTTP to the HTTPS port: refused (net/http answers 400).
	if code, _ := get(t, "http://"+d.httpLn.Addr().String()+"/readyz"); code != http.StatusBadRequest {
		t.Fatalf("plain HTTP on the HTTPS port: %d", code)
	}
	deadline := time.Now().Add(5 * time.Second)
	for tlsFailures(t, tc.clientTLS(false), base, "client", wire.TLSFailureNotTLS) < 1 ||
		tlsFailures(t, tc.clientTLS(false), base, "http", wire.TLSFailureNotTLS) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("refusals not counted")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// --http-tls mtls: the HTTP port wants a client certificate too; off: it
// is plaintext.
func TestHTTPTLSModes(t *testing.T) {
	tc := writeTestCerts(t)
	d, cancel, done := startDaemon(t, "--tls-cert", tc.nodeCrt, "--tls-key", tc.nodeKey, "--tls-client-ca", tc.ca, "--http-tls", "mtls")
	base := "https://" + d.httpLn.Addr().String()
	if _, _, err := httpsGet(tc.clientTLS(false), base+"/healthz"); err == nil {
		t.Fatal("HTTPS without a client certificate served")
	}
	if code, _, err := httpsGet(tc.clientTLS(true), base+"/healthz"); err != nil || code != 200 {
		t.Fatalf("with a client certificate: %d %v", code, err)
	}
	if n := tlsFailures(t, tc.clientTLS(true), base, "http", wire.TLSFailureNoCertificate); n < 1 {
		t.Fatalf("http no_certificate: %d", n)
	}
	cancel()
	<-done

	d, cancel, done = startDaemon(t, "--tls-cert", tc.nodeCrt, "--tls-key", tc.nodeKey, "--http-tls", "off")
	defer func() { cancel(); <-done }()
	if code, _ := get(t, "http://"+d.httpLn.Addr().String()+"/healthz"); code != 200 {
		t.Fatalf("--http-tls off: %d", code)
	}
}

// A new certificate written over the files is served without a restart,
// to new connections; connections already open keep going.
func TestTLSCertificateRotatesWithoutRestart(t *testing.T) {
	tc := writeTestCerts(t)
	d, cancel, done := startDaemon(t, "--tls-cert", tc.nodeCrt, "--tls-key", tc.nodeKey, "--tls-check-every", "10ms")
	defer func() { cancel(); <-done }()
	addr := d.ln.Addr().String()
	served := func() string {
		var serial string
		cfg := tc.clientTLS(false)
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			serial = cs.PeerCertificates[0].SerialNumber.String()
			return nil
		}
		c, err := client.New(context.Background(), client.Config{Addrs: []string{addr}, TLS: cfg})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return serial
	}
	old := served()
	c, err := client.New(context.Background(), client.Config{Addrs: []string{addr}, TLS: tc.clientTLS(false)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	crt, key, err := tc.authority.Issue(certs.Node("node1", []string{"127.0.0.1"}, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := certs.WriteFiles(tc.dir, "node1", crt, key); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for served() == old {
		if time.Now().After(deadline) {
			t.Fatal("the new certificate is not served")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := c.Follow(context.Background(), "a", []string{"b"}); err != nil {
		t.Fatalf("a connection opened before the rotation: %v", err)
	}
}
