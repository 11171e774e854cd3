// Command gencerts makes a CA and the certificates of followgraph nodes
// and clients, for tests, the compose cluster and small deployments:
//
//	go run ./scripts/gencerts -out certs \
//	    -node node1=node1,127.0.0.1 -node node2=node2,127.0.0.1 -node node3=node3,127.0.0.1 \
//	    -client admin -client reader
//
// It writes DIR/ca.crt and DIR/ca.key, then NAME.crt and NAME.key for each
// -node and -client (keys readable by their owner only). A node
// certificate names its node (URI SAN followgraph://node/ID) and the hosts
// after "=" (DNS names and IP addresses, checked by TLS clients); it
// serves both ends of TLS: followd's --tls-cert on the client and HTTP
// ports, and --peer-cert between nodes. A client certificate names its
// client (followgraph://client/NAME) and is for mutual TLS
// (followctl --tls-cert).
//
// A CA already in DIR (ca.crt and ca.key) is reused, so that a node or a
// client added later is trusted by the others; -new-ca replaces it (every
// certificate must then be issued again). Keep ca.key off the nodes: only
// ca.crt is needed there.
//
// -gossip-key writes DIR/gossip.key (base64 of 32 random bytes, for
// followd --gossip-key-file) and -cluster-secret DIR/cluster.secret (for
// followd --cluster-secret-file), each only if the file is not there yet,
// so that every node of a cluster gets the same one.
package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/followgraph/followgraph/internal/certs"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gencerts:", err)
		os.Exit(1)
	}
}

// listFlag is a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// config is the command line.
type config struct {
	out      string
	nodes    listFlag // ID=HOST,HOST...
	clients  listFlag
	validFor time.Duration
	newCA    bool
	gossip   bool // write gossip.key
	secret   bool // write cluster.secret
}

func parse(args []string, out io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("gencerts", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.out, "out", "certs", "directory to write into (created if missing)")
	fs.Var(&c.nodes, "node", "a node certificate: `ID=HOST,HOST...` (repeatable); the hosts are the names and IPs clients and peers dial")
	fs.Var(&c.clients, "client", "a client certificate for `NAME` (repeatable)")
	fs.DurationVar(&c.validFor, "valid-for", 365*24*time.Hour, "lifetime of the certificates (and of a new CA, ten times as long)")
	fs.BoolVar(&c.newCA, "new-ca", false, "make a new CA even if DIR has one")
	fs.BoolVar(&c.gossip, "gossip-key", false, "also write DIR/gossip.key, a gossip encryption key (kept if present)")
	fs.BoolVar(&c.secret, "cluster-secret", false, "also write DIR/cluster.secret, a cluster secret for peer authentication (kept if present)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if len(c.nodes) == 0 && len(c.clients) == 0 && !c.gossip && !c.secret {
		return nil, errors.New("nothing to issue: give -node ID=HOSTS, -client NAME, -gossip-key or -cluster-secret")
	}
	if c.validFor <= 0 {
		return nil, errors.New("-valid-for must be positive")
	}
	return c, nil
}

func run(args []string, out io.Writer) error {
	c, err := parse(args, out)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	if err := writeKeys(c, out); err != nil {
		return err
	}
	if len(c.nodes) == 0 && len(c.clients) == 0 {
		return nil
	}
	ca, err := authority(c, out)
	if err != nil {
		return err
	}
	for _, n := range c.nodes {
		id, hosts, ok := strings.Cut(n, "=")
		if !ok || id == "" || hosts == "" {
			return fmt.Errorf("-node %q: want ID=HOST[,HOST]", n)
		}
		if err := issue(ca, c.out, id, certs.Node(id, strings.Split(hosts, ","), c.validFor), out); err != nil {
			return err
		}
	}
	for _, name := range c.clients {
		if err := issue(ca, c.out, name, certs.ClientCert(name, c.validFor), out); err != nil {
			return err
		}
	}
	return nil
}

// authority loads the CA in the output directory, or makes one.
func authority(c *config, out io.Writer) (*certs.Authority, error) {
	crt, key := filepath.Join(c.out, "ca.crt"), filepath.Join(c.out, "ca.key")
	if _, err := os.Stat(crt); err == nil && !c.newCA {
		ca, err := certs.LoadAuthority(crt, key)
		if err != nil {
			return nil, fmt.Errorf("reusing the CA in %s (or pass -new-ca): %w", c.out, err)
		}
		fmt.Fprintf(out, "reused %s\n", crt)
		return ca, nil
	}
	ca, err := certs.NewAuthority("followgraph CA", 10*c.validFor)
	if err != nil {
		return nil, err
	}
	k, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	if _, _, err := certs.WriteFiles(c.out, "ca", ca.CertPEM(), k); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "wrote %s, %s\n", crt, key)
	return ca, nil
}

func issue(ca *certs.Authority, dir, name string, r certs.Request, out io.Writer) error {
	if name == "ca" || strings.ContainsAny(name, `/\`) {
		return fmt.Errorf("%q cannot name a certificate file", name)
	}
	c, k, err := ca.Issue(r)
	if err != nil {
		return err
	}
	cf, kf, err := certs.WriteFiles(dir, name, c, k)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %s, %s (%s)\n", cf, kf, strings.Join(append(uriStrings(r), r.Hosts...), " "))
	return nil
}

func uriStrings(r certs.Request) []string {
	var s []string
	for _, u := range r.URIs {
		s = append(s, u.String())
	}
	return s
}

// writeKeys writes the gossip key and the cluster secret asked for, as
// base64 of random bytes: 32 for the gossip key (AES-256), 48 for the
// secret (64 characters, over the 32 followd requires).
func writeKeys(c *config, out io.Writer) error {
	for _, k := range []struct {
		want  bool
		name  string
		bytes int
	}{{c.gossip, "gossip.key", 32}, {c.secret, "cluster.secret", 48}} {
		if !k.want {
			continue
		}
		file := filepath.Join(c.out, k.name)
		if _, err := os.Stat(file); err == nil {
			fmt.Fprintf(out, "kept %s\n", file)
			continue
		}
		b := make([]byte, k.bytes)
		rand.Read(b)
		if err := os.WriteFile(file, []byte(base64.StdEncoding.EncodeToString(b)+"\n"), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s\n", file)
	}
	return nil
}
