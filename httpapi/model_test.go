package httpapi_test

import (
	"fmt"
	"slices"
	"sort"
	"testing"

	"pgregory.net/rapid"
)

// Random follows and unfollows over HTTP, against a model (a set of
// edges): the lists (paged with random page sizes), the counts and the
// checks the API returns are the model's.
func TestMatchesModel(t *testing.T) {
	s := startAPI(t, nil, nil)
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		// Each run has its own users on the one node.
		users := make([]string, 5)
		for i := range users {
			users[i] = fmt.Sprintf("r%d-u%d", run, i)
		}
		edges := map[[2]string]bool{}
		user := rapid.SampledFrom(users)
		for range rapid.IntRange(1, 25).Draw(rt, "steps") {
			actor := user.Draw(rt, "actor")
			targets := rapid.SliceOfN(user, 1, 4).Draw(rt, "targets")
			follow := rapid.Bool().Draw(rt, "follow")
			path := "/v1/unfollow"
			if follow {
				path = "/v1/follow"
			}
			res := s.write(path, actor, targets...)
			for i, tg := range targets {
				if tg == actor {
					if res[i].Code == 0 {
						rt.Fatalf("self %s accepted", path)
					}
					continue
				}
				if res[i].Code != 0 {
					rt.Fatalf("%s %s %s: %+v", path, actor, tg, res[i])
				}
				edges[[2]string{actor, tg}] = follow
			}
		}
		check := func(kind, u string, want []string) {
			got := s.list(kind, u, rapid.IntRange(1, 3).Draw(rt, "limit"), "")
			sort.Strings(got)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				rt.Fatalf("%s of %s: %v, want %v", kind, u, got, want)
			}
		}
		for _, u := range users {
			var following, followers, mutual []string
			for _, v := range users {
				out, in := edges[[2]string{u, v}], edges[[2]string{v, u}]
				if out {
					following = append(following, v)
				}
				if in {
					followers = append(followers, v)
				}
				if out && in {
					mutual = append(mutual, v)
				}
			}
			check("following", u, following)
			check("followers", u, followers)
			check("mutual", u, mutual)
			var info results
			s.do("POST", "/v1/info", mustJSON(map[string]any{"users": []string{u}})).decode(rt, &info)
			if in := info.Results[0]; in.Following != uint64(len(following)) || in.Followers != uint64(len(followers)) || in.Mutual != uint64(len(mutual)) {
				rt.Fatalf("info of %s: %+v", u, in)
			}
			var cs results
			s.do("POST", "/v1/check", mustJSON(map[string]any{"actor": u, "targets": users})).decode(rt, &cs)
			for i, v := range users {
				want := uint8(0)
				if edges[[2]string{v, u}] && u != v {
					want |= 1
				}
				if edges[[2]string{u, v}] && u != v {
					want |= 2
				}
				if cs.Results[i].FollowType != want {
					rt.Fatalf("check %s %s: %d, want %d", u, v, cs.Results[i].FollowType, want)
				}
			}
		}
	})
}
