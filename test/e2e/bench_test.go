package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
)

// BenchmarkOverNetwork measures each operation against the followd binary
// over loopback TCP: 8 goroutines share one client (pipelined on its
// connections), each doing one request at a time. It reports p50 and p99
// latency per operation, a first figure before the followbench harness.
func BenchmarkOverNetwork(b *testing.B) {
	dir := b.TempDir()
	p := startB(b, dir)
	c, err := client.New(context.Background(), client.Config{Addrs: []string{p.addr}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	// A small graph: 2,000 users following 20 each, one celebrity.
	for u := range 2000 {
		targets := []string{"celebrity"}
		for k := range 19 {
			targets = append(targets, fmt.Sprintf("u%d", (u*7+k*13+1)%2000))
		}
		if _, err := c.Follow(ctx, fmt.Sprintf("u%d", u), targets); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(time.Second) // let the reverse sides land
	ops := map[string]func(i int) error{
		"follow": func(i int) error {
			_, err := c.Follow(ctx, fmt.Sprintf("u%d", i%2000), []string{fmt.Sprintf("n%d", i)})
			return err
		},
		"unfollow": func(i int) error {
			_, err := c.Unfollow(ctx, fmt.Sprintf("u%d", i%2000), []string{fmt.Sprintf("n%d", i)})
			return err
		},
		"check": func(i int) error {
			_, err := c.Check(ctx, fmt.Sprintf("u%d", i%2000), "celebrity", fmt.Sprintf("u%d", i%1999))
			return err
		},
		"info": func(i int) error {
			_, err := c.Info(ctx, fmt.Sprintf("u%d", i%2000))
			return err
		},
		"followers-page100": func(i int) error {
			_, err := c.Followers(ctx, "celebrity", client.Limit(100))
			return err
		},
		"following-page": func(i int) error {
			_, err := c.Following(ctx, fmt.Sprintf("u%d", i%2000))
			return err
		},
	}
	for _, name := range []string{"follow", "unfollow", "check", "info", "followers-page100", "following-page"} {
		op := ops[name]
		b.Run(name, func(b *testing.B) {
			const workers = 8
			lat := make([][]time.Duration, workers)
			var next sync.Mutex
			n := 0
			var wg sync.WaitGroup
			start := time.Now()
			for w := range workers {
				wg.Go(func() {
					for {
						next.Lock()
						i := n
						n++
						next.Unlock()
						if i >= b.N {
							return
						}
						t0 := time.Now()
						if err := op(i); err != nil {
							b.Error(err)
							return
						}
						lat[w] = append(lat[w], time.Since(t0))
					}
				})
			}
			wg.Wait()
			all := slices.Concat(lat...)
			slices.Sort(all)
			if len(all) > 0 {
				b.ReportMetric(float64(len(all))/time.Since(start).Seconds(), "ops/s")
				b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
			}
		})
	}
}
