package raftmux

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// countFSM counts applied entries and remembers which keys it has seen, so
// an entry applied twice (a client retry after a lost reply) is told apart
// from a missing one.
type countFSM struct {
	mu      sync.Mutex
	applied int
	keys    map[string]struct{}
}

func newCountFSM() *countFSM { return &countFSM{keys: make(map[string]struct{})} }

func (f *countFSM) Apply(l *raft.Log) interface{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied++
	f.keys[string(l.Data)] = struct{}{}
	return nil
}

func (f *countFSM) counts() (applied, distinct int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied, len(f.keys)
}

type fsmState struct {
	Applied int
	Keys    []string
}

func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := fsmState{Applied: f.applied}
	for k := range f.keys {
		st.Keys = append(st.Keys, k)
	}
	b, err := json.Marshal(st)
	return snapshotBytes(b), err
}

func (f *countFSM) Restore(rc io.ReadCloser) error {
	defer func() { _ = rc.Close() }()
	var st fsmState
	if err := json.NewDecoder(rc).Decode(&st); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = st.Applied
	f.keys = make(map[string]struct{}, len(st.Keys))
	for _, k := range st.Keys {
		f.keys[k] = struct{}{}
	}
	return nil
}

type snapshotBytes []byte

func (s snapshotBytes) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (snapshotBytes) Release() {}

// node is one simulated server: a Mux and one raft per shard.
type node struct {
	id    raft.ServerID
	mux   *Mux
	rafts []*raft.Raft
	fsms  []*countFSM
	down  bool
}

type cluster struct {
	t      testing.TB
	nodes  []*node
	shards int
}

func raftConfig(id raft.ServerID) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = id
	c.HeartbeatTimeout = 200 * time.Millisecond
	c.ElectionTimeout = 200 * time.Millisecond
	c.LeaderLeaseTimeout = 100 * time.Millisecond
	c.CommitTimeout = 10 * time.Millisecond
	c.Logger = hclog.NewNullLogger()
	return c
}

// newCluster starts three nodes running shards rafts each, every shard
// bootstrapped on node 1 with all three nodes as voters.
func newCluster(t testing.TB, shards int) *cluster {
	t.Helper()
	return newClusterWith(t, shards, nil)
}

// newClusterWith is newCluster with mod, if set, adjusting node i's Mux
// Config.
func newClusterWith(t testing.TB, shards int, mod func(i int, cfg *Config)) *cluster {
	t.Helper()
	c := &cluster{t: t, shards: shards}
	for i := range 3 {
		m := newTestMux(t, func(cfg *Config) {
			if mod != nil {
				mod(i, cfg)
			}
		})
		c.nodes = append(c.nodes, &node{id: raft.ServerID(fmt.Sprintf("n%d", i+1)), mux: m})
	}
	t.Cleanup(c.shutdown)

	var servers []raft.Server
	for _, n := range c.nodes {
		servers = append(servers, raft.Server{ID: n.id, Address: raft.ServerAddress(n.mux.Addr())})
	}
	for _, n := range c.nodes {
		for s := range shards {
			trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
				Stream:  n.mux.Layer(uint32(s)),
				MaxPool: 2,
				Timeout: 5 * time.Second,
				Logger:  hclog.NewNullLogger(),
			})
			if got := string(trans.LocalAddr()); got != n.mux.Addr() {
				t.Fatalf("transport LocalAddr %q, want %q", got, n.mux.Addr())
			}
			store := raft.NewInmemStore()
			fsm := newCountFSM()
			r, err := raft.NewRaft(raftConfig(n.id), fsm, store, store, raft.NewInmemSnapshotStore(), trans)
			if err != nil {
				t.Fatal(err)
			}
			n.rafts = append(n.rafts, r)
			n.fsms = append(n.fsms, fsm)
		}
	}
	for s := range shards {
		f := c.nodes[0].rafts[s].BootstrapCluster(raft.Configuration{Servers: servers})
		if err := f.Error(); err != nil {
			t.Fatalf("bootstrap shard %d: %v", s, err)
		}
	}
	return c
}

// newLedCluster is newCluster once every shard has elected a leader.
func newLedCluster(t testing.TB, shards int) *cluster {
	t.Helper()
	c := newCluster(t, shards)
	for s := range shards {
		c.waitLeader(s, c.nodes)
	}
	return c
}

// stopNode shuts a node's rafts down (which closes their transports and so
// their Layers) and closes its Mux.
func (c *cluster) stopNode(n *node) {
	if n.down {
		return
	}
	n.down = true
	var wg sync.WaitGroup
	for _, r := range n.rafts {
		wg.Go(func() { _ = r.Shutdown().Error() })
	}
	wg.Wait()
	if err := n.mux.Close(); err != nil {
		c.t.Errorf("close mux %s: %v", n.id, err)
	}
}

func (c *cluster) shutdown() {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Go(func() { c.stopNode(n) })
	}
	wg.Wait()
}

// leader returns the node among candidates that currently leads shard, or
// nil.
func (c *cluster) leader(shard int, candidates []*node) *node {
	for _, n := range candidates {
		if !n.down && n.rafts[shard].State() == raft.Leader {
			return n
		}
	}
	return nil
}

func (c *cluster) waitLeader(shard int, candidates []*node) *node {
	c.t.Helper()
	var l *node
	eventually(c.t, fmt.Sprintf("leader for shard %d", shard), func() error {
		if l = c.leader(shard, candidates); l == nil {
			return errors.New("no leader")
		}
		return nil
	})
	return l
}

// apply commits keys prefix-0 .. prefix-(n-1) to shard through whichever of
// candidates leads it, resubmitting keys whose futures fail (leadership can
// move under a loaded -race run; a resubmitted key may then be applied
// twice, which the FSM's distinct count tolerates).
func (c *cluster) apply(shard int, prefix string, n int, candidates []*node) error {
	pending := make([]string, n)
	for i := range pending {
		pending[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	deadline := time.Now().Add(2 * waitTimeout)
	var lastErr error
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("shard %d: %d keys not committed: %v", shard, len(pending), lastErr)
		}
		l := c.leader(shard, candidates)
		if l == nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		futures := make([]raft.ApplyFuture, len(pending))
		for i, k := range pending {
			futures[i] = l.rafts[shard].Apply([]byte(k), 5*time.Second)
		}
		var failed []string
		for i, f := range futures {
			if err := f.Error(); err != nil {
				lastErr = err
				failed = append(failed, pending[i])
			}
		}
		pending = failed
	}
	return nil
}

// applyAll runs apply for every shard in parallel.
func (c *cluster) applyAll(prefix string, n int, candidates []*node) {
	c.t.Helper()
	errs := make(chan error, c.shards)
	var wg sync.WaitGroup
	for s := range c.shards {
		wg.Go(func() { errs <- c.apply(s, prefix, n, candidates) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			c.t.Fatal(err)
		}
	}
}

// waitConverged waits until every node in nodes has applied exactly want
// distinct keys for every shard, and all of them the same number of
// entries.
func (c *cluster) waitConverged(want int, nodes []*node) {
	c.t.Helper()
	eventually(c.t, "FSMs converge", func() error {
		for s := range c.shards {
			var first int
			for i, n := range nodes {
				applied, distinct := n.fsms[s].counts()
				if distinct != want {
					return fmt.Errorf("shard %d on %s: %d distinct keys, want %d", s, n.id, distinct, want)
				}
				if i == 0 {
					first = applied
				} else if applied != first {
					return fmt.Errorf("shard %d: %s applied %d entries, %s %d", s, nodes[0].id, first, n.id, applied)
				}
			}
		}
		return nil
	})
}

func (c *cluster) others(not *node) []*node {
	var out []*node
	for _, n := range c.nodes {
		if n != not {
			out = append(out, n)
		}
	}
	return out
}

// countSockets returns the number of socket file descriptors of this
// process, or -1 where /proc is not available.
func countSockets() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			n++
		}
	}
	return n
}

// Test 1: eight shards replicate over one session per ordered node pair.
func TestRaftShardsReplicateOverSharedSessions(t *testing.T) {
	const shards, entries = 8, 200
	socketsBefore := countSockets()
	c := newLedCluster(t, shards)
	c.applyAll("k", entries, c.nodes)
	c.waitConverged(entries, c.nodes)

	total := 0
	for _, n := range c.nodes {
		st := n.mux.Stats()
		t.Logf("%s: %d sessions (%d out, %d in), %d streams, %d layers", n.id, st.Sessions, st.Outgoing, st.Incoming, st.Streams, st.Layers)
		if st.Outgoing > 2 || st.Incoming > 2 {
			t.Errorf("%s: %d outgoing / %d incoming sessions, want at most 2 each (one per peer)", n.id, st.Outgoing, st.Incoming)
		}
		for addr, p := range st.Peers {
			if p.Outgoing > 1 || p.Incoming > 1 {
				t.Errorf("%s: %+v with %s, want at most one session each way", n.id, p, addr)
			}
		}
		if st.Layers != shards {
			t.Errorf("%s: %d layers, want %d", n.id, st.Layers, shards)
		}
		total += st.Outgoing
	}
	// Every TCP connection is one node's outgoing session.
	if total > 6 {
		t.Errorf("%d TCP connections among 3 nodes for %d shards, want at most 6", total, shards)
	}
	// Cross-check with the kernel's view: 3 listeners plus both ends of at
	// most 6 connections, whatever the number of shards (slack for the
	// runtime's own descriptors).
	if socketsBefore >= 0 {
		if got := countSockets() - socketsBefore; got > 3+2*6+2 {
			t.Errorf("%d new sockets for %d shards on 3 nodes; the mux should keep this at 3+12", got, shards)
		}
	}
}

// Test 2: the leader's node disappears; shard 0 elects a new leader among
// the survivors, which accepts writes.
func TestRaftLeaderFailover(t *testing.T) {
	const shards = 3
	c := newLedCluster(t, shards)
	c.applyAll("before", 20, c.nodes)
	c.waitConverged(20, c.nodes)

	old := c.waitLeader(0, c.nodes)
	survivors := c.others(old)
	// The network goes first, as in a crash; then the rafts.
	if err := old.mux.Close(); err != nil {
		t.Fatal(err)
	}
	c.stopNode(old)

	start := time.Now()
	nl := c.waitLeader(0, survivors)
	t.Logf("shard 0: %s took over from %s after %v", nl.id, old.id, time.Since(start))
	if err := c.apply(0, "after", 50, survivors); err != nil {
		t.Fatal(err)
	}
	// The survivors agree on shard 0 (other shards still hold 20 keys).
	eventually(t, "survivors converge on shard 0", func() error {
		for _, n := range survivors {
			if _, d := n.fsms[0].counts(); d != 70 {
				return fmt.Errorf("%s has %d keys on shard 0, want 70", n.id, d)
			}
		}
		return nil
	})
}

// Test 3: node 3 is cut off; the majority keeps committing; after the
// partition heals node 3 catches up.
func TestRaftPartitionWithBlock(t *testing.T) {
	const shards = 3
	c := newLedCluster(t, shards)
	c.applyAll("before", 20, c.nodes)
	c.waitConverged(20, c.nodes)

	n3 := c.nodes[2]
	majority := c.nodes[:2]
	partition := func(blocked bool) {
		for _, n := range majority {
			n.mux.Block(n3.mux.Addr(), blocked)
			n3.mux.Block(n.mux.Addr(), blocked)
		}
	}
	partition(true)
	for _, n := range majority {
		if p, ok := n.mux.Stats().Peers[n3.mux.Addr()]; ok {
			t.Errorf("%s still has sessions with n3 after Block: %+v", n.id, p)
		}
	}
	if st := n3.mux.Stats(); st.Sessions != 0 {
		t.Errorf("n3 still has %d sessions after Block", st.Sessions)
	}

	c.applyAll("during", 50, majority)
	c.waitConverged(70, majority)
	for s := range shards {
		if _, d := n3.fsms[s].counts(); d >= 70 {
			t.Fatalf("shard %d: n3 has %d keys while partitioned; Block did not cut it off", s, d)
		}
	}
	if st := n3.mux.Stats(); st.Sessions != 0 {
		t.Errorf("n3 has %d sessions while blocked", st.Sessions)
	}

	partition(false)
	c.waitConverged(70, c.nodes)
	c.applyAll("after", 10, c.nodes)
	c.waitConverged(80, c.nodes)
}

// Test 4: junk on the raft port is dropped and does not disturb replication.
func TestRaftSurvivesGarbageOnPort(t *testing.T) {
	const shards = 2
	c := newLedCluster(t, shards)
	c.applyAll("before", 20, c.nodes)

	target := c.nodes[0].mux
	payloads := [][]byte{
		[]byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS-looking junk"),
		[]byte("NOTMUX\x00\x04abcd"),
		append([]byte(helloMagic), 0x7f, 0xff), // absurd address length
		bytes.Repeat([]byte{0}, 4096),
	}
	for i, p := range payloads {
		conn := dialRaw(t, target.Addr())
		if _, err := conn.Write(p); err != nil {
			t.Fatal(err)
		}
		readUntilClosed(t, conn)
		_ = conn.Close()
		t.Logf("payload %d dropped", i)
	}
	// A well-formed hello followed by non-yamux bytes.
	conn := dialRaw(t, target.Addr())
	hello, _ := encodeHello("intruder:1")
	if _, err := conn.Write(append(hello, []byte("garbage frames follow")...)); err != nil {
		t.Fatal(err)
	}
	readUntilClosed(t, conn)
	_ = conn.Close()

	c.applyAll("after", 30, c.nodes)
	c.waitConverged(50, c.nodes)
	if _, ok := target.Stats().Peers["intruder:1"]; ok {
		t.Error("intruder session still tracked")
	}
}

// Test 5: after the rafts and muxes are closed nothing is left running and
// the closed layers refuse work.
func TestRaftCloseIsClean(t *testing.T) {
	base := settledGoroutines()
	c := newLedCluster(t, 2)
	c.applyAll("k", 20, c.nodes)
	c.waitConverged(20, c.nodes)
	layer := c.nodes[0].mux.Layer(0) // still the open layer of shard 0
	peer := c.nodes[1].mux.Addr()

	done := make(chan struct{})
	go func() {
		c.shutdown()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * waitTimeout):
		t.Fatal("shutdown hung")
	}
	for _, n := range c.nodes {
		if err := n.mux.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	}
	if _, err := layer.Dial(raft.ServerAddress(peer), time.Second); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Dial after Close: %v, want net.ErrClosed", err)
	}
	if _, err := layer.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
	// Raft and yamux goroutines exit asynchronously after their Close
	// returns; checkGoroutines waits for them.
	checkGoroutines(t, base, 3)
}
