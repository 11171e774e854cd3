package bench

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/followgraph/followgraph/cluster/clustertest"
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/httpapi"
	"github.com/followgraph/followgraph/internal/tokens"
)

// The http:// target against a real node's JSON API: every operation
// followbench runs, with a named token.
func TestHTTPTarget(t *testing.T) {
	n := clustertest.Start(t, clustertest.Options{})
	st, err := tokens.NewStore([]tokens.Token{tokens.New("bench", tokens.RoleWrite, "b-secret")})
	if err != nil {
		t.Fatal(err)
	}
	cfg := httpapi.DefaultConfig()
	cfg.Tokens = st
	api, err := httpapi.New(cfg, n.Router)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(api)
	defer ts.Close()
	ctx := context.Background()
	if _, err := Open(ctx, ts.URL, TargetOptions{}); codes.Of(err) != codes.AuthFailed {
		t.Fatalf("without the token: %v", err)
	}
	tg, err := Open(ctx, ts.URL+"?token=b-secret&token_name=bench", TargetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if info, err := tg.Info(ctx); err != nil || info.Kind != "followd-http" {
		t.Fatalf("info: %+v %v", info, err)
	}
	var users []string
	for i := range 150 {
		users = append(users, fmt.Sprintf("u%d", i))
	}
	batch := []FollowBatch{{Actor: "a", Targets: users[:20]}, {Actor: "b", Targets: []string{"a"}}}
	if err := tg.Load(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := tg.Quiesce(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tg.Follow(ctx, "a", []string{"b"}); err != nil {
		t.Fatal(err)
	}
	if err := tg.Unfollow(ctx, "a", []string{"u0"}); err != nil {
		t.Fatal(err)
	}
	if err := tg.Follow(ctx, "a", []string{"a"}); codes.Of(err) != codes.InvalidParam {
		t.Fatalf("self-follow: %v", err)
	}
	if ft, err := tg.Check(ctx, "a", []string{"b", "u1", "zz"}); err != nil || fmt.Sprint(ft) != "[3 2 0]" {
		t.Fatalf("check: %v %v", ft, err)
	}
	// More than 100 users: split into requests of 100.
	cs, err := tg.Counts(ctx, append([]string{"a"}, users...))
	if err != nil || len(cs) != 151 || cs[0].Following != 20 || cs[0].Followers != 1 || cs[0].Mutual != 1 || cs[2].Followers != 1 {
		t.Fatalf("counts: %v %v", cs[:3], err)
	}
	var got []string
	cursor := ""
	for {
		p, err := tg.List(ctx, Following, "a", cursor, 7)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range p.Items {
			got = append(got, it.User)
		}
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	if len(got) != 20 || !strings.Contains(strings.Join(got, ","), "b") {
		t.Fatalf("following of a: %v", got)
	}
	if _, err := Open(ctx, "http://127.0.0.1:1", TargetOptions{}); err == nil {
		t.Fatal("opened a target with nothing listening")
	}
}
