package tencent_test

import (
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/followgraph/followgraph/cluster/clustertest"
	"github.com/followgraph/followgraph/httpapi/tencent"
)

// In a cluster, one node's endpoints answer for every user: the router
// forwards what the node does not lead, the lists and counts come from
// every shard, and follow_get pages across the followers' shards.
func TestCluster(t *testing.T) {
	c := clustertest.NewCluster(t, 3, 4, nil)
	c.WaitLeaders(30 * time.Second)
	// Serve from the node that leads the fewest shards, so that most
	// requests are forwarded.
	led := map[string]int{}
	for _, id := range c.Leaders() {
		led[id]++
	}
	m := slices.MinFunc(c.Nodes, func(x, y *clustertest.Member) int { return led[x.ID] - led[y.ID] })
	if led[m.ID] == 4 {
		t.Fatalf("%s leads every shard: nothing to forward", m.ID)
	}
	srv := httptest.NewServer(tencent.New(tencent.DefaultConfig(), m.Router))
	t.Cleanup(srv.Close)
	a := &api{t: t, url: srv.URL}
	const fans = 30
	var ids []string
	for i := range fans {
		id := fmt.Sprintf("c%02d", i)
		ids = append(ids, fmt.Sprintf("%q", id))
		expect(t, "follow_add "+id, a.post(tencent.PathAdd, `{"From_Account":"`+id+`","FollowItem":[{"To_Account":"star"}]}`),
			`{"ResultItem": [{"To_Account": "star","ResultCode": 0,"ResultInfo": ""}],"ActionStatus": "OK","ErrorCode": 0,"ErrorInfo": "","ErrorDisplay": ""}`)
	}
	a.eventually(tencent.PathGetInfo+query, `{"From_Account":"star","To_Account":["star"]}`,
		fmt.Sprintf(`{"FollowInfo": [{"To_Account": "star","ResultCode": 0,"ResultInfo": "","FollowerCount": %d,"FollowingCount": 0,"MutualFollowingCount": 0}],"ActionStatus": "OK","ErrorCode": 0,"ErrorInfo": "","ErrorDisplay": ""}`, fans))
	seen := map[string]bool{}
	for cursor := ""; ; {
		r := decodeGet(t, a.post(tencent.PathGet, fmt.Sprintf(`{"From_Account":"star","FollowType":1,"StartCursor":%q,"WantNum":7}`, cursor)))
		for _, it := range r.FollowItem {
			seen[it.ToAccount] = true
		}
		if cursor = r.NextCursor; cursor == "" {
			break
		}
	}
	if len(seen) != fans {
		t.Fatalf("follow_get paged %d fans, want %d", len(seen), fans)
	}
	got := a.post(tencent.PathCheck, `{"From_Account":"star","To_Account":[`+strings.Join(ids, ",")+`]}`)
	if n := strings.Count(got, `"FollowType": 1}`); n != fans {
		t.Fatalf("follow_check: %d of %d are fans: %.300s", n, fans, got)
	}
}
