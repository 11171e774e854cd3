package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/internal/certs"
	"github.com/followgraph/followgraph/wire"
)

// TLS on a single node (a cluster whose client ports use TLS forwards
// only once node-to-node traffic has its own authenticated port).

// makeCerts runs gencerts into dir: a CA, node1 for 127.0.0.1, clients
// admin and reader.
func makeCerts(t *testing.T, dir string) {
	t.Helper()
	out, err := exec.Command(gencerts, "-out", dir, "-node", "node1=127.0.0.1,localhost", "-client", "admin", "-client", "reader").CombinedOutput()
	if err != nil {
		t.Fatalf("gencerts: %v\n%s", err, out)
	}
}

// runCtl runs the followctl binary and returns its exit status and output.
func runCtl(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(followctl, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"} // no FOLLOWCTL_* from the caller
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatal(err)
	return 0, ""
}

func tlsConfig(t *testing.T, dir, cert string) *tls.Config {
	t.Helper()
	crt, key := "", ""
	if cert != "" {
		crt, key = filepath.Join(dir, cert+".crt"), filepath.Join(dir, cert+".key")
	}
	tc, err := certs.Client(filepath.Join(dir, "ca.crt"), crt, key, "")
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

// failsPromptly checks that client.New fails within a second with
// ErrAuthFailed and a message holding want.
func failsPromptly(t *testing.T, cfg client.Config, want string) {
	t.Helper()
	start := time.Now()
	c, err := client.New(context.Background(), cfg)
	if err == nil {
		c.Close()
		t.Fatalf("connected; want a refusal with %q", want)
	}
	if !errors.Is(err, client.ErrAuthFailed) || !strings.Contains(err.Error(), want) {
		t.Fatalf("%v; want ErrAuthFailed with %q", err, want)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("refused after %v", d)
	}
}

func TestTLSClientPort(t *testing.T) {
	certDir := t.TempDir()
	makeCerts(t, certDir)
	ca := filepath.Join(certDir, "ca.crt")
	p := start(t, t.TempDir(), "--tls-cert", filepath.Join(certDir, "node1.crt"), "--tls-key", filepath.Join(certDir, "node1.key"))
	if !strings.Contains(p.log(), "tls=on") {
		t.Fatalf("ready line does not say tls=on:\n%s", p.log())
	}
	ctx := context.Background()

	// The Go client over TLS.
	c, err := client.New(ctx, client.Config{Addrs: []string{p.addr}, TLS: tlsConfig(t, certDir, "")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Follow(ctx, "alice", []string{"bob"}, client.Sync()); err != nil {
		t.Fatal(err)
	}
	// followctl over TLS, and refused without it.
	if st, out := runCtl(t, "--addr", p.addr, "--tls-ca", ca, "followers", "bob"); st != 0 || !strings.Contains(out, "alice") {
		t.Fatalf("followctl over TLS: %d %s", st, out)
	}
	if st, out := runCtl(t, "--addr", p.addr, "--timeout", "2s", "status"); st != 1 || !strings.Contains(out, wire.NotTLSMessage) || !strings.Contains(out, "--tls-ca") {
		t.Fatalf("plaintext followctl: %d %s", st, out)
	}
	failsPromptly(t, client.Config{Addrs: []string{p.addr}}, wire.NotTLSMessage)

	// The HTTP port serves HTTPS with the same certificate.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig(t, certDir, "")}, Timeout: 5 * time.Second}
	resp, err := hc.Get("https://" + p.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`(?m)^followgraph_tls_handshake_failures_total\{port="client",reason="not_tls"\} [1-9]`).Match(body) {
		t.Fatalf("plaintext refusals not counted:\n%s", grepLines(string(body), "tls_handshake"))
	}
	if resp, err := http.Get("http://" + p.http + "/readyz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP on the HTTPS port: %s", resp.Status)
		}
	}

	// A client that connects and sends nothing is dropped after the
	// handshake timeout (5s), not held.
	nc, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(15 * time.Second))
	began := time.Now()
	_, err = nc.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("silent connection: %v (want it closed by the server)", err)
	}
	if d := time.Since(began); d > 8*time.Second {
		t.Fatalf("silent connection dropped after %v", d)
	}

	// followbench over TLS, metrics over https.
	out, err := exec.Command(followbench, "run", "--preset", "smoke", "--duration", "1s", "--warmup", "200ms", "--target", "followd://"+p.addr,
		"--tls-ca", ca, "--metrics", "https://"+p.http).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "0 violations") || !strings.Contains(string(out), "cpu: followd ") {
		t.Fatalf("followbench over TLS: %v\n%s", err, out)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestMutualTLSClientPort(t *testing.T) {
	certDir, otherDir := t.TempDir(), t.TempDir()
	makeCerts(t, certDir)
	makeCerts(t, otherDir) // another CA, the same names
	ca := filepath.Join(certDir, "ca.crt")
	p := start(t, t.TempDir(), "--tls-cert", filepath.Join(certDir, "node1.crt"), "--tls-key", filepath.Join(certDir, "node1.key"),
		"--tls-client-ca", ca)

	// No client certificate; one from another CA (the CA file trusts the
	// server, the certificate is the other CA's).
	if st, out := runCtl(t, "--addr", p.addr, "--timeout", "2s", "--tls-ca", ca, "status"); st != 1 || !strings.Contains(out, "client certificate") {
		t.Fatalf("followctl without a certificate: %d %s", st, out)
	}
	alien := []string{"--tls-cert", filepath.Join(otherDir, "admin.crt"), "--tls-key", filepath.Join(otherDir, "admin.key")}
	if st, out := runCtl(t, append([]string{"--addr", p.addr, "--timeout", "2s", "--tls-ca", ca, "status"}, alien...)...); st != 1 || !strings.Contains(out, "client certificate") {
		t.Fatalf("followctl with another CA's certificate: %d %s", st, out)
	}
	failsPromptly(t, client.Config{Addrs: []string{p.addr}, TLS: tlsConfig(t, certDir, "")}, "client certificate")
	// The Go client presenting the other CA's certificate whatever the
	// server asks for (Go would otherwise send none).
	alienCfg := tlsConfig(t, certDir, "")
	kp, err := tls.LoadX509KeyPair(filepath.Join(otherDir, "admin.crt"), filepath.Join(otherDir, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	alienCfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &kp, nil }
	failsPromptly(t, client.Config{Addrs: []string{p.addr}, TLS: alienCfg}, "client certificate")

	// A good certificate works, for followctl and the Go client.
	good := []string{"--tls-cert", filepath.Join(certDir, "admin.crt"), "--tls-key", filepath.Join(certDir, "admin.key")}
	if st, out := runCtl(t, append([]string{"--addr", p.addr, "--tls-ca", ca, "follow", "a", "b", "--sync"}, good...)...); st != 0 {
		t.Fatalf("followctl with a good certificate: %d %s", st, out)
	}
	c, err := client.New(context.Background(), client.Config{Addrs: []string{p.addr}, TLS: tlsConfig(t, certDir, "reader")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if page, err := c.Followers(context.Background(), "b"); err != nil || len(page.Items) != 1 {
		t.Fatalf("followers: %+v %v", page, err)
	}

	// The HTTP port: HTTPS, no client certificate needed (--http-tls on).
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig(t, certDir, "")}, Timeout: 5 * time.Second}
	resp, err := hc.Get("https://" + p.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, reason := range []string{"no_certificate", "bad_certificate"} {
		if !regexp.MustCompile(`(?m)^followgraph_tls_handshake_failures_total\{port="client",reason="` + reason + `"\} [1-9]`).Match(body) {
			t.Fatalf("%s not counted:\n%s", reason, grepLines(string(body), "tls_handshake"))
		}
	}
}
