package client_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/cluster/clustertest"
)

// loadExportGraph makes user i follow the next 1 + i%40 users and returns
// the edges as "actor>target" with their times, as the lists give them.
func loadExportGraph(t *testing.T, c *client.Client, users int) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	want := map[string]int64{}
	for i := range users {
		actor := fmt.Sprintf("user%d", i)
		var targets []string
		for j := range 1 + i%40 {
			targets = append(targets, fmt.Sprintf("user%d", (i+j+1)%users))
		}
		for len(targets) > 0 {
			k := min(len(targets), 20)
			if _, err := c.Follow(ctx, actor, targets[:k]); err != nil {
				t.Fatal(err)
			}
			targets = targets[k:]
		}
	}
	for i := range users {
		actor := fmt.Sprintf("user%d", i)
		p, err := c.Following(ctx, actor, client.Limit(500))
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range p.Items {
			want[actor+">"+it.UserID] = it.FollowTime
		}
	}
	return want
}

// exportAll exports every shard and returns the edges; during the first
// page of each shard it calls during (if set).
func exportAll(t *testing.T, c *client.Client, shards int, during func(shard int)) (map[string]int64, error) {
	t.Helper()
	got := map[string]int64{}
	for s := range shards {
		first := true
		err := c.ExportShard(context.Background(), s, func(p client.ExportPage, edges []client.ExportEdge) error {
			if first && during != nil {
				during(s)
			}
			first = false
			for _, e := range edges {
				k := string(e.Actor) + ">" + string(e.Target)
				if _, dup := got[k]; dup {
					t.Errorf("edge %s exported twice", k)
				}
				got[k] = e.FollowTime
			}
			return nil
		})
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

func TestExportShard(t *testing.T) {
	n := clustertest.Start(t, clustertest.Options{})
	// A small frame: many pages per shard.
	c := newClient(t, n.Addr, func(cfg *client.Config) { cfg.MaxFrame = 4096 })
	want := loadExportGraph(t, c, 300)
	got, err := exportAll(t, c, 4, func(s int) {
		// Writes to the shard after its view do not show in its export:
		// a new actor, and an unfollow.
		for i := 0; ; i++ {
			if actor := fmt.Sprintf("late%d", i); c.ShardOf(actor) == s {
				if _, err := c.Follow(context.Background(), actor, []string{"user1"}); err != nil {
					t.Fatal(err)
				}
				break
			}
		}
		for i := 0; ; i++ {
			if actor := fmt.Sprintf("user%d", i); c.ShardOf(actor) == s {
				if _, err := c.Unfollow(context.Background(), actor, []string{fmt.Sprintf("user%d", i+1)}); err != nil {
					t.Fatal(err)
				}
				break
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("exported %d edges, want %d", len(got), len(want))
	}
	for k, ft := range want {
		if got[k] != ft {
			t.Fatalf("edge %s: time %d, want %d", k, got[k], ft)
		}
	}
	if s := n.Node.ExportSessions(); s > 4 {
		t.Fatalf("%d sessions left", s)
	}
}

// TestExportSessionLost: a session that expires after pages were handed
// out fails the export with ErrExportExpired, rather than mixing two
// points in time.
func TestExportSessionLost(t *testing.T) {
	n := clustertest.Start(t, clustertest.Options{Shards: 1, Cluster: func(cfg *cluster.Config) {
		cfg.Export.IdleTimeout = 50 * time.Millisecond
	}})
	c := newClient(t, n.Addr, func(cfg *client.Config) { cfg.MaxFrame = 2048 })
	loadExportGraph(t, c, 100)
	pages := 0
	err := c.ExportShard(context.Background(), 0, func(client.ExportPage, []client.ExportEdge) error {
		pages++
		time.Sleep(200 * time.Millisecond) // past the idle timeout
		return nil
	})
	if !errors.Is(err, client.ErrExportExpired) || pages != 1 {
		t.Fatalf("after %d pages: %v", pages, err)
	}
	// The callback's error ends the export as is.
	stop := errors.New("stop")
	if err := c.ExportShard(context.Background(), 0, func(client.ExportPage, []client.ExportEdge) error { return stop }); err != stop {
		t.Fatalf("callback error: %v", err)
	}
	if _, err := exportAll(t, c, 1, nil); err != nil {
		t.Fatal(err)
	}
}
