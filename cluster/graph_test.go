package cluster

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/followgraph/followgraph/shard"
)

// lists is one user's three lists, as read from the user's shard.
type lists [3][]shard.Item // following, followers, mutual

// dumpGraph reads every list of every user of the node.
func dumpGraph(t testing.TB, n *Node) map[string]*lists {
	t.Helper()
	g := map[string]*lists{}
	for i := range n.Shards() {
		err := n.Replica(i).Read(func(s *shard.Store) error {
			var users []string
			s.EachUser(func(id string) bool { users = append(users, id); return true })
			for _, u := range users {
				l := &lists{}
				for k := shard.Following; k <= shard.Mutual; k++ {
					cursor := ""
					for {
						items, next, err := s.List(k, u, cursor, 500)
						if err != nil {
							return err
						}
						l[k-1] = append(l[k-1], items...)
						if next == "" {
							break
						}
						cursor = next
					}
				}
				fi, fe, mu, _ := s.Counts(u)
				if fi != len(l[0]) || fe != len(l[1]) || mu != len(l[2]) {
					return fmt.Errorf("counts of %s (%d %d %d) differ from the lists (%d %d %d)", u, fi, fe, mu, len(l[0]), len(l[1]), len(l[2]))
				}
				g[u] = l
			}
			return s.CheckInvariants()
		})
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
	}
	return g
}

// checkGraph verifies the graph's invariant over the whole graph: B is
// in following(A) exactly when A is in followers(B), with the same
// followTime, and mutual(A) = following(A) ∩ followers(A).
func checkGraph(t testing.TB, g map[string]*lists) {
	t.Helper()
	get := func(u string, k int) map[string]int64 {
		m := map[string]int64{}
		if l := g[u]; l != nil {
			for _, it := range l[k] {
				m[it.UserID] = it.FollowTime
			}
		}
		return m
	}
	for _, a := range slices.Sorted(maps.Keys(g)) {
		fwd, rev, mut := get(a, 0), get(a, 1), get(a, 2)
		for b, t1 := range fwd {
			if t2, ok := get(b, 1)[a]; !ok || t1 != t2 {
				t.Fatalf("%s follows %s at %d, but followers(%s) has %d,%v", a, b, t1, b, t2, ok)
			}
		}
		for b, t1 := range rev {
			if t2, ok := get(b, 0)[a]; !ok || t1 != t2 {
				t.Fatalf("followers(%s) has %s at %d, but following(%s) has %d,%v", a, b, t1, b, t2, ok)
			}
		}
		want := map[string]int64{}
		for b, t1 := range fwd {
			if t2, ok := rev[b]; ok {
				want[b] = max(t1, t2)
			}
		}
		if !maps.Equal(want, mut) {
			t.Fatalf("mutual(%s) = %v, want %v", a, mut, want)
		}
	}
}

// edges returns the follow edges of g, without times.
func edges(g map[string]*lists) map[[2]string]bool {
	e := map[[2]string]bool{}
	for a, l := range g {
		for _, it := range l[0] {
			e[[2]string{a, it.UserID}] = true
		}
	}
	return e
}
