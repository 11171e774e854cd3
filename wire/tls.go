package wire

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/followgraph/followgraph/codes"
)

// TLS on the client port (ServerConfig.TLS). The server wraps each
// accepted connection and runs the TLS handshake in the connection's own
// goroutine, never in the accept loop, so a client that stalls mid-
// handshake delays nobody else; the handshake and the hello frame share
// one budget, HandshakeTimeout, after which the connection is dropped.

// TLSObserver is an optional interface of a ServerConfig.Observer: it is
// told of every failed TLS handshake, with its reason (one of the
// TLSFailure constants).
type TLSObserver interface {
	TLSHandshakeFailed(reason string)
}

// The reasons a TLS handshake fails, as TLSObserver reports them (and
// followd labels its followgraph_tls_handshake_failures_total).
const (
	// TLSFailureNotTLS: the client did not speak TLS (a plaintext client
	// on a TLS port). It is answered with a plaintext 40004 frame.
	TLSFailureNotTLS = "not_tls"
	// TLSFailureTimeout: no complete handshake within HandshakeTimeout.
	TLSFailureTimeout = "timeout"
	// TLSFailureNoCertificate: mutual TLS, and the client sent no
	// certificate.
	TLSFailureNoCertificate = "no_certificate"
	// TLSFailureBadCertificate: mutual TLS, and the client's certificate
	// does not verify against the client CA (another CA, expired, not for
	// client use).
	TLSFailureBadCertificate = "bad_certificate"
	// TLSFailureClosed: the client closed the connection during the
	// handshake (typically: it rejected the server's certificate).
	TLSFailureClosed = "closed"
	// TLSFailureOther: any other handshake error (protocol versions,
	// cipher suites, malformed messages).
	TLSFailureOther = "other"
)

// TLSFailureReasons lists the reasons, for metrics.
func TLSFailureReasons() []string {
	return []string{TLSFailureNotTLS, TLSFailureTimeout, TLSFailureNoCertificate, TLSFailureBadCertificate, TLSFailureClosed, TLSFailureOther}
}

// NotTLSMessage starts the message of the 40004 a TLS port sends, in
// plaintext, to a client whose first bytes are not a TLS handshake: the
// client learns why it is refused instead of seeing a closed connection.
const NotTLSMessage = "this port requires TLS"

// ClassifyTLSError names the reason of a failed server handshake (one
// of TLSFailureReasons), for the metrics of every TLS port.
func ClassifyTLSError(err error) string {
	var rhe tls.RecordHeaderError
	var cve *tls.CertificateVerificationError
	var ne net.Error
	var ua x509.UnknownAuthorityError
	switch {
	case errors.As(err, &rhe):
		return TLSFailureNotTLS
	case errors.As(err, &ne) && ne.Timeout():
		return TLSFailureTimeout
	case errors.As(err, &cve), errors.As(err, &ua):
		return TLSFailureBadCertificate
	case strings.Contains(err.Error(), "didn't provide a certificate"):
		// crypto/tls has no error type for a missing client certificate.
		return TLSFailureNoCertificate
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		strings.Contains(err.Error(), "remote error"):
		return TLSFailureClosed
	}
	return TLSFailureOther
}

// tlsHandshake runs the server's TLS handshake on tc within the
// handshake budget; on failure it reports, logs and, for a plaintext
// client, answers in plaintext. It reports whether the handshake
// succeeded.
func (c *conn) tlsHandshake(tc *tls.Conn) bool {
	s := c.s
	tc.SetDeadline(c.helloBy)
	err := tc.Handshake()
	if err == nil {
		return true
	}
	reason := ClassifyTLSError(err)
	if o, ok := s.obs.(TLSObserver); ok {
		o.TLSHandshakeFailed(reason)
	}
	var rhe tls.RecordHeaderError
	if errors.As(err, &rhe) && rhe.Conn != nil {
		// Nothing was written yet: the client reads a frame it
		// understands.
		answerPlaintext(rhe.Conn)
	}
	s.tlsFailures.log(s, reason, tc.RemoteAddr(), err)
	return false
}

// tlsFailureLog rate-limits the warnings of failed TLS handshakes: a port
// scanner or a misconfigured fleet must not flood the log, but an
// operator must learn that clients are being refused. Every failure is
// logged at debug; at most one warning per tlsWarnEvery says how many
// failed since the last.
type tlsFailureLog struct {
	last       atomic.Int64 // unix nanoseconds of the last warning
	suppressed atomic.Int64
}

const tlsWarnEvery = 10 * time.Second

func (l *tlsFailureLog) log(s *Server, reason string, remote net.Addr, err error) {
	s.log.Debug("TLS handshake failed", "remote", remote, "reason", reason, "error", err)
	now, last := time.Now().UnixNano(), l.last.Load()
	if now-last < int64(tlsWarnEvery) || !l.last.CompareAndSwap(last, now) {
		l.suppressed.Add(1)
		return
	}
	s.log.Warn("TLS handshake failed", "remote", remote, "reason", reason, "error", err,
		"other_failures_since_last_warning", l.suppressed.Swap(0))
}

// rejectTLS answers a TLS connection over the limit: the refusal must be
// sent inside TLS to be readable, so the handshake runs first, with a
// short budget of its own.
func (s *Server) rejectTLS(tc *tls.Conn, frame []byte) {
	tc.SetDeadline(time.Now().Add(time.Second))
	if tc.Handshake() == nil {
		tc.Write(frame)
	}
	tc.Close()
}

// answerPlaintext tells a plaintext client that the port requires TLS,
// then lingers: the rest of its hello is unread, and closing a socket with
// unread bytes sends a reset that can make the client's kernel drop the
// answer.
func answerPlaintext(nc net.Conn) {
	nc.SetDeadline(time.Now().Add(time.Second))
	nc.Write(AppendError(nil, 0, codes.New(codes.AuthFailed, "%s: connect with TLS (followctl --tls-ca FILE)", NotTLSMessage)))
	if tc, ok := nc.(interface{ CloseWrite() error }); ok && tc.CloseWrite() == nil {
		io.Copy(io.Discard, io.LimitReader(nc, 64<<10))
	}
}
