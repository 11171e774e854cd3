package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/fsm"
)

// The relay delivers a shard's outbox to the other shards, exactly once
// and in order.
//
// While this node leads the shard, one goroutine per destination shard
// sends the destination's pending records, oldest first, in batches, one
// batch at a time, and learns from each reply the highest sequence the
// destination has applied (durably: it went through the destination's raft
// log). It continues from there, so records are never skipped and order per
// (source, destination) is the commit order. The destination ignores
// sequences it has already applied, so sending a record twice (after a
// timeout, a crash or a leader change) is harmless.
//
// Acknowledgements take no log entries of their own: every entry this
// shard's batcher writes anyway (client writes, deliveries from other
// shards) carries the positions confirmed since the previous one, and
// applying it drops those records from the outbox. Only when no entry
// has carried a confirmation for Relay.AckAfter (the shard stopped
// writing) does the acker write one for it. A new leader starts again
// from the oldest unacknowledged record; what it redelivers, the
// destination skips.
type relay struct {
	rep   *Replica
	kicks []chan struct{}
	acks  chan struct{} // cap 1: a destination confirmed new records

	mu        sync.Mutex
	running   bool
	delivered []uint64 // per destination: highest sequence it confirmed, this term
	// carried[d] is the highest position for d an entry committed or in
	// flight carries (this term); delivered[d] > carried[d] means an
	// acknowledgement is owed.
	carried []uint64
	waiters [][]*waiter
}

type waiter struct {
	seq uint64
	ch  chan error
}

func newRelay(rep *Replica) *relay {
	n := rep.node.nshards
	r := &relay{rep: rep, kicks: make([]chan struct{}, n), acks: make(chan struct{}, 1), delivered: make([]uint64, n), carried: make([]uint64, n), waiters: make([][]*waiter, n)}
	for i := range r.kicks {
		r.kicks[i] = make(chan struct{}, 1)
	}
	return r
}

// kick tells destination d's stream that records are pending.
func (r *relay) kick(d int) {
	select {
	case r.kicks[d] <- struct{}{}:
	default:
	}
}

// run relays until ctx ends (this node stops leading the shard).
func (r *relay) run(ctx context.Context) {
	r.mu.Lock()
	r.running = true
	clear(r.delivered)
	clear(r.carried)
	r.mu.Unlock()
	var wg sync.WaitGroup
	for d := range r.kicks {
		if d == r.rep.id {
			continue
		}
		wg.Go(func() { r.stream(ctx, d) })
	}
	wg.Go(func() { r.acker(ctx) })
	wg.Wait()
	r.mu.Lock()
	r.running = false
	for d, ws := range r.waiters {
		for _, w := range ws {
			// The forward edge is committed; only the wait for the
			// reverse side ends. NotLeader would say nothing applied.
			w.ch <- codes.New(codes.Timeout, "shard %d: written, but leadership moved before the reverse side was confirmed", r.rep.id)
		}
		r.waiters[d] = nil
	}
	r.mu.Unlock()
}

// relayPoll is how often an idle stream looks at its outbox without a
// kick. Every record the FSM queues kicks its stream (a buffered channel:
// a kick is never lost), so this is only a safety net; each leader runs
// one stream per other shard (21 x 63 on a node leading 21 of 64 shards),
// and a one-second poll cost an idle node 1,300 wakeups a second.
const relayPoll = time.Minute

// relayWarnAfter is how long deliveries to a destination may fail before
// the relay logs a warning.
const relayWarnAfter = 3 * time.Second

func (r *relay) stream(ctx context.Context, d int) {
	cfg := r.rep.cfg.Relay
	backoff := cfg.Retry
	var after uint64 // highest sequence d confirmed in this term
	var failingSince time.Time
	warned := false
	for {
		recs := r.rep.fsm.Pending(d, after, cfg.Batch)
		if len(recs) == 0 {
			select {
			case <-r.kicks[d]:
			case <-time.After(relayPoll):
			case <-ctx.Done():
				return
			}
			continue
		}
		applied, err := r.rep.node.send.Deliver(ctx, d, r.rep.id, recs)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// A destination without a leader for a moment (at start, in
			// an election) is normal; one that stays out of reach is not.
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			if !warned && time.Since(failingSince) > relayWarnAfter {
				r.rep.log.Warn("relay: delivery failing, retrying", "dst", d, "records", len(recs), "for", time.Since(failingSince).Round(time.Millisecond), "error", err)
				warned = true
			}
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		if warned {
			r.rep.log.Info("relay: delivering again", "dst", d)
			warned = false
		}
		failingSince = time.Time{}
		backoff = cfg.Retry
		if applied+1 < recs[0].Seq {
			// d has applied less than what we already acknowledged:
			// it lost durable state. Nothing here can replay it.
			r.rep.log.Error("relay: destination is behind acknowledged records; reverse edges were lost", "dst", d, "applied", applied, "oldest", recs[0].Seq)
			select {
			case <-time.After(2 * time.Second):
			case <-ctx.Done():
				return
			}
		}
		after = applied
		r.confirm(d, applied)
	}
}

// confirm records that d has applied up to seq and wakes sync writers.
func (r *relay) confirm(d int, seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq > r.delivered[d] {
		r.delivered[d] = seq
		r.kickAck()
	}
	ws := r.waiters[d][:0]
	for _, w := range r.waiters[d] {
		if w.seq <= seq {
			w.ch <- nil
		} else {
			ws = append(ws, w)
		}
	}
	r.waiters[d] = ws
}

// kickAck wakes the acker.
func (r *relay) kickAck() {
	select {
	case r.acks <- struct{}{}:
	default:
	}
}

// owedAcks appends to dst the confirmed positions no entry carries yet,
// and marks them carried: the batcher calls it for every entry it writes.
func (r *relay) owedAcks(dst []fsm.Watermark) []fsm.Watermark {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.running {
		return dst
	}
	for d, seq := range r.delivered {
		if seq > r.carried[d] {
			dst = append(dst, fsm.Watermark{Shard: d, Seq: seq})
			r.carried[d] = seq
		}
	}
	return dst
}

// uncarry forgets acknowledgements whose entry failed, so the next entry
// carries them again (a duplicate acknowledgement is harmless).
func (r *relay) uncarry(acks []fsm.Watermark) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range acks {
		r.carried[a.Shard] = min(r.carried[a.Shard], a.Seq-1)
	}
	r.kickAck()
}

// owed reports whether some confirmed position is not carried by an entry.
func (r *relay) owed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for d, seq := range r.delivered {
		if seq > r.carried[d] {
			return true
		}
	}
	return false
}

// acker makes sure every confirmation is acknowledged in the log even when
// the shard writes nothing more: it sleeps until a destination confirms
// new records (an idle shard wakes nothing), gives the batcher AckAfter
// to carry them in an entry it writes anyway, and only if none did,
// proposes an entry for them alone.
func (r *relay) acker(ctx context.Context) {
	for {
		select {
		case <-r.acks:
		case <-ctx.Done():
			return
		}
		select {
		case <-time.After(r.rep.cfg.Relay.AckAfter):
		case <-ctx.Done():
			return
		}
		if !r.owed() {
			continue
		}
		if err := r.rep.flushAcks(ctx); err != nil {
			if ctx.Err() == nil {
				r.rep.log.Debug("relay: ack not committed", "error", err)
			}
			r.kickAck() // try again
		}
	}
}

// wait returns once every watermark's shard has applied this shard's
// records up to the watermark.
func (r *relay) wait(ctx context.Context, ws []fsm.Watermark) error {
	for _, w := range ws {
		r.mu.Lock()
		if !r.running {
			r.mu.Unlock()
			return r.rep.notLeader()
		}
		if r.delivered[w.Shard] >= w.Seq {
			r.mu.Unlock()
			continue
		}
		if h := r.rep.fsm.Head(w.Shard); h == 0 || h > w.Seq {
			// Acknowledged, so applied.
			r.mu.Unlock()
			continue
		}
		wt := &waiter{seq: w.Seq, ch: make(chan error, 1)}
		r.waiters[w.Shard] = append(r.waiters[w.Shard], wt)
		r.mu.Unlock()
		select {
		case err := <-wt.ch:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return codes.New(codes.Timeout, "the write is committed, but its reverse side was not applied in time")
		}
	}
	return nil
}

// nodeSender is the relay's delivery: to the destination's replica here if
// this node leads it (always, on a single node), else to its leader
// through Config.Peers.
type nodeSender struct{ n *Node }

func (s nodeSender) Deliver(ctx context.Context, dst, src int, recs []fsm.Record) (uint64, error) {
	n := s.n
	if r := n.Replica(dst); r != nil && (r.Ready() || !n.cfg.clusterMode()) {
		return r.Deliver(ctx, src, recs)
	}
	addr, ok := n.leaderAddr(dst)
	if !ok {
		return 0, n.NotLeaderError(dst)
	}
	return n.cfg.Peers.Deliver(ctx, addr, dst, src, recs)
}
