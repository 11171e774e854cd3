package wire

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/followgraph/followgraph/codes"
)

// The fake backend answers set queries from its inputs, so the tests see
// that each field crossed the wire.
func (f *fakeBackend) KnownFollowers(ctx context.Context, req KnownFollowersRequest) (SetPage, error) {
	return SetPage{Items: []Item{{UserID: req.Viewer, FollowTime: int64(req.Limit)}, {UserID: req.User, FollowTime: int64(req.Consistency)}}, NextCursor: req.Cursor, Total: 2}, nil
}

func (f *fakeBackend) CommonFollowing(ctx context.Context, req CommonFollowingRequest) (SetPage, error) {
	return SetPage{Items: []Item{{UserID: req.B + req.A, FollowTime: 1}}, NextCursor: req.Cursor, Total: 7}, nil
}

func (f *fakeBackend) Relationships(ctx context.Context, req RelationshipsRequest) ([]Relationship, error) {
	out := make([]Relationship, len(req.Pairs))
	for i, p := range req.Pairs {
		out[i] = Relationship{From: strings.Clone(p.From), To: strings.Clone(p.To), FollowType: uint8(i % 4)}
	}
	return out, nil
}

func (f *fakeBackend) Probe(ctx context.Context, req ProbeRequest) ([]int64, error) {
	out := make([]int64, len(req.IDs))
	for i, id := range req.IDs {
		out[i] = int64(len(id)) * int64(req.Kind)
	}
	return out, nil
}

func TestSetQueryBodiesRoundTrip(t *testing.T) {
	k := KnownFollowersRequest{Viewer: "v", User: "celeb", Cursor: "abc", Limit: 50, Consistency: Linearizable}
	if got, err := ParseKnownFollowersRequest(AppendKnownFollowersRequest(nil, k)); err != nil || got != k {
		t.Fatalf("known followers: %+v %v", got, err)
	}
	c := CommonFollowingRequest{A: "a", B: "b"}
	if got, err := ParseCommonFollowingRequest(AppendCommonFollowingRequest(nil, c)); err != nil || got != c {
		t.Fatalf("common following: %+v %v", got, err)
	}
	p := SetPage{Items: []Item{{"x", 5}, {"y", -1}}, NextCursor: "n", Total: 1 << 40}
	if got, err := ParseSetPage(AppendSetPage(nil, p)); err != nil || !reflect.DeepEqual(got, p) {
		t.Fatalf("set page: %+v %v", got, err)
	}
	r := RelationshipsRequest{Pairs: []Pair{{"a", "b"}, {"c", "d"}}, Consistency: Any}
	if got, err := ParseRelationshipsRequest(AppendRelationshipsRequest(nil, r)); err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("relationships request: %+v %v", got, err)
	}
	rs := []Relationship{{From: "a", To: "b", FollowType: 3}, {From: "", To: "b", Code: codes.InvalidParam}}
	if got, err := ParseRelationships(AppendRelationships(nil, rs)); err != nil || !slices.Equal(got, rs) {
		t.Fatalf("relationships: %+v %v", got, err)
	}
	q := ProbeRequest{Owner: "o", Kind: 2, IDs: []string{"a", "bb"}}
	if got, err := ParseProbeRequest(AppendProbeRequest(nil, q)); err != nil || !reflect.DeepEqual(got, q) {
		t.Fatalf("probe: %+v %v", got, err)
	}
	ts := []int64{-1, 0, 1 << 45}
	if got, err := ParseProbeTimes(AppendProbeTimes(nil, ts)); err != nil || !slices.Equal(got, ts) {
		t.Fatalf("probe times: %v %v", got, err)
	}
}

func TestRelationshipFlags(t *testing.T) {
	for ft, want := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
		r := Relationship{FollowType: uint8(ft)}
		if r.Follows() != want[0] || r.FollowedBy() != want[1] {
			t.Fatalf("type %d: follows %v followedBy %v", ft, r.Follows(), r.FollowedBy())
		}
	}
}

func TestSetQueryDecodersRefuse(t *testing.T) {
	long := strings.Repeat("x", 300)
	bad := map[string]error{}
	_, bad["known followers, 3 elements"] = ParseKnownFollowersRequest(appendStr(appendStr(appendStr(appendArray(nil, 3), "a"), "b"), ""))
	_, bad["known followers, long viewer"] = ParseKnownFollowersRequest(AppendKnownFollowersRequest(nil, KnownFollowersRequest{Viewer: long, User: "u"}))
	_, bad["common following, consistency 3"] = ParseCommonFollowingRequest(appendUint(appendUint(appendStr(appendStr(appendStr(appendArray(nil, 5), "a"), "b"), ""), 1), 3))
	_, bad["relationships, pair of 3"] = ParseRelationshipsRequest(appendStr(appendStr(appendStr(appendArray(appendArray(appendArray(nil, 1), 1), 3), "a"), "b"), "c"))
	_, bad["probe, kind 0"] = ParseProbeRequest(AppendProbeRequest(nil, ProbeRequest{Owner: "o", Kind: 0, IDs: []string{"a"}}))
	_, bad["probe, kind 4"] = ParseProbeRequest(AppendProbeRequest(nil, ProbeRequest{Owner: "o", Kind: 4}))
	_, bad["set page, trailing"] = ParseSetPage(append(AppendSetPage(nil, SetPage{}), 0))
	for what, err := range bad {
		if !errors.Is(err, codes.ErrInvalidParam) {
			t.Errorf("%s: %v, want 30001", what, err)
		}
	}
	if _, err := ParseKnownFollowersRequest(AppendKnownFollowersRequest(nil, KnownFollowersRequest{Viewer: long, User: "u"})); !strings.Contains(err.Error(), "user ID of the viewer") {
		t.Errorf("a long viewer ID is not named: %v", err)
	}
}

func TestSetQueriesServed(t *testing.T) {
	s := startServer(t, nil, &fakeBackend{})
	rc := dialRaw(t, s)
	if err := rc.hello(""); err != nil {
		t.Fatal(err)
	}
	rc.send(1, OpKnownFollowers, AppendKnownFollowersRequest(nil, KnownFollowersRequest{Viewer: "v", User: "u", Cursor: "c", Limit: 9, Consistency: Any}))
	_, body, err := rc.recv()
	p, perr := ParseSetPage(body)
	if err != nil || perr != nil || !reflect.DeepEqual(p, SetPage{Items: []Item{{"v", 9}, {"u", int64(Any)}}, NextCursor: "c", Total: 2}) {
		t.Fatalf("known followers: %+v %v %v", p, err, perr)
	}
	rc.send(2, OpCommonFollowing, AppendCommonFollowingRequest(nil, CommonFollowingRequest{A: "a", B: "b"}))
	_, body, err = rc.recv()
	if p, perr := ParseSetPage(body); err != nil || perr != nil || p.Total != 7 || p.Items[0].UserID != "ba" {
		t.Fatalf("common following: %+v %v %v", p, err, perr)
	}
	rc.send(3, OpRelationships, AppendRelationshipsRequest(nil, RelationshipsRequest{Pairs: []Pair{{"a", "b"}, {"c", "d"}}}))
	_, body, err = rc.recv()
	if rs, perr := ParseRelationships(body); err != nil || perr != nil || len(rs) != 2 || rs[1] != (Relationship{From: "c", To: "d", FollowType: 1}) {
		t.Fatalf("relationships: %+v %v %v", rs, err, perr)
	}
	// The probe is for other nodes only, never a client's.
	rc.send(4, OpProbe, AppendProbeRequest(nil, ProbeRequest{Owner: "o", Kind: 1, IDs: []string{"a"}}))
	if _, _, err := rc.recv(); !errors.Is(err, codes.ErrNotAllowed) {
		t.Fatalf("probe from a client: %v, want 40012", err)
	}
	pc := dialPeer(t, s)
	if err := pc.hello(""); err != nil {
		t.Fatal(err)
	}
	pc.send(5, OpProbe, AppendProbeRequest(nil, ProbeRequest{Owner: "o", Kind: 2, IDs: []string{"a", "bcd"}}))
	_, body, err = pc.recv()
	if ts, perr := ParseProbeTimes(body); err != nil || perr != nil || !slices.Equal(ts, []int64{2, 6}) {
		t.Fatalf("probe from a peer: %v %v %v", ts, err, perr)
	}
}

// FuzzSetQueryRequests: the decoders of ops 20 to 23's requests never
// panic, and what decodes re-encodes to the same value.
func FuzzSetQueryRequests(f *testing.F) {
	f.Add(AppendKnownFollowersRequest(nil, KnownFollowersRequest{Viewer: "v", User: "u", Cursor: "c", Limit: 5, Consistency: Any}))
	f.Add(AppendCommonFollowingRequest(nil, CommonFollowingRequest{A: "a", B: "b"}))
	f.Add(AppendRelationshipsRequest(nil, RelationshipsRequest{Pairs: []Pair{{"a", "b"}}, Consistency: Linearizable}))
	f.Add(AppendProbeRequest(nil, ProbeRequest{Owner: "o", Kind: 3, IDs: []string{"x", "y"}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if q, err := ParseKnownFollowersRequest(b); err == nil {
			if q2, err := ParseKnownFollowersRequest(AppendKnownFollowersRequest(nil, q)); err != nil || q2 != q {
				t.Fatalf("known-followers request does not round-trip: %+v", q)
			}
		}
		if q, err := ParseCommonFollowingRequest(b); err == nil {
			if q2, err := ParseCommonFollowingRequest(AppendCommonFollowingRequest(nil, q)); err != nil || q2 != q {
				t.Fatalf("common-following request does not round-trip: %+v", q)
			}
		}
		if q, err := ParseRelationshipsRequest(b); err == nil {
			if q2, err := ParseRelationshipsRequest(AppendRelationshipsRequest(nil, q)); err != nil || !reflect.DeepEqual(q2, q) {
				t.Fatalf("relationships request does not round-trip: %+v", q)
			}
		}
		if q, err := ParseProbeRequest(b); err == nil {
			if q2, err := ParseProbeRequest(AppendProbeRequest(nil, q)); err != nil || !reflect.DeepEqual(q2, q) {
				t.Fatalf("probe request does not round-trip: %+v", q)
			}
		}
	})
}

// FuzzSetQueryResponses: the same for the responses.
func FuzzSetQueryResponses(f *testing.F) {
	f.Add(AppendSetPage(nil, SetPage{Items: []Item{{"a", 1}}, NextCursor: "n", Total: 3}))
	f.Add(AppendRelationships(nil, []Relationship{{From: "a", To: "b", FollowType: 2}}))
	f.Add(AppendProbeTimes(nil, []int64{-1, 5}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := ParseSetPage(b); err == nil {
			if p2, err := ParseSetPage(AppendSetPage(nil, p)); err != nil || !reflect.DeepEqual(p2, p) {
				t.Fatalf("set page does not round-trip: %+v", p)
			}
		}
		if rs, err := ParseRelationships(b); err == nil {
			if rs2, err := ParseRelationships(AppendRelationships(nil, rs)); err != nil || !slices.Equal(rs2, rs) {
				t.Fatalf("relationships do not round-trip: %+v", rs)
			}
		}
		if ts, err := ParseProbeTimes(b); err == nil {
			if ts2, err := ParseProbeTimes(AppendProbeTimes(nil, ts)); err != nil || !slices.Equal(ts2, ts) {
				t.Fatalf("probe times do not round-trip: %v", ts)
			}
		}
	})
}

// blockingSets holds known-followers requests until released.
type blockingSets struct {
	fakeBackend
	release chan struct{}
}

func (b *blockingSets) KnownFollowers(ctx context.Context, req KnownFollowersRequest) (SetPage, error) {
	<-b.release
	return b.fakeBackend.KnownFollowers(ctx, req)
}

// A set query runs beside the read loop: a ping pipelined behind it is
// answered while it runs, and its body outlives the frame buffer.
func TestSetQueryDoesNotHoldTheConnection(t *testing.T) {
	be := &blockingSets{release: make(chan struct{})}
	s := startServer(t, nil, be)
	rc := dialRaw(t, s)
	if err := rc.hello(""); err != nil {
		t.Fatal(err)
	}
	rc.send(1, OpKnownFollowers, AppendKnownFollowersRequest(nil, KnownFollowersRequest{Viewer: "viewer", User: "user", Limit: 3}))
	rc.send(2, OpPing, AppendEmpty(nil))
	if id, _, err := rc.recv(); id != 2 || err != nil {
		t.Fatalf("first answer: id %d, %v; want the ping's", id, err)
	}
	close(be.release)
	id, body, err := rc.recv()
	p, perr := ParseSetPage(body)
	if id != 1 || err != nil || perr != nil || p.Items[0].UserID != "viewer" || p.Items[1].UserID != "user" {
		t.Fatalf("known followers: id %d, %+v, %v %v", id, p, err, perr)
	}
}
