package cluster

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// BenchmarkGroupCommit drives one shard (raft log on disk, fsync on) with
// 1, 16 and 256 concurrent writers, each sending one follow at a time, and
// reports throughput, p50 and p99 commit latency, and commands per log
// entry. One writer shows the cost of a lone write (about one fsync);
// more writers show how group commit scales.
func BenchmarkGroupCommit(b *testing.B) {
	for _, writers := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			n := openBenchNode(b, 1)
			r := n.Replica(0)
			startIndex := r.raft.LastIndex()
			if driveWriters(b, n, writers) {
				entries := r.raft.LastIndex() - startIndex
				b.ReportMetric(float64(b.N)/float64(max(entries, 1)), "ops/entry")
			}
		})
	}
}

// BenchmarkGroupCommitShards drives all 16 shards of one node (raft log on
// disk, fsync on) with 16, 64 and 256 concurrent writers in total, each
// sending one follow at a time for a random actor (so a random shard),
// and reports throughput, p50/p99 latency and the appends per fdatasync
// of the node's raft log (group commit across shards). The targets live
// on other shards, so the relay's deliveries and acks go through the log
// too, as in production. FG_BENCH_WAL_SYNC_DEPTH, if set, replaces
// Config.RaftLog.SyncDepth (to compare depths).
func BenchmarkGroupCommitShards(b *testing.B) {
	for _, writers := range []int{16, 64, 256} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			n := openBenchNode(b, 16)
			before := n.RaftLogStats()
			if driveWriters(b, n, writers) {
				if after := n.RaftLogStats(); after.Syncs > before.Syncs {
					b.ReportMetric(float64(after.Requests-before.Requests)/float64(after.Syncs-before.Syncs), "appends/sync")
				}
			}
		})
	}
}

// openBenchNode opens a single node of shards shards with the default
// configuration, closed when the benchmark ends.
func openBenchNode(b *testing.B, shards int) *Node {
	cfg := DefaultConfig()
	cfg.DataDir = b.TempDir()
	cfg.Shards = shards
	cfg.Logger = hclog.NewNullLogger()
	if d := os.Getenv("FG_BENCH_WAL_SYNC_DEPTH"); d != "" {
		cfg.RaftLog.SyncDepth, _ = strconv.Atoi(d)
	}
	n, err := Open(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	return n
}

// driveWriters runs b.N follows from writers concurrent writers, one at a
// time each, and reports throughput and p50/p99 latency. It returns false
// if nothing completed.
func driveWriters(b *testing.B, n *Node, writers int) bool {
	ctx := context.Background()
	var next atomic.Int64
	lat := make([][]time.Duration, writers)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				t0 := time.Now()
				if _, err := n.Follow(ctx, fmt.Sprintf("w%d-%d", w, i), []string{fmt.Sprintf("t%d", i)}, WriteOptions{}); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return false
	}
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	return true
}
