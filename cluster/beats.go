package cluster

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/followgraph/followgraph/internal/raftmux"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/vmihailenco/msgpack/v5"
)

// beatLayer is the raftmux stream id of node-to-node beats: above any
// shard id (Config caps shards far below it).
const beatLayer = 1<<32 - 1

// beatMsg is one beat: the shards the sender quietly leads on the
// receiver, each with its term.
type beatMsg struct {
	From   string   `msgpack:"f"` // the sender's raft server ID
	Addr   string   `msgpack:"a"` // and raft address
	Shards []uint32 `msgpack:"s"`
	Terms  []uint64 `msgpack:"t"`
}

// maxBeatShards bounds a beat's list (Config caps shards at 4,096).
const maxBeatShards = 4096

// maxBeatString bounds a beat's server ID and address.
const maxBeatString = 1024

// readBeat reads the next beat from dec and checks its shape. It decodes
// field by field rather than through msgpack's reflection, which sizes a
// typed slice from the peer's array header before reading a single
// element (v5.4.1 ignores its own allocation limit there): a 5-byte
// header could make a node allocate 16 GiB.
func readBeat(dec *msgpack.Decoder) (beatMsg, error) {
	var m beatMsg
	n, err := dec.DecodeMapLen()
	if err != nil {
		return m, err
	}
	if n > 16 {
		return m, errBadBeat
	}
	for range n {
		key, err := dec.DecodeString()
		if err != nil {
			return m, err
		}
		switch key {
		case "f":
			m.From, err = decodeBeatString(dec)
		case "a":
			m.Addr, err = decodeBeatString(dec)
		case "s":
			m.Shards, err = decodeUints(dec, dec.DecodeUint32)
		case "t":
			m.Terms, err = decodeUints(dec, dec.DecodeUint64)
		default:
			err = dec.Skip()
		}
		if err != nil {
			return m, err
		}
	}
	if m.From == "" || len(m.Shards) != len(m.Terms) {
		return m, errBadBeat
	}
	return m, nil
}

// readBeatAck reads a beat's answer, as carefully as readBeat.
func readBeatAck(dec *msgpack.Decoder) (beatAck, error) {
	var a beatAck
	n, err := dec.DecodeMapLen()
	if err != nil {
		return a, err
	}
	if n > 16 {
		return a, errBadBeat
	}
	for range n {
		key, err := dec.DecodeString()
		if err != nil {
			return a, err
		}
		if key == "s" {
			a.Shards, err = decodeUints(dec, dec.DecodeUint32)
		} else {
			err = dec.Skip()
		}
		if err != nil {
			return a, err
		}
	}
	return a, nil
}

func decodeBeatString(dec *msgpack.Decoder) (string, error) {
	s, err := dec.DecodeString()
	if err == nil && len(s) > maxBeatString {
		err = errBadBeat
	}
	return s, err
}

// decodeUints decodes an array of at most maxBeatShards integers.
func decodeUints[T uint32 | uint64](dec *msgpack.Decoder, next func() (T, error)) ([]T, error) {
	n, err := dec.DecodeArrayLen()
	if err != nil || n <= 0 {
		return nil, err // n is -1 for nil
	}
	if n > maxBeatShards {
		return nil, errBadBeat
	}
	out := make([]T, n)
	for i := range out {
		if out[i], err = next(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

var errBadBeat = errors.New("cluster: malformed beat")

// beatAck lists the shards whose replica accepted the beat's heartbeat.
type beatAck struct {
	Shards []uint32 `msgpack:"s"`
}

// beats sends and answers the node's beats (see quiet.go). It owns one
// ticker goroutine, one sender goroutine per peer it has beaten, an
// accept goroutine and one goroutine per accepted stream; close stops
// them all.
type beats struct {
	n     *Node
	log   hclog.Logger
	layer *raftmux.Layer
	every time.Duration
	stale time.Duration

	stop chan struct{}
	wg   sync.WaitGroup

	mu    sync.Mutex
	peers map[raft.ServerAddress]chan beatMsg // cap 1: a slow peer skips beats
}

func newBeats(n *Node) *beats {
	return &beats{n: n, log: n.log.Named("beats"), layer: n.mux.Layer(beatLayer),
		every: n.cfg.quietBeat(), stale: n.cfg.quietStale(),
		stop: make(chan struct{}), peers: make(map[raft.ServerAddress]chan beatMsg)}
}

func (b *beats) start() {
	b.wg.Go(b.ticker)
	b.wg.Go(b.accept)
}

func (b *beats) close() {
	close(b.stop)
	b.layer.Close() // ends Accept and every stream's read
	b.wg.Wait()
}

func (b *beats) ticker() {
	t := time.NewTicker(b.every)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.send(b.collect())
		}
	}
}

// collect sets every replica's raft heartbeat pace and gathers, per
// peer, the shards this node leads quietly there.
func (b *beats) collect() map[raft.ServerAddress]*beatMsg {
	out := make(map[raft.ServerAddress]*beatMsg)
	for _, r := range b.n.localReplicas() {
		t, ok := r.trans.(*quietTransport)
		if !ok {
			continue
		}
		t.pace()
		if !t.quiet() || r.raft.State() != raft.Leader {
			continue
		}
		t.quietTerms(func(addr raft.ServerAddress, term uint64) {
			m := out[addr]
			if m == nil {
				m = &beatMsg{From: b.n.cfg.NodeID, Addr: b.n.mux.Addr()}
				out[addr] = m
			}
			m.Shards = append(m.Shards, uint32(r.id))
			m.Terms = append(m.Terms, term)
		})
	}
	return out
}

func (b *beats) send(msgs map[raft.ServerAddress]*beatMsg) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for addr, m := range msgs {
		ch := b.peers[addr]
		if ch == nil {
			ch = make(chan beatMsg, 1)
			b.peers[addr] = ch
			b.wg.Go(func() { b.sender(addr, ch) })
		}
		select {
		case ch <- *m:
		default: // the previous beat is still on its way
		}
	}
}

// sender delivers beats to one peer over one stream, redialled after an
// error, and records the acknowledgements.
func (b *beats) sender(addr raft.ServerAddress, ch chan beatMsg) {
	var conn net.Conn
	var w *bufio.Writer
	var enc *msgpack.Encoder
	var dec *msgpack.Decoder
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for {
		var m beatMsg
		select {
		case <-b.stop:
			return
		case m = <-ch:
		}
		if conn == nil {
			c, err := b.layer.Dial(addr, b.stale)
			if err != nil {
				continue // the peer is down: no acks, so its shards' RPCs go out for real
			}
			conn, w = c, bufio.NewWriter(c)
			enc, dec = msgpack.NewEncoder(w), msgpack.NewDecoder(bufio.NewReader(c))
		}
		sent := time.Now()
		var ack beatAck
		conn.SetDeadline(sent.Add(b.stale))
		err := enc.Encode(&m)
		if err == nil {
			err = w.Flush()
		}
		if err == nil {
			ack, err = readBeatAck(dec)
		}
		if err != nil {
			conn.Close()
			conn = nil
			continue
		}
		b.record(addr, &m, &ack, sent)
	}
}

func (b *beats) record(addr raft.ServerAddress, m *beatMsg, ack *beatAck, sent time.Time) {
	terms := make(map[uint32]uint64, len(m.Shards))
	for i, s := range m.Shards {
		terms[s] = m.Terms[i]
	}
	for _, s := range ack.Shards {
		term, ok := terms[s]
		if !ok {
			continue
		}
		if r := b.n.Replica(int(s)); r != nil {
			if t, ok := r.trans.(*quietTransport); ok {
				t.acked(addr, term, sent)
			}
		}
	}
}

func (b *beats) accept() {
	for {
		c, err := b.layer.Accept()
		if err != nil {
			if !errors.Is(err, raftmux.ErrClosed) {
				b.log.Warn("beat accept failed", "error", err)
			}
			return
		}
		b.wg.Go(func() { b.serve(c) })
	}
}

// serve answers one peer's beats until its stream closes.
func (b *beats) serve(c net.Conn) {
	defer c.Close()
	w := bufio.NewWriter(c)
	enc, dec := msgpack.NewEncoder(w), msgpack.NewDecoder(bufio.NewReader(c))
	for {
		m, err := readBeat(dec)
		if err != nil {
			return
		}
		ack := beatAck{Shards: b.handle(&m)}
		c.SetWriteDeadline(time.Now().Add(b.stale))
		if enc.Encode(&ack) != nil || w.Flush() != nil {
			return
		}
	}
}

// handle gives each listed replica that follows the sender in the listed
// term a heartbeat, and returns the shards that accepted it.
func (b *beats) handle(m *beatMsg) []uint32 {
	var acked []uint32
	id, addr := []byte(m.From), []byte(m.Addr)
	for i, s := range m.Shards {
		r := b.n.Replica(int(s))
		if r == nil || r.closing.Load() || r.raft.State() != raft.Follower {
			continue
		}
		if _, leader := r.raft.LeaderWithID(); string(leader) != m.From {
			continue
		}
		t, ok := r.trans.(*quietTransport)
		if ok && t.beat(id, addr, m.Terms[i]) {
			acked = append(acked, s)
		}
	}
	return acked
}
