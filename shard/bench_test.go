package shard

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"testing"

	"github.com/followgraph/followgraph/internal/graphgen"
)

// loadGraph builds one Store holding both directions of g, as a single
// shard holding every user would. Follows go in batches of 20, as clients
// send them.
func loadGraph(tb testing.TB, s *Store, g *graphgen.Graph) int64 {
	tb.Helper()
	return loadGraphSharded(tb, []*Store{s}, g)
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// memGraph is the graph of BenchmarkMemoryPerEdge: 1M users and 20M edges
// by default; FOLLOWGRAPH_MEM_USERS sets another user count (the mean
// out-degree stays 20), and -short uses 50k users.
func memGraph(b *testing.B) *graphgen.Graph {
	cfg := graphgen.DefaultConfig()
	if testing.Short() {
		cfg.Users = 50_000
	}
	if v := os.Getenv("FOLLOWGRAPH_MEM_USERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("FOLLOWGRAPH_MEM_USERS=%q: %v", v, err)
		}
		cfg.Users = n
	}
	g, err := graphgen.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return g
}

// BenchmarkMemoryPerEdge reports the live heap a Store needs per follow
// edge, both directions, all indexes and ID strings included.
func BenchmarkMemoryPerEdge(b *testing.B) {
	g := memGraph(b)
	for b.Loop() {
		before := heapAlloc()
		s, _ := New(DefaultConfig())
		edges := loadGraph(b, s, g)
		after := heapAlloc()
		st := s.Stats()
		b.ReportMetric(float64(after-before)/float64(edges), "bytes/edge")
		b.ReportMetric(float64(edges), "edges")
		b.ReportMetric(float64(st.LargeLists), "large-lists")
		b.ReportMetric(float64(st.Mutual)/2, "mutual-pairs")
		runtime.KeepAlive(s)
	}
}

// BenchmarkMemoryPerEdgeNaive is the same graph in the obvious Go design,
// a map of maps per direction, for comparison.
func BenchmarkMemoryPerEdgeNaive(b *testing.B) {
	g := memGraph(b)
	ids := make([]string, g.Config().Users)
	for i := range ids {
		ids[i] = graphgen.UserID(i)
	}
	for b.Loop() {
		before := heapAlloc()
		following := map[string]map[string]int64{}
		followers := map[string]map[string]int64{}
		edges := 0
		now := int64(1_700_000_000_000)
		g.Edges(func(u, v int) bool {
			a, c := ids[u], ids[v]
			if following[a] == nil {
				following[a] = map[string]int64{}
			}
			if followers[c] == nil {
				followers[c] = map[string]int64{}
			}
			following[a][c] = now
			followers[c][a] = now
			edges++
			return true
		})
		// The ID strings exist once in both designs; count them here too.
		after := heapAlloc()
		b.ReportMetric(float64(after-before)/float64(edges), "bytes/edge")
		runtime.KeepAlive(following)
		runtime.KeepAlive(followers)
	}
	runtime.KeepAlive(ids)
}

// The operation benchmarks share one Store: 200k users, 4M edges, and a
// most popular user with about 300k followers.
var (
	opsOnce  sync.Once
	opsStore *Store
	opsGraph *graphgen.Graph
)

func opsFixture(b *testing.B) (*Store, *graphgen.Graph) {
	opsOnce.Do(func() {
		cfg := graphgen.DefaultConfig()
		cfg.Users = 200_000
		cfg.ZipfS = 1
		g, err := graphgen.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		s, _ := New(DefaultConfig())
		loadGraph(b, s, g)
		debug.FreeOSMemory()
		opsStore, opsGraph = s, g
	})
	return opsStore, opsGraph
}

// smallUser returns a user of median popularity.
func smallUser(g *graphgen.Graph, i int) string {
	n := g.Config().Users
	return graphgen.UserID(g.ByRank(n/2 + i%(n/4)))
}

func celebrity(g *graphgen.Graph) string { return graphgen.UserID(g.ByRank(0)) }

func BenchmarkFollow(b *testing.B) {
	s, g := opsFixture(b)
	b.Run("small", func(b *testing.B) {
		i := 0
		for b.Loop() {
			actor := smallUser(g, i)
			target := "bench-" + strconv.Itoa(i)
			res, _ := s.Follow(actor, []string{target}, 1_800_000_000_000)
			s.AddFollower(target, actor, res[0].Time)
			// Undo, outside the measured pair, to keep the Store's shape.
			b.StopTimer()
			s.Unfollow(actor, []string{target})
			s.RemoveFollower(target, actor, res[0].Time)
			b.StartTimer()
			i++
		}
	})
	b.Run("celebrity", func(b *testing.B) {
		// The expensive side of following a celebrity: inserting into a
		// follower list of ~300k entries.
		star := celebrity(g)
		i := 0
		for b.Loop() {
			fan := "fan-" + strconv.Itoa(i)
			t := int64(1_800_000_000_000 + i)
			s.AddFollower(star, fan, t)
			b.StopTimer()
			s.RemoveFollower(star, fan, t)
			b.StartTimer()
			i++
		}
	})
}

func BenchmarkUnfollow(b *testing.B) {
	s, g := opsFixture(b)
	for _, name := range []string{"small", "celebrity"} {
		b.Run(name, func(b *testing.B) {
			star := celebrity(g)
			i := 0
			for b.Loop() {
				b.StopTimer()
				actor, target := smallUser(g, i), "bench-"+strconv.Itoa(i)
				if name == "celebrity" {
					actor, target = "fan-"+strconv.Itoa(i), star
				}
				res, _ := s.Follow(actor, []string{target}, 1_800_000_000_000+int64(i))
				s.AddFollower(target, actor, res[0].Time)
				b.StartTimer()
				s.Unfollow(actor, []string{target})
				s.RemoveFollower(target, actor, res[0].Time)
				i++
			}
		})
	}
}

func BenchmarkCheck(b *testing.B) {
	s, g := opsFixture(b)
	rng := rand.New(rand.NewPCG(1, 2))
	b.Run("small", func(b *testing.B) {
		targets := []string{""}
		i := 0
		for b.Loop() {
			targets[0] = graphgen.UserID(rng.IntN(g.Config().Users))
			s.Check(smallUser(g, i), targets)
			i++
		}
	})
	b.Run("celebrity", func(b *testing.B) {
		// Is this user one of the celebrity's ~300k followers?
		star := celebrity(g)
		targets := []string{""}
		for b.Loop() {
			targets[0] = graphgen.UserID(rng.IntN(g.Config().Users))
			s.Check(star, targets)
		}
	})
	b.Run("batch100", func(b *testing.B) {
		targets := make([]string, 100)
		i := 0
		for b.Loop() {
			for j := range targets {
				targets[j] = graphgen.UserID(rng.IntN(g.Config().Users))
			}
			s.Check(smallUser(g, i), targets)
			i++
		}
	})
}

func BenchmarkCounts(b *testing.B) {
	s, g := opsFixture(b)
	users := []string{""}
	i := 0
	for b.Loop() {
		users[0] = smallUser(g, i)
		s.Info(users)
		i++
	}
}

func BenchmarkPage100(b *testing.B) {
	s, g := opsFixture(b)
	sink := 0
	visit := func(id []byte, t int64) { sink += len(id) }
	b.Run("small", func(b *testing.B) {
		i := 0
		for b.Loop() {
			s.Scan(Following, smallUser(g, i), "", 100, visit)
			i++
		}
	})
	star := celebrity(g)
	b.Run("celebrity-first", func(b *testing.B) {
		for b.Loop() {
			s.Scan(Followers, star, "", 100, visit)
		}
	})
	b.Run("celebrity-deep", func(b *testing.B) {
		// A cursor half way down the list.
		_, fe, _, _ := s.Counts(star)
		cursor := ""
		for range fe / 2 / 500 {
			_, cursor, _ = s.List(Followers, star, cursor, 500)
		}
		b.ResetTimer()
		for b.Loop() {
			s.Scan(Followers, star, cursor, 100, visit)
		}
	})
	b.Run("celebrity-list-alloc", func(b *testing.B) {
		for b.Loop() {
			s.List(Followers, star, "", 100)
		}
	})
	_ = sink
}

func BenchmarkSnapshotWrite(b *testing.B) {
	s, _ := opsFixture(b)
	for b.Loop() {
		v := s.View()
		n, _ := v.WriteTo(discard{})
		v.Release()
		b.SetBytes(n)
		b.ReportMetric(float64(v.Edges()), "edges")
	}
}

func BenchmarkView(b *testing.B) {
	s, _ := opsFixture(b)
	for b.Loop() {
		s.View().Release()
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func ExampleStore() {
	s, _ := New(DefaultConfig())
	res, _ := s.Follow("alice", []string{"bob", "carol"}, 1_700_000_000_000)
	for _, r := range res {
		// Same Store here; across shards the replication layer delivers
		// this to the target's Store.
		s.AddFollower(r.UserID, "alice", r.Time)
	}
	items, next, _ := s.List(Followers, "bob", "", 10)
	fmt.Println(items, next == "")
	// Output: [{alice 1700000000000}] true
}

func BenchmarkSnapshotRead(b *testing.B) {
	s, _ := opsFixture(b)
	v := s.View()
	var buf bytes.Buffer
	v.WriteTo(&buf)
	v.Release()
	for b.Loop() {
		r, err := ReadFrom(bytes.NewReader(buf.Bytes()), DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(buf.Len()))
		b.ReportMetric(float64(r.Stats().Following), "edges")
	}
}

// BenchmarkMemoryPerEdgeNode is BenchmarkMemoryPerEdge on a node's worth of
// Stores: the same graph spread over 16 shards by Of, each follow applied
// on the actor's Store and its reverse side on the target's, as the
// replication layer does, all naming users through one node table. The
// difference with BenchmarkMemoryPerEdge is what a node pays for holding
// many shards.
func BenchmarkMemoryPerEdgeNode(b *testing.B) {
	g := memGraph(b)
	const shards = 16
	for b.Loop() {
		before := heapAlloc()
		cfg := DefaultConfig()
		cfg.Users = NewUsers() // one table for the node, as followd has
		stores := make([]*Store, shards)
		for i := range stores {
			stores[i], _ = New(cfg)
		}
		edges := loadGraphSharded(b, stores, g)
		after := heapAlloc()
		b.ReportMetric(float64(after-before)/float64(edges), "bytes/edge")
		b.ReportMetric(float64(edges), "edges")
		reportBlocks(b, stores, edges)
		runtime.KeepAlive(stores)
	}
}

// loadGraphSharded loads g into stores as a node hosting every shard
// would: each user's lists on the Store of its shard.
func loadGraphSharded(tb testing.TB, stores []*Store, g *graphgen.Graph) int64 {
	tb.Helper()
	ids := make([]string, g.Config().Users)
	home := make([]*Store, len(ids))
	for i := range ids {
		ids[i] = graphgen.UserID(i)
		home[i] = stores[Of(ids[i], len(stores))]
	}
	var buf []int
	var targets []string
	now := int64(1_700_000_000_000)
	for u := range ids {
		buf = g.Following(u, buf)
		for len(buf) > 0 {
			k := min(len(buf), 20)
			targets = targets[:0]
			for _, v := range buf[:k] {
				targets = append(targets, ids[v])
			}
			now++
			res, err := home[u].Follow(ids[u], targets, now)
			if err != nil {
				tb.Fatal(err)
			}
			for i, r := range res {
				if r.Changed {
					if _, err := home[buf[i]].AddFollower(r.UserID, ids[u], r.Time); err != nil {
						tb.Fatal(err)
					}
				}
			}
			buf = buf[k:]
		}
	}
	var edges int64
	for _, s := range stores {
		edges += s.Stats().Following
	}
	return edges
}

// reportBlocks splits the entry blocks' memory per edge: entries proper,
// the rounding of lists up to their class's capacity (which includes the
// second index of large lists), and slots not in use (free, or never used
// yet at the end of each class's last chunk).
func reportBlocks(b *testing.B, stores []*Store, edges int64) {
	var chunk, capa, entries, large int64
	for _, s := range stores {
		chunk += s.balloc.bytes()
		capa += s.balloc.inUse * (4 + timeBytes)
		st := s.Stats()
		entries += (st.Following + st.Followers + st.Mutual) * (4 + timeBytes)
		s.eachRec(func(r *userRec) bool {
			for k := range numKinds {
				if r.sets[k].large() {
					large += int64(r.sets[k].n)
				}
			}
			return true
		})
	}
	e := float64(edges)
	b.ReportMetric(float64(entries)/e, "entry-bytes/edge")
	b.ReportMetric(float64(capa-entries)/e, "rounding-bytes/edge")
	b.ReportMetric(float64(chunk-capa)/e, "unused-slot-bytes/edge")
	b.ReportMetric(float64(large)/float64(2*edges), "large-share")
}

// BenchmarkRestoreNode is a node's start from snapshots: the 16 Stores of
// a node (memGraph spread by Of) rebuilt from their snapshots into one
// fresh user table, two at a time as on this 2-core machine.
func BenchmarkRestoreNode(b *testing.B) {
	g := memGraph(b)
	cfg := DefaultConfig()
	cfg.Users = NewUsers()
	stores := make([]*Store, 16)
	for i := range stores {
		stores[i], _ = New(cfg)
	}
	edges := loadGraphSharded(b, stores, g)
	snaps := make([][]byte, len(stores))
	for i, s := range stores {
		v := s.View()
		var buf bytes.Buffer
		if _, err := v.WriteTo(&buf); err != nil {
			b.Fatal(err)
		}
		v.Release()
		snaps[i] = buf.Bytes()
		s.Close()
	}
	stores = nil
	for b.Loop() {
		cfg.Users = NewUsers()
		next := make(chan []byte, len(snaps))
		for _, sn := range snaps {
			next <- sn
		}
		close(next)
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				for sn := range next {
					if _, err := ReadFrom(bytes.NewReader(sn), cfg); err != nil {
						b.Error(err)
					}
				}
			})
		}
		wg.Wait()
	}
	b.ReportMetric(float64(edges), "edges")
}
