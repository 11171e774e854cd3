package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/internal/gossipkey"
	"github.com/followgraph/followgraph/internal/testlog"
	"github.com/hashicorp/go-hclog"
)

// gossiper starts a Membership named id on addr, joining join, with the
// keyring of dir (seeded with seed; no keyring at all when both are
// empty). It is closed when the test ends.
func gossiper(t *testing.T, id, addr, dir string, seed []byte, join []string) (*Membership, *gossipKeyring) {
	t.Helper()
	log := testlog.Logger(t, id, "warn")
	g, err := openGossipKeyring(dir, seed, log)
	if err != nil {
		t.Fatal(err)
	}
	cfg := GossipConfig{BindAddr: addr, Join: join, Fast: true, Logger: log,
		Local: NodeMeta{ID: id, ClientAddr: "c-" + id, RaftAddr: "r-" + id, Shards: 16, Leads: NewBitmap(16), Hosts: NewBitmap(16)}}
	if g != nil {
		cfg.Keyring = g.ring
	}
	m, err := NewMembership(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, g
}

func knows(m *Membership, id string) bool {
	return slices.ContainsFunc(m.Members(), func(mb Member) bool { return mb.Meta.ID == id })
}

// staysOut checks, for a bounded time of many gossip rounds (Fast: probes
// every 200 ms), that neither side learns of the other.
func staysOut(t *testing.T, in []*Membership, out *Membership, id string) {
	t.Helper()
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		for _, m := range in {
			if knows(m, id) {
				t.Fatalf("%s got into the member list of %s", id, m.cfg.Local.ID)
			}
			if knows(out, m.cfg.Local.ID) {
				t.Fatalf("%s learned of %s", id, m.cfg.Local.ID)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A member with the cluster's key joins; one without a key, or with
// another key, can neither join nor learn of any member.
func TestGossipEncryptionKeepsOutsiders(t *testing.T) {
	key, other := gossipkey.New(), gossipkey.New()
	aAddr, bAddr := freeAddr(t), freeAddr(t)
	a, _ := gossiper(t, "a", aAddr, t.TempDir(), key, nil)
	b, _ := gossiper(t, "b", bAddr, t.TempDir(), key, []string{aAddr})
	waitFor(t, "a and b see each other", 10*time.Second, func() bool { return len(a.Alive()) == 2 && len(b.Alive()) == 2 })

	for _, c := range []struct {
		id  string
		key []byte
	}{{"nokey", nil}, {"wrongkey", other}, {"shortkey", key[:16]}} {
		m, _ := gossiper(t, c.id, freeAddr(t), t.TempDir(), c.key, nil)
		// A join exchanges the full state over TCP: refused, so the
		// outsider receives no member (nor its metadata).
		if n, err := m.ml.Join([]string{aAddr, bAddr}); n != 0 || err == nil {
			t.Fatalf("%s joined %d nodes (%v)", c.id, n, err)
		}
		staysOut(t, []*Membership{a, b}, m, c.id)
		if ms := m.Members(); len(ms) != 1 || ms[0].Meta.ID != c.id {
			t.Fatalf("%s knows %+v", c.id, ms)
		}
	}
	// The members still see each other alive.
	if len(a.Alive()) != 2 || len(b.Alive()) != 2 {
		t.Fatalf("members: %+v / %+v", a.Members(), b.Members())
	}
}

// gossipFlows updates the first member's metadata and waits until every
// other member has it: the members still hear each other under the keys
// they now hold. The bound covers a broadcast lost on a loaded machine:
// the full-state exchange that repairs it comes every 15 s (Fast), and it
// is encrypted as everything else.
func gossipFlows(t *testing.T, ms []*Membership, shard int) {
	t.Helper()
	if err := ms[0].Update(func(m *NodeMeta) { m.Leads.Set(shard, true) }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, fmt.Sprintf("update %d spreads", shard), 40*time.Second, func() bool {
		for _, m := range ms[1:] {
			ok := false
			for _, mb := range m.Members() {
				ok = ok || mb.Meta.ID == ms[0].cfg.Local.ID && mb.Meta.Leads.Has(shard)
			}
			if !ok {
				return false
			}
		}
		return true
	})
}

// The rotation procedure - install the new key everywhere, use it
// everywhere, remove the old one - keeps every member alive throughout.
// A member's Since changes only when it goes from alive to not alive or
// back, so unchanged Sinces at the end prove that no member was ever seen
// dead or gone, not even between two polls.
func TestGossipKeyRotationKeepsEveryoneAlive(t *testing.T) {
	const n = 3
	old, next := gossipkey.New(), gossipkey.New()
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = freeAddr(t)
	}
	ms := make([]*Membership, n)
	rings := make([]*gossipKeyring, n)
	for i := range ms {
		ms[i], rings[i] = gossiper(t, fmt.Sprintf("n%d", i+1), addrs[i], t.TempDir(), old, addrs)
	}
	waitFor(t, "all members", 15*time.Second, func() bool {
		for _, m := range ms {
			if len(m.Alive()) != n {
				return false
			}
		}
		return true
	})
	since := map[string]time.Time{}
	for _, m := range ms {
		for _, mb := range m.Members() {
			since[m.cfg.Local.ID+">"+mb.Meta.ID] = mb.Since
		}
	}
	steps := []struct {
		name string
		do   func(g *gossipKeyring) error
	}{
		{"install", func(g *gossipKeyring) error { return g.install(next) }},
		{"use", func(g *gossipKeyring) error { return g.use(next) }},
		{"remove", func(g *gossipKeyring) error { return g.remove(old) }},
	}
	for s, step := range steps {
		for i, g := range rings {
			if err := step.do(g); err != nil {
				t.Fatalf("%s on n%d: %v", step.name, i+1, err)
			}
			// Between nodes too: half the cluster on each side of a step.
			gossipFlows(t, ms, 4*s+i)
		}
	}
	for _, m := range ms {
		for _, mb := range m.Members() {
			if k := m.cfg.Local.ID + ">" + mb.Meta.ID; !mb.Alive || !mb.Since.Equal(since[k]) {
				t.Errorf("%s: alive %v, state changed at %v (was %v)", k, mb.Alive, mb.Since, since[k])
			}
		}
	}
	for i, g := range rings {
		if l := g.list(); len(l) != 1 || l[0].Fingerprint != gossipkey.Fingerprint(next) || !l[0].Primary {
			t.Fatalf("n%d keys after the rotation: %+v", i+1, l)
		}
	}
	// The old key no longer gets in; the new one does.
	stale, _ := gossiper(t, "stale", freeAddr(t), t.TempDir(), old, nil)
	if k, err := stale.ml.Join(addrs); k != 0 || err == nil {
		t.Fatalf("a member with the removed key joined %d nodes (%v)", k, err)
	}
	fresh, _ := gossiper(t, "fresh", freeAddr(t), t.TempDir(), next, addrs)
	waitFor(t, "a member with the new key joins", 15*time.Second, func() bool { return len(fresh.Alive()) == n+1 && knows(ms[0], "fresh") })
}

// wantKeys fails unless g holds keys, in order (the primary first), in
// its list and in memberlist's keyring alike.
func wantKeys(t *testing.T, g *gossipKeyring, keys ...[]byte) {
	t.Helper()
	l := g.list()
	ring := g.ring.GetKeys()
	if len(l) != len(keys) || len(ring) != len(keys) {
		t.Fatalf("keys %+v, memberlist holds %d, want %d", l, len(ring), len(keys))
	}
	for i, k := range keys {
		if l[i].Fingerprint != gossipkey.Fingerprint(k) || l[i].Primary != (i == 0) || !bytes.Equal(ring[i], k) {
			t.Fatalf("key %d: %+v", i, l[i])
		}
	}
}

// The keyring's rules, and its file: created from the seed with mode 0600,
// kept across a restart with the rotated keys, winning over another seed.
func TestGossipKeyringPersists(t *testing.T) {
	dir := t.TempDir()
	log := hclog.NewNullLogger()
	if g, err := openGossipKeyring(dir, nil, log); g != nil || err != nil {
		t.Fatalf("no seed, no file: %v %v", g, err)
	}
	if _, err := os.Stat(filepath.Join(dir, gossipKeyringFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a keyring file without a key: %v", err)
	}
	k1, k2, k3 := gossipkey.New(), gossipkey.New()[:16], gossipkey.New()
	g, err := openGossipKeyring(dir, k1, log)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, gossipKeyringFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keyring file: %v %v", fi, err)
	}
	wantKeys(t, g, k1)
	for _, c := range []struct {
		name string
		err  error
	}{
		{"use of a key not held", g.use(k2)},
		{"removal of the primary", g.remove(k1)},
		{"install of a bad key", g.install(k1[:10])},
	} {
		if !errors.Is(c.err, codes.ErrInvalidParam) {
			t.Errorf("%s: %v", c.name, c.err)
		}
	}
	if err := g.use(k2); err != ErrGossipKeyUnknown {
		t.Fatalf("use of a key not held: %v", err)
	}
	if err := g.remove(k1); err != ErrGossipKeyPrimary {
		t.Fatalf("removal of the primary: %v", err)
	}
	for _, step := range []func() error{
		func() error { return g.install(k2) }, func() error { return g.install(k2) }, // idempotent
		func() error { return g.install(k3) }, func() error { return g.use(k2) }, func() error { return g.remove(k1) },
		func() error { return g.remove(k1) }, // idempotent
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	wantKeys(t, g, k2, k3)
	// A restart keeps the rotated keys, whatever the seed says.
	for _, seed := range [][]byte{nil, k1, k3} {
		g2, err := openGossipKeyring(dir, seed, log)
		if err != nil {
			t.Fatal(err)
		}
		wantKeys(t, g2, k2, k3)
	}
}

// A full keyring refuses more; a failed write changes nothing; a damaged
// file stops the node.
func TestGossipKeyringFile(t *testing.T) {
	dir := t.TempDir()
	log := hclog.NewNullLogger()
	k1, k3 := gossipkey.New(), gossipkey.New()
	g, err := openGossipKeyring(dir, k1, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.install(k3); err != nil {
		t.Fatal(err)
	}
	// A full keyring refuses more.
	for len(g.list()) < MaxGossipKeys {
		if err := g.install(gossipkey.New()); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.install(gossipkey.New()); err != ErrGossipKeyringFull {
		t.Fatalf("install into a full keyring: %v", err)
	}
	// A failed write changes nothing, on disk or in memberlist (a
	// directory in the way of the temporary file fails it, even as root).
	tmp := filepath.Join(dir, gossipKeyringFile+".tmp")
	if err := os.MkdirAll(filepath.Join(tmp, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := g.remove(k3); codes.Of(err) != codes.Internal {
		t.Fatalf("remove with the file unwritable: %v", err)
	}
	if l := g.list(); len(l) != MaxGossipKeys || len(g.ring.GetKeys()) != MaxGossipKeys || l[1].Fingerprint != gossipkey.Fingerprint(k3) {
		t.Fatal("a failed write changed the keyring")
	}
	if g2, err := openGossipKeyring(dir, nil, log); err != nil || len(g2.list()) != MaxGossipKeys {
		t.Fatalf("the file after a failed write: %v", err)
	}
	os.RemoveAll(tmp)
	// A damaged file stops the node rather than gossiping in the clear.
	for _, bad := range []string{"{", `{"version":1,"keys":[]}`, `{"version":2,"keys":["` + gossipkey.Encode(k1) + `"]}`, `{"version":1,"keys":["AAAA"]}`} {
		os.WriteFile(filepath.Join(dir, gossipKeyringFile), []byte(bad), 0o600)
		if _, err := openGossipKeyring(dir, k1, log); err == nil {
			t.Errorf("opened a keyring file holding %s", bad)
		}
	}
}

// The keyring operations of a node that has none: a single node does not
// gossip, and a cluster node without a key gossips in the clear.
func TestGossipKeysWithoutKeyring(t *testing.T) {
	single := &Node{cfg: Config{NodeID: "s"}}
	if _, err := single.GossipKeys(); !errors.Is(err, codes.ErrInvalidParam) || err == ErrGossipUnencrypted {
		t.Fatalf("single node: %v", err)
	}
	clear := &Node{cfg: Config{NodeID: "c", Membership: MembershipConfig{RaftAddr: "127.0.0.1:1"}}}
	if _, err := clear.GossipKeys(); err != ErrGossipUnencrypted {
		t.Fatalf("cluster node without a key: %v", err)
	}
	for _, err := range []error{clear.InstallGossipKey(gossipkey.New()), clear.UseGossipKey(gossipkey.New()), clear.RemoveGossipKey(gossipkey.New())} {
		if err != ErrGossipUnencrypted {
			t.Fatalf("change without a keyring: %v", err)
		}
	}
}

func TestMembershipConfigGossipKey(t *testing.T) {
	mc := DefaultMembershipConfig()
	mc.RaftAddr, mc.GossipAddr, mc.ClientAddr = "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"
	for _, n := range []int{0, 16, 24, 32} {
		mc.GossipKey = make([]byte, n)
		if err := mc.Validate(); err != nil {
			t.Errorf("%d-byte key: %v", n, err)
		}
	}
	mc.GossipKey = make([]byte, 20)
	if err := mc.Validate(); err == nil || !strings.Contains(err.Error(), "GossipKey has 20 bytes") {
		t.Errorf("20-byte key: %v", err)
	}
}

// FuzzParseKeyring: the keyring file's decoder never panics, and what it
// accepts holds valid, distinct keys and writes back to the same keys.
func FuzzParseKeyring(f *testing.F) {
	k1, k2 := gossipkey.Encode(bytes.Repeat([]byte{1}, 16)), gossipkey.Encode(bytes.Repeat([]byte{2}, 32))
	f.Add([]byte(`{"version":1,"keys":["` + k1 + `","` + k2 + `"]}`))
	f.Add([]byte(`{"version":1,"keys":["` + k1 + `","` + k1 + `"]}`))
	f.Add([]byte(`{"version":2,"keys":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := parseKeyring(b)
		if err != nil {
			return
		}
		dir := t.TempDir()
		if len(keys) == 0 || len(keys) > MaxGossipKeys {
			t.Fatalf("accepted %d keys", len(keys))
		}
		if err := writeKeyring(dir, keys); err != nil {
			t.Fatal(err)
		}
		back, found, err := readKeyring(dir)
		if err != nil || !found || len(back) != len(keys) {
			t.Fatalf("write and read back: %d keys, %v", len(back), err)
		}
		for i := range keys {
			if !bytes.Equal(back[i], keys[i]) || badKeySize(len(keys[i])) {
				t.Fatalf("key %d changed or has a bad size", i)
			}
		}
	})
}

func badKeySize(n int) bool { return n != 16 && n != 24 && n != 32 }
