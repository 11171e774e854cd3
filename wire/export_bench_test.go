package wire

import (
	"testing"

	"github.com/followgraph/followgraph/internal/graphgen"
	"github.com/followgraph/followgraph/shard"
)

// BenchmarkExportPages measures the server's side of an export: a View's
// following entries read page by page and encoded as op 17 responses of
// up to the default frame, over a generated graph of 50,000 users and
// about a million edges in one Store. It reports edges/s (one core).
func BenchmarkExportPages(b *testing.B) {
	cfg := graphgen.DefaultConfig()
	cfg.Users = 50_000
	g, err := graphgen.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	s, err := shard.New(shard.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	var fs []int
	var ts []string
	for u := range cfg.Users {
		fs = g.Following(u, fs)
		ts = ts[:0]
		for _, f := range fs {
			ts = append(ts, graphgen.UserID(f))
		}
		for len(ts) > 0 {
			k := min(len(ts), 20)
			if _, err := s.Follow(graphgen.UserID(u), ts[:k], 1_700_000_000_000+int64(u)); err != nil {
				b.Fatal(err)
			}
			ts = ts[k:]
		}
	}
	v := s.View()
	defer v.Release()
	buf := make([]byte, 0, DefaultMaxFrame)
	b.ResetTimer()
	var edges int64
	for range b.N {
		pos := shard.StartPosition
		for {
			w := newExportWriter(buf[:0], DefaultMaxFrame-32)
			next, done := v.Following(pos, MaxExportEdges, w.edge)
			buf = w.end(ExportPage{Next: next, Done: done, Edges: v.Edges()})
			if done {
				break
			}
			pos = next
		}
		edges += v.Edges()
	}
	b.ReportMetric(float64(edges)/b.Elapsed().Seconds(), "edges/s")
}
