package cluster

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// newTestQuiet is a quiet transport with no network under it: the tests
// drive answer and observe, which never send.
func newTestQuiet(t *testing.T) *quietTransport {
	t.Helper()
	cfg := DefaultConfig()
	return newQuietTransport(guardedTransport{}, 0, &cfg, hclog.NewNullLogger())
}

// sleepy makes t quiet: its last activity an hour ago.
func sleepy(t *quietTransport) { t.active.Store(int64(time.Since(leaseBase) - time.Hour)) }

func heartbeat(term uint64) *raft.AppendEntriesRequest {
	return &raft.AppendEntriesRequest{Term: term, RPCHeader: raft.RPCHeader{ID: []byte("n1"), Addr: []byte("a1")}}
}

func position(term, prev, commit uint64) *raft.AppendEntriesRequest {
	r := heartbeat(term)
	r.PrevLogEntry, r.PrevLogTerm, r.LeaderCommitIndex = prev, term, commit
	return r
}

func ok(term, last uint64) *raft.AppendEntriesResponse {
	return &raft.AppendEntriesResponse{Term: term, LastLog: last, Success: true}
}

// TestQuietTransportAnswersOnlyWhatTheFollowerVouchedFor checks the rules
// of quiet.go: the transport answers a no-news RPC itself only while the
// shard is quiet, the follower acknowledged a beat for the same term
// within quietStale, and the follower accepted the same RPC for real.
func TestQuietTransportAnswersOnlyWhatTheFollowerVouchedFor(t *testing.T) {
	const target = raft.ServerAddress("b")
	q := newTestQuiet(t)
	var resp raft.AppendEntriesResponse
	answers := func(args *raft.AppendEntriesRequest) bool {
		resp = raft.AppendEntriesResponse{}
		return q.answer(target, args, &resp)
	}

	q.observe("n2", target, heartbeat(5), ok(5, 9), nil)
	q.observe("n2", target, position(5, 9, 9), ok(5, 9), nil)
	if answers(heartbeat(5)) {
		t.Fatal("answered for a shard that is not quiet")
	}
	sleepy(q)
	if answers(heartbeat(5)) {
		t.Fatal("answered with no beat acknowledged")
	}
	q.acked(target, 5, time.Now())
	if !answers(heartbeat(5)) || !resp.Success || resp.Term != 5 || resp.LastLog != 9 {
		t.Fatalf("heartbeat not answered from the follower's last response: %+v", resp)
	}
	if !answers(position(5, 9, 9)) {
		t.Fatal("the empty AppendEntries the follower accepted was not answered")
	}
	for _, args := range []*raft.AppendEntriesRequest{heartbeat(6), position(5, 10, 10), position(5, 9, 10)} {
		if answers(args) {
			t.Fatalf("answered %+v, which the follower never accepted", args)
		}
	}
	if got := q.faked.Load(); got != 2 {
		t.Fatalf("faked = %d, want 2", got)
	}

	// Entries sent make the follower's position unknown until the next
	// empty AppendEntries it accepts; heartbeats stay answerable.
	q.observe("n2", target, &raft.AppendEntriesRequest{Term: 5, Entries: []*raft.Log{{Index: 10}}}, ok(5, 10), nil)
	if answers(position(5, 9, 9)) || !answers(heartbeat(5)) {
		t.Fatal("position answered after entries went out, or heartbeat not")
	}
	// A wake stops the answers at once.
	q.wake()
	if answers(heartbeat(5)) {
		t.Fatal("answered after wake")
	}
	sleepy(q)
	// A failed or refused RPC forgets the follower.
	q.observe("n2", target, heartbeat(5), &raft.AppendEntriesResponse{Term: 6}, nil)
	if answers(heartbeat(5)) {
		t.Fatal("answered for a follower that reported a newer term")
	}
	q.observe("n2", target, heartbeat(5), ok(5, 10), nil)
	q.acked(target, 5, time.Now())
	if !answers(heartbeat(5)) {
		t.Fatal("not answered after a fresh real heartbeat and ack")
	}
	q.observe("n2", target, heartbeat(5), &raft.AppendEntriesResponse{}, errors.New("connection reset"))
	if answers(heartbeat(5)) {
		t.Fatal("answered for a follower whose last RPC failed")
	}
}

func TestQuietTransportStaleAck(t *testing.T) {
	const target = raft.ServerAddress("b")
	q := newTestQuiet(t)
	sleepy(q)
	q.observe("n2", target, heartbeat(3), ok(3, 1), nil)
	q.acked(target, 3, time.Now().Add(-q.stale))
	var resp raft.AppendEntriesResponse
	if q.answer(target, heartbeat(3), &resp) {
		t.Fatalf("answered from an acknowledgement %v old (stale after %v)", q.stale, q.stale)
	}
	q.acked(target, 4, time.Now()) // another term's ack does not count
	if q.answer(target, heartbeat(3), &resp) {
		t.Fatal("answered from another term's acknowledgement")
	}
	q.acked(target, 3, time.Now())
	if !q.answer(target, heartbeat(3), &resp) {
		t.Fatal("fresh acknowledgement not used")
	}
}

func TestQuietTransportRefusesPipelineWhileQuiet(t *testing.T) {
	q := newTestQuiet(t)
	sleepy(q)
	if _, err := q.AppendEntriesPipeline("n2", "b"); !errors.Is(err, raft.ErrPipelineReplicationNotSupported) {
		t.Fatalf("pipeline while quiet: %v, want ErrPipelineReplicationNotSupported", err)
	}
	p := quietPipeline{t: q}
	if _, err := p.AppendEntries(heartbeat(1), &raft.AppendEntriesResponse{}); !errors.Is(err, errPipelineQuiet) {
		t.Fatalf("empty pipelined send while quiet: %v, want errPipelineQuiet", err)
	}
}
