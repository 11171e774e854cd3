package cluster_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/cluster/clustertest"
	"github.com/followgraph/followgraph/internal/certs"
	"github.com/followgraph/followgraph/internal/raftmux"
)

// refusalCount counts OnPeerRefused calls by reason.
type refusalCount struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *refusalCount) add(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n[reason]++
}

func (r *refusalCount) none(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.n) > 0 {
		t.Fatalf("peers refused in a healthy cluster: %v", r.n)
	}
}

// A cluster whose raft port uses mutual TLS forms and serves, each node
// pinning the others to the IDs gossip gives their raft addresses, with
// no refusal.
func TestClusterPeerMutualTLS(t *testing.T) {
	ca, err := certs.NewAuthority("cluster", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	refused := &refusalCount{n: map[string]int{}}
	tc := clustertest.NewCluster(t, 3, 4, func(cfg *cluster.Config) {
		c, k, err := ca.Issue(certs.Node(cfg.NodeID, nil, time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		crt, key, err := certs.WriteFiles(dir, cfg.NodeID, c, k)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Membership.PeerAuth, err = raftmux.NewMutualTLSAuth(crt, key, caFile, cfg.NodeID); err != nil {
			t.Fatal(err)
		}
		cfg.Membership.OnPeerRefused = refused.add
	})
	tc.WaitLeaders(90 * time.Second)
	writeAll(t, tc.Client(), "mtls", 10)
	// Through one node only: forwarding rides the raft port too.
	// (The followers are relayed reverse edges: they arrive a moment
	// after the follows.)
	c2 := tc.Client(tc.Nodes[1].Addr)
	waitFor(t, "hub-mtls's followers through n2", 30*time.Second, func() bool {
		info, err := c2.Info(context.Background(), "hub-mtls")
		return err == nil && info[0].Followers == 10
	})
	refused.none(t)
}

// With a cluster secret, a node added later (same secret) joins and
// receives replicas.
func TestClusterPeerSecretJoin(t *testing.T) {
	auth, err := raftmux.NewSecretAuth([]byte("a cluster secret of at least thirty-two bytes"))
	if err != nil {
		t.Fatal(err)
	}
	refused := &refusalCount{n: map[string]int{}}
	tc := clustertest.NewCluster(t, 3, 4, func(cfg *cluster.Config) {
		cfg.Membership.PeerAuth, cfg.Membership.OnPeerRefused = auth, refused.add
	})
	tc.WaitLeaders(90 * time.Second)
	writeAll(t, tc.Client(), "secret", 10)
	n4 := tc.AddNode()
	waitFor(t, "n4 hosts a replica", 60*time.Second, func() bool { return len(n4.Node.LocalReplicas()) > 0 })
	refused.none(t)
}
