package httpapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/followgraph/followgraph/cluster/clustertest"
	"github.com/followgraph/followgraph/httpapi"
)

// In a 3-node cluster, one node's API answers for every user: the router
// forwards what the node does not lead (writes, lists, info, check, set
// queries), as for the binary port.
func TestCluster(t *testing.T) {
	c := clustertest.NewCluster(t, 3, 4, nil)
	c.WaitLeaders(30 * time.Second)
	// The node that leads the fewest shards, so that most requests are
	// forwarded.
	led := map[string]int{}
	for _, id := range c.Leaders() {
		led[id]++
	}
	m := slices.MinFunc(c.Nodes, func(x, y *clustertest.Member) int { return led[x.ID] - led[y.ID] })
	if led[m.ID] == 4 {
		t.Fatalf("%s leads every shard: nothing to forward", m.ID)
	}
	cfg := httpapi.DefaultConfig()
	cfg.Forwards = true
	api, err := httpapi.New(cfg, m.Router)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, url: serveH1(t, api), hc: &http.Client{Timeout: 30 * time.Second}}
	const fans = 24
	var ids []string
	for i := range fans {
		id := fmt.Sprintf("c%02d", i)
		ids = append(ids, id)
		if res := s.write("/v1/follow", id, "star", "moon"); res[0].Code != 0 || res[1].Code != 0 {
			t.Fatalf("follow by %s: %+v", id, res)
		}
	}
	if got := s.list("followers", "star", 5, ""); len(got) != fans {
		t.Fatalf("followers of star: %d, want %d", len(got), fans)
	}
	var info results
	s.do("POST", "/v1/info", mustJSON(map[string]any{"users": append([]string{"star"}, ids...)})).decode(t, &info)
	if info.Results[0].Followers != fans || info.Results[1].Following != 2 {
		t.Fatalf("info: %+v", info.Results[:2])
	}
	var cs results
	s.do("POST", "/v1/check", mustJSON(map[string]any{"actor": "star", "targets": ids})).decode(t, &cs)
	for _, r := range cs.Results {
		if r.FollowType != 1 {
			t.Fatalf("check star %s: %+v", r.UserID, r)
		}
	}
	var common struct {
		Items []struct{ UserID string }
		Total uint64
	}
	s.do("GET", "/v1/users/c00/common-following?other=c01", "").decode(t, &common)
	if common.Total != 2 || len(common.Items) != 2 {
		t.Fatalf("common following of c00 and c01: %+v", common)
	}
}
