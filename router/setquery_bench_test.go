package router_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/cluster/clustertest"
	"github.com/followgraph/followgraph/wire"
)

// celebGraph is the benchmark graph of known followers: one celebrity
// with Followers followers, and Viewers viewers who each follow Following
// users, drawn at random from the followers and as many users who do not
// follow the celebrity.
type celebGraph struct {
	Followers, Viewers, Following int
}

// benchCelebGraph is 1M followers and 200 viewers following 5,000 each;
// FOLLOWGRAPH_CELEB_FOLLOWERS sets another follower count, and -short
// uses 50k.
func benchCelebGraph(b *testing.B) celebGraph {
	g := celebGraph{Followers: 1_000_000, Viewers: 200, Following: 5000}
	if testing.Short() {
		g.Followers = 50_000
	}
	if v := os.Getenv("FOLLOWGRAPH_CELEB_FOLLOWERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("FOLLOWGRAPH_CELEB_FOLLOWERS=%q: %v", v, err)
		}
		g.Followers = n
	}
	return g
}

func fan(i int) string    { return fmt.Sprintf("fan%07d", i) }
func viewer(i int) string { return fmt.Sprintf("viewer%04d", i) }

// load imports the graph through c, 10,000 edges a request, 4 requests in
// flight, then waits for the celebrity's followers list to be complete.
func (g celebGraph) load(b *testing.B, c *client.Client) {
	ctx := context.Background()
	batches := make(chan []client.ImportCommand)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for cmds := range batches {
				if res, err := c.Import(ctx, cmds); err != nil || len(res.Failures) > 0 {
					b.Errorf("import: %v %+v", err, res.Failures)
				}
			}
		})
	}
	const t0 = 1_700_000_000_000
	var cmds []client.ImportCommand
	for i := range g.Followers {
		cmds = append(cmds, client.ImportCommand{Actor: fan(i), Targets: []string{"celebrity"}, Times: []int64{t0 + int64(i)}})
		if len(cmds) == 10_000 {
			batches <- cmds
			cmds = nil
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for v := range g.Viewers {
		cmd := client.ImportCommand{Actor: viewer(v)}
		seen := map[int]bool{}
		for len(cmd.Targets) < g.Following {
			k := rng.IntN(2 * g.Followers)
			if seen[k] {
				continue
			}
			seen[k] = true
			target := fan(k) // k >= Followers: a user who does not follow the celebrity
			cmd.Targets, cmd.Times = append(cmd.Targets, target), append(cmd.Times, t0+int64(len(cmd.Targets)))
		}
		batches <- []client.ImportCommand{cmd}
	}
	if len(cmds) > 0 {
		batches <- cmds
	}
	close(batches)
	wg.Wait()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		is, err := c.Info(ctx, "celebrity")
		if err == nil && is[0].Followers == uint64(g.Followers) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("celebrity's followers after the import: %+v %v", is, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// settle waits for the snapshots the import made due to be written (a
// snapshot of the celebrity's shard takes a core for a while), then
// collects garbage: the figures are of queries on a quiet node.
func settle(b *testing.B, n *clustertest.Node) {
	cfg := cluster.DefaultConfig().Raft
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		due := false
		for _, r := range n.Node.Status().Replicas {
			c := r.Snapshots
			due = due || float64(c.LogBytes) >= max(float64(cfg.SnapshotMinLogBytes), cfg.SnapshotLogRatio*float64(c.SnapshotBytes))
		}
		if !due {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // the last snapshot's persist
	runtime.GC()
}

// BenchmarkKnownFollowersCelebrity: the first page (100) of the known
// followers of a celebrity with 1M followers, for viewers who follow
// 5,000 users each (about half of them the celebrity's followers), on a
// single node of 16 shards, one request at a time, viewers in turn:
// "client" through the Go client over loopback TCP, "router" the node's
// own work (the router called in-process). Each reports the latency's p50
// and p99 (ms) over its iterations.
func BenchmarkKnownFollowersCelebrity(b *testing.B) {
	g := benchCelebGraph(b)
	n := clustertest.Start(b, clustertest.Options{Shards: 16})
	c, err := client.New(context.Background(), client.Config{Addrs: []string{n.Addr}, RequestTimeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	began := time.Now()
	g.load(b, c)
	b.Logf("loaded %d followers and %d viewers x %d in %v", g.Followers, g.Viewers, g.Following, time.Since(began).Round(time.Millisecond))
	settle(b, n)
	ctx := context.Background()
	b.Run("client", func(b *testing.B) {
		measure(b, g.Viewers, func(v string) (wire.SetPage, error) { return c.KnownFollowers(ctx, v, "celebrity") })
	})
	b.Run("router", func(b *testing.B) {
		measure(b, g.Viewers, func(v string) (wire.SetPage, error) {
			return n.Router.KnownFollowers(ctx, wire.KnownFollowersRequest{Viewer: v, User: "celebrity"})
		})
	})
}

// measure runs query for the viewers in turn and reports the latency's
// p50 and p99 and the mean size of the sets.
func measure(b *testing.B, viewers int, query func(viewer string) (wire.SetPage, error)) {
	var lat []time.Duration
	total, i := uint64(0), 0
	for b.Loop() {
		t := time.Now()
		p, err := query(viewer(i % viewers))
		lat = append(lat, time.Since(t))
		if err != nil || len(p.Items) != 100 {
			b.Fatalf("known followers: %d items, %v", len(p.Items), err)
		}
		total += p.Total
		i++
	}
	reportLatency(b, lat)
	b.ReportMetric(float64(total)/float64(len(lat)), "known/op")
}

func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))]) / 1e6 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}

// BenchmarkCommonFollowing: a page of the users two viewers who follow
// 5,000 each both follow, on the same graph (smaller: 50k followers).
func BenchmarkCommonFollowing(b *testing.B) {
	g := celebGraph{Followers: 50_000, Viewers: 20, Following: 5000}
	n := clustertest.Start(b, clustertest.Options{Shards: 16})
	c, err := client.New(context.Background(), client.Config{Addrs: []string{n.Addr}, RequestTimeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	g.load(b, c)
	settle(b, n)
	ctx := context.Background()
	var lat []time.Duration
	i := 0
	b.ResetTimer()
	for b.Loop() {
		t := time.Now()
		_, err := c.CommonFollowing(ctx, viewer(i%g.Viewers), viewer((i+1)%g.Viewers))
		lat = append(lat, time.Since(t))
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportLatency(b, lat)
}
