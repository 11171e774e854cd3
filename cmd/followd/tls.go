package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/followgraph/followgraph/internal/certs"
	"github.com/hashicorp/go-hclog"
)

// tlsOptions are the --tls-* and --http-tls flags: TLS on the client port
// and on the HTTP port.
//
// The HTTP port follows the client port: with --tls-cert it serves HTTPS
// with the same certificate (--http-tls on, the default), so that no port
// of a TLS node is plaintext unless asked for. Health probes and
// Prometheus then scrape https:// and must trust the CA. --http-tls mtls
// also requires client certificates of --tls-client-ca there (metrics and
// profiles readable by certificate holders only; most probes cannot
// present one); --http-tls off keeps it plaintext (behind a sidecar, or a
// loopback-only --http).
type tlsOptions struct {
	cert, key, clientCA string
	httpMode            string
	checkEvery          time.Duration
}

// The --http-tls values.
const (
	httpTLSOn   = "on"
	httpTLSMTLS = "mtls"
	httpTLSOff  = "off"
)

func (t *tlsOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&t.cert, "tls-cert", "", "serve the client port (and the HTTP port, see --http-tls) over TLS with this PEM certificate `FILE` (with --tls-key; empty: plaintext)")
	fs.StringVar(&t.key, "tls-key", "", "PEM private key `FILE` of --tls-cert")
	fs.StringVar(&t.clientCA, "tls-client-ca", "", "mutual TLS: clients must present a certificate issued by a CA in this PEM `FILE` (needs --tls-cert)")
	fs.DurationVar(&t.checkEvery, "tls-check-every", certs.DefaultCheckEvery, "how often, at most, the TLS files are checked for changes (at a handshake); changed files are loaded without a restart")
	fs.StringVar(&t.httpMode, "http-tls", httpTLSOn, "with --tls-cert, the HTTP port: on (HTTPS, same certificate), mtls (HTTPS, and client certificates of --tls-client-ca required), off (plaintext)")
}

// validate checks the combination of the flags.
func (t *tlsOptions) validate() error {
	switch {
	case (t.cert == "") != (t.key == ""):
		return errors.New("--tls-cert and --tls-key go together")
	case t.clientCA != "" && t.cert == "":
		return errors.New("--tls-client-ca needs --tls-cert")
	case t.httpMode != httpTLSOn && t.httpMode != httpTLSMTLS && t.httpMode != httpTLSOff:
		return fmt.Errorf("--http-tls must be on, mtls or off, not %q", t.httpMode)
	case t.httpMode == httpTLSMTLS && t.clientCA == "":
		return errors.New("--http-tls mtls needs --tls-client-ca")
	case t.checkEvery < 0:
		return errors.New("--tls-check-every must not be negative")
	}
	return nil
}

// enabled reports whether the client port uses TLS.
func (t *tlsOptions) enabled() bool { return t.cert != "" }

// mode names the client port's security in the ready line.
func (t *tlsOptions) mode() string {
	switch {
	case t.clientCA != "":
		return "mutual"
	case t.cert != "":
		return "on"
	}
	return "off"
}

// configs reads the files and returns the TLS configurations of the
// client port and of the HTTP port (nil: plaintext). Both re-read the
// files when they change (certs.Reloading), so that certificates and the
// client CA rotate without a restart.
func (t *tlsOptions) configs(log hclog.Logger) (client, http *tls.Config, err error) {
	if !t.enabled() {
		return nil, nil, nil
	}
	r, err := certs.NewReloading(t.cert, t.key, t.clientCA)
	if err != nil {
		return nil, nil, fmt.Errorf("--tls-cert, --tls-key, --tls-client-ca: %w", err)
	}
	r.CheckEvery = t.checkEvery
	log = log.Named("tls")
	r.OnError = func(err error) {
		log.Warn("changed TLS files do not load; still serving the previous ones", "error", err)
	}
	r.OnReload = func() {
		log.Info("TLS files reloaded", "cert", t.cert, "client_ca", t.clientCA)
	}
	client = r.Config(t.clientCA != "")
	switch t.httpMode {
	case httpTLSOn:
		http = r.Config(false)
	case httpTLSMTLS:
		http = r.Config(true)
	}
	return client, http, nil
}
