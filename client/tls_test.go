package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/cluster/clustertest"
	"github.com/followgraph/followgraph/internal/certs"
	"github.com/followgraph/followgraph/wire"
)

type pki struct {
	ca, other       *certs.Authority
	server, stray   tls.Certificate // stray: a server certificate of the other CA
	client, client2 tls.Certificate // client2: of the other CA
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	var p pki
	var err error
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	p.ca, err = certs.NewAuthority("ca", time.Hour)
	must(err)
	p.other, err = certs.NewAuthority("other", time.Hour)
	must(err)
	hosts := []string{"127.0.0.1", "localhost"}
	p.server, err = p.ca.IssueTLS(certs.Node("n1", hosts, time.Hour))
	must(err)
	p.stray, err = p.other.IssueTLS(certs.Node("n1", hosts, time.Hour))
	must(err)
	p.client, err = p.ca.IssueTLS(certs.ClientCert("alice", time.Hour))
	must(err)
	p.client2, err = p.other.IssueTLS(certs.ClientCert("alice", time.Hour))
	must(err)
	return &p
}

// startTLSNode starts a node whose client port uses cert (and, with
// clientCA, requires client certificates of it).
func startTLSNode(t *testing.T, cert tls.Certificate, clientCA *certs.Authority) *clustertest.Node {
	return clustertest.Start(t, clustertest.Options{Server: func(c *wire.ServerConfig) {
		c.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if clientCA != nil {
			c.TLS.ClientCAs, c.TLS.ClientAuth = clientCA.Pool(), tls.RequireAndVerifyClientCert
		}
	}})
}

func (p *pki) config(addr string, cert ...tls.Certificate) client.Config {
	// No ServerName: the certificate must name the dialled host.
	return client.Config{Addrs: []string{addr}, TLS: &tls.Config{RootCAs: p.ca.Pool(), Certificates: cert}, DialTimeout: 2 * time.Second}
}

// newFails checks that New fails promptly with ErrAuthFailed and a message
// holding want.
func newFails(t *testing.T, cfg client.Config, want string) {
	t.Helper()
	start := time.Now()
	c, err := client.New(context.Background(), cfg)
	if err == nil {
		c.Close()
		t.Fatalf("connected; want an error with %q", want)
	}
	if !errors.Is(err, client.ErrAuthFailed) || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v; want ErrAuthFailed with %q", err, want)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v to fail", d)
	}
}

func TestTLS(t *testing.T) {
	p := newPKI(t)
	n := startTLSNode(t, p.server, nil)
	c, err := client.New(context.Background(), p.config(n.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Follow(ctx, "alice", []string{"bob"}, client.Sync()); err != nil {
		t.Fatal(err)
	}
	page, err := c.Followers(ctx, "bob")
	if err != nil || len(page.Items) != 1 || page.Items[0].UserID != "alice" {
		t.Fatalf("followers over TLS: %+v %v", page, err)
	}

	t.Run("plaintext client", func(t *testing.T) {
		newFails(t, client.Config{Addrs: []string{n.Addr}}, wire.NotTLSMessage)
	})
	t.Run("untrusted server", func(t *testing.T) {
		cfg := p.config(n.Addr)
		cfg.TLS.RootCAs = p.other.Pool()
		newFails(t, cfg, "server's certificate is not trusted")
	})
	t.Run("wrong server name", func(t *testing.T) {
		cfg := p.config(n.Addr)
		cfg.TLS.ServerName = "node9.example"
		newFails(t, cfg, "--tls-server-name")
	})
}

func TestTLSClientOnPlaintextPort(t *testing.T) {
	p := newPKI(t)
	n := clustertest.Start(t, clustertest.Options{})
	newFails(t, p.config(n.Addr), "is it a plaintext port?")
}

func TestMutualTLSClient(t *testing.T) {
	p := newPKI(t)
	n := startTLSNode(t, p.server, p.ca)
	newFails(t, p.config(n.Addr), "client certificate")
	newFails(t, p.config(n.Addr, p.client2), "client certificate")
	c, err := client.New(context.Background(), p.config(n.Addr, p.client))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Follow(context.Background(), "a", []string{"b"}); err != nil {
		t.Fatal(err)
	}
}

// A server that closes a plaintext client's connection during the hello
// (a TLS port of an older server, a TLS proxy): the error says it may be
// a TLS port.
func TestClosedDuringHelloHintsTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Read(make([]byte, 5)) // a TLS server reads a record header
			c.(*net.TCPConn).CloseWrite()
			c.Close()
		}
	}()
	_, err = client.New(context.Background(), client.Config{Addrs: []string{ln.Addr().String()}, DialTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "is it a TLS port? (--tls-ca)") {
		t.Fatalf("error: %v", err)
	}
}
