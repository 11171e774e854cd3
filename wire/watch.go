package wire

import (
	"context"
	"time"

	"github.com/followgraph/followgraph/codes"
)

// Watch limits.
const (
	// MaxWatchEvents bounds the events of one watch response: at most
	// about 150 bytes each, they fit the default 1 MiB frame.
	MaxWatchEvents = 4096
	// MaxWatchWait bounds how long a watch request waits for events:
	// below the client's attempt timeout, so an idle feed is not taken
	// for a stalled node.
	MaxWatchWait = time.Second
	// MaxWatchUsers bounds a watch request's user filter.
	MaxWatchUsers = 1000
)

// WatchStart says where a watch request starts.
type WatchStart uint8

// Watch starts.
const (
	// WatchFrom: after the request's offset.
	WatchFrom WatchStart = 0
	// WatchNow: after the newest event the serving replica knows. The
	// response holds no events, only the offset to send next.
	WatchNow WatchStart = 1
	// WatchOldest: from the oldest event the serving replica retains.
	WatchOldest WatchStart = 2
)

// WatchRequest reads a shard's change feed: [shard, from, start, max,
// waitMs, kinds, [user...]]. The response holds the events after offset
// from (or where start says), at most max, whose kind's bit (1<<kind) is
// set in kinds (0: all) and, if users is not empty, whose user or other
// side is one of them. With none to return, the server waits up to
// waitMs for some.
type WatchRequest struct {
	Shard int
	From  uint64
	Start WatchStart
	Max   int
	Wait  time.Duration
	Kinds uint32
	Users []string
}

// AppendWatchRequest encodes a watch request.
func AppendWatchRequest(b []byte, q WatchRequest) []byte {
	b = appendArray(b, 7)
	b = appendUint(b, uint64(q.Shard))
	b = appendUint(b, q.From)
	b = appendUint(b, uint64(q.Start))
	b = appendUint(b, uint64(q.Max))
	b = appendUint(b, uint64(q.Wait.Milliseconds()))
	b = appendUint(b, uint64(q.Kinds))
	b = appendArray(b, len(q.Users))
	for _, u := range q.Users {
		b = appendStr(b, u)
	}
	return b
}

// ParseWatchRequest decodes a watch request (strings are copied).
func ParseWatchRequest(body []byte) (WatchRequest, error) {
	r := reader{b: body}
	r.arrayN(7)
	q := WatchRequest{Shard: r.upTo(1 << 16), From: r.uint(), Start: WatchStart(r.upTo(int(WatchOldest)))}
	maxEv, wait, kinds := r.uint(), r.uint(), r.uint()
	n := r.array(MaxWatchUsers)
	for i := range n {
		q.Users = append(q.Users, r.id("user filter", i+1))
	}
	if err := wrap(r.done(), "watch request"); err != nil {
		return q, err
	}
	switch {
	case maxEv < 1 || maxEv > MaxWatchEvents:
		return q, codes.New(codes.InvalidParam, "watch request: max events %d: want 1 to %d", maxEv, MaxWatchEvents)
	case wait > uint64(MaxWatchWait.Milliseconds()):
		return q, codes.New(codes.InvalidParam, "watch request: wait %d ms: want at most %d", wait, MaxWatchWait.Milliseconds())
	case kinds > 1<<32-1:
		return q, codes.New(codes.InvalidParam, "watch request: kinds mask %d out of range", kinds)
	}
	q.Max, q.Wait, q.Kinds = int(maxEv), time.Duration(wait)*time.Millisecond, uint32(kinds)
	return q, nil
}

// WatchEvent is one event: [offset, time, followTime, kind, user, other].
type WatchEvent struct {
	Offset           uint64
	Time, FollowTime int64
	Kind             EventKind
	User, Other      string
}

// WatchPage is a watch response: [[event...], next, head]. next is the
// offset to send as from in the next request (past the events returned
// and those the filter skipped); head is the newest offset the serving
// replica knew.
type WatchPage struct {
	Events     []WatchEvent
	Next, Head uint64
}

// AppendWatchPage encodes a watch response.
func AppendWatchPage(b []byte, p WatchPage) []byte {
	b = appendArray(b, 3)
	b = appendArray(b, len(p.Events))
	for _, e := range p.Events {
		b = appendArray(b, 6)
		b = appendUint(b, e.Offset)
		b = appendInt(b, e.Time)
		b = appendInt(b, e.FollowTime)
		b = appendUint(b, uint64(e.Kind))
		b = appendStr(b, e.User)
		b = appendStr(b, e.Other)
	}
	b = appendUint(b, p.Next)
	return appendUint(b, p.Head)
}

// ParseWatchPage decodes a watch response.
func ParseWatchPage(body []byte) (WatchPage, error) {
	r := reader{b: body}
	r.arrayN(3)
	n := r.array(MaxWatchEvents)
	p := WatchPage{Events: make([]WatchEvent, 0, min(n, 1024))}
	for range n {
		r.arrayN(6)
		e := WatchEvent{Offset: r.uint(), Time: r.int(), FollowTime: r.int(), Kind: EventKind(r.upTo(255)), User: r.str(maxIDLen), Other: r.str(maxIDLen)}
		if r.err != nil {
			break
		}
		p.Events = append(p.Events, e)
	}
	p.Next, p.Head = r.uint(), r.uint()
	return p, wrap(r.done(), "watch response")
}

func serveWatch(s *Server, ctx context.Context, _ Op, body, b []byte) ([]byte, error) {
	req, err := ParseWatchRequest(body)
	if err != nil {
		return b, err
	}
	// A waiting watch must not hold up a graceful stop: it ends early,
	// with what it has, when the server stops.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.stoppingCtx(), cancel)
	defer stop()
	p, err := s.handler.Watch(ctx, req)
	if err != nil {
		return b, err
	}
	return AppendWatchPage(b, p), nil
}
