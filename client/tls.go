package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/followgraph/followgraph/codes"
)

// startTLS runs the client's TLS handshake on nc when cfg.TLS is set. A
// configuration without ServerName checks the server's certificate
// against the dialled host. Failures that retrying cannot mend (the
// server's certificate, a plaintext server, a refused client
// certificate) are AuthFailed, so that New stops at once with the reason;
// the rest (timeouts, resets) stay retryable.
func startTLS(ctx context.Context, nc net.Conn, addr string, cfg *Config) (net.Conn, error) {
	if cfg.TLS == nil {
		return nc, nil
	}
	tc := cfg.TLS
	if tc.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		tc = tc.Clone()
		tc.ServerName = host
	}
	c := tls.Client(nc, tc)
	if err := c.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, tlsError(addr, err)
	}
	return c, nil
}

// tlsError explains a failed TLS handshake with addr.
func tlsError(addr string, err error) error {
	var rhe tls.RecordHeaderError
	var cve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &rhe):
		return codes.New(codes.AuthFailed, "TLS handshake with %s: the server does not speak TLS; is it a plaintext port? (connect without --tls-ca) (%v)", addr, err)
	case errors.As(err, &cve), errors.As(err, &ua), errors.As(err, &he), errors.As(err, &ci):
		return codes.New(codes.AuthFailed, "TLS handshake with %s: the server's certificate is not trusted: %v (check --tls-ca and --tls-server-name)", addr, err)
	case isRemoteAlert(err):
		return codes.New(codes.AuthFailed, "TLS handshake with %s: the server refused it: %v%s", addr, err, certHint)
	}
	return codes.New(codes.ShardUnavailable, "TLS handshake with %s: %v", addr, err)
}

// isRemoteAlert reports whether err is a TLS alert the server sent.
func isRemoteAlert(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "remote error"
}

// certHint follows a server's alert: most often it refused the client's
// certificate, or the lack of one.
const certHint = " (does it require a client certificate from its CA? --tls-cert, --tls-key)"

// helloError explains a failure to read the server's welcome. Over TLS
// 1.3 a server that refuses the client's certificate says so only now,
// with an alert; over plaintext, a server that closes the connection
// before answering the hello is most likely a TLS port (one of this
// version answers with a plaintext 40004, but an older one or a TLS proxy
// just closes).
func helloError(addr string, cfg *Config, err error) error {
	switch {
	case cfg.TLS != nil && isRemoteAlert(err):
		return codes.New(codes.AuthFailed, "handshake with %s: the server refused the TLS session: %v%s", addr, err, certHint)
	case cfg.TLS == nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)):
		return codes.New(codes.ShardUnavailable, "handshake with %s: server closed the connection during the handshake; is it a TLS port? (--tls-ca) (%v)", addr, err)
	}
	return codes.New(codes.ShardUnavailable, "handshake with %s: %v", addr, err)
}
