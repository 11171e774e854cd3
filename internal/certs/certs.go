// Package certs loads the TLS material of followd, its clients and its
// peers, names nodes in certificates, and issues test certificates.
//
// # Identities
//
// A node certificate names its node ID as a URI SAN followgraph://node/ID
// (NodeURI), so a peer can check not only that a certificate comes from the
// cluster's CA but which node holds it. A client certificate names its
// client as followgraph://client/NAME. Host names and IP addresses go in
// the usual DNS and IP SANs, for the server-name check of TLS clients.
//
// # Issuing
//
// NewAuthority and Authority.Issue make a CA and certificates with Go's
// crypto (ECDSA P-256): enough for tests, the compose cluster and small
// deployments. A production cluster may use any CA, as long as node
// certificates carry the node URI.
//
// # Reloading
//
// Reloading serves certificate, key and client CA files to a TLS server
// and re-reads them when they change, so that they rotate without a
// restart.
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// Scheme is the URI scheme of the identities in followgraph certificates.
const Scheme = "followgraph"

// NodeURI is the URI SAN naming node id.
func NodeURI(id string) *url.URL { return &url.URL{Scheme: Scheme, Host: "node", Path: "/" + id} }

// ClientURI is the URI SAN naming client name.
func ClientURI(name string) *url.URL {
	return &url.URL{Scheme: Scheme, Host: "client", Path: "/" + name}
}

// NodeID returns the node ID a certificate names, if it names one.
func NodeID(c *x509.Certificate) (string, bool) { return identity(c, "node") }

// ClientName returns the client name a certificate names, if it names one.
func ClientName(c *x509.Certificate) (string, bool) { return identity(c, "client") }

func identity(c *x509.Certificate, kind string) (string, bool) {
	for _, u := range c.URIs {
		if u.Scheme == Scheme && u.Host == kind && len(u.Path) > 1 {
			return strings.TrimPrefix(u.Path, "/"), true
		}
	}
	return "", false
}

// ErrNoCertificates is returned for a CA file with no certificate in it.
var ErrNoCertificates = errors.New("certs: no PEM certificate found")

// LoadPool reads a PEM file of CA certificates.
func LoadPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%w in %s", ErrNoCertificates, file)
	}
	return pool, nil
}

// LoadKeyPair reads a PEM certificate (chain) and its private key.
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return c, fmt.Errorf("certs: %s and %s: %w", certFile, keyFile, err)
	}
	return c, nil
}

// Server returns the TLS configuration of a server with the given
// certificate. With clientCAFile, clients must present a certificate
// issued by one of its CAs (mutual TLS).
func Server(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	kp, err := LoadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}
	if clientCAFile != "" {
		if cfg.ClientCAs, err = LoadPool(clientCAFile); err != nil {
			return nil, err
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// Client returns the TLS configuration of a client: servers are checked
// against caFile (the system roots when empty) and serverName (the dialed
// host when empty); certFile and keyFile, if set, are the client's own
// certificate for mutual TLS.
func Client(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	var err error
	if caFile != "" {
		if cfg.RootCAs, err = LoadPool(caFile); err != nil {
			return nil, err
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("certs: a client certificate needs both its certificate and its key file")
	}
	if certFile != "" {
		kp, err := LoadKeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{kp}
	}
	return cfg, nil
}

// Authority is a CA that issues certificates.
type Authority struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	der  []byte
}

// NewAuthority makes a self-signed CA named name, valid for validFor.
func NewAuthority(name string, validFor time.Duration) (*Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"followgraph"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Authority{Cert: cert, Key: key, der: der}, nil
}

// CertPEM is the CA certificate, PEM-encoded (the file clients and peers
// trust).
func (a *Authority) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.der})
}

// KeyPEM is the CA's private key, PEM-encoded.
func (a *Authority) KeyPEM() ([]byte, error) { return keyPEM(a.Key) }

// Pool is a pool holding only this CA.
func (a *Authority) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.Cert)
	return p
}

// Request describes a certificate to issue.
type Request struct {
	// Name is the subject's common name.
	Name string
	// URIs are identity SANs (NodeURI, ClientURI).
	URIs []*url.URL
	// Hosts are DNS names or IP addresses the certificate is valid for as
	// a server.
	Hosts []string
	// ValidFor is the lifetime from now.
	ValidFor time.Duration
}

// Node is the request of node id's certificate, valid for hosts. A node
// certificate serves both ends of TLS: it is a server's certificate on
// the client and raft ports and a client's when the node dials a peer.
func Node(id string, hosts []string, validFor time.Duration) Request {
	return Request{Name: id, URIs: []*url.URL{NodeURI(id)}, Hosts: hosts, ValidFor: validFor}
}

// ClientCert is the request of client name's certificate.
func ClientCert(name string, validFor time.Duration) Request {
	return Request{Name: name, URIs: []*url.URL{ClientURI(name)}, ValidFor: validFor}
}

// Issue makes a key and a certificate for r, signed by a, both
// PEM-encoded.
func (a *Authority) Issue(r Request) (certPEM, keyPEMBytes []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: r.Name, Organization: []string{"followgraph"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(r.ValidFor),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         r.URIs,
	}
	for _, h := range r.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, key.Public(), a.Key)
	if err != nil {
		return nil, nil, err
	}
	kp, err := keyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), kp, nil
}

// IssueTLS is Issue, returning a tls.Certificate (for tests).
func (a *Authority) IssueTLS(r Request) (tls.Certificate, error) {
	c, k, err := a.Issue(r)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(c, k)
}

func keyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}

// WriteFiles writes NAME.crt and NAME.key into dir (the key readable by
// its owner only) and returns their paths.
func WriteFiles(dir, name string, certPEM, keyPEM []byte) (certFile, keyFile string, err error) {
	certFile, keyFile = dir+"/"+name+".crt", dir+"/"+name+".key"
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// LoadAuthority reads a CA's PEM certificate and private key (as
// Authority.CertPEM and KeyPEM write them), to issue more certificates
// under a CA made earlier.
func LoadAuthority(certFile, keyFile string) (*Authority, error) {
	kp, err := LoadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(kp.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("certs: %s: %w", certFile, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("certs: %s is not a CA certificate", certFile)
	}
	key, ok := kp.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("certs: %s: the key cannot sign", keyFile)
	}
	return &Authority{Cert: cert, Key: key, der: kp.Certificate[0]}, nil
}
