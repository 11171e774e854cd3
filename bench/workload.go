package bench

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/followgraph/followgraph/internal/graphgen"
)

// Operations of a workload.
const (
	OpFollow    = "follow"
	OpUnfollow  = "unfollow"
	OpCheck     = "check"
	OpInfo      = "info"
	OpFollowers = "followers"
	OpFollowing = "following"
	OpMutual    = "mutual"
	OpDeepPage  = "deep-page" // paging deep into a celebrity's followers
)

// AllOps lists the operations in report order.
var AllOps = []string{OpFollow, OpUnfollow, OpCheck, OpInfo, OpFollowers, OpFollowing, OpMutual, OpDeepPage}

// Mix is an operation mix: op -> weight.
type Mix map[string]float64

// String renders a mix as op=weight,... (the --mix syntax).
func (m Mix) String() string {
	var parts []string
	for _, op := range AllOps {
		if w := m[op]; w > 0 {
			parts = append(parts, fmt.Sprintf("%s=%g", op, w))
		}
	}
	return strings.Join(parts, ",")
}

// ParseMix reads op=weight,op=weight.
func ParseMix(s string) (Mix, error) {
	m := Mix{}
	for _, part := range strings.Split(s, ",") {
		op, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		var v float64
		if _, err := fmt.Sscan(w, &v); !ok || err != nil || v < 0 || !slices.Contains(AllOps, op) {
			return nil, fmt.Errorf("mix %q: want op=weight,... with ops %s", s, strings.Join(AllOps, ", "))
		}
		m[op] = v
	}
	return m, nil
}

// Preset is a named workload.
type Preset struct {
	Name     string
	Help     string
	Mix      Mix
	Graph    graphgen.Config
	Duration time.Duration
	Warmup   time.Duration
	Clients  int
}

// Presets are the named workloads.
var Presets = map[string]Preset{
	"smoke": {
		Name: "smoke", Help: "a few seconds on a tiny graph, every operation: for CI and a first try",
		Mix:      Mix{OpFollow: 10, OpUnfollow: 5, OpCheck: 20, OpInfo: 15, OpFollowers: 20, OpFollowing: 15, OpMutual: 10, OpDeepPage: 5},
		Graph:    graph(2_000, 10, 0.9, 1, 0.05),
		Duration: 3 * time.Second, Warmup: 500 * time.Millisecond, Clients: 16,
	},
	"default": {
		Name: "default", Help: "a social app's mix on 200k users / ~3.2M edges: 15% writes, reads spread over every list",
		Mix:      Mix{OpFollow: 10, OpUnfollow: 5, OpCheck: 25, OpInfo: 20, OpFollowers: 20, OpFollowing: 10, OpMutual: 5, OpDeepPage: 5},
		Graph:    graph(200_000, 16, 0.9, 0, 0),
		Duration: 30 * time.Second, Warmup: 5 * time.Second, Clients: 64,
	},
	"read-heavy": {
		Name: "read-heavy", Help: "TAO-like: 99.8% reads (list pages 41%, checks 31%, counts 12%...), 0.2% writes",
		Mix:      Mix{OpFollow: 0.15, OpUnfollow: 0.05, OpFollowers: 35, OpFollowing: 6, OpCheck: 31, OpInfo: 12, OpMutual: 3, OpDeepPage: 2.8},
		Graph:    graph(200_000, 16, 0.9, 0, 0),
		Duration: 30 * time.Second, Warmup: 5 * time.Second, Clients: 64,
	},
	"write-heavy": {
		Name: "write-heavy", Help: "70% follows and unfollows, the rest checks and counts",
		Mix:      Mix{OpFollow: 50, OpUnfollow: 20, OpCheck: 15, OpInfo: 15},
		Graph:    graph(200_000, 16, 0.9, 0, 0),
		Duration: 30 * time.Second, Warmup: 5 * time.Second, Clients: 64,
	},
	"celebrity": {
		Name: "celebrity", Help: "a few celebrities hold a large share of all follows; deep paging through their followers",
		Mix:      Mix{OpFollow: 10, OpCheck: 20, OpInfo: 10, OpFollowers: 25, OpDeepPage: 35},
		Graph:    graph(200_000, 16, 0.9, 5, 0.3),
		Duration: 30 * time.Second, Warmup: 5 * time.Second, Clients: 64,
	},
}

func graph(users int, mean, zipf float64, celebs int, share float64) graphgen.Config {
	c := graphgen.DefaultConfig()
	c.Users, c.MeanFollowing, c.ZipfS, c.Celebrities, c.CelebrityShare = users, mean, zipf, celebs, share
	return c
}

// PresetNames lists the presets, sorted.
func PresetNames() []string {
	var names []string
	for n := range Presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// picker draws operations by weight.
type picker struct {
	ops []string
	cum []float64
}

func newPicker(m Mix) (*picker, error) {
	p := &picker{}
	total := 0.0
	for _, op := range AllOps {
		if w := m[op]; w > 0 {
			total += w
			p.ops = append(p.ops, op)
			p.cum = append(p.cum, total)
		}
	}
	if total == 0 {
		return nil, fmt.Errorf("empty operation mix")
	}
	for i := range p.cum {
		p.cum[i] /= total
	}
	return p, nil
}

func (p *picker) pick(rng *rand.Rand) string {
	x := rng.Float64()
	i := sort.SearchFloat64s(p.cum, x)
	if i >= len(p.ops) {
		i = len(p.ops) - 1
	}
	return p.ops[i]
}

// opGen turns operation names into concrete requests on the graph: actors
// are drawn uniformly, followees and list owners by popularity, so that
// reads hit popular users as they do on real platforms.
type opGen struct {
	g      *graphgen.Graph
	users  int
	celebs []string // the most followed users
	buf    []int
}

func newOpGen(g *graphgen.Graph) *opGen {
	o := &opGen{g: g, users: g.Config().Users}
	for r := range min(10, o.users) {
		o.celebs = append(o.celebs, graphgen.UserID(g.ByRank(r)))
	}
	return o
}

func (o *opGen) user(rng *rand.Rand) string    { return graphgen.UserID(rng.IntN(o.users)) }
func (o *opGen) popular(rng *rand.Rand) string { return graphgen.UserID(o.g.Followee(rng)) }

// followee of u: one of the users u follows in the generated graph (so
// that unfollows and checks mostly hit real edges).
func (o *opGen) followee(rng *rand.Rand, u int) string {
	v, ok, buf := o.g.RandomFollowee(u, rng, o.buf)
	o.buf = buf
	if !ok {
		return o.user(rng)
	}
	return graphgen.UserID(v)
}
