package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/followgraph/followgraph/internal/stdlog"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
)

// Membership: who is in the cluster, gossiped with hashicorp/memberlist.
//
// Each node gossips a small NodeMeta: its identity and addresses, whether
// it is active or draining, and two bitmaps over the shards: the shards it
// leads and the shards it hosts a replica of. Every node (and, through the
// wire protocol's shard map, every client) builds the shard map from these.
// Gossip is for liveness and routing hints only: a shard's raft
// configuration is the authority on its replicas, and its leader reconciles
// that configuration with the live membership (see placement.go).

// Node states gossiped in NodeMeta.
const (
	NodeActive   uint8 = 0
	NodeDraining uint8 = 1 // moving its replicas and leaderships away
)

// nodeMetaVersion is the NodeMeta encoding version.
const nodeMetaVersion = 1

// NodeMeta is what a node says about itself.
type NodeMeta struct {
	ID         string
	ClusterID  string // empty until the node belongs to a cluster
	Nonce      string // random per process; seeds a new cluster's ID
	ClientAddr string
	RaftAddr   string
	State      uint8
	Shards     int
	Leads      Bitmap // shards this node leads
	Hosts      Bitmap // shards this node hosts a replica of
}

// Bitmap is a set of shards.
type Bitmap []byte

// NewBitmap returns an empty set over n shards.
func NewBitmap(n int) Bitmap { return make(Bitmap, (n+7)/8) }

// Has reports whether shard i is in the set.
func (b Bitmap) Has(i int) bool { return i>>3 < len(b) && b[i>>3]&(1<<(i&7)) != 0 }

// Set adds or removes shard i.
func (b Bitmap) Set(i int, on bool) {
	if on {
		b[i>>3] |= 1 << (i & 7)
	} else {
		b[i>>3] &^= 1 << (i & 7)
	}
}

// Count returns the number of shards in the set.
func (b Bitmap) Count() int {
	n := 0
	for _, c := range b {
		for ; c != 0; c &= c - 1 {
			n++
		}
	}
	return n
}

// Encode renders meta in memberlist's metadata (at most 512 bytes): version
// u8 | state u8 | shards u16 | 5 × (len u8, string) | leads | hosts. At
// 1,024 shards the two bitmaps take 256 bytes, leaving room for addresses.
func (m NodeMeta) Encode() ([]byte, error) {
	b := []byte{nodeMetaVersion, m.State}
	b = binary.BigEndian.AppendUint16(b, uint16(m.Shards))
	for _, s := range []string{m.ID, m.ClusterID, m.Nonce, m.ClientAddr, m.RaftAddr} {
		if len(s) > 255 {
			return nil, fmt.Errorf("cluster: %q is too long for node metadata", s)
		}
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	n := (m.Shards + 7) / 8
	if len(m.Leads) != n || len(m.Hosts) != n {
		return nil, errors.New("cluster: bitmaps do not match the shard count")
	}
	b = append(b, m.Leads...)
	b = append(b, m.Hosts...)
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("cluster: node metadata of %d bytes exceeds %d", len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

// DecodeNodeMeta parses metadata written by Encode.
func DecodeNodeMeta(b []byte) (NodeMeta, error) {
	var m NodeMeta
	bad := fmt.Errorf("cluster: malformed node metadata (%d bytes)", len(b))
	if len(b) < 4 || b[0] != nodeMetaVersion {
		return m, bad
	}
	m.State = b[1]
	m.Shards = int(binary.BigEndian.Uint16(b[2:]))
	b = b[4:]
	var strs [5]string
	for i := range strs {
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return m, bad
		}
		// int first: 1+b[0] in byte arithmetic wraps to 0 for 255 (a
		// fuzzed gossip message panicked the node here).
		n := 1 + int(b[0])
		strs[i] = string(b[1:n])
		b = b[n:]
	}
	m.ID, m.ClusterID, m.Nonce, m.ClientAddr, m.RaftAddr = strs[0], strs[1], strs[2], strs[3], strs[4]
	n := (m.Shards + 7) / 8
	if len(b) != 2*n {
		return m, bad
	}
	m.Leads, m.Hosts = Bitmap(slices.Clone(b[:n])), Bitmap(slices.Clone(b[n:]))
	return m, nil
}

// GossipConfig configures a Membership: gossip with hashicorp/memberlist.
type GossipConfig struct {
	// BindAddr is the gossip address (host:port), UDP and TCP.
	BindAddr string
	// AdvertiseAddr is the gossip address others should use (default:
	// BindAddr; required when binding to 0.0.0.0).
	AdvertiseAddr string
	// Join lists seed gossip addresses; it may include this node's own.
	Join []string
	// Local is this node's metadata.
	Local NodeMeta
	// Fast shortens memberlist's timers, for tests on loopback.
	Fast bool
	// ReapAfter forgets members dead for this long (0: never).
	ReapAfter time.Duration
	Logger    hclog.Logger
	// OnChange is called (never concurrently) after any membership or
	// metadata change.
	OnChange func()
	// Keyring, if it holds a key, encrypts gossip: every message is
	// sent under its primary key, and one that is not encrypted under
	// one of its keys is dropped (gossipkeys.go). Keys may be installed,
	// used and removed while the membership runs.
	Keyring *memberlist.Keyring
}

// Member is a node as gossip knows it.
type Member struct {
	Meta  NodeMeta
	Alive bool      // alive or suspect
	Since time.Time // when it was last seen changing state
	Addr  string    // gossip address
}

// Membership tracks the cluster's nodes.
type Membership struct {
	cfg  GossipConfig
	log  hclog.Logger
	ml   *memberlist.Memberlist
	stop chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	local   NodeMeta
	members map[string]*Member // by node ID
	changes chan struct{}
	dirty   chan struct{}
}

// NewMembership starts gossip and, in the background, joins the seeds
// (retrying until one answers or Close).
func NewMembership(cfg GossipConfig) (*Membership, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	host, portS, err := net.SplitHostPort(cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("cluster: gossip address %q: %w", cfg.BindAddr, err)
	}
	port, _ := strconv.Atoi(portS)
	mc := memberlist.DefaultLANConfig()
	if cfg.Fast {
		mc = memberlist.DefaultLocalConfig()
		mc.ProbeInterval = 200 * time.Millisecond
		mc.ProbeTimeout = 100 * time.Millisecond
		mc.GossipInterval = 50 * time.Millisecond
		mc.SuspicionMult = 2
	}
	mc.Name = cfg.Local.ID
	mc.BindAddr, mc.BindPort = host, port
	if cfg.AdvertiseAddr != "" {
		ah, ap, err := net.SplitHostPort(cfg.AdvertiseAddr)
		if err != nil {
			return nil, fmt.Errorf("cluster: gossip advertise address %q: %w", cfg.AdvertiseAddr, err)
		}
		mc.AdvertiseAddr = ah
		mc.AdvertisePort, _ = strconv.Atoi(ap)
	}
	if cfg.Keyring != nil && len(cfg.Keyring.GetKeys()) > 0 {
		// Both checks: verifying only incoming gossip would still send
		// this node's own metadata in the clear to whoever asks.
		mc.Keyring = cfg.Keyring
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	mc.Logger = stdlog.New(cfg.Logger, gossipRelevel)
	mc.LogOutput = nil
	m := &Membership{cfg: cfg, log: cfg.Logger, local: cfg.Local, members: map[string]*Member{}, stop: make(chan struct{}), changes: make(chan struct{}, 1), dirty: make(chan struct{}, 1)}
	mc.Delegate = (*metaDelegate)(m)
	mc.Events = (*eventDelegate)(m)
	if _, err := m.local.Encode(); err != nil {
		return nil, err
	}
	m.ml, err = memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("cluster: gossip: %w", err)
	}
	// Read before the broadcaster starts: UpdateNode rewrites the local
	// node in place, without a lock that LocalNode's readers could take.
	self := m.ml.LocalNode().Address()
	m.wg.Add(3)
	go func() { defer m.wg.Done(); m.notifier() }()
	go func() { defer m.wg.Done(); m.broadcaster() }()
	go func() { defer m.wg.Done(); m.joiner(self) }()
	return m, nil
}

// joiner joins the seeds, retrying with backoff until one answers. Seeds
// naming this node itself (its gossip address self) are skipped.
func (m *Membership) joiner(self string) {
	var seeds []string
	for _, s := range m.cfg.Join {
		if s != self && s != m.cfg.BindAddr && s != m.cfg.AdvertiseAddr {
			seeds = append(seeds, s)
		}
	}
	if len(seeds) == 0 {
		m.reconnect()
		return
	}
	backoff := 100 * time.Millisecond
	for {
		n, err := m.ml.Join(seeds)
		if n > 0 {
			m.log.Info("joined the cluster", "contacted", n)
			m.reconnect()
			return
		}
		m.log.Warn("no seed answered yet; retrying", "seeds", seeds, "error", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-m.stop:
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// reconnectInterval is how often nodes that gossip marked dead are tried
// again (Fast: 1 s).
const reconnectInterval = 5 * time.Second

// reconnect keeps trying to join the members that gossip marked dead, until
// Close. memberlist neither probes nor push-pulls with dead nodes, so after
// a partition heals, each side can keep the other dead for good - and a
// node that stays dead past --dead-timeout loses its replicas. A join
// exchanges full state with the node: each side learns the other called it
// dead, refutes, and both come back alive (serf's reconnect does the same
// for Consul). A node that really is gone costs one failed dial per
// interval.
func (m *Membership) reconnect() {
	every := reconnectInterval
	if m.cfg.Fast {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	// stopped ends with Close, so a probe in progress does not hold it up.
	stopped, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-m.stop
		cancel()
	}()
	for {
		select {
		case <-t.C:
		case <-m.stop:
			return
		}
		m.reap()
		for _, mb := range m.Members() {
			if mb.Alive || mb.Meta.ID == m.cfg.Local.ID || mb.Addr == "" {
				continue
			}
			// A short, cancellable probe first: Join's own dial waits
			// the full TCP timeout (10 s) on a partitioned address,
			// which would hold up Close.
			d := net.Dialer{Timeout: time.Second}
			c, err := d.DialContext(stopped, "tcp", mb.Addr)
			if err != nil {
				continue
			}
			c.Close()
			if _, err := m.ml.Join([]string{mb.Addr}); err != nil {
				m.log.Debug("rejoining a node marked dead failed", "node", mb.Meta.ID, "addr", mb.Addr, "error", err)
			} else if m.isAlive(mb.Meta.ID) {
				m.log.Info("reconnected to a node gossip had marked dead", "node", mb.Meta.ID, "addr", mb.Addr)
			}
		}
	}
}

// reap forgets the members dead for longer than ReapAfter.
func (m *Membership) reap() {
	if m.cfg.ReapAfter <= 0 {
		return
	}
	m.mu.Lock()
	var gone []string
	for id, mb := range m.members {
		if !mb.Alive && id != m.cfg.Local.ID && time.Since(mb.Since) >= m.cfg.ReapAfter {
			delete(m.members, id)
			gone = append(gone, id)
		}
	}
	m.mu.Unlock()
	for _, id := range gone {
		m.log.Info("forgot a node dead for longer than the reap time", "node", id, "reap_after", m.cfg.ReapAfter)
	}
	if len(gone) > 0 {
		m.changed()
	}
}

func (m *Membership) isAlive(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	mb := m.members[id]
	return mb != nil && mb.Alive
}

// notifier calls OnChange after changes, coalescing bursts.
func (m *Membership) notifier() {
	for {
		select {
		case <-m.changes:
			if m.cfg.OnChange != nil {
				m.cfg.OnChange()
			}
		case <-m.stop:
			return
		}
	}
}

func (m *Membership) changed() {
	select {
	case m.changes <- struct{}{}:
	default:
	}
}

// Update changes this node's metadata; a background goroutine gossips it
// (bursts of updates, such as leadership changes at start, coalesce into
// few broadcasts, and callers never wait for the network).
func (m *Membership) Update(fn func(*NodeMeta)) error {
	m.mu.Lock()
	prev := m.local
	prev.Leads, prev.Hosts = slices.Clone(prev.Leads), slices.Clone(prev.Hosts)
	fn(&m.local)
	if _, err := m.local.Encode(); err != nil {
		m.local = prev
		m.mu.Unlock()
		return err
	}
	m.mu.Unlock()
	select {
	case m.dirty <- struct{}{}:
	default:
	}
	m.changed()
	return nil
}

// broadcaster gossips metadata updates.
// broadcastWait bounds the wait for a metadata update to be gossiped
// (a few gossip intervals).
const broadcastWait = time.Second

func (m *Membership) broadcaster() {
	for {
		select {
		case <-m.dirty:
		case <-m.stop:
			return
		}
		// UpdateNode waits until gossip has sent the update, and has no
		// way to stop waiting when memberlist shuts down: a longer bound
		// held every SIGTERM that changed leaderships (the handover does)
		// for its whole length in Close.
		if err := m.ml.UpdateNode(broadcastWait); err != nil {
			m.log.Debug("metadata broadcast not confirmed", "error", err)
		}
	}
}

// Local returns this node's metadata.
func (m *Membership) Local() NodeMeta {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.local
	l.Leads, l.Hosts = slices.Clone(l.Leads), slices.Clone(l.Hosts)
	return l
}

// Members returns every node gossip knows of, alive or not, sorted by ID.
func (m *Membership) Members() []Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Member, 0, len(m.members))
	for _, mb := range m.members {
		out = append(out, *mb)
	}
	slices.SortFunc(out, func(a, b Member) int {
		switch {
		case a.Meta.ID < b.Meta.ID:
			return -1
		case a.Meta.ID > b.Meta.ID:
			return 1
		}
		return 0
	})
	return out
}

// Alive returns the alive (or suspect) members, sorted by ID.
func (m *Membership) Alive() []Member {
	var out []Member
	for _, mb := range m.Members() {
		if mb.Alive {
			out = append(out, mb)
		}
	}
	return out
}

// Close leaves the cluster (telling the others) and stops gossip.
func (m *Membership) Close() error {
	select {
	case <-m.stop:
		return nil
	default:
	}
	close(m.stop)
	err := m.ml.Leave(2 * time.Second)
	err = errors.Join(err, m.ml.Shutdown())
	m.wg.Wait()
	return err
}

// gossipRelevel re-levels memberlist's lines: refuting a "dead" or
// "suspect" message about this node is how a node that restarted (and
// left, or was missed, a moment ago) rejoins, so it is info; a closed
// socket at shutdown is debug.
func gossipRelevel(level hclog.Level, line string) hclog.Level {
	if level == hclog.Warn && strings.Contains(line, "Refuting a ") {
		return hclog.Info
	}
	return stdlog.ClosedAtShutdown(level, line)
}

// metaDelegate serves this node's metadata to memberlist.
type metaDelegate Membership

func (d *metaDelegate) NodeMeta(limit int) []byte {
	m := (*Membership)(d)
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.local.Encode()
	if err != nil || len(b) > limit {
		m.log.Error("node metadata does not fit", "bytes", len(b), "limit", limit, "error", err)
		return nil
	}
	return b
}
func (d *metaDelegate) NotifyMsg([]byte)                           {}
func (d *metaDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *metaDelegate) LocalState(join bool) []byte                { return nil }
func (d *metaDelegate) MergeRemoteState(buf []byte, join bool)     {}

// eventDelegate keeps the member table. memberlist calls it from one
// goroutine at a time, and it must not block.
type eventDelegate Membership

func (d *eventDelegate) set(n *memberlist.Node, alive bool) {
	m := (*Membership)(d)
	meta, err := DecodeNodeMeta(n.Meta)
	if err != nil {
		m.log.Warn("ignoring a node with bad metadata", "node", n.Name, "error", err)
		return
	}
	m.mu.Lock()
	prev := m.members[meta.ID]
	mb := &Member{Meta: meta, Alive: alive, Since: time.Now(), Addr: n.Address()}
	if prev != nil && prev.Alive == alive {
		mb.Since = prev.Since // metadata update: state unchanged
	}
	m.members[meta.ID] = mb
	m.mu.Unlock()
	m.changed()
}

func (d *eventDelegate) NotifyJoin(n *memberlist.Node)  { d.set(n, true) }
func (d *eventDelegate) NotifyLeave(n *memberlist.Node) { d.set(n, false) }
func (d *eventDelegate) NotifyUpdate(n *memberlist.Node) {
	d.set(n, n.State == memberlist.StateAlive || n.State == memberlist.StateSuspect)
}
