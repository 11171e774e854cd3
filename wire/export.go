package wire

import (
	"bytes"
	"context"
	"encoding/binary"
)

// Export (op 17): a shard's follow edges, page by page, from one
// point-in-time view of the shard's leader (docs/PROTOCOL.md, 8.14).

// Export limits.
const (
	// MaxExportEdges bounds the edges of one export page; a request for 0
	// gets this many. Pages also end before they outgrow the frame.
	MaxExportEdges = 1 << 16
	// exportSlack is the room a page keeps below its byte budget: the
	// trailer and one more edge opening a new actor group fit in it, so a
	// page that had room before an edge never passes the frame limit.
	exportSlack = 256
)

// ExportRequest asks for a page of a shard's export: [shard, session,
// position, maxEdges, maxBytes]. Session 0 starts an export (at position
// 0) from a new point in time; later requests name the session and the
// previous page's next position. maxEdges 0 means MaxExportEdges; maxBytes
// bounds the response body (0: the server's frame limit, which bounds it
// anyway).
type ExportRequest struct {
	Shard    int
	Session  uint64
	Position uint64
	MaxEdges int
	MaxBytes int
}

// AppendExportRequest encodes an export request.
func AppendExportRequest(b []byte, q ExportRequest) []byte {
	b = appendArray(b, 5)
	b = appendUint(b, uint64(q.Shard))
	b = appendUint(b, q.Session)
	b = appendUint(b, q.Position)
	b = appendUint(b, uint64(q.MaxEdges))
	return appendUint(b, uint64(q.MaxBytes))
}

// ParseExportRequest decodes an export request.
func ParseExportRequest(body []byte) (ExportRequest, error) {
	r := reader{b: body}
	r.arrayN(5)
	q := ExportRequest{Shard: r.upTo(1<<16 - 1), Session: r.uint(), Position: r.uint(), MaxEdges: r.upTo(MaxExportEdges), MaxBytes: r.upTo(1 << 30)}
	return q, wrap(r.done(), "export request")
}

// ExportPage is the rest of an export response, after the edges:
// [[[actor, [[target, followTime]...]]...], session, next, done, edges].
// Session names the export for the next request, Next is the position to
// send, Done says the export of the shard is complete, and Edges is the
// number of follow edges in the view (all pages together), for progress.
type ExportPage struct {
	Session uint64
	Next    uint64
	Done    bool
	Edges   int64
}

// ExportEdge is one exported edge; Actor and Target share the response
// body's memory.
type ExportEdge struct {
	Actor, Target []byte
	FollowTime    int64
}

// exportWriter encodes edges into a response as the handler produces
// them, grouping the consecutive edges of one actor.
type exportWriter struct {
	b        []byte
	base     int // where the body starts in b
	budget   int // most body bytes
	groupsAt int // offset of the group count
	groups   uint32
	countAt  int // offset of the current group's edge count (-1: none)
	count    uint32
	actor    []byte
}

func newExportWriter(b []byte, budget int) *exportWriter {
	w := &exportWriter{b: b, base: len(b), budget: budget, countAt: -1}
	w.b = appendArray(w.b, 5)
	w.groupsAt = len(w.b)
	w.b = append(w.b, 0xdd, 0, 0, 0, 0) // group count, patched by end
	return w
}

// edge appends one edge, or returns false when the page is full (the
// first edge always fits).
func (w *exportWriter) edge(actor, target []byte, t int64) bool {
	if len(w.b)-w.base+exportSlack > w.budget && w.groups > 0 {
		return false
	}
	if w.countAt < 0 || !bytes.Equal(actor, w.actor) {
		w.closeGroup()
		w.b = appendArray(w.b, 2)
		w.b = appendStrBytes(w.b, actor)
		w.countAt = len(w.b)
		w.b = append(w.b, 0xdd, 0, 0, 0, 0)
		w.actor = append(w.actor[:0], actor...)
		w.groups++
	}
	w.b = append(w.b, 0x92)
	w.b = appendStrBytes(w.b, target)
	w.b = appendInt(w.b, t)
	w.count++
	return true
}

func (w *exportWriter) closeGroup() {
	if w.countAt >= 0 {
		binary.BigEndian.PutUint32(w.b[w.countAt+1:], w.count)
	}
	w.count = 0
}

// end patches the counts and appends the trailer.
func (w *exportWriter) end(p ExportPage) []byte {
	w.closeGroup()
	binary.BigEndian.PutUint32(w.b[w.groupsAt+1:], w.groups)
	b := appendUint(w.b, p.Session)
	b = appendUint(b, p.Next)
	b = appendBool(b, p.Done)
	return appendInt(b, p.Edges)
}

// AppendExportPage encodes a whole export response (the server encodes
// as it reads instead; this is for tests and other servers).
func AppendExportPage(b []byte, edges []ExportEdge, p ExportPage) []byte {
	w := newExportWriter(b, 1<<62)
	for _, e := range edges {
		w.edge(e.Actor, e.Target, e.FollowTime)
	}
	return w.end(p)
}

// ParseExportPage decodes an export response, appending its edges to
// edges (reuse the slice across pages: nothing is allocated per edge).
// The edges share body's memory. Nothing is appended from a malformed
// body.
func ParseExportPage(body []byte, edges []ExportEdge) (ExportPage, []ExportEdge, error) {
	r := reader{b: body}
	r.arrayN(5)
	start := len(edges)
	groups := r.array(MaxExportEdges)
	for range groups {
		r.arrayN(2)
		actor := r.strBytes(maxIDLen)
		n := r.array(MaxExportEdges)
		if len(actor) == 0 || len(edges)-start+n > MaxExportEdges {
			r.fail()
		}
		if r.err != nil {
			break
		}
		for range n {
			r.arrayN(2)
			e := ExportEdge{Actor: actor, Target: r.strBytes(maxIDLen), FollowTime: r.int()}
			if r.err != nil || len(e.Target) == 0 || e.FollowTime < 0 {
				r.fail()
				break
			}
			edges = append(edges, e)
		}
	}
	p := ExportPage{Session: r.uint(), Next: r.uint(), Done: r.bool(), Edges: r.int()}
	if err := wrap(r.done(), "export response"); err != nil {
		return ExportPage{}, edges[:start], err
	}
	return p, edges, nil
}

func serveExport(s *Server, ctx context.Context, _ Op, body, b []byte) ([]byte, error) {
	req, err := ParseExportRequest(body)
	if err != nil {
		return b, err
	}
	ch, err := s.clusterHandler()
	if err != nil {
		return b, err
	}
	budget := s.cfg.MaxFrame - 32 // the response header
	if req.MaxBytes > 0 {
		budget = min(budget, req.MaxBytes)
	}
	w := newExportWriter(b, budget)
	p, err := ch.Export(ctx, req, w.edge)
	if err != nil {
		return w.b, err
	}
	return w.end(p), nil
}
