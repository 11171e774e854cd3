package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/internal/certs"
)

// The raft port authenticated: mutual TLS with node certificates from
// gencerts, or a cluster secret. Each test forms a real cluster over the
// authenticated port, writes through it, then knocks on a node's raft
// port without valid credentials and reads the refusals in /metrics.

// procArg is the value of flag that a node was started with.
func procArg(t *testing.T, p *proc, flag string) string {
	t.Helper()
	for i, a := range p.args {
		if a == flag && i+1 < len(p.args) {
			return p.args[i+1]
		}
	}
	t.Fatalf("no %s", flag)
	return ""
}

// raftAddr is the --raft-addr a node was started with.
func raftAddr(t *testing.T, p *proc) string { return procArg(t, p, "--raft-addr") }

// genNodeCerts runs gencerts for nodes n1-n3 (and any extra -node) into dir.
func genNodeCerts(t *testing.T, dir string, nodes ...string) {
	t.Helper()
	args := []string{"-out", dir}
	for _, n := range nodes {
		args = append(args, "-node", n+"=127.0.0.1,localhost")
	}
	if out, err := exec.Command(gencerts, args...).CombinedOutput(); err != nil {
		t.Fatalf("gencerts: %v\n%s", err, out)
	}
}

// checkReplicated writes a few follows and waits until every node's user
// table holds them: every node hosts every shard (3 replicas on 3 nodes),
// so they reached each node over the authenticated raft port. It also runs
// every operation through each node alone, which forwards to the leaders.
func checkReplicated(t *testing.T, procs []*proc) {
	t.Helper()
	c := failoverClient(t, procs)
	waitMap(t, c, 60*time.Second)
	ctx := context.Background()
	for i := range 5 {
		if _, err := c.Follow(ctx, fmt.Sprintf("u%d", i), []string{"star"}, client.Sync()); err != nil {
			t.Fatal(err)
		}
	}
	// Through each node alone: forwarding and the relay of reverse edges
	// run on the authenticated raft port too.
	for i, p := range procs {
		everyOperation(t, p.addr, fmt.Sprintf("via%d", i))
	}
	users := regexp.MustCompile(`(?m)^followgraph_node_users (\d+)`)
	for _, p := range procs {
		poll(t, "users replicated to "+p.http, func() bool {
			m := users.FindStringSubmatch(scrape(t, p.http))
			if m == nil {
				return false
			}
			n, _ := strconv.Atoi(m[1])
			return n >= 6
		})
	}
}

// expectNoAnswer checks that the raft port closes c without sending a
// byte (in particular no 0x00 accept byte).
func expectNoAnswer(t *testing.T, c net.Conn, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if len(got) != 0 {
		t.Fatalf("%s: the raft port answered %x", what, got)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("%s: connection still open", what)
	}
}

// plaintextHello sends an FGMUX1 hello in the clear to addr.
func plaintextHello(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	adv := "127.0.0.1:1"
	hello := binary.BigEndian.AppendUint16([]byte("FGMUX1"), uint16(len(adv)))
	if _, err := c.Write(append(hello, adv...)); err != nil {
		t.Fatal(err)
	}
	expectNoAnswer(t, c, "plaintext hello")
}

// waitRefused waits until node p counts a raft refusal for reason.
func waitRefused(t *testing.T, p *proc, reason string) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^followgraph_peer_refused_total\{port="raft",reason="` + reason + `"\} [1-9]`)
	poll(t, "refusal "+reason+" counted", func() bool { return re.MatchString(scrape(t, p.http)) })
}

func TestClusterPeerMutualTLS(t *testing.T) {
	certDir, otherDir := t.TempDir(), t.TempDir()
	genNodeCerts(t, certDir, "n1", "n2", "n3")
	genNodeCerts(t, otherDir, "n1") // another CA, same node name
	procs := startClusterEach(t, 4, func(i int) []string {
		n := fmt.Sprintf("n%d", i+1)
		return []string{"--peer-cert", filepath.Join(certDir, n+".crt"), "--peer-key", filepath.Join(certDir, n+".key"),
			"--peer-ca", filepath.Join(certDir, "ca.crt")}
	})
	if log := procs[0].log(); !strings.Contains(log, "raft port authenticated: mode=mtls") || strings.Contains(log, "raft port is unauthenticated") {
		t.Fatalf("log does not say the raft port uses mutual TLS:\n%s", grepLines(log, "raft port"))
	}
	checkReplicated(t, procs)
	// The nodes pinned each other (gossip knows them all by now) without a
	// false refusal.
	for _, p := range procs {
		if m := regexp.MustCompile(`(?m)^followgraph_peer_refused_total\{port="raft",reason="(\w+)"\} [1-9]`).FindStringSubmatch(scrape(t, p.http)); m != nil {
			t.Fatalf("%s refused a peer (%s) in a healthy cluster:\n%s", p.http, m[1], grepLines(p.log(), "refused"))
		}
	}
	joinWithCert(t, procs, certDir)
	raft := raftAddr(t, procs[0])

	plaintextHello(t, raft)
	waitRefused(t, procs[0], "not_tls")

	// A node certificate of another CA: the TLS 1.3 client finishes its
	// side of the handshake, then reads the server's refusal.
	kp, err := certs.LoadKeyPair(filepath.Join(otherDir, "n1.crt"), filepath.Join(otherDir, "n1.key"))
	if err != nil {
		t.Fatal(err)
	}
	tc, err := tls.Dial("tcp", raft, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS13})
	if err == nil {
		defer tc.Close()
		_, _ = tc.Write([]byte("FGMUX1\x00\x0b127.0.0.1:1"))
		expectNoAnswer(t, tc, "certificate of another CA")
	}
	waitRefused(t, procs[0], "certificate")
	// A valid certificate of the cluster (n2's) whose hello claims n1's
	// raft address: gossip says n1 is there, so n3 refuses it.
	kp2, err := certs.LoadKeyPair(filepath.Join(certDir, "n2.crt"), filepath.Join(certDir, "n2.key"))
	if err != nil {
		t.Fatal(err)
	}
	tc2, err := tls.Dial("tcp", raftAddr(t, procs[2]), &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{kp2}, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	defer tc2.Close()
	hello := binary.BigEndian.AppendUint16([]byte("FGMUX1"), uint16(len(raft)))
	if _, err := tc2.Write(append(hello, raft...)); err != nil {
		t.Fatal(err)
	}
	expectNoAnswer(t, tc2, "n2's certificate at n1's address")
	waitRefused(t, procs[2], "wrong_node")

	// TLS 1.2 is refused too (TLS 1.3 minimum).
	if c, err := tls.Dial("tcp", raft, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}); err == nil {
		c.Close()
		t.Fatal("a TLS 1.2 handshake succeeded")
	}
	waitRefused(t, procs[0], "handshake")
}

func TestClusterPeerSecret(t *testing.T) {
	dir := t.TempDir()
	secret := "Zm9sbG93Z3JhcGgtY2x1c3Rlci1zZWNyZXQtZm9yLWUyZS10ZXN0cw=="
	file := filepath.Join(dir, "cluster.secret")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	procs := startClusterWith(t, 4, "--cluster-secret-file", file)
	if log := procs[0].log(); !strings.Contains(log, "raft port authenticated: mode=secret") || strings.Contains(log, secret) {
		t.Fatalf("log does not say the raft port uses the secret, or shows it:\n%s", grepLines(log, "raft port"))
	}
	checkReplicated(t, procs)
	raft := raftAddr(t, procs[0])

	plaintextHello(t, raft)
	waitRefused(t, procs[0], "not_tls")

	// The right protocol with the wrong secret: TLS, then a proof by the
	// documented formula (internal/raftmux doc.go) under another secret.
	tc, err := tls.Dial("tcp", raft, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	cs := tc.ConnectionState()
	ekm, err := cs.ExportKeyingMaterial("EXPORTER-followgraph-raftmux-v1", nil, 32)
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, []byte(strings.Repeat("w", 40)))
	mac.Write([]byte("followgraph raftmux dialer\x00"))
	mac.Write(ekm)
	if _, err := tc.Write(append([]byte("FGAUTH1"), mac.Sum(nil)...)); err != nil {
		t.Fatal(err)
	}
	expectNoAnswer(t, tc, "wrong secret")
	waitRefused(t, procs[0], "bad_secret")

}

// joinWithCert starts n4 with its own certificate of the cluster CA
// (gencerts reuses the CA in certDir). Its raft address is unknown to
// gossip when it first dials and is dialed, which the pin allows; it must
// end up hosting a replica, with no refusal anywhere.
func joinWithCert(t *testing.T, procs []*proc, certDir string) {
	t.Helper()
	genNodeCerts(t, certDir, "n4")
	n4 := start(t, t.TempDir(), "--node-id", "n4", "--raft-addr", freePort(t), "--gossip-addr", freePort(t),
		"--join", procArg(t, procs[0], "--join"), "--peer-cert", filepath.Join(certDir, "n4.crt"),
		"--peer-key", filepath.Join(certDir, "n4.key"), "--peer-ca", filepath.Join(certDir, "ca.crt"))
	applied := regexp.MustCompile(`(?m)^followgraph_shard_applied_index\{shard="\d+"\} [1-9]`)
	deadline := time.Now().Add(90 * time.Second)
	for !applied.MatchString(scrape(t, n4.http)) {
		if time.Now().After(deadline) {
			t.Fatalf("n4 hosts no caught-up replica after joining:\n%s", n4.log())
		}
		time.Sleep(200 * time.Millisecond)
	}
	refused := regexp.MustCompile(`(?m)^followgraph_peer_refused_total\{port="raft",reason="(\w+)"\} [1-9]`)
	for _, p := range append(procs, n4) {
		if m := refused.FindStringSubmatch(scrape(t, p.http)); m != nil {
			t.Fatalf("%s refused a peer (%s) while n4 joined", p.http, m[1])
		}
	}
}
