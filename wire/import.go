package wire

import (
	"context"

	"github.com/followgraph/followgraph/codes"
)

// MaxImportEdges is the most edges one import request carries.
const MaxImportEdges = 10000

// ImportCommand is one actor's edges in an import: the actor follows
// Targets[i] since Times[i] (Unix ms).
type ImportCommand struct {
	Actor   string
	Targets []string
	Times   []int64
}

// ImportRequest is a bulk import:
//
//	[flags, [[actor, [target...], [followTime...]]...]]
//
// with at most MaxImportEdges edges in all; flags bit 0 asks for a sync
// write (the reverse sides applied too before the answer). An edge
// already there keeps its followTime, so importing the same edges again
// changes nothing.
type ImportRequest struct {
	Commands []ImportCommand
	Sync     bool
}

// Edges returns the number of edges in the request.
func (q *ImportRequest) Edges() int {
	n := 0
	for _, c := range q.Commands {
		n += len(c.Targets)
	}
	return n
}

// AppendImportRequest encodes an import request body.
func AppendImportRequest(b []byte, q ImportRequest) []byte {
	b = appendArray(b, 2)
	var flags uint64
	if q.Sync {
		flags |= 1
	}
	b = appendUint(b, flags)
	b = appendArray(b, len(q.Commands))
	for _, c := range q.Commands {
		b = appendArray(b, 3)
		b = appendStr(b, c.Actor)
		b = appendArray(b, len(c.Targets))
		for _, t := range c.Targets {
			b = appendStr(b, t)
		}
		b = appendArray(b, len(c.Times))
		for _, t := range c.Times {
			b = appendInt(b, t)
		}
	}
	return b
}

// ParseImportRequest decodes an import request body. The body is copied
// once and every string shares that copy: the request outlives the frame,
// and one allocation per request beats one per user ID.
func ParseImportRequest(body []byte) (ImportRequest, error) {
	own := make([]byte, len(body))
	copy(own, body)
	r := reader{b: own}
	r.arrayN(2)
	q := ImportRequest{Sync: r.uint()&1 != 0}
	n := r.array(MaxImportEdges)
	q.Commands = make([]ImportCommand, 0, min(n, 256))
	edges := 0
	for range n {
		r.arrayN(3)
		c := ImportCommand{Actor: r.idView("actor", 0)}
		k := r.array(MaxImportEdges - edges)
		edges += k
		c.Targets = make([]string, 0, k)
		r.field = "user ID of a target"
		for range k {
			c.Targets = append(c.Targets, r.strView(maxIDLen*4))
		}
		r.field = ""
		r.array(k)
		if r.err == nil && len(r.b)-r.off < k {
			r.fail() // each time takes at least a byte
		}
		c.Times = make([]int64, 0, k)
		for range k {
			c.Times = append(c.Times, r.int())
		}
		if r.err != nil {
			break
		}
		if len(c.Times) != len(c.Targets) {
			return q, codes.New(codes.InvalidParam, "import: %d followTimes for %d targets of %q", len(c.Times), len(c.Targets), c.Actor)
		}
		q.Commands = append(q.Commands, c)
	}
	return q, wrap(r.done(), "import request")
}

// ImportFailure is an edge of an import that was not applied: Index is its
// position among the request's edges (in order, across commands).
type ImportFailure struct {
	Index int
	Code  codes.Code
	Info  string
}

// ImportResult is the answer to an import:
//
//	[added, existing, [[index, code, info]...]]
//
// added edges were created, existing ones were there already (their
// followTime kept); each failure names an edge that was not applied.
type ImportResult struct {
	Added, Existing int
	Failures        []ImportFailure
}

// AppendImportResult encodes an import result.
func AppendImportResult(b []byte, res ImportResult) []byte {
	b = appendArray(b, 3)
	b = appendUint(b, uint64(res.Added))
	b = appendUint(b, uint64(res.Existing))
	b = appendArray(b, len(res.Failures))
	for _, f := range res.Failures {
		b = appendArray(b, 3)
		b = appendUint(b, uint64(f.Index))
		b = appendUint(b, uint64(f.Code))
		b = appendStr(b, f.Info)
	}
	return b
}

// ParseImportResult decodes an import result.
func ParseImportResult(body []byte) (ImportResult, error) {
	r := reader{b: body}
	r.arrayN(3)
	res := ImportResult{Added: r.upTo(MaxImportEdges), Existing: r.upTo(MaxImportEdges)}
	n := r.array(MaxImportEdges)
	res.Failures = make([]ImportFailure, 0, min(n, 64))
	for range n {
		r.arrayN(3)
		f := ImportFailure{Index: r.upTo(MaxImportEdges - 1), Code: codes.Code(r.upTo(1<<32 - 1)), Info: r.str(1 << 12)}
		if r.err != nil {
			break
		}
		res.Failures = append(res.Failures, f)
	}
	return res, wrap(r.done(), "import result")
}

func serveImport(s *Server, ctx context.Context, _ Op, body, b []byte) ([]byte, error) {
	req, err := ParseImportRequest(body)
	if err != nil {
		return b, err
	}
	res, err := s.handler.Import(ctx, req)
	if err != nil {
		return b, err
	}
	return AppendImportResult(b, res), nil
}

// ImportPart is the part of an import request for one shard, as split by
// SplitImport.
type ImportPart struct {
	Shard int
	Req   ImportRequest
	// firsts[i] is the index, in the whole request, of the first edge of
	// Req.Commands[i].
	firsts []int
}

// SplitImport splits q by the shard of each command's actor (shardOf), in
// the order shards first appear. Commands whose actor shardOf refuses (a
// negative shard) are left out; their edges are returned as failures
// with err's code.
func SplitImport(q ImportRequest, shardOf func(actor string) (int, error)) ([]*ImportPart, []ImportFailure) {
	var parts []*ImportPart
	byShard := map[int]*ImportPart{}
	var failed []ImportFailure
	first := 0
	for _, c := range q.Commands {
		d, err := shardOf(c.Actor)
		if err != nil {
			for k := range c.Targets {
				failed = append(failed, ImportFailure{Index: first + k, Code: codes.Of(err), Info: err.Error()})
			}
			first += len(c.Targets)
			continue
		}
		p := byShard[d]
		if p == nil {
			p = &ImportPart{Shard: d, Req: ImportRequest{Sync: q.Sync}}
			byShard[d] = p
			parts = append(parts, p)
		}
		p.Req.Commands = append(p.Req.Commands, c)
		p.firsts = append(p.firsts, first)
		first += len(c.Targets)
	}
	return parts, failed
}

// Merge adds the part's result to res, naming each failure by its index
// in the whole request. The part's failures must be in index order, as
// servers return them.
func (p *ImportPart) Merge(res *ImportResult, part ImportResult) {
	res.Added += part.Added
	res.Existing += part.Existing
	c, base := 0, 0 // the command of the failed edge, and its first edge in the part
	for _, f := range part.Failures {
		for c+1 < len(p.Req.Commands) && f.Index >= base+len(p.Req.Commands[c].Targets) {
			base += len(p.Req.Commands[c].Targets)
			c++
		}
		f.Index = p.firsts[c] + f.Index - base
		res.Failures = append(res.Failures, f)
	}
}
