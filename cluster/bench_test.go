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
			cfg := DefaultConfig()
			cfg.DataDir = b.TempDir()
			cfg.Shards = 1
			cfg.Logger = hclog.NewNullLogger()
			ctx := context.Background()
			n, err := Open(ctx, cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer n.Close()
			s := n.Shard(0)
			startIndex := s.raft.LastIndex()
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
						_, err := n.Follow(ctx, fmt.Sprintf("w%d-%d", w, i), []string{fmt.Sprintf("t%d", i)}, WriteOptions{})
						if err != nil {
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
				return
			}
			entries := s.raft.LastIndex() - startIndex
			b.ReportMetric(float64(len(all))/elapsed.Seconds(), "ops/s")
			b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(len(all))/float64(max(entries, 1)), "ops/entry")
		})
	}
}

// BenchmarkGroupCommitShards drives all 16 shards of one node (raft logs
// on disk, fsync on) with 64 and 256 concurrent writers in total, each
// sending one follow at a time for a random actor (so a random shard),
// and reports throughput and p50/p99 latency for both raft log layouts:
// per-shard (a version 1 data directory: one wal.Log and one fdatasync
// stream per shard) and shared (one wal.Shared for the node, group
// fsync across shards). With log=shared it also reports the appends per
// fdatasync. The targets live on other shards, so the relay's deliveries
// and acks go through the logs too, as in production.
// FG_BENCH_WAL_SYNC_DEPTH, if set, replaces Config.WALSyncDepth (to compare
// depths).
func BenchmarkGroupCommitShards(b *testing.B) {
	const shards = 16
	for _, writers := range []int{16, 64, 256} {
		for _, layout := range []string{RaftLogPerShard, RaftLogShared} {
			b.Run(fmt.Sprintf("writers=%d/log=%s", writers, layout), func(b *testing.B) {
				cfg := DefaultConfig()
				cfg.DataDir = b.TempDir()
				cfg.Shards = shards
				cfg.Logger = hclog.NewNullLogger()
				if d := os.Getenv("FG_BENCH_WAL_SYNC_DEPTH"); d != "" {
					cfg.WALSyncDepth, _ = strconv.Atoi(d)
				}
				if layout == RaftLogPerShard {
					m := newMeta("bench", shards, cfg.NodeID)
					m.Version, m.RaftLog = metaVersionPerShardLog, ""
					if err := writeMeta(cfg.DataDir, m); err != nil {
						b.Fatal(err)
					}
				}
				ctx := context.Background()
				n, err := Open(ctx, cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer n.Close()
				if n.Meta().RaftLog != layout {
					b.Fatalf("layout %s, want %s", n.Meta().RaftLog, layout)
				}
				before, _ := n.RaftLogStats()
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
							_, err := n.Follow(ctx, fmt.Sprintf("w%d-%d", w, i), []string{fmt.Sprintf("t%d", i)}, WriteOptions{})
							if err != nil {
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
					return
				}
				b.ReportMetric(float64(len(all))/elapsed.Seconds(), "ops/s")
				b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
				if after, ok := n.RaftLogStats(); ok && after.Syncs > before.Syncs {
					b.ReportMetric(float64(after.Requests-before.Requests)/float64(after.Syncs-before.Syncs), "appends/sync")
				}
			})
		}
	}
}
