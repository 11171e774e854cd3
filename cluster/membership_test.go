package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/followgraph/followgraph/internal/testport"
	"github.com/hashicorp/memberlist"
)

func TestNodeMetaFitsAt1024Shards(t *testing.T) {
	m := NodeMeta{ID: "node-with-a-long-name-01", ClusterID: "0123456789abcdef0123456789abcdef", ClientAddr: "10.200.200.200:7700", RaftAddr: "10.200.200.200:7701", Shards: 1024,
		Leads: NewBitmap(1024), Hosts: NewBitmap(1024), State: NodeDraining}
	for i := 0; i < 1024; i += 3 {
		m.Leads.Set(i, true)
		m.Hosts.Set(i, true)
		if i+1 < 1024 {
			m.Hosts.Set(i+1, true)
		}
	}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > memberlist.MetaMaxSize {
		t.Fatalf("%d bytes", len(b))
	}
	back, err := DecodeNodeMeta(b)
	if err != nil || back.ID != m.ID || back.ClusterID != m.ClusterID || back.RaftAddr != m.RaftAddr || back.State != NodeDraining || back.Leads.Count() != m.Leads.Count() || !back.Hosts.Has(1) || back.Hosts.Has(2) {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	for _, bad := range [][]byte{nil, {9}, b[:10], append(b, 0)} {
		if _, err := DecodeNodeMeta(bad); err == nil {
			t.Errorf("accepted %d bytes of garbage", len(bad))
		}
	}
	m.Shards, m.Leads, m.Hosts = 4096, NewBitmap(4096), NewBitmap(4096)
	if _, err := m.Encode(); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("4096 shards: %v", err)
	}
}

func freeAddr(t *testing.T) string { return testport.Addr(t) }

func TestMembershipGossip(t *testing.T) {
	const n = 3
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = freeAddr(t)
	}
	ms := make([]*Membership, n)
	for i := range ms {
		meta := NodeMeta{ID: fmt.Sprintf("n%d", i+1), ClientAddr: fmt.Sprintf("c%d", i), RaftAddr: fmt.Sprintf("r%d", i), Shards: 16, Leads: NewBitmap(16), Hosts: NewBitmap(16)}
		m, err := NewMembership(GossipConfig{BindAddr: addrs[i], Join: addrs, Local: meta, Fast: true})
		if err != nil {
			t.Fatal(err)
		}
		ms[i] = m
	}
	defer func() {
		for _, m := range ms {
			m.Close()
		}
	}()
	waitFor(t, "all members", 10*time.Second, func() bool {
		for _, m := range ms {
			if len(m.Alive()) != n {
				return false
			}
		}
		return true
	})
	// A metadata update spreads.
	if err := ms[0].Update(func(m *NodeMeta) { m.Leads.Set(5, true); m.State = NodeDraining }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "metadata update", 10*time.Second, func() bool {
		for _, mb := range ms[2].Members() {
			if mb.Meta.ID == "n1" && mb.Meta.Leads.Has(5) && mb.Meta.State == NodeDraining {
				return true
			}
		}
		return false
	})
	// A node that stops is seen as gone.
	ms[1].Close()
	waitFor(t, "departure", 15*time.Second, func() bool {
		for _, mb := range ms[0].Members() {
			if mb.Meta.ID == "n2" {
				return !mb.Alive
			}
		}
		return false
	})
}
