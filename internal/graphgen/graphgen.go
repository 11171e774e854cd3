// Package graphgen generates reproducible follow graphs with the shape of a
// real social platform: most users follow a few dozen others, and followee
// popularity follows a Zipf-like power law, so a few users have huge
// follower lists. The benchmarks of shard/ and the followbench harness both
// use it, so that their figures describe the same graphs.
package graphgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
)

// Config describes a graph.
type Config struct {
	// Users is the number of users, named by UserID(0..Users-1).
	Users int
	// MeanFollowing is the mean out-degree. Out-degrees are drawn from a
	// geometric distribution with this mean, capped at MaxFollowing.
	MeanFollowing float64
	// MaxFollowing caps any user's out-degree (the product's 5,000).
	MaxFollowing int
	// ZipfS is the popularity exponent: the user of popularity rank r is
	// chosen as a followee with probability proportional to r^-ZipfS.
	// About 1 gives a Twitter-like skew; 0 gives uniform choice.
	ZipfS float64
	// Celebrities and CelebrityShare are the celebrity knob: a share of
	// all follows goes uniformly to the Celebrities most popular users,
	// on top of the Zipf choice.
	Celebrities    int
	CelebrityShare float64
	// Seed makes the graph reproducible.
	Seed uint64
}

// DefaultConfig is the reference graph that memory and throughput figures
// are sized by: 1M users following 20 others on average, about 20M edges.
func DefaultConfig() Config {
	return Config{Users: 1_000_000, MeanFollowing: 20, MaxFollowing: 5000, ZipfS: 0.9, Seed: 1}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Users < 2:
		return fmt.Errorf("graphgen: Users (%d) must be at least 2", c.Users)
	case c.MeanFollowing <= 0:
		return fmt.Errorf("graphgen: MeanFollowing (%v) must be positive", c.MeanFollowing)
	case c.MaxFollowing < 1:
		return fmt.Errorf("graphgen: MaxFollowing (%d) must be at least 1", c.MaxFollowing)
	case c.ZipfS < 0:
		return fmt.Errorf("graphgen: ZipfS (%v) must not be negative", c.ZipfS)
	case c.Celebrities < 0 || c.Celebrities > c.Users:
		return fmt.Errorf("graphgen: Celebrities (%d) must be between 0 and Users", c.Celebrities)
	case c.CelebrityShare < 0 || c.CelebrityShare > 1:
		return fmt.Errorf("graphgen: CelebrityShare (%v) must be between 0 and 1", c.CelebrityShare)
	}
	return nil
}

// UserID names user i.
func UserID(i int) string { return "u" + strconv.Itoa(i) }

// Graph is a generated graph. Its edges are produced on demand, always in
// the same order for the same Config.
type Graph struct {
	cfg   Config
	cdf   []float64 // cumulative popularity by rank
	guide []int32   // guide[i]: the first rank whose cdf reaches i/len(guide)
	user  []int32   // rank -> user
	rank  []int32   // user -> rank
}

// New prepares a graph.
func New(cfg Config) (*Graph, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Graph{cfg: cfg, cdf: make([]float64, cfg.Users), user: make([]int32, cfg.Users), rank: make([]int32, cfg.Users)}
	sum := 0.0
	for r := range cfg.Users {
		sum += math.Pow(float64(r+1), -cfg.ZipfS)
		g.cdf[r] = sum
	}
	for r := range g.cdf {
		g.cdf[r] /= sum
	}
	g.guide = make([]int32, min(cfg.Users, 1<<20))
	r := 0
	for i := range g.guide {
		for r < len(g.cdf)-1 && g.cdf[r] < float64(i)/float64(len(g.guide)) {
			r++
		}
		g.guide[i] = int32(r)
	}
	// Popularity is independent of the user's number.
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15))
	for i := range g.user {
		g.user[i] = int32(i)
	}
	rng.Shuffle(len(g.user), func(i, j int) { g.user[i], g.user[j] = g.user[j], g.user[i] })
	for r, u := range g.user {
		g.rank[u] = int32(r)
	}
	return g, nil
}

// Config returns the graph's configuration.
func (g *Graph) Config() Config { return g.cfg }

// ByRank returns the user of popularity rank r (0 is the most followed).
func (g *Graph) ByRank(r int) int { return int(g.user[r]) }

// Rank returns user u's popularity rank.
func (g *Graph) Rank(u int) int { return int(g.rank[u]) }

// Followee draws one followee from the popularity distribution.
func (g *Graph) Followee(rng *rand.Rand) int {
	if g.cfg.Celebrities > 0 && rng.Float64() < g.cfg.CelebrityShare {
		return int(g.user[rng.IntN(g.cfg.Celebrities)])
	}
	return int(g.user[g.rankAt(rng.Float64())])
}

// rankAt is the first rank whose cdf reaches x (the last rank if none
// does), as sort.SearchFloat64s finds it, but searching only between two
// neighbouring guide entries: the draw of a followee is the load
// generator's hottest step.
func (g *Graph) rankAt(x float64) int {
	n := len(g.guide)
	i := min(int(x*float64(n)), n-1)
	lo, hi := int(g.guide[i]), len(g.cdf)-1
	if i+1 < n {
		hi = int(g.guide[i+1])
	}
	if lo > 0 && g.cdf[lo-1] >= x {
		lo = 0 // x*n rounded up across a bucket boundary
	}
	// The first r in [lo, hi] with cdf[r] >= x; hi if none.
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if g.cdf[m] < x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// OutDegree draws an out-degree.
func (g *Graph) OutDegree(rng *rand.Rand) int {
	// Geometric with mean m: floor(ln(U)/ln(1-p)) with p = 1/(m+1); every
	// user follows at least one other.
	p := 1 / (g.cfg.MeanFollowing + 1)
	d := int(math.Log(1-rng.Float64()) / math.Log(1-p))
	return max(1, min(d, g.cfg.MaxFollowing, g.cfg.Users-1))
}

// Following returns the followees of user u, in generation order. It
// depends only on the Config and u, so users can be generated in any
// order or in parallel.
func (g *Graph) Following(u int, dst []int) []int {
	rng := g.userRand(u)
	d := g.OutDegree(rng)
	return g.followees(u, rng, d, d, dst[:0])
}

// RandomFollowee returns one of the users u follows, chosen with rng, as
// a uniform pick from Following(u) would, generating only the followees
// up to the one picked. ok is false if u follows nobody.
func (g *Graph) RandomFollowee(u int, rng *rand.Rand, buf []int) (v int, ok bool, _ []int) {
	own := g.userRand(u)
	d := g.OutDegree(own)
	buf = g.followees(u, own, d, rng.IntN(d)+1, buf[:0])
	if len(buf) == 0 {
		return 0, false, buf
	}
	return buf[len(buf)-1], true, buf
}

func (g *Graph) userRand(u int) *rand.Rand {
	return rand.New(rand.NewPCG(g.cfg.Seed^0x5851f42d4c957f2d, uint64(u)))
}

// followees appends the first n of the d followees of u to dst, drawn
// from rng (u's own generator, just past its out-degree), skipping u
// itself and repeats, in at most 20*d draws: the first n of Following(u)
// whatever n is.
func (g *Graph) followees(u int, rng *rand.Rand, d, n int, dst []int) []int {
	var seen map[int]struct{} // only for long lists; short ones are scanned
	if n > 32 {
		seen = make(map[int]struct{}, n)
	}
	for attempts := 0; len(dst) < n && attempts < 20*d; attempts++ {
		v := g.Followee(rng)
		if v == u {
			continue
		}
		if seen != nil {
			if _, dup := seen[v]; dup {
				continue
			}
			seen[v] = struct{}{}
		} else if slices.Contains(dst, v) {
			continue
		}
		dst = append(dst, v)
	}
	return dst
}

// Edges calls fn for every edge, user by user, until fn returns false.
func (g *Graph) Edges(fn func(follower, followee int) bool) {
	var buf []int
	for u := range g.cfg.Users {
		buf = g.Following(u, buf)
		for _, v := range buf {
			if !fn(u, v) {
				return
			}
		}
	}
}
