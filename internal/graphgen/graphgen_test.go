package graphgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

func small() Config {
	c := DefaultConfig()
	c.Users = 20000
	return c
}

func TestReproducible(t *testing.T) {
	g1, _ := New(small())
	g2, _ := New(small())
	var a, b [][2]int
	g1.Edges(func(x, y int) bool { a = append(a, [2]int{x, y}); return true })
	g2.Edges(func(x, y int) bool { b = append(b, [2]int{x, y}); return true })
	if !slices.Equal(a, b) {
		t.Fatal("same seed, different graphs")
	}
	c := small()
	c.Seed = 2
	g3, _ := New(c)
	var d [][2]int
	g3.Edges(func(x, y int) bool { d = append(d, [2]int{x, y}); return true })
	if slices.Equal(a, d) {
		t.Fatal("different seeds, same graph")
	}
}

func TestShape(t *testing.T) {
	cfg := small()
	g, _ := New(cfg)
	in := make([]int, cfg.Users)
	edges := 0
	seen := map[[2]int]bool{}
	g.Edges(func(x, y int) bool {
		if x == y {
			t.Fatalf("self edge %d", x)
		}
		if seen[[2]int{x, y}] {
			t.Fatalf("duplicate edge %d->%d", x, y)
		}
		seen[[2]int{x, y}] = true
		in[y]++
		edges++
		return true
	})
	mean := float64(edges) / float64(cfg.Users)
	if mean < cfg.MeanFollowing*0.9 || mean > cfg.MeanFollowing*1.1 {
		t.Fatalf("mean out-degree %.2f, want about %v", mean, cfg.MeanFollowing)
	}
	// Power law: the most popular user has far more followers than the
	// median user, and popularity falls with rank.
	top, med := in[g.ByRank(0)], in[g.ByRank(cfg.Users/2)]
	if top < 50*max(med, 1) {
		t.Fatalf("top user has %d followers, median %d: not skewed", top, med)
	}
	if in[g.ByRank(0)] < in[g.ByRank(100)] || in[g.ByRank(100)] < in[g.ByRank(10000)] {
		t.Fatalf("popularity does not fall with rank: %d %d %d", in[g.ByRank(0)], in[g.ByRank(100)], in[g.ByRank(10000)])
	}
}

func TestCelebrityKnob(t *testing.T) {
	cfg := small()
	cfg.ZipfS = 0
	cfg.Celebrities = 3
	cfg.CelebrityShare = 0.5
	g, _ := New(cfg)
	in := map[int]int{}
	edges := 0
	g.Edges(func(x, y int) bool { in[y]++; edges++; return true })
	// Each follower follows a celebrity at most once, so with half of all
	// follows aimed at three celebrities, most users follow all three.
	for r := range 3 {
		if n := in[g.ByRank(r)]; n < cfg.Users/2 {
			t.Fatalf("celebrity %d has %d followers of %d users (%d edges)", r, n, cfg.Users, edges)
		}
	}
	if n := in[g.ByRank(3)]; n > cfg.Users/20 {
		t.Fatalf("the first non-celebrity has %d followers", n)
	}
}

// rankAt finds what a binary search of the whole cdf finds, for random
// draws, for the cdf's own values and for the guide's bucket boundaries.
func TestRankAtMatchesFullSearch(t *testing.T) {
	for _, users := range []int{2, 3, 7, 1000, 20000} {
		cfg := small()
		cfg.Users = users
		g, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		want := func(x float64) int { return min(sort.SearchFloat64s(g.cdf, x), len(g.cdf)-1) }
		xs := []float64{0, math.Nextafter(1, 0), 1}
		for _, c := range g.cdf {
			xs = append(xs, c, math.Nextafter(c, 0), math.Nextafter(c, 2))
		}
		for i := range len(g.guide) + 1 {
			b := float64(i) / float64(len(g.guide))
			xs = append(xs, b, math.Nextafter(b, 0), math.Nextafter(b, 2))
		}
		rng := rand.New(rand.NewPCG(1, uint64(users)))
		for range 100000 {
			xs = append(xs, rng.Float64())
		}
		for _, x := range xs {
			if x < 0 || x >= 1 {
				continue
			}
			if got, w := g.rankAt(x), want(x); got != w {
				t.Fatalf("users %d: rankAt(%v) = %d, full search %d", users, x, got, w)
			}
		}
	}
}

// referenceFollowing is the plain definition of Following for a graph
// without celebrities: out-degree d, then up to 20*d draws, each a full
// binary search of the cdf, skipping self and repeats.
func referenceFollowing(g *Graph, u int) []int {
	rng := rand.New(rand.NewPCG(g.cfg.Seed^0x5851f42d4c957f2d, uint64(u)))
	d := g.OutDegree(rng)
	var out []int
	seen := map[int]bool{}
	for attempts := 0; len(out) < d && attempts < 20*d; attempts++ {
		v := int(g.user[min(sort.SearchFloat64s(g.cdf, rng.Float64()), len(g.cdf)-1)])
		if v == u || seen[v] {
			continue
		}
		seen[v] = true
		out = append(out, v)
	}
	return out
}

// Following (with its short-list scan and guided search) and
// RandomFollowee agree with the reference definition.
func TestFollowingMatchesReference(t *testing.T) {
	cfg := small()
	cfg.Users = 3000
	cfg.MeanFollowing = 40 // lists both shorter and longer than 32
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	var buf []int
	for u := range cfg.Users {
		want := referenceFollowing(g, u)
		if got := g.Following(u, nil); !slices.Equal(got, want) {
			t.Fatalf("Following(%d) = %v, want %v", u, got, want)
		}
		hits, draws := map[int]int{}, 8*len(want)
		if len(want) <= 4 {
			draws = 64 // each followee is then missed with odds below 1e-7
		}
		for range draws {
			var v int
			var ok bool
			v, ok, buf = g.RandomFollowee(u, rng, buf)
			if !ok || !slices.Contains(want, v) {
				t.Fatalf("RandomFollowee(%d) = %d, %v; follows %v", u, v, ok, want)
			}
			hits[v]++
		}
		if len(want) <= 4 && len(hits) != len(want) {
			t.Fatalf("RandomFollowee(%d) over %d draws hit %v of %v", u, draws, hits, want)
		}
	}
}
