package wire

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/followgraph/followgraph/codes"
)

// fakeExport is the fake backend's graph: actor i (of fakeActors) follows
// fakeTargets users; the position is the edge's index.
const (
	fakeActors  = 37
	fakeTargets = 300
)

func fakeEdge(i int) (actor, target string, t int64) {
	a := i / fakeTargets
	return fmt.Sprintf("actor-%d-%s", a, strings.Repeat("x", a)), fmt.Sprintf("t%d", i%fakeTargets), int64(1_700_000_000_000 + i)
}

func (f *fakeBackend) Export(ctx context.Context, req ExportRequest, fn func(actor, target []byte, t int64) bool) (ExportPage, error) {
	if req.Session != 0 && req.Session != 42 {
		return ExportPage{}, codes.New(codes.ExportExpired, "no session %d", req.Session)
	}
	max := req.MaxEdges
	if max == 0 {
		max = MaxExportEdges
	}
	i := int(req.Position)
	for n := 0; i < fakeActors*fakeTargets && n < max; i, n = i+1, n+1 {
		a, b, t := fakeEdge(i)
		if !fn([]byte(a), []byte(b), t) {
			break
		}
	}
	return ExportPage{Session: 42, Next: uint64(i), Done: i == fakeActors*fakeTargets, Edges: fakeActors * fakeTargets}, nil
}

func TestExportBodiesRoundTrip(t *testing.T) {
	q := ExportRequest{Shard: 65535, Session: 1<<64 - 1, Position: 1 << 40, MaxEdges: MaxExportEdges, MaxBytes: 4096}
	if got, err := ParseExportRequest(AppendExportRequest(nil, q)); err != nil || got != q {
		t.Fatalf("%+v %v", got, err)
	}
	for _, bad := range []ExportRequest{{Shard: 1 << 16}, {MaxEdges: MaxExportEdges + 1}, {MaxBytes: 1<<30 + 1}} {
		if _, err := ParseExportRequest(AppendExportRequest(nil, bad)); codes.Of(err) != codes.InvalidParam {
			t.Fatalf("%+v: %v", bad, err)
		}
	}
	edges := []ExportEdge{
		{[]byte("a"), []byte("b"), 1}, {[]byte("a"), []byte("c"), 0}, {[]byte("é,\"x"), []byte(strings.Repeat("z", 64)), 1<<48 - 1},
		{[]byte("a"), []byte("b"), 5},
	}
	p := ExportPage{Session: 9, Next: 1<<63 + 5, Done: true, Edges: 1234}
	body := AppendExportPage(nil, edges, p)
	got, ges, err := ParseExportPage(body, nil)
	if err != nil || got != p || !reflect.DeepEqual(ges, edges) {
		t.Fatalf("%+v %v %v", got, ges, err)
	}
	// Appends to what the caller passes; nothing on a malformed body.
	prev := []ExportEdge{{[]byte("p"), []byte("q"), 3}}
	if _, ges, err := ParseExportPage(body, prev); err != nil || len(ges) != 5 || string(ges[0].Actor) != "p" {
		t.Fatalf("%v %v", ges, err)
	}
	for n := range len(body) {
		if _, ges, err := ParseExportPage(body[:n], prev); err == nil || len(ges) != 1 {
			t.Fatalf("truncated at %d: %d edges, %v", n, len(ges), err)
		}
	}
}

// TestExportServedInPages pages through the fake backend's export over a
// connection with a small frame limit: every page fits the frame (or the
// request's byte bound) and the pages together hold every edge once.
func TestExportServedInPages(t *testing.T) {
	for _, c := range []struct{ frame, maxBytes, maxEdges int }{{1024, 0, 0}, {4096, 0, 0}, {1 << 20, 0, 0}, {1 << 20, 2000, 0}, {1 << 20, 0, 7}} {
		t.Run(fmt.Sprintf("frame%d-bytes%d-edges%d", c.frame, c.maxBytes, c.maxEdges), func(t *testing.T) {
			s := startServer(t, func(cfg *ServerConfig) { cfg.MaxFrame = c.frame }, &fakeBackend{})
			rc := dialRaw(t, s)
			if err := rc.hello(""); err != nil {
				t.Fatal(err)
			}
			q := ExportRequest{Shard: 3, MaxEdges: c.maxEdges, MaxBytes: c.maxBytes}
			var edges []ExportEdge
			for pages := 1; ; pages++ {
				rc.send(uint32(pages), OpExport, AppendExportRequest(nil, q))
				_, body, err := rc.recv()
				if err != nil {
					t.Fatal(err)
				}
				if len(body) > c.frame || c.maxBytes > 0 && len(body) > c.maxBytes {
					t.Fatalf("page of %d bytes", len(body))
				}
				n := len(edges)
				p, es, err := ParseExportPage(body, edges)
				if err != nil {
					t.Fatal(err)
				}
				edges = es
				if c.maxEdges > 0 && len(edges)-n > c.maxEdges {
					t.Fatalf("page of %d edges", len(edges)-n)
				}
				if p.Edges != fakeActors*fakeTargets || p.Session != 42 {
					t.Fatalf("page %+v", p)
				}
				if p.Done {
					break
				}
				q.Session, q.Position = p.Session, p.Next
			}
			if len(edges) != fakeActors*fakeTargets {
				t.Fatalf("%d edges", len(edges))
			}
			for i, e := range edges {
				a, b, ft := fakeEdge(i)
				if string(e.Actor) != a || string(e.Target) != b || e.FollowTime != ft {
					t.Fatalf("edge %d: %s %s %d", i, e.Actor, e.Target, e.FollowTime)
				}
			}
			rc.send(1, OpExport, AppendExportRequest(nil, ExportRequest{Session: 5}))
			if _, _, err := rc.recv(); codes.Of(err) != codes.ExportExpired {
				t.Fatalf("unknown session: %v", err)
			}
		})
	}
}

func FuzzExportBodies(f *testing.F) {
	f.Add(AppendExportRequest(nil, ExportRequest{Shard: 2, Session: 7, Position: 1 << 33, MaxEdges: 100, MaxBytes: 1 << 20}))
	f.Add(AppendExportPage(nil, []ExportEdge{{[]byte("a"), []byte("b"), 1}, {[]byte("a"), []byte("c"), 2}, {[]byte("d"), []byte("b"), 3}}, ExportPage{Session: 1, Next: 2, Edges: 3}))
	f.Add(AppendExportPage(nil, nil, ExportPage{Done: true}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if q, err := ParseExportRequest(b); err == nil {
			if q2, err := ParseExportRequest(AppendExportRequest(nil, q)); err != nil || q2 != q || q.Shard > 65535 || q.MaxEdges > MaxExportEdges {
				t.Fatalf("export request does not round-trip or is out of range: %+v", q)
			}
		}
		p, edges, err := ParseExportPage(b, nil)
		if err != nil {
			if len(edges) != 0 {
				t.Fatalf("%d edges from a malformed page", len(edges))
			}
			return
		}
		for _, e := range edges {
			if len(e.Actor) == 0 || len(e.Actor) > maxIDLen || len(e.Target) == 0 || len(e.Target) > maxIDLen || e.FollowTime < 0 {
				t.Fatalf("edge out of range: %+v", e)
			}
		}
		p2, edges2, err := ParseExportPage(AppendExportPage(nil, edges, p), nil)
		if err != nil || p2 != p || !reflect.DeepEqual(edges2, edges) {
			t.Fatalf("export page does not round-trip: %+v %v", p, err)
		}
	})
}
