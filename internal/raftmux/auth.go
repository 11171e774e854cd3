package raftmux

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/followgraph/followgraph/internal/certs"
)

// Peer authentication on the raft port (see "Authentication" in doc.go).
//
// An Auth turns a freshly accepted or dialed TCP connection into an
// authenticated one before the FGMUX1 hello: a TLS 1.3 session in both
// modes, and in secret mode a proof of the cluster secret bound to that
// session. A nil *Auth means no authentication and the plain wire format.

// Refusal reasons passed to Config.OnRefused. They are stable: metrics use
// them as label values.
const (
	RefusedNotTLS      = "not_tls"     // the peer did not start TLS
	RefusedCertificate = "certificate" // no certificate, bad chain, other CA, expired
	RefusedNoNodeID    = "no_node_id"  // a valid certificate without a node URI
	RefusedWrongNode   = "wrong_node"  // the certificate names another node than gossip has at that address
	RefusedBadSecret   = "bad_secret"  // a missing, garbled or wrong secret proof
	RefusedHandshake   = "handshake"   // any other TLS failure
	RefusedTimeout     = "timeout"     // the handshake and hello did not finish in DialTimeout
	RefusedBadHello    = "bad_hello"   // not an FGMUX1 hello
)

// RefusedReasons lists every reason OnRefused may report, for metrics that
// export each from the start.
func RefusedReasons() []string {
	return []string{RefusedNotTLS, RefusedCertificate, RefusedNoNodeID, RefusedWrongNode,
		RefusedBadSecret, RefusedHandshake, RefusedTimeout, RefusedBadHello}
}

// Sentinel errors of peer authentication. Dial errors wrap them (test with
// errors.Is), and each maps to one refusal reason.
var (
	// ErrPeerCertificate: the peer presented no certificate, or one that
	// does not chain to the cluster CA (other CA, expired, wrong usage).
	ErrPeerCertificate = errors.New("raftmux: peer certificate not issued by the cluster CA")
	// ErrNoNodeID: the certificate chains to the CA but names no node
	// (no followgraph://node/ID URI SAN), e.g. a client certificate.
	ErrNoNodeID = errors.New("raftmux: peer certificate names no node")
	// ErrWrongNode: the certificate names a node other than the one
	// gossip places at the peer's address.
	ErrWrongNode = errors.New("raftmux: peer certificate names another node than the one at its address")
	// ErrBadSecret: the peer's proof of the cluster secret is missing,
	// malformed or wrong.
	ErrBadSecret = errors.New("raftmux: peer did not prove the cluster secret")
	// ErrRefusedByPeer: the peer closed the connection or sent a TLS alert
	// during authentication: it refused our credentials (or is not a
	// raftmux peer with the same authentication mode).
	ErrRefusedByPeer = errors.New("raftmux: peer refused our credentials")
	// ErrNodeMismatch: NewMutualTLSAuth's certificate does not name the
	// node it is meant for.
	ErrNodeMismatch = errors.New("raftmux: node certificate names another node")
)

const (
	// exporterLabel is the TLS exporter label (RFC 8446 section 7.5) of
	// the key material the secret proofs are computed over.
	exporterLabel = "EXPORTER-followgraph-raftmux-v1"
	exporterLen   = 32

	// proofMagic starts each secret proof, so that garbage (or a peer of
	// another version) is told from a wrong secret and rejected after a
	// few bytes.
	proofMagic  = "FGAUTH1"
	proofMACLen = sha256.Size
	proofLen    = len(proofMagic) + proofMACLen

	// Direction labels mixed into the MAC: the dialer's proof is never a
	// valid acceptor proof, so a fake acceptor cannot reflect it.
	labelDialer   = "followgraph raftmux dialer"
	labelAcceptor = "followgraph raftmux acceptor"

	// minSecretLen is the shortest cluster secret NewSecretAuth takes.
	minSecretLen = 32
)

type authMode int

const (
	modeMutualTLS authMode = iota + 1
	modeSecret
)

// Auth is the raft port's peer authentication, shared by the acceptor and
// the dialer side of a Mux. Make one with NewMutualTLSAuth or
// NewSecretAuth; it is safe for concurrent use.
type Auth struct {
	mode   authMode
	nodeID string           // mutual TLS: this node's ID
	files  *certs.Reloading // mutual TLS: node certificate, key and CA
	secret []byte           // secret mode
	self   tls.Certificate  // secret mode: throwaway self-signed certificate
	once   sync.Once        // sets files.OnError from the first Mux's logger
}

// NewMutualTLSAuth authenticates peers with node certificates of the
// cluster CA in caFile. certFile and keyFile are this node's certificate,
// which must name nodeID (certs.NodeURI); the files are re-read when they
// change (certs.Reloading), so certificates rotate without a restart.
func NewMutualTLSAuth(certFile, keyFile, caFile, nodeID string) (*Auth, error) {
	if caFile == "" {
		return nil, errors.New("raftmux: mutual TLS needs the cluster CA file")
	}
	files, err := certs.NewReloading(certFile, keyFile, caFile)
	if err != nil {
		return nil, err
	}
	cert, pool := files.Current()
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("raftmux: %s: %w", certFile, err)
	}
	id, ok := certs.NodeID(leaf)
	if !ok {
		return nil, fmt.Errorf("%w: %s has no %s URI", ErrNodeMismatch, certFile, certs.NodeURI("ID"))
	}
	if id != nodeID {
		return nil, fmt.Errorf("%w: %s names node %q, not %q", ErrNodeMismatch, certFile, id, nodeID)
	}
	// Our own certificate must pass the checks we apply to peers, or
	// every peer would refuse us: better to fail at startup.
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}); err != nil {
		return nil, fmt.Errorf("raftmux: %s is not valid under the CA of %s: %w", certFile, caFile, err)
	}
	return &Auth{mode: modeMutualTLS, nodeID: nodeID, files: files}, nil
}

// NewSecretAuth authenticates peers by a shared cluster secret of at least
// 32 bytes: TLS 1.3 with throwaway certificates (not verified), then a
// mutual HMAC-SHA256 proof of the secret over the session's exported key
// material.
func NewSecretAuth(secret []byte) (*Auth, error) {
	if len(secret) < minSecretLen {
		return nil, fmt.Errorf("raftmux: cluster secret of %d bytes; at least %d needed", len(secret), minSecretLen)
	}
	self, err := throwawayCert()
	if err != nil {
		return nil, fmt.Errorf("raftmux: throwaway certificate: %w", err)
	}
	return &Auth{mode: modeSecret, secret: append([]byte(nil), secret...), self: self}, nil
}

// Mode names the authentication mode: "mtls" or "secret" ("none" for nil).
func (a *Auth) Mode() string {
	switch {
	case a == nil:
		return "none"
	case a.mode == modeMutualTLS:
		return "mtls"
	}
	return "secret"
}

// throwawayCert makes the self-signed certificate of secret mode. Nobody
// verifies it: TLS only needs one to run, and the secret proof, bound to
// the session, is what authenticates.
func throwawayCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "followgraph raftmux"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(100 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// serverConfig is the acceptor's TLS configuration. In mutual TLS it
// asks for (without requiring) a client certificate, so that a missing one
// reaches verifyPeer and is refused with a precise reason.
func (a *Auth) serverConfig() *tls.Config {
	if a.mode == modeSecret {
		return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{a.self}, SessionTicketsDisabled: true}
	}
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		SessionTicketsDisabled: true, // every session verifies a full chain
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool := a.files.Current()
			return &tls.Config{
				MinVersion:             tls.VersionTLS13,
				SessionTicketsDisabled: true,
				Certificates:           []tls.Certificate{*cert},
				ClientAuth:             tls.RequestClientCert,
				VerifyConnection: func(cs tls.ConnectionState) error {
					_, err := verifyPeer(cs, pool, x509.ExtKeyUsageClientAuth)
					return err
				},
			}, nil
		},
	}
}

// clientConfig is the dialer's TLS configuration for a peer at addr. The
// standard verification is off (InsecureSkipVerify) because it checks host
// names, which mean nothing here: verifyPeer checks the chain against the
// cluster CA and the node URI, and pins it to the node gossip has at addr.
func (a *Auth) clientConfig(addr string, nodeAt func(string) (string, bool)) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}
	if a.mode == modeSecret {
		return cfg
	}
	cert, pool := a.files.Current()
	cfg.Certificates = []tls.Certificate{*cert}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		id, err := verifyPeer(cs, pool, x509.ExtKeyUsageServerAuth)
		if err != nil {
			return err
		}
		return checkPinned(nodeAt, addr, id)
	}
	return cfg
}

// verifyPeer checks the peer's certificate chain against the cluster CA
// (never the system roots) and returns the node ID it names.
func verifyPeer(cs tls.ConnectionState, pool *x509.CertPool, usage x509.ExtKeyUsage) (string, error) {
	if len(cs.PeerCertificates) == 0 {
		return "", fmt.Errorf("%w: none presented", ErrPeerCertificate)
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}
	if _, err := leaf.Verify(opts); err != nil {
		return "", fmt.Errorf("%w: %v", ErrPeerCertificate, err)
	}
	id, ok := certs.NodeID(leaf)
	if !ok {
		return "", fmt.Errorf("%w (subject %q)", ErrNoNodeID, leaf.Subject.CommonName)
	}
	return id, nil
}

// checkPinned refuses a certificate for node id at addr when gossip knows
// another node there. An address gossip does not know (a node joining, not
// gossiped yet) passes: any valid node certificate of the CA may use it.
func checkPinned(nodeAt func(string) (string, bool), addr, id string) error {
	if nodeAt == nil {
		return nil
	}
	if want, known := nodeAt(addr); known && want != id {
		return fmt.Errorf("%w: %s is node %q, the certificate names %q", ErrWrongNode, addr, want, id)
	}
	return nil
}

// accept authenticates an incoming connection, under conn's deadline, and
// returns the connection to read the hello from and, in mutual TLS, the
// peer's node ID.
func (a *Auth) accept(conn net.Conn) (net.Conn, string, error) {
	tc := tls.Server(conn, a.serverConfig())
	if err := tc.HandshakeContext(context.Background()); err != nil {
		return nil, "", err
	}
	cs := tc.ConnectionState()
	if a.mode == modeMutualTLS {
		id, _ := certs.NodeID(cs.PeerCertificates[0]) // verified in the handshake
		return tc, id, nil
	}
	ekm, err := cs.ExportKeyingMaterial(exporterLabel, nil, exporterLen)
	if err != nil {
		return nil, "", err
	}
	got, err := readProof(tc)
	if err != nil {
		return nil, "", err
	}
	if !hmac.Equal(got[:], a.mac(labelDialer, ekm)) {
		return nil, "", fmt.Errorf("%w: wrong MAC", ErrBadSecret)
	}
	if _, err := tc.Write(encodeProof(a.mac(labelAcceptor, ekm))); err != nil {
		return nil, "", err
	}
	return tc, "", nil
}

// dial authenticates an outgoing connection to addr, under conn's
// deadline. Failures caused by the peer refusing us wrap ErrRefusedByPeer;
// failures of the peer's credentials wrap the other sentinels.
func (a *Auth) dial(conn net.Conn, addr string, nodeAt func(string) (string, bool)) (net.Conn, error) {
	tc := tls.Client(conn, a.clientConfig(addr, nodeAt))
	if err := tc.HandshakeContext(context.Background()); err != nil {
		return nil, refusedByPeer(err)
	}
	if a.mode == modeMutualTLS {
		// In TLS 1.3 the acceptor checks our certificate after our side
		// of the handshake is done: its refusal shows as an alert on the
		// first read, the hello's answer (see Mux.handshakeOut).
		return tc, nil
	}
	cs := tc.ConnectionState()
	ekm, err := cs.ExportKeyingMaterial(exporterLabel, nil, exporterLen)
	if err != nil {
		return nil, err
	}
	if _, err := tc.Write(encodeProof(a.mac(labelDialer, ekm))); err != nil {
		return nil, refusedByPeer(err)
	}
	got, err := readProof(tc)
	if err != nil {
		return nil, refusedByPeer(err)
	}
	if !hmac.Equal(got[:], a.mac(labelAcceptor, ekm)) {
		return nil, fmt.Errorf("%w: the acceptor's MAC is wrong", ErrBadSecret)
	}
	return tc, nil
}

// refusedByPeer marks an error as the peer's refusal when it is one: the
// connection closed or reset under us, or a TLS alert from the other side
// (crypto/tls reports those as a *net.OpError with Op "remote error").
func refusedByPeer(err error) error {
	var op *net.OpError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return fmt.Errorf("%w: connection closed: %v", ErrRefusedByPeer, err)
	case errors.As(err, &op) && op.Op == "remote error":
		return fmt.Errorf("%w: %v", ErrRefusedByPeer, err)
	}
	return err
}

// mac is the secret proof of one direction over a session's key material.
func (a *Auth) mac(label string, ekm []byte) []byte {
	h := hmac.New(sha256.New, a.secret)
	h.Write([]byte(label))
	h.Write([]byte{0})
	h.Write(ekm)
	return h.Sum(nil)
}

func encodeProof(mac []byte) []byte {
	return append([]byte(proofMagic), mac...)
}

// readProof reads a secret proof: the magic, checked before the MAC is
// waited for so that garbage is dropped at once, then the 32-byte MAC.
func readProof(r io.Reader) ([proofMACLen]byte, error) {
	var mac [proofMACLen]byte
	var magic [len(proofMagic)]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return mac, err
	}
	if string(magic[:]) != proofMagic {
		return mac, fmt.Errorf("%w: magic %q", ErrBadSecret, magic[:])
	}
	if _, err := io.ReadFull(r, mac[:]); err != nil {
		return mac, err
	}
	return mac, nil
}

// refusalReason maps an authentication or hello error to its OnRefused
// reason.
func refusalReason(err error) string {
	var ne net.Error
	var rh tls.RecordHeaderError
	switch {
	case errors.Is(err, ErrWrongNode):
		return RefusedWrongNode
	case errors.Is(err, ErrNoNodeID):
		return RefusedNoNodeID
	case errors.Is(err, ErrPeerCertificate):
		return RefusedCertificate
	case errors.Is(err, ErrBadSecret):
		return RefusedBadSecret
	case errors.Is(err, errBadHello):
		return RefusedBadHello
	case errors.As(err, &ne) && ne.Timeout():
		return RefusedTimeout
	case errors.As(err, &rh):
		return RefusedNotTLS
	}
	return RefusedHandshake
}
