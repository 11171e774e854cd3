package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/internal/gossipkey"
	"github.com/prometheus/client_golang/prometheus"
)

// Gossip encryption's flags. The key is a secret: no message, log line
// or metric shows it, only its fingerprint.

// gossipOptions are the flags of gossip encryption.
type gossipOptions struct {
	key     string // --gossip-key: base64
	keyFile string // --gossip-key-file: a file holding the base64
	decoded []byte // the key, once check has read it
}

func (g *gossipOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&g.key, "gossip-key", "", "cluster: encrypt gossip with this `KEY`, standard base64 of 16, 24 or 32 random bytes (openssl rand -base64 32); it seeds the data directory's keyring, which wins once it exists (empty: gossip in the clear unless the keyring exists)")
	fs.StringVar(&g.keyFile, "gossip-key-file", "", "cluster: read the --gossip-key from this `FILE` instead, keeping it off the command line and the environment")
}

// maxKeyFile bounds what is read of a key file: a key is 44 characters.
const maxKeyFile = 4096

// check reads and validates the key; inCluster says whether the node
// gossips at all.
func (g *gossipOptions) check(inCluster bool) error {
	src, text := "--gossip-key", g.key
	switch {
	case g.key != "" && g.keyFile != "":
		return errors.New("--gossip-key and --gossip-key-file are exclusive: give one")
	case g.keyFile != "":
		src = "--gossip-key-file " + g.keyFile
		b, err := readKeyFile(g.keyFile)
		if err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
		text = string(b)
	case g.key == "":
		return nil
	}
	if !inCluster {
		return fmt.Errorf("%s: only a cluster node gossips (set --join or --bootstrap-expect)", src)
	}
	k, err := gossipkey.Decode(text)
	if err != nil {
		// The error never quotes the input: it may be most of a key.
		return fmt.Errorf("%s: %w", src, err)
	}
	g.decoded = k
	return nil
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("over %d bytes: not a key file", maxKeyFile)
	}
	return b, nil
}

// registerGossipMetrics exports the size of the node's gossip keyring: 1
// normally, 2 during a rotation, 0 when gossip is not encrypted. A node
// left with 2 after a rotation still accepts the old key.
func registerGossipMetrics(reg *prometheus.Registry, n *cluster.Node) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "followgraph_gossip_keys",
		Help: "Keys in the node's gossip keyring (0: gossip is not encrypted).",
	}, func() float64 {
		keys, err := n.GossipKeys()
		if err != nil {
			return 0
		}
		return float64(len(keys))
	}))
}
