package tencent_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/cluster/clustertest"
	"github.com/followgraph/followgraph/httpapi/tencent"
	"github.com/followgraph/followgraph/wire"
)

// api is the endpoints over a real single node.
type api struct {
	t    *testing.T
	url  string
	node *clustertest.Node
}

func newAPI(t *testing.T, o clustertest.Options, cfg tencent.Config) *api {
	t.Helper()
	n := clustertest.Start(t, o)
	srv := httptest.NewServer(tencent.New(cfg, n.Router))
	t.Cleanup(srv.Close)
	return &api{t: t, url: srv.URL, node: n}
}

// query is Tencent's sample URL parameters.
const query = "?sdkappid=88888888&identifier=admin&usersig=xxx&random=99999999&contenttype=json"

// post sends body to path with the sample query and returns the answer,
// which must be a 200 with a JSON content type.
func (a *api) post(path, body string) string {
	a.t.Helper()
	return a.do(http.MethodPost, path+query, body)
}

func (a *api) do(method, pathQuery, body string) string {
	a.t.Helper()
	req, err := http.NewRequest(method, a.url+pathQuery, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		a.t.Fatalf("%s %s: status %d, content type %q; want 200, JSON", method, pathQuery, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return string(b)
}

// eventually retries the request until it answers want (a target's side of a
// follow lands on its shard shortly after the answer), for up to 5 s.
func (a *api) eventually(pathQuery, body, want string) {
	a.t.Helper()
	var got string
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if got = a.do(http.MethodPost, pathQuery, body); got == want {
			return
		}
	}
	a.t.Fatalf("%s %s:\n got %s\nwant %s", pathQuery, body, got, want)
}

func expect(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s:\n got %s\nwant %s", what, got, want)
	}
}

// Tencent's sample requests and responses, byte for byte, in the order
// that makes our data give the samples' answers: check before the
// follow (no relation), follow 002 and 003, the counts after it, then
// unfollow.
func TestTencentSamples(t *testing.T) {
	a := newAPI(t, clustertest.Options{}, tencent.DefaultConfig())
	expect(t, "follow_check", a.post(tencent.PathCheck, `{"From_Account": "UserID_001","To_Account": ["UserID_002","UserID_003"]}`),
		`{"ResultItem": [{"To_Account": "UserID_002","ResultCode": 0,"ResultInfo": "","FollowType": 0},{"To_Account": "UserID_003","ResultCode": 0,"ResultInfo": "","FollowType": 0}],"ActionStatus": "OK","ErrorCode": 0,"ErrorInfo": "","ErrorDisplay": ""}`)
	expect(t, "follow_add", a.post(tencent.PathAdd, `{"From_Account":"UserID_001","FollowItem":[{"To_Account":"UserID_002"},{"To_Account":"UserID_003"}]}`),
		`{"ResultItem": [{"To_Account": "UserID_002","ResultCode": 0,"ResultInfo": ""},{"To_Account": "UserID_003","ResultCode": 0,"ResultInfo": ""}],"ActionStatus": "OK","ErrorCode": 0,"ErrorInfo": "","ErrorDisplay": ""}`)
	a.eventually(tencent.PathGetInfo+query, `{"From_Account":"UserID_001","To_Account":["UserID_001", "UserID_002", "UserID_003"]}`,
		`{"FollowInfo": [{"To_Account": "UserID_001","ResultCode": 0,"ResultInfo": "","FollowerCount": 0,"FollowingCount": 2,"MutualFollowingCount": 0},{"To_Account": "UserID_002","ResultCode": 0,"ResultInfo": "","FollowerCount": 1,"FollowingCount": 0,"MutualFollowingCount": 0},{"To_Account": "UserID_003","ResultCode": 0,"ResultInfo": "","FollowerCount": 1,"FollowingCount": 0,"MutualFollowingCount": 0}],"ActionStatus": "OK","ErrorCode": 0,"ErrorInfo": "","ErrorDisplay": ""}`)

	// follow_get's sample request, trailing comma included: UserID_001
	// has no fans.
	expect(t, "follow_get fans", a.post(tencent.PathGet, `{"From_Account":"UserID_001","FollowType":1,"StartCursor":"","WantNum":100,}`),
		`{"FollowItem": [],"NextCursor": "","ActionStatus": "OK","ErrorCode": 0,"ErrorInfo": "","ErrorDisplay": ""}`)
	// Its following list is the sample's (without profiles); both follows
	// have one followTime, so the order is by user ID, as in the sample.
	secs := followTimes(t, a.node, wire.OpFollowing, "UserID_001")
	expect(t, "follow_get following", a.post(tencent.PathGet, `{"From_Account":"UserID_001","FollowType":2,"StartCursor":"","WantNum":100,}`),
		fmt.Sprintf(`{"FollowItem": [{"To_Account": "UserID_002","FollowTime": %d,"ProfileItem": []},{"To_Account": "UserID_003","FollowTime": %d,"ProfileItem": []}],"NextCursor": "","ActionStatus": "OK","ErrorCode": 0,"ErrorInfo": "","ErrorDisplay": ""}`, secs[0], secs[1]))
	if secs[0] != secs[1] || secs[0] < time.Now().Add(-time.Minute).Unix() || secs[0] > time.Now().Unix() {
		t.Fatalf("FollowTimes %v: want one time in seconds, within the last minute", secs)
	}

	expect(t, "follow_delete", a.post(tencent.PathDelete, `{"From_Account":"UserID_001","To_Account":["UserID_002", "UserID_003"]}`),
		`{"ResultItem": [{"To_Account": "UserID_002","ResultCode": 0,"ResultInfo": ""},{"To_Account": "UserID_003","ResultCode": 0,"ResultInfo": ""}],"ActionStatus": "OK","ErrorCode": 0,"ErrorInfo": "","ErrorDisplay": ""}`)
	expect(t, "follow_check after delete", a.post(tencent.PathCheck, `{"From_Account": "UserID_001","To_Account": ["UserID_002","UserID_003"]}`),
		`{"ResultItem": [{"To_Account": "UserID_002","ResultCode": 0,"ResultInfo": "","FollowType": 0},{"To_Account": "UserID_003","ResultCode": 0,"ResultInfo": "","FollowType": 0}],"ActionStatus": "OK","ErrorCode": 0,"ErrorInfo": "","ErrorDisplay": ""}`)
}

// followTimes reads a list from the router itself, in seconds.
func followTimes(t *testing.T, n *clustertest.Node, op wire.Op, user string) []int64 {
	t.Helper()
	var secs []int64
	_, err := n.Router.List(context.Background(), op, wire.ListRequest{User: user, Limit: 500}, func(_ []byte, ms int64) { secs = append(secs, ms/1000) })
	if err != nil {
		t.Fatal(err)
	}
	return secs
}

// FollowType of follow_check in each direction, with the REST numbering:
// 1 To follows From, 2 From follows To, 3 both.
func TestCheckFollowTypes(t *testing.T) {
	a := newAPI(t, clustertest.Options{Shards: 1}, tencent.DefaultConfig())
	a.post(tencent.PathAdd, `{"From_Account":"a","FollowItem":[{"To_Account":"b"},{"To_Account":"c"}]}`)
	a.post(tencent.PathAdd, `{"From_Account":"c","FollowItem":[{"To_Account":"a"}]}`)
	a.post(tencent.PathAdd, `{"From_Account":"d","FollowItem":[{"To_Account":"a"}]}`)
	expect(t, "check", a.post(tencent.PathCheck, `{"From_Account":"a","To_Account":["b","c","d","e","a"]}`),
		`{"ResultItem": [{"To_Account": "b","ResultCode": 0,"ResultInfo": "","FollowType": 2},{"To_Account": "c","ResultCode": 0,"ResultInfo": "","FollowType": 3},{"To_Account": "d","ResultCode": 0,"ResultInfo": "","FollowType": 1},{"To_Account": "e","ResultCode": 0,"ResultInfo": "","FollowType": 0},{"To_Account": "a","ResultCode": 0,"ResultInfo": "","FollowType": 0}],"ActionStatus": "OK","ErrorCode": 0,"ErrorInfo": "","ErrorDisplay": ""}`)
	expect(t, "mutual", a.post(tencent.PathGet, `{"From_Account":"a","FollowType":3}`)[:len(`{"FollowItem": [{"To_Account": "c",`)], `{"FollowItem": [{"To_Account": "c",`)
}

// Per-item codes: a failed item changes nothing and the others apply.
func TestPerItemCodes(t *testing.T) {
	a := newAPI(t, clustertest.Options{Shards: 1, Cluster: func(c *cluster.Config) { c.Store.MaxFollowing = 2 }}, tencent.DefaultConfig())
	long := strings.Repeat("x", 65)
	expect(t, "add", a.post(tencent.PathAdd, `{"From_Account":"u","FollowItem":[{"To_Account":"u"},{"To_Account":"`+long+`"},{"To_Account":"bad\u0001"},{"To_Account":"v"},{"To_Account":"v"},{"To_Account":"w"},{"To_Account":"x"},{}]}`),
		`{"ResultItem": [{"To_Account": "u","ResultCode": 30001,"ResultInfo": "cannot follow or unfollow yourself"},{"To_Account": "`+long+`","ResultCode": 30001,"ResultInfo": "invalid user ID: 65 bytes, at most 64"},{"To_Account": "bad\u0001","ResultCode": 30001,"ResultInfo": "invalid user ID"},{"To_Account": "v","ResultCode": 0,"ResultInfo": ""},{"To_Account": "v","ResultCode": 0,"ResultInfo": ""},{"To_Account": "w","ResultCode": 0,"ResultInfo": ""},{"To_Account": "x","ResultCode": 32100,"ResultInfo": "following limit reached"},{"To_Account": "","ResultCode": 30001,"ResultInfo": "invalid user ID"}],"ActionStatus": "OK","ErrorCode": 0,"ErrorInfo": "","ErrorDisplay": ""}`)
	expect(t, "info", a.post(tencent.PathGetInfo, `{"From_Account":"u","To_Account":["u","`+long+`"]}`),
		`{"FollowInfo": [{"To_Account": "u","ResultCode": 0,"ResultInfo": "","FollowerCount": 0,"FollowingCount": 2,"MutualFollowingCount": 0},{"To_Account": "`+long+`","ResultCode": 30001,"ResultInfo": "invalid user ID","FollowerCount": 0,"FollowingCount": 0,"MutualFollowingCount": 0}],"ActionStatus": "OK","ErrorCode": 0,"ErrorInfo": "","ErrorDisplay": ""}`)
	expect(t, "check", a.post(tencent.PathCheck, `{"From_Account":"u","To_Account":["v","`+long+`"]}`),
		`{"ResultItem": [{"To_Account": "v","ResultCode": 0,"ResultInfo": "","FollowType": 2},{"To_Account": "`+long+`","ResultCode": 30001,"ResultInfo": "invalid user ID","FollowType": 0}],"ActionStatus": "OK","ErrorCode": 0,"ErrorInfo": "","ErrorDisplay": ""}`)
	expect(t, "delete", a.post(tencent.PathDelete, `{"From_Account":"u","To_Account":["v","nobody","u"]}`),
		`{"ResultItem": [{"To_Account": "v","ResultCode": 0,"ResultInfo": ""},{"To_Account": "nobody","ResultCode": 0,"ResultInfo": ""},{"To_Account": "u","ResultCode": 30001,"ResultInfo": "cannot follow or unfollow yourself"}],"ActionStatus": "OK","ErrorCode": 0,"ErrorInfo": "","ErrorDisplay": ""}`)
}
