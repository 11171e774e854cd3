package tencent_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/followgraph/followgraph/cluster/clustertest"
	"github.com/followgraph/followgraph/httpapi/tencent"
	"pgregory.net/rapid"
)

// model is the follow graph as a set of (from, to) edges.
type model map[[2]string]bool

func (m model) followType(from, to string) int {
	t := 0
	if m[[2]string{to, from}] {
		t |= 1
	}
	if m[[2]string{from, to}] {
		t |= 2
	}
	return t
}

// list returns the model's list of u: 1 fans, 2 following, 3 mutual.
func (m model) list(u string, kind int, users []string) []string {
	var out []string
	for _, v := range users {
		if v != u && m.followType(u, v)&kind == kind {
			out = append(out, v)
		}
	}
	return out
}

func quoted(ids []string) string {
	q := make([]string, len(ids))
	for i, id := range ids {
		q[i] = fmt.Sprintf("%q", id)
	}
	return strings.Join(q, ",")
}

// The endpoints against a model of the graph: random follows and
// unfollows (self-follows included), then check, get_info and follow_get
// paged to the end agree with the model. One shard, so that both sides
// of a follow are applied when its answer comes.
func TestModel(t *testing.T) {
	a := newAPI(t, clustertest.Options{Shards: 1}, tencent.DefaultConfig())
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		users := make([]string, 5)
		for i := range users {
			users[i] = fmt.Sprintf("r%d_u%d", run, i)
		}
		m := model{}
		pick := rapid.SampledFrom(users)
		for range rapid.IntRange(1, 12).Draw(rt, "steps") {
			from := pick.Draw(rt, "from")
			to := rapid.SliceOfN(pick, 1, 4).Draw(rt, "to")
			if rapid.Bool().Draw(rt, "follow") {
				items := make([]string, len(to))
				for i, v := range to {
					items[i] = fmt.Sprintf(`{"To_Account":%q}`, v)
				}
				a.post(tencent.PathAdd, fmt.Sprintf(`{"From_Account":%q,"FollowItem":[%s]}`, from, strings.Join(items, ",")))
				for _, v := range to {
					if v != from {
						m[[2]string{from, v}] = true
					}
				}
			} else {
				a.post(tencent.PathDelete, fmt.Sprintf(`{"From_Account":%q,"To_Account":[%s]}`, from, quoted(to)))
				for _, v := range to {
					delete(m, [2]string{from, v})
				}
			}
			checkModel(rt, a, m, users, from, rapid.IntRange(1, 3).Draw(rt, "kind"), rapid.IntRange(0, 3).Draw(rt, "want"))
		}
	})
}

func checkModel(rt *rapid.T, a *api, m model, users []string, u string, kind, want int) {
	var check struct{ ResultItem []struct{ FollowType int } }
	decode(rt, a.post(tencent.PathCheck, fmt.Sprintf(`{"From_Account":%q,"To_Account":[%s]}`, u, quoted(users))), &check)
	for i, v := range users {
		if got, w := check.ResultItem[i].FollowType, m.followType(u, v); got != w {
			rt.Fatalf("check %s %s: FollowType %d, want %d", u, v, got, w)
		}
	}
	var info struct {
		FollowInfo []struct{ FollowerCount, FollowingCount, MutualFollowingCount int }
	}
	decode(rt, a.post(tencent.PathGetInfo, fmt.Sprintf(`{"From_Account":%q,"To_Account":[%s]}`, u, quoted(users))), &info)
	for i, v := range users {
		got := info.FollowInfo[i]
		if w := [3]int{len(m.list(v, 1, users)), len(m.list(v, 2, users)), len(m.list(v, 3, users))}; [3]int{got.FollowerCount, got.FollowingCount, got.MutualFollowingCount} != w {
			rt.Fatalf("get_info %s: %+v, want fans, following, mutual %v", v, got, w)
		}
	}
	var ids []string
	for cursor := ""; ; {
		var page struct {
			FollowItem []struct {
				ToAccount  string `json:"To_Account"`
				FollowTime int64
			}
			NextCursor string
		}
		decode(rt, a.post(tencent.PathGet, fmt.Sprintf(`{"From_Account":%q,"FollowType":%d,"StartCursor":%q,"WantNum":%d}`, u, kind, cursor, want)), &page)
		for i, it := range page.FollowItem {
			if i > 0 && it.FollowTime > page.FollowItem[i-1].FollowTime {
				rt.Fatalf("follow_get %s %d: not newest first", u, kind)
			}
			ids = append(ids, it.ToAccount)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	slices.Sort(ids)
	if w := m.list(u, kind, users); !slices.Equal(ids, w) {
		rt.Fatalf("follow_get %s FollowType %d: %v, want %v", u, kind, ids, w)
	}
}

func decode(rt *rapid.T, s string, v any) {
	if err := json.Unmarshal([]byte(s), v); err != nil || !strings.Contains(s, `"ActionStatus": "OK"`) {
		rt.Fatalf("%v: %.300s", err, s)
	}
}
