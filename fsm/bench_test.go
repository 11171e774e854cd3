package fsm

import (
	"bytes"
	"testing"
	"time"

	"github.com/followgraph/followgraph/internal/graphgen"
	"github.com/followgraph/followgraph/shard"
	"github.com/hashicorp/raft"
)

// graphEntries encodes g's follows as batch entries of 64 commands of up
// to 20 targets, as the batcher would write them, and counts the edges.
func graphEntries(g *graphgen.Graph) (entries [][]byte, edges int) {
	var buf bytes.Buffer
	var cmds []Command
	var fl []int
	flush := func() {
		t := int64(1_700_000_000_000 + len(entries) + 1)
		entries = append(entries, bytes.Clone(EncodeCommands(&buf, t, cmds)))
		cmds = cmds[:0]
	}
	for u := range g.Config().Users {
		fl = g.Following(u, fl)
		for len(fl) > 0 {
			k := min(len(fl), 20)
			c := Command{Op: OpFollow, Actor: graphgen.UserID(u)}
			for _, v := range fl[:k] {
				c.Targets = append(c.Targets, graphgen.UserID(v))
			}
			edges += k
			cmds, fl = append(cmds, c), fl[k:]
			if len(cmds) == 64 {
				flush()
			}
		}
	}
	if len(cmds) > 0 {
		flush()
	}
	return entries, edges
}

// loadFSM applies g to a single-shard FSM through batch entries, as raft
// would.
func loadFSM(b *testing.B, g *graphgen.Graph) *FSM {
	f := newFSM(b, 0, 1)
	entries, _ := graphEntries(g)
	for i, e := range entries {
		f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: e})
	}
	return f
}

// BenchmarkSnapshotCapture measures FSM.Snapshot, the part of a snapshot
// that blocks Apply, on a shard holding 1M edges (50k users, both
// directions).
func BenchmarkSnapshotCapture(b *testing.B) {
	cfg := graphgen.DefaultConfig()
	cfg.Users = 50_000
	g, _ := graphgen.New(cfg)
	f := loadFSM(b, g)
	var edges int64
	f.Read(func(s *shard.Store) error { edges = s.Stats().Following; return nil })
	b.ReportMetric(float64(edges), "edges")
	var worst time.Duration
	for b.Loop() {
		start := time.Now()
		s, err := f.Snapshot()
		d := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		worst = max(worst, d)
		s.Release()
	}
	b.ReportMetric(float64(worst.Microseconds()), "max-µs")
}

// BenchmarkApplyFeed measures applying follow entries (64 commands of up
// to 20 targets, both sides on the one shard) with the change feed on
// (the default retention) and off: what the feed costs the apply path.
func BenchmarkApplyFeed(b *testing.B) {
	cfg := graphgen.DefaultConfig()
	cfg.Users = 20_000
	g, _ := graphgen.New(cfg)
	entries, edges := graphEntries(g)
	for _, bc := range []struct {
		name string
		feed FeedConfig
	}{{"on", DefaultFeedConfig()}, {"off", FeedConfig{}}} {
		b.Run("feed="+bc.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				f, err := New(Config{Shard: 0, Shards: 1, Store: shard.DefaultConfig(), Feed: bc.feed})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				for i, e := range entries {
					f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: e})
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*edges), "ns/edge")
		})
	}
}
