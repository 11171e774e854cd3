package main

import (
	"crypto/tls"
	"flag"
	"os"
	"strconv"

	"github.com/followgraph/followgraph/internal/certs"
)

// tlsOptions are the global --tls* flags: how followctl reaches a node
// whose client port uses TLS (followd --tls-cert).
type tlsOptions struct {
	on                        bool
	ca, cert, key, serverName string
}

// tlsFlags are the TLS flags, in the order help lists them (after the
// other global flags).
var tlsFlags = []string{"tls", "tls-ca", "tls-cert", "tls-key", "tls-server-name"}

// register adds the flags, with the environment's values applied after
// registering (help shows the built-in defaults; flags parsed later win).
func (t *tlsOptions) register(fs *flag.FlagSet) {
	fs.BoolVar(&t.on, "tls", false, "connect with TLS (implied by the other --tls-* flags); without --tls-ca, the system's roots are trusted (env FOLLOWCTL_TLS)")
	fs.StringVar(&t.ca, "tls-ca", "", "trust the server certificates this PEM CA `FILE` issued (env FOLLOWCTL_TLS_CA)")
	fs.StringVar(&t.cert, "tls-cert", "", "present this PEM client certificate `FILE` (mutual TLS; with --tls-key; env FOLLOWCTL_TLS_CERT)")
	fs.StringVar(&t.key, "tls-key", "", "PEM private key `FILE` of --tls-cert (env FOLLOWCTL_TLS_KEY)")
	fs.StringVar(&t.serverName, "tls-server-name", "", "the `NAME` the server's certificate must hold (default: the host of --addr; env FOLLOWCTL_TLS_SERVER_NAME)")
	for env, dst := range map[string]*string{"FOLLOWCTL_TLS_CA": &t.ca, "FOLLOWCTL_TLS_CERT": &t.cert, "FOLLOWCTL_TLS_KEY": &t.key, "FOLLOWCTL_TLS_SERVER_NAME": &t.serverName} {
		if v := os.Getenv(env); v != "" {
			*dst = v
		}
	}
	if v, err := strconv.ParseBool(os.Getenv("FOLLOWCTL_TLS")); err == nil {
		t.on = v
	}
}

// config is the client's TLS configuration (nil: plaintext).
func (t *tlsOptions) config() (*tls.Config, error) {
	if !t.on && t.ca == "" && t.cert == "" && t.key == "" && t.serverName == "" {
		return nil, nil
	}
	return certs.Client(t.ca, t.cert, t.key, t.serverName)
}
