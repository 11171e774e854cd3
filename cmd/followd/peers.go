package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/internal/raftmux"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
)

// peerOptions are the flags of raft port authentication
// (internal/raftmux, "Authentication"): mutual TLS with node certificates
// of a cluster CA, or a cluster secret. The secret is never logged.
type peerOptions struct {
	cert, key, ca string // --peer-cert, --peer-key, --peer-ca
	secretFile    string // --cluster-secret-file
}

// minClusterSecret is the least length of the cluster secret, after
// trimming white space.
const minClusterSecret = 32

func (p *peerOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&p.cert, "peer-cert", "", "cluster: authenticate the raft port with mutual TLS: this node's PEM certificate `FILE`, naming followgraph://node/<--node-id> (with --peer-key and --peer-ca; reloaded when it changes)")
	fs.StringVar(&p.key, "peer-key", "", "cluster: PEM private key `FILE` of --peer-cert")
	fs.StringVar(&p.ca, "peer-ca", "", "cluster: PEM `FILE` of the cluster CA that issues every node's --peer-cert (peers are verified against it only)")
	fs.StringVar(&p.secretFile, "cluster-secret-file", "", "cluster: authenticate the raft port with the secret in this `FILE` (at least 32 bytes, the same on every node; openssl rand -base64 48), instead of --peer-cert")
}

// validate checks the combination of the flags; inCluster says whether the
// node has a raft port at all.
func (p *peerOptions) validate(inCluster bool) error {
	certs := p.cert != "" || p.key != "" || p.ca != ""
	switch {
	case certs && (p.cert == "" || p.key == "" || p.ca == ""):
		return errors.New("--peer-cert, --peer-key and --peer-ca go together: give all three")
	case certs && p.secretFile != "":
		return errors.New("--cluster-secret-file and --peer-cert are exclusive: give one")
	case (certs || p.secretFile != "") && !inCluster:
		return errors.New("--peer-cert and --cluster-secret-file authenticate the raft port: only a cluster node has one (set --join or --bootstrap-expect)")
	}
	return nil
}

// auth reads the files and returns the raft port's Auth (nil: none). The
// certificate must name nodeID.
func (p *peerOptions) auth(nodeID string, log hclog.Logger) (*raftmux.Auth, error) {
	switch {
	case p.cert != "":
		a, err := raftmux.NewMutualTLSAuth(p.cert, p.key, p.ca, nodeID)
		if err != nil {
			return nil, fmt.Errorf("--peer-cert, --peer-key, --peer-ca: %w", err)
		}
		return a, nil
	case p.secretFile != "":
		secret, err := readClusterSecret(p.secretFile, log)
		if err != nil {
			return nil, fmt.Errorf("--cluster-secret-file %s: %w", p.secretFile, err)
		}
		return raftmux.NewSecretAuth(secret)
	}
	return nil, nil
}

// readClusterSecret reads the secret, trimmed of surrounding white space
// (a trailing newline is not part of it). A file others may read is
// accepted with a warning: the secret is what keeps other hosts off the
// raft port.
func readClusterSecret(path string, log hclog.Logger) ([]byte, error) {
	b, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	secret := bytes.TrimSpace(b)
	if len(secret) < minClusterSecret {
		// The error never quotes the content.
		return nil, fmt.Errorf("the secret has %d bytes; at least %d needed", len(secret), minClusterSecret)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("the cluster secret file is readable by other users; chmod 600 it", "file", path, "mode", fi.Mode().Perm().String())
	}
	return secret, nil
}

// setPeerAuth puts the raft port's authentication and its refusal counter
// into cfg, or warns that the port is open to anyone who reaches it.
func (o *options) setPeerAuth(cfg *cluster.Config, log hclog.Logger, m *metrics) error {
	a, err := o.peers.auth(o.nodeID, log)
	if err != nil {
		return err
	}
	if a == nil {
		log.Warn("the raft port is unauthenticated: anyone who can reach it can take part in raft; set --peer-cert/--peer-key/--peer-ca or --cluster-secret-file", "raft", o.raftAddr)
		return nil
	}
	cfg.Membership.PeerAuth = a
	cfg.Membership.OnPeerRefused = m.peerRefused
	log.Info("raft port authenticated", "mode", a.Mode())
	return nil
}

// newPeerRefused is followgraph_peer_refused_total, with every reason of
// the raft port exported from the start (at 0).
func newPeerRefused() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "followgraph_peer_refused_total",
		Help: "Peers refused on the node-to-node ports before any protocol byte, by port and reason (raft: not_tls, certificate, no_node_id, wrong_node, bad_secret, handshake, timeout, bad_hello).",
	}, []string{"port", "reason"})
	for _, r := range raftmux.RefusedReasons() {
		c.WithLabelValues("raft", r)
	}
	return c
}

// peerRefused counts a refusal on the raft port (cluster.MembershipConfig
// OnPeerRefused).
func (m *metrics) peerRefused(reason string) {
	m.peerRefusals.WithLabelValues("raft", reason).Inc()
}
