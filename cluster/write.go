package cluster

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/fsm"
	"github.com/followgraph/followgraph/internal/clock"
	"github.com/followgraph/followgraph/shard"
	"github.com/hashicorp/raft"
)

// The write path: a client command (or a delivery, or the acker's request
// for an entry) becomes a proposal, queued for the replica's batcher, which puts what is
// queued into one log entry and hands it to raft; the completer waits for
// entries in commit order and answers each proposal.

// WriteOptions are per-request options of a write.
type WriteOptions struct {
	// Sync makes the write return only once its reverse side (the
	// followers and mutual lists on the targets' shards) is applied too.
	Sync bool
}

// proposal is one thing to commit through the batcher: a client command,
// a delivery of records from another shard, or (neither) the acker asking
// for an entry to carry owed acknowledgements. They all share log
// entries, so one fsync commits every stream; every entry also carries
// the relay's owed acknowledgements (see relay.owedAcks).
type proposal struct {
	cmds    []fsm.Command // client commands: one, or an import's several
	dlv     *fsm.Delivery
	res     []fsm.CommandResult // one per command
	applied uint64              // for a delivery
	err     error
	done    chan struct{}
	idx     int // position in its batch's commands (of the first) or deliveries
}

func (p *proposal) size() int {
	switch {
	case p.cmds != nil:
		n := 0
		for _, c := range p.cmds {
			n += len(c.Actor) + 16*len(c.Targets) + 9*len(c.Times)
		}
		return n
	case p.dlv != nil:
		return 48 * len(p.dlv.Records)
	}
	return 0
}

type batch struct {
	props []*proposal
	fut   raft.ApplyFuture
	start time.Time
	cmds  int             // commands in it (for metrics)
	kind  entryKind       // what it mainly carries (for metrics)
	acks  []fsm.Watermark // the acknowledgements it carries
	hooks []fsm.HookPosition
}

// entryKind classifies log entries for EntryCounts: by the first of
// commands, deliveries and acknowledgements an entry carries.
type entryKind uint8

const (
	kindWrite entryKind = iota
	kindDelivery
	kindAck
	numKinds
)

// EntryCounts counts the log entries a replica's batcher committed while
// it led, by what they carry first: client writes, deliveries from other
// shards, or only acknowledgements (what the relay writes when no other
// entry carried them).
type EntryCounts struct {
	Writes, Deliveries, Acks uint64
}

// Write proposes a follow or unfollow and waits for it to be committed and
// applied (and, with opt.Sync, for its reverse side to be applied too).
//
// The request is validated by the caller (the router checks IDs and
// limits where requests enter the node). Apply checks again what it
// applies, deterministically on every replica, so an invalid command
// fails as a whole and changes nothing, but costs a log entry.
func (r *Replica) Write(ctx context.Context, op fsm.Op, actor string, targets []string, opt WriteOptions) ([]shard.Result, error) {
	res, err := r.WriteCommands(ctx, []fsm.Command{{Op: op, Actor: actor, Targets: targets}}, opt)
	if err != nil {
		return nil, err
	}
	if res[0].Err != nil {
		return nil, res[0].Err
	}
	return res[0].Results, nil
}

// WriteCommands proposes several commands in one proposal, so they commit
// in the same log entry (an import's page), and returns one result per
// command. An error (the proposal refused, not committed in time, or the
// reverse sides not applied in time with opt.Sync) is the whole call's:
// the commands may or may not have applied, and retrying is safe.
func (r *Replica) WriteCommands(ctx context.Context, cmds []fsm.Command, opt WriteOptions) ([]fsm.CommandResult, error) {
	if !r.isReady.Load() {
		return nil, r.notLeader()
	}
	if st := r.fsm.Outbox(); st.Records >= r.cfg.Relay.MaxOutbox {
		return nil, codes.New(codes.Overloaded, "shard %d has %d undelivered reverse edges", r.id, st.Records)
	}
	p := &proposal{cmds: cmds, done: make(chan struct{})}
	if err := r.enqueue(p); err != nil {
		return nil, err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		// The write may still commit; writes are idempotent, so the
		// client may retry.
		return nil, ctxErr(ctx)
	}
	if p.err != nil {
		return nil, p.err
	}
	if opt.Sync {
		var waits []fsm.Watermark
		for _, cr := range p.res {
			for _, w := range cr.Waits {
				waits = addWait(waits, w)
			}
		}
		if len(waits) > 0 {
			if err := r.relay.wait(ctx, waits); err != nil {
				return p.res, err
			}
		}
	}
	return p.res, nil
}

// addWait merges w into ws, keeping the highest sequence per shard.
func addWait(ws []fsm.Watermark, w fsm.Watermark) []fsm.Watermark {
	for i := range ws {
		if ws[i].Shard == w.Shard {
			ws[i].Seq = max(ws[i].Seq, w.Seq)
			return ws
		}
	}
	return append(ws, w)
}

// enqueue hands a proposal to the batcher. Under sendMu, a proposal is
// either queued before close marks the shard closing (and the batcher
// answers it), or refused.
func (r *Replica) enqueue(p *proposal) error {
	r.sendMu.RLock()
	defer r.sendMu.RUnlock()
	if r.closing.Load() {
		return codes.New(codes.ShuttingDown, "node is shutting down")
	}
	select {
	case r.props <- p:
		return nil
	default:
		return codes.New(codes.Overloaded, "shard %d write queue is full", r.id)
	}
}

func ctxErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return codes.New(codes.Timeout, "deadline exceeded; the write may still be applied (retrying is safe)")
	}
	return codes.New(codes.Timeout, "canceled; the write may still be applied (retrying is safe)")
}

// batcher groups queued commands into log entries. It proposes as soon as
// an in-flight slot is free, so a lone command goes out at once, and under
// load every entry carries whatever queued while the previous ones were
// committing.
func (r *Replica) batcher() {
	defer close(r.inflight)
	var buf bytes.Buffer
	var eb fsm.Batch
	for {
		var first *proposal
		select {
		case first = <-r.props:
		case <-r.stop:
			r.drainQueue()
			return
		}
		b := &batch{props: []*proposal{first}}
		size := first.size()
	fill:
		for len(b.props) < r.cfg.Batch.MaxCommands && size < r.cfg.Batch.MaxBytes {
			select {
			case p := <-r.props:
				b.props = append(b.props, p)
				size += p.size()
			default:
				break fill
			}
		}
		if !r.encode(b, &eb, &buf) {
			continue // only the acker asked, and nothing is owed
		}
		b.start = time.Now()
		r.wake()
		b.fut = r.raft.Apply(bytes.Clone(buf.Bytes()), r.cfg.Batch.ApplyTimeout)
		// The inflight channel's capacity bounds the entries in flight:
		// while it is full this blocks, and proposals keep queueing for
		// the next entry.
		select {
		case r.inflight <- b:
		case <-r.stop:
			r.finish(b)
			r.drainQueue()
			return
		}
	}
}

// encode puts b's proposals and the relay's owed acknowledgements into
// one batch entry in buf. It returns false, answering b, when there is
// nothing to write: only acker requests, and no acknowledgement owed.
func (r *Replica) encode(b *batch, eb *fsm.Batch, buf *bytes.Buffer) bool {
	eb.Commands, eb.Deliveries = eb.Commands[:0], eb.Deliveries[:0]
	for _, p := range b.props {
		switch {
		case p.cmds != nil:
			p.idx = len(eb.Commands)
			eb.Commands = append(eb.Commands, p.cmds...)
		case p.dlv != nil:
			p.idx = len(eb.Deliveries)
			eb.Deliveries = append(eb.Deliveries, *p.dlv)
		}
	}
	b.acks = r.relay.owedAcks(nil)
	eb.Acks = b.acks
	b.hooks = r.hooks.take()
	eb.Hooks = b.hooks
	b.cmds = len(eb.Commands)
	switch {
	case b.cmds > 0:
		b.kind = kindWrite
	case len(eb.Deliveries) > 0:
		b.kind = kindDelivery
	case len(eb.Acks) > 0 || len(eb.Hooks) > 0:
		b.kind = kindAck
	default:
		for _, p := range b.props {
			close(p.done)
		}
		return false
	}
	// The wall clock may have gone back, or an earlier leader's clock may
	// have been ahead: keep followTimes monotonic in the shard.
	now := max(clock.Now().UnixMilli(), r.lastT, r.fsm.LastTime())
	r.lastT = now
	eb.Time = now
	fsm.EncodeBatch(buf, *eb)
	return true
}

// drainQueue fails queued commands at shutdown.
func (r *Replica) drainQueue() {
	for {
		select {
		case p := <-r.props:
			p.err = codes.New(codes.ShuttingDown, "node is shutting down")
			close(p.done)
		default:
			return
		}
	}
}

// completer waits for entries in order and hands out their results.
func (r *Replica) completer() {
	defer close(r.done)
	for b := range r.inflight {
		r.finish(b)
	}
}

func (r *Replica) finish(b *batch) {
	err := b.fut.Error()
	if r.cfg.OnCommit != nil && err == nil && b.cmds > 0 {
		r.cfg.OnCommit(r.id, time.Since(b.start), b.cmds)
	}
	if err == nil {
		r.entries[b.kind].Add(1)
	} else {
		if len(b.acks) > 0 {
			r.relay.uncarry(b.acks)
		}
		r.hooks.uncarry(b.hooks)
	}
	var resp *fsm.BatchResponse
	if err == nil {
		switch v := b.fut.Response().(type) {
		case *fsm.BatchResponse:
			resp = v
		case error:
			err = codes.New(codes.ShardUnavailable, "shard %d: %v", r.id, v)
		default:
			err = codes.New(codes.Internal, "shard %d: unexpected apply response %T", r.id, v)
		}
	} else {
		err = r.raftErr(err)
	}
	for _, p := range b.props {
		switch {
		case err != nil:
			p.err = err
		case p.cmds != nil:
			p.res = resp.Commands[p.idx : p.idx+len(p.cmds)]
		case p.dlv != nil:
			p.applied = resp.Delivered[p.idx]
		}
		close(p.done)
	}
}

// raftErr maps a raft error to a code.
func (r *Replica) raftErr(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		// Refused before it reached the log: certainly not applied.
		return r.notLeader()
	case errors.Is(err, raft.ErrLeadershipLost):
		// The entry is in the log of a deposed leader: a new leader may
		// still commit it. NotLeader would promise it did not apply.
		return codes.New(codes.Timeout, "shard %d: leadership lost while the write was in flight; its outcome is unknown", r.id)
	case errors.Is(err, raft.ErrRaftShutdown):
		return codes.New(codes.ShuttingDown, "shard %d is shut down", r.id)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return codes.New(codes.Timeout, "shard %d: raft did not take the entry in time", r.id)
	}
	return codes.New(codes.Internal, "shard %d: %v", r.id, err)
}

// Entries returns the entries the replica's batcher has committed.
func (r *Replica) Entries() EntryCounts {
	return EntryCounts{Writes: r.entries[kindWrite].Load(), Deliveries: r.entries[kindDelivery].Load(), Acks: r.entries[kindAck].Load()}
}

// Deliver applies records from shard src through this shard's raft log
// (sharing entries with client writes) and returns the highest sequence
// from src applied here.
func (r *Replica) Deliver(ctx context.Context, src int, recs []fsm.Record) (uint64, error) {
	if !r.isReady.Load() {
		return 0, r.notLeader()
	}
	p := &proposal{dlv: &fsm.Delivery{Src: src, Records: recs}, done: make(chan struct{})}
	if err := r.enqueue(p); err != nil {
		return 0, err
	}
	select {
	case <-p.done:
		return p.applied, p.err
	case <-ctx.Done():
		return 0, ctxErr(ctx)
	}
}

// flushAcks has the batcher write an entry now, which carries the owed
// acknowledgements, and waits for it.
func (r *Replica) flushAcks(ctx context.Context) error {
	p := &proposal{done: make(chan struct{})}
	if err := r.enqueue(p); err != nil {
		return err
	}
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctxErr(ctx)
	}
}
