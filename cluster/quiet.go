package cluster

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Quiet shards.
//
// An idle raft group still sends each follower a heartbeat every
// HeartbeatTimeout/10 and an empty AppendEntries every CommitTimeout: with
// 64 shards on three nodes that is about 2,000 RPCs a second per node, a
// quarter of a core spent in syscalls. A shard whose leader proposed
// nothing and renewed no read lease for Raft.QuietAfter is quiet: its
// leader's transport answers those no-news RPCs itself, and instead the
// node sends each peer one beat every quietBeat listing the (shard, term)
// pairs it quietly leads there (beats.go). The peer hands each listed
// replica that already follows this node in that term a heartbeat,
// through raft's own heartbeat handler, so its election timer and its
// refusal to vote for others see the leader's contact exactly as for a
// heartbeat off the wire, and acknowledges it.
//
// The transport answers a no-news RPC itself only while the follower's
// acknowledgement for that shard and term is younger than quietStale, and
// only with what the follower last answered for real: a heartbeat, or an
// empty AppendEntries identical to the last one it accepted. Otherwise the
// RPC goes out, so a dead, paused or partitioned follower, or one that
// moved to a higher term, is seen as raft would see it. A dead leader
// stops beating, and its followers time out as they always did: failover
// is unchanged. Anything with entries, votes, snapshots and TimeoutNow
// always go out; a write or a lease renewal wakes the shard first (wake).

// quietBeat and quietStale derive the beat period and the largest age of
// an acknowledgement the transport may answer from, from the heartbeat
// timeout: a beat may come a quarter period late before the leader's
// RPCs go out for real again, and a follower's election timer (at least
// HeartbeatTimeout) sees five beats before it fires.
func (c *Config) quietBeat() time.Duration  { return c.Raft.HeartbeatTimeout / 5 }
func (c *Config) quietStale() time.Duration { return c.Raft.HeartbeatTimeout / 4 }

// quietPeer is what the leader knows of one follower of a quiet shard.
type quietPeer struct {
	id   raft.ServerID
	term uint64 // term of the last RPC the follower accepted (0: none)
	resp raft.AppendEntriesResponse
	// The last empty AppendEntries with a log position the follower
	// accepted in term; posOK is false once anything else was sent.
	prevIdx, prevTerm, commit uint64
	posOK                     bool
	ackAt                     time.Time // send time of the newest beat acknowledged for term
}

// quietTransport is a shard's raft transport with quiet-shard support.
type quietTransport struct {
	guardedTransport
	shard int
	after time.Duration // Raft.QuietAfter
	stale time.Duration

	active atomic.Int64 // last write or lease renewal, ns since leaseBase
	faked  atomic.Uint64

	// raft is the replica's raft (set once it exists). slow is set while
	// its heartbeat timeout is stretched to quietHeartbeat (see pace);
	// paceMu orders the changes.
	raft    atomic.Pointer[raft.Raft]
	hbt     time.Duration // Raft.HeartbeatTimeout
	slowHBT time.Duration // quietHeartbeat
	eto     time.Duration // Raft.ElectionTimeout
	log     hclog.Logger
	paceMu  sync.Mutex
	slow    atomic.Bool

	mu    sync.Mutex
	peers map[raft.ServerAddress]*quietPeer
	hb    func(raft.RPC) // raft's heartbeat handler

	beatMu  sync.Mutex // one beat at a time: beat reuses these
	beatReq raft.AppendEntriesRequest
	beatCh  chan raft.RPCResponse
}

func newQuietTransport(t guardedTransport, shard int, cfg *Config, log hclog.Logger) *quietTransport {
	q := &quietTransport{guardedTransport: t, shard: shard, after: cfg.Raft.QuietAfter, stale: cfg.quietStale(),
		hbt: cfg.Raft.HeartbeatTimeout, slowHBT: cfg.quietHeartbeat(), eto: cfg.Raft.ElectionTimeout, log: log, peers: make(map[raft.ServerAddress]*quietPeer)}
	q.wake()
	return q
}

// wake marks the shard active, so that no-news RPCs go out for real for
// the next QuietAfter, and restores raft's heartbeat pace (raft then
// heartbeats every follower at once).
func (t *quietTransport) wake() {
	t.active.Store(int64(time.Since(leaseBase)))
	if t.slow.Load() {
		t.pace()
	}
}

// quietHeartbeat is a quiet leader's raft heartbeat timeout: its
// heartbeat goroutines (one per follower, every timeout/10 to timeout/5)
// wake less often; their RPCs are answered locally anyway, followers hear
// from the node's beats, and a follower's own timeout is untouched. The
// leader still needs an answer from a quorum within LeaderLeaseTimeout
// or it steps down, so heartbeats stay within 0.4 of it (a scheduling
// delay of more than half the lease would have to hit every follower's
// heartbeat to cost the leadership): at most 2 x LeaderLeaseTimeout, and
// at most 10 x the configured timeout.
func (c *Config) quietHeartbeat() time.Duration {
	return max(c.Raft.HeartbeatTimeout, min(2*c.Raft.LeaderLeaseTimeout, 10*c.Raft.HeartbeatTimeout))
}

// pace sets raft's heartbeat timeout: stretched while this node leads the
// shard and it is quiet, the configured one otherwise. The beats ticker
// calls it for every replica, and wake when the shard stops being quiet.
// A stretched timeout is restored before anything goes out for real.
func (t *quietTransport) pace() {
	r := t.raft.Load()
	if r == nil {
		return
	}
	t.paceMu.Lock()
	defer t.paceMu.Unlock()
	want := r.State() == raft.Leader && t.quiet()
	if want && !t.slow.Load() {
		// Publish slow first, then check again: a wake that stored its
		// activity before our second check is seen here; one after it
		// sees slow and comes back through pace.
		t.slow.Store(true)
		if want = t.quiet(); !want {
			t.slow.Store(false)
			return
		}
	}
	if t.slowHBT == t.hbt {
		t.slow.Store(false)
		return
	}
	if want == t.slow.Load() && t.slowApplied(r) == want {
		return
	}
	// The election timeout follows (raft wants it at least the heartbeat
	// timeout); it only matters once this node is a candidate, and by
	// then the next pace has restored it.
	rc := r.ReloadableConfig()
	rc.HeartbeatTimeout, rc.ElectionTimeout = t.hbt, t.eto
	if want {
		rc.HeartbeatTimeout = t.slowHBT
		rc.ElectionTimeout = max(rc.ElectionTimeout, rc.HeartbeatTimeout)
	}
	if err := r.ReloadConfig(rc); err != nil {
		t.log.Error("cannot set raft's heartbeat pace", "quiet", want, "error", err)
		want = false
	}
	t.slow.Store(want)
}

// slowApplied reports whether raft runs with the stretched timeout.
func (t *quietTransport) slowApplied(r *raft.Raft) bool {
	return r.ReloadableConfig().HeartbeatTimeout != t.hbt
}

// quiet reports whether the shard has been idle for QuietAfter.
func (t *quietTransport) quiet() bool {
	return int64(time.Since(leaseBase))-t.active.Load() >= int64(t.after)
}

// SetHeartbeatHandler keeps raft's handler for beats, and installs it on
// the network transport as usual.
func (t *quietTransport) SetHeartbeatHandler(cb func(raft.RPC)) {
	t.mu.Lock()
	t.hb = cb
	t.mu.Unlock()
	t.NetworkTransport.SetHeartbeatHandler(cb)
}

// isHeartbeat matches raft's heartbeat RPC (replication.go's heartbeat):
// a term and a leader, no log position, no entries.
func isHeartbeat(a *raft.AppendEntriesRequest) bool {
	return a.PrevLogEntry == 0 && a.PrevLogTerm == 0 && a.LeaderCommitIndex == 0 && len(a.Entries) == 0
}

func (t *quietTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	if len(args.Entries) > 0 {
		t.wake()
	} else if t.answer(target, args, resp) {
		return nil
	}
	err := t.guardedTransport.AppendEntries(id, target, args, resp)
	t.observe(id, target, args, resp, err)
	return err
}

// answer fills resp for a no-news RPC the follower's recent beat
// acknowledgement vouches for.
func (t *quietTransport) answer(target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) bool {
	if !t.quiet() {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.peers[target]
	if p == nil || p.term != args.Term || time.Since(p.ackAt) >= t.stale {
		return false
	}
	if !isHeartbeat(args) && (!p.posOK || args.PrevLogEntry != p.prevIdx || args.PrevLogTerm != p.prevTerm || args.LeaderCommitIndex != p.commit) {
		return false
	}
	*resp = p.resp
	t.faked.Add(1)
	return true
}

// observe records the outcome of an RPC that went out.
func (t *quietTransport) observe(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.peers[target]
	if p == nil {
		p = &quietPeer{}
		t.peers[target] = p
	}
	if err != nil || !resp.Success || resp.Term != args.Term {
		*p = quietPeer{}
		return
	}
	if p.term != args.Term {
		*p = quietPeer{}
	}
	p.id, p.term, p.resp = id, args.Term, *resp
	switch {
	case len(args.Entries) > 0:
		p.posOK = false
	case !isHeartbeat(args):
		p.prevIdx, p.prevTerm, p.commit, p.posOK = args.PrevLogEntry, args.PrevLogTerm, args.LeaderCommitIndex, true
	}
}

// quietTerms returns, per follower address, the term this leader may beat
// for (only followers that accepted a real RPC in it).
func (t *quietTransport) quietTerms(fn func(target raft.ServerAddress, term uint64)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for addr, p := range t.peers {
		if p.term != 0 {
			fn(addr, p.term)
		}
	}
}

// acked records a follower's acknowledgement of a beat sent at sent.
func (t *quietTransport) acked(target raft.ServerAddress, term uint64, sent time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.peers[target]; p != nil && p.term == term && sent.After(p.ackAt) {
		p.ackAt = sent
	}
}

// beat hands raft a heartbeat from leader (ID and address) in term, as if
// it had come off the wire, and reports whether raft accepted it. Raft's
// heartbeat handler answers before it returns, unless raft is shutting
// down (then it answers nothing). The request and channel are reused:
// raft keeps neither.
func (t *quietTransport) beat(leader, addr []byte, term uint64) bool {
	t.mu.Lock()
	hb := t.hb
	t.mu.Unlock()
	if hb == nil {
		return false
	}
	t.beatMu.Lock()
	defer t.beatMu.Unlock()
	if t.beatCh == nil {
		t.beatCh = make(chan raft.RPCResponse, 1)
	}
	t.beatReq = raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: leader, Addr: addr},
		Term:      term,
	}
	hb(raft.RPC{Command: &t.beatReq, RespChan: t.beatCh})
	select {
	case r := <-t.beatCh:
		resp, ok := r.Response.(*raft.AppendEntriesResponse)
		return r.Error == nil && ok && resp.Success && resp.Term == term
	default:
		return false
	}
}

// AppendEntriesPipeline refuses a pipeline while the shard is quiet:
// raft then replicates with plain AppendEntries, whose no-news sends the
// transport can answer. (Raft leaves a pipeline on any successful plain
// send and comes back to plain sends when the pipeline fails.)
func (t *quietTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	if t.quiet() {
		return nil, raft.ErrPipelineReplicationNotSupported
	}
	p, err := t.guardedTransport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	return quietPipeline{p, t}, nil
}

// errPipelineQuiet ends a pipeline whose shard went quiet.
var errPipelineQuiet = errors.New("cluster: shard is quiet; leaving the pipeline for plain AppendEntries")

// quietPipeline marks the shard active on every pipelined send of
// entries, and fails a no-news send once the shard is quiet, which sends
// raft back to plain AppendEntries.
type quietPipeline struct {
	raft.AppendPipeline
	t *quietTransport
}

func (p quietPipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	if len(args.Entries) > 0 {
		p.t.wake()
	} else if p.t.quiet() {
		return nil, errPipelineQuiet
	}
	return p.AppendPipeline.AppendEntries(args, resp)
}
