package graphgen

import (
	"slices"
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
