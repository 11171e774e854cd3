package router_test

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/cluster/clustertest"
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/wire"
	"pgregory.net/rapid"
)

// graphModel is the follow graph as plain maps: fwd[a][b] is the time a
// followed b.
type graphModel map[string]map[string]int64

func (m graphModel) follows(a, b string) (int64, bool) {
	t, ok := m[a][b]
	return t, ok
}

// sortItems puts items in list order: followTime descending, then ID.
func sortItems(items []wire.Item) []wire.Item {
	slices.SortFunc(items, func(x, y wire.Item) int {
		return cmp.Or(cmp.Compare(y.FollowTime, x.FollowTime), cmp.Compare(x.UserID, y.UserID))
	})
	return items
}

// knownFollowers: followers of x whom v follows, with the time each
// followed x.
func (m graphModel) knownFollowers(v, x string) []wire.Item {
	var out []wire.Item
	for f := range m[v] {
		if t, ok := m.follows(f, x); ok {
			out = append(out, wire.Item{UserID: f, FollowTime: t})
		}
	}
	return sortItems(out)
}

// commonFollowing: users both a and b follow, with the time a followed
// each.
func (m graphModel) commonFollowing(a, b string) []wire.Item {
	var out []wire.Item
	for f, t := range m[a] {
		if _, ok := m.follows(b, f); ok {
			out = append(out, wire.Item{UserID: f, FollowTime: t})
		}
	}
	return sortItems(out)
}

func (m graphModel) relation(from, to string) uint8 {
	var ft uint8
	if _, ok := m.follows(from, to); ok && from != to {
		ft |= 2
	}
	if _, ok := m.follows(to, from); ok && from != to {
		ft |= 1
	}
	return ft
}

// pageAll reads a set query to its end with pages of random sizes,
// checking that every page reports the same total.
func pageAll(t *rapid.T, what string, fetch func(cursor string, limit int) (wire.SetPage, error)) ([]wire.Item, uint64) {
	var items []wire.Item
	cursor, total := "", uint64(0)
	for i := 0; ; i++ {
		p, err := fetch(cursor, rapid.IntRange(1, 4).Draw(t, "limit"))
		if err != nil {
			t.Fatalf("%s, page %d: %v", what, i, err)
		}
		if i > 0 && p.Total != total {
			t.Fatalf("%s: total %d on page %d, %d before", what, p.Total, i, total)
		}
		total = p.Total
		items = append(items, p.Items...)
		if p.NextCursor == "" {
			return items, total
		}
		if len(p.Items) == 0 || i > 100 {
			t.Fatalf("%s: page %d has %d items and a next cursor", what, i, len(p.Items))
		}
		cursor = p.NextCursor
	}
}

// setQuerier asks the set queries: a Router (wire.Handler), or the Go
// client through the protocol.
type setQuerier interface {
	KnownFollowers(ctx context.Context, req wire.KnownFollowersRequest) (wire.SetPage, error)
	CommonFollowing(ctx context.Context, req wire.CommonFollowingRequest) (wire.SetPage, error)
	Relationships(ctx context.Context, req wire.RelationshipsRequest) ([]wire.Relationship, error)
}

type clientQuerier struct{ c *client.Client }

func (q clientQuerier) KnownFollowers(ctx context.Context, req wire.KnownFollowersRequest) (wire.SetPage, error) {
	return q.c.KnownFollowers(ctx, req.Viewer, req.User, client.Cursor(req.Cursor), client.Limit(req.Limit), client.ReadConsistency(req.Consistency))
}

func (q clientQuerier) CommonFollowing(ctx context.Context, req wire.CommonFollowingRequest) (wire.SetPage, error) {
	return q.c.CommonFollowing(ctx, req.A, req.B, client.Cursor(req.Cursor), client.Limit(req.Limit), client.ReadConsistency(req.Consistency))
}

func (q clientQuerier) Relationships(ctx context.Context, req wire.RelationshipsRequest) ([]wire.Relationship, error) {
	return q.c.RelationshipsAt(ctx, req.Consistency, req.Pairs...)
}

// checkSetQueries builds random graphs through c (imports with chosen
// times, so the model knows them, and unfollows), then reads the three
// set queries and compares them with the model's answers. Each check
// uses users of its own.
func checkSetQueries(rt *testing.T, c *client.Client, queriers []setQuerier, consistencies []wire.Consistency) {
	ctx := context.Background()
	run, found := 0, 0
	rapid.Check(rt, func(t *rapid.T) {
		run++
		users := make([]string, 6)
		for i := range users {
			users[i] = fmt.Sprintf("r%d-u%d", run, i)
		}
		m := graphModel{}
		user := rapid.SampledFrom(users)
		for round := range rapid.IntRange(1, 3).Draw(t, "rounds") {
			importEdges(t, ctx, c, m, users)
			unfollowEdges(t, ctx, c, m, users)
			cons := rapid.SampledFrom(consistencies).Draw(t, "consistency")
			q := queriers[rapid.IntRange(0, len(queriers)-1).Draw(t, "querier")]
			for range 2 {
				a, b := user.Draw(t, "a"), user.Draw(t, "b")
				what := fmt.Sprintf("round %d, known followers of %s for %s", round, b, a)
				got, total := pageAll(t, what, func(cur string, lim int) (wire.SetPage, error) {
					return q.KnownFollowers(ctx, wire.KnownFollowersRequest{Viewer: a, User: b, Cursor: cur, Limit: lim, Consistency: cons})
				})
				if want := m.knownFollowers(a, b); !slices.Equal(got, want) || total != uint64(len(want)) {
					t.Fatalf("%s: %v (total %d), want %v", what, got, total, want)
				}
				found += len(got)
				what = fmt.Sprintf("round %d, common following of %s and %s", round, a, b)
				got, total = pageAll(t, what, func(cur string, lim int) (wire.SetPage, error) {
					return q.CommonFollowing(ctx, wire.CommonFollowingRequest{A: a, B: b, Cursor: cur, Limit: lim, Consistency: cons})
				})
				if want := m.commonFollowing(a, b); !slices.Equal(got, want) || total != uint64(len(want)) {
					t.Fatalf("%s: %v (total %d), want %v", what, got, total, want)
				}
				found += len(got)
			}
			checkRelationships(t, ctx, q, m, users, cons)
		}
	})
	// The graphs are small and dense: a run whose answers were all empty
	// tested nothing.
	if found == 0 {
		rt.Fatalf("%d checks and no set had a member", run)
	}
}

// importEdges imports a random batch of edges, with times from a small
// range so that ties (ordered by ID) are common.
func importEdges(t *rapid.T, ctx context.Context, c *client.Client, m graphModel, users []string) {
	byActor := map[string]*client.ImportCommand{}
	var cmds []client.ImportCommand
	for range rapid.IntRange(1, 12).Draw(t, "edges") {
		a, b := rapid.SampledFrom(users).Draw(t, "actor"), rapid.SampledFrom(users).Draw(t, "target")
		if _, ok := m.follows(a, b); ok || a == b || slices.Contains(cmdOf(byActor, a).Targets, b) {
			continue
		}
		ts := int64(1000 + rapid.IntRange(0, 3).Draw(t, "time"))
		cmd := cmdOf(byActor, a)
		cmd.Targets, cmd.Times = append(cmd.Targets, b), append(cmd.Times, ts)
	}
	for a, cmd := range byActor {
		if len(cmd.Targets) == 0 {
			continue
		}
		cmds = append(cmds, *cmd)
		for i, b := range cmd.Targets {
			if m[a] == nil {
				m[a] = map[string]int64{}
			}
			m[a][b] = cmd.Times[i]
		}
	}
	if len(cmds) == 0 {
		return
	}
	res, err := c.Import(ctx, cmds, client.Sync())
	if err != nil || len(res.Failures) > 0 {
		t.Fatalf("import: %+v %v", res, err)
	}
}

func cmdOf(byActor map[string]*client.ImportCommand, a string) *client.ImportCommand {
	if byActor[a] == nil {
		byActor[a] = &client.ImportCommand{Actor: a}
	}
	return byActor[a]
}

// unfollowEdges removes a few random edges.
func unfollowEdges(t *rapid.T, ctx context.Context, c *client.Client, m graphModel, users []string) {
	for range rapid.IntRange(0, 3).Draw(t, "unfollows") {
		a := rapid.SampledFrom(users).Draw(t, "unfollower")
		var targets []string
		for b := range m[a] {
			targets = append(targets, b)
		}
		if len(targets) == 0 {
			continue
		}
		slices.Sort(targets)
		b := rapid.SampledFrom(targets).Draw(t, "unfollowed")
		if _, err := c.Unfollow(ctx, a, []string{b}, client.Sync()); err != nil {
			t.Fatalf("unfollow %s %s: %v", a, b, err)
		}
		delete(m[a], b)
	}
}

// checkRelationships asks for random pairs, with an invalid one among
// them at times.
func checkRelationships(t *rapid.T, ctx context.Context, q setQuerier, m graphModel, users []string, cons wire.Consistency) {
	n := rapid.IntRange(1, 8).Draw(t, "pairs")
	pairs := make([]client.Pair, n)
	for i := range pairs {
		pairs[i] = client.Pair{From: rapid.SampledFrom(users).Draw(t, "from"), To: rapid.SampledFrom(users).Draw(t, "to")}
	}
	bad := rapid.IntRange(-1, n-1).Draw(t, "invalid pair")
	if bad >= 0 {
		pairs[bad].To = "bad\x01id"
	}
	rs, err := q.Relationships(ctx, wire.RelationshipsRequest{Pairs: pairs, Consistency: cons})
	if err != nil || len(rs) != n {
		t.Fatalf("relationships %v: %+v %v", pairs, rs, err)
	}
	for i, r := range rs {
		want := wire.Relationship{From: pairs[i].From, To: pairs[i].To, FollowType: m.relation(pairs[i].From, pairs[i].To)}
		if i == bad {
			want.Code, want.FollowType = codes.InvalidParam, 0
		}
		if r != want {
			t.Fatalf("relationship %d of %v: %+v, want %+v", i, pairs, r, want)
		}
	}
}

// withRapidChecks runs fewer rapid checks in a test whose checks are slow.
func withRapidChecks(t *testing.T, n int) {
	f := flag.Lookup("rapid.checks")
	old := f.Value.String()
	if v, _ := strconv.Atoi(old); v < n {
		return // asked for fewer on the command line
	}
	f.Value.Set(strconv.Itoa(n))
	t.Cleanup(func() { f.Value.Set(old) })
}

// On a single node of four shards, through the protocol: the set queries
// paged to the end equal the model's answers.
func TestSetQueriesMatchModel(t *testing.T) {
	n := clustertest.Start(t, clustertest.Options{Shards: 4})
	c, err := client.New(context.Background(), client.Config{Addrs: []string{n.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	withRapidChecks(t, 50)
	checkSetQueries(t, c, []setQuerier{clientQuerier{c}, n.Router}, []wire.Consistency{wire.Leader, wire.Linearizable, wire.Any})
}

// On a three-node cluster, the queries cross nodes: forwarded to the
// bounding user's leader, which probes the other shard's leader.
func TestSetQueriesMatchModelOnACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-node cluster")
	}
	cl := clustertest.NewCluster(t, 3, 6, nil)
	cl.WaitLeaders(30 * time.Second)
	c := cl.Client(cl.Nodes[0].Addr)
	withRapidChecks(t, 8)
	// Each node's router too: a query that reaches a node which does not
	// lead the bounding user's shard is forwarded.
	qs := []setQuerier{clientQuerier{c}}
	for _, m := range cl.Nodes {
		qs = append(qs, m.Router)
	}
	checkSetQueries(t, c, qs, []wire.Consistency{wire.Leader, wire.Linearizable})
}

// Requests over a limit fail whole, before any list is read.
func TestSetQueryLimits(t *testing.T) {
	n := clustertest.Start(t, clustertest.Options{Shards: 2})
	r := n.Router
	ctx := context.Background()
	for name, err := range map[string]error{
		"invalid viewer": second(r.KnownFollowers(ctx, wire.KnownFollowersRequest{Viewer: "", User: "x"})),
		"invalid user":   second(r.KnownFollowers(ctx, wire.KnownFollowersRequest{Viewer: "v", User: "a\xff"})),
		"limit 501":      second(r.CommonFollowing(ctx, wire.CommonFollowingRequest{A: "a", B: "b", Limit: 501})),
		"forged cursor":  second(r.CommonFollowing(ctx, wire.CommonFollowingRequest{A: "a", B: "b", Cursor: "AQUB"})),
		"no pairs":       second(r.Relationships(ctx, wire.RelationshipsRequest{})),
		"101 pairs":      second(r.Relationships(ctx, wire.RelationshipsRequest{Pairs: make([]wire.Pair, 101)})),
	} {
		if !errors.Is(err, codes.ErrInvalidParam) {
			t.Errorf("%s: %v, want 30001", name, err)
		}
	}
	// A cursor of one query is refused by the other, and for other users.
	if _, err := r.Write(ctx, wire.OpFollow, wire.WriteRequest{Actor: "a", Targets: []string{"x", "y"}, Sync: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write(ctx, wire.OpFollow, wire.WriteRequest{Actor: "b", Targets: []string{"x", "y"}, Sync: true}); err != nil {
		t.Fatal(err)
	}
	p, err := r.CommonFollowing(ctx, wire.CommonFollowingRequest{A: "a", B: "b", Limit: 1})
	if err != nil || p.Total != 2 || len(p.Items) != 1 || p.NextCursor == "" {
		t.Fatalf("common following of a and b: %+v %v", p, err)
	}
	for name, err := range map[string]error{
		"swapped users":   second(r.CommonFollowing(ctx, wire.CommonFollowingRequest{A: "b", B: "a", Cursor: p.NextCursor})),
		"known followers": second(r.KnownFollowers(ctx, wire.KnownFollowersRequest{Viewer: "a", User: "b", Cursor: p.NextCursor})),
		"a list":          second(r.List(ctx, wire.OpFollowing, wire.ListRequest{User: "a", Cursor: p.NextCursor}, func([]byte, int64) {})),
	} {
		if !errors.Is(err, codes.ErrInvalidParam) {
			t.Errorf("cursor used for %s: %v, want 30001", name, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }
