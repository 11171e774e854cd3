package wal

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// The benchmarks sync for real, so b.TempDir must be on a disk (on the
// project VM /tmp is the same ext4 volume as /work, not tmpfs).

type benchStore struct {
	name string
	open func(b *testing.B, dir string) raft.LogStore
}

var benchStores = []benchStore{
	{"wal", func(b *testing.B, dir string) raft.LogStore {
		return openStream(b, dir, DefaultConfig())
	}},
	{"boltdb", func(b *testing.B, dir string) raft.LogStore {
		s, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}},
}

// BenchmarkStoreLogs measures durable appends of 200-byte entries, in
// batches of 1 and 32.
func BenchmarkStoreLogs(b *testing.B) {
	data := make([]byte, 200)
	for i := range data {
		data[i] = byte(i)
	}
	for _, batch := range []int{1, 32} {
		for _, bs := range benchStores {
			b.Run(fmt.Sprintf("%s/batch=%d", bs.name, batch), func(b *testing.B) {
				s := bs.open(b, b.TempDir())
				logs := make([]*raft.Log, batch)
				for i := range logs {
					logs[i] = &raft.Log{Term: 1, Data: data}
				}
				next := uint64(1)
				b.SetBytes(int64(batch * len(data)))
				for b.Loop() {
					for _, l := range logs {
						l.Index = next
						next++
					}
					if err := s.StoreLogs(logs); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(next-1)/b.Elapsed().Seconds(), "entries/s")
			})
		}
	}
}

// BenchmarkGetLog measures reading back 200-byte entries.
func BenchmarkGetLog(b *testing.B) {
	data := make([]byte, 200)
	const n = 10_000
	for _, bs := range benchStores {
		b.Run(bs.name, func(b *testing.B) {
			s := bs.open(b, b.TempDir())
			for i := uint64(1); i <= n; i += 100 {
				logs := make([]*raft.Log, 100)
				for j := range logs {
					logs[j] = &raft.Log{Index: i + uint64(j), Term: 1, Data: data}
				}
				if err := s.StoreLogs(logs); err != nil {
					b.Fatal(err)
				}
			}
			var e raft.Log
			i := uint64(0)
			for b.Loop() {
				if err := s.GetLog(i%n+1, &e); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkConcurrentStoreLogs measures durable appends of one 200-byte
// entry per call from 1, 4 and 16 goroutines, each with its own stream of
// one Log (one group commit at a time, or up to 4), against as many
// separate Logs of one stream each: what group commit saves. b.N is the
// total number of calls.
func BenchmarkConcurrentStoreLogs(b *testing.B) {
	data := make([]byte, 200)
	for i := range data {
		data[i] = byte(i)
	}
	run := func(b *testing.B, stores []raft.LogStore, syncs func() uint64) {
		before := syncs()
		var wg sync.WaitGroup
		b.ResetTimer()
		for i, s := range stores {
			calls := b.N / len(stores)
			if i < b.N%len(stores) {
				calls++
			}
			wg.Go(func() {
				e := &raft.Log{Term: 1, Data: data}
				batch := []*raft.Log{e}
				for j := range calls {
					e.Index = uint64(j) + 1
					if err := s.StoreLogs(batch); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		b.StopTimer()
		sec := b.Elapsed().Seconds()
		b.ReportMetric(float64(b.N)/sec, "entries/s")
		b.ReportMetric(float64(syncs()-before)/sec, "syncs/s")
	}
	for _, n := range []int{1, 4, 16} {
		for _, depth := range []int{1, 4} {
			b.Run(fmt.Sprintf("shared/depth=%d/streams=%d", depth, n), func(b *testing.B) {
				cfg := DefaultConfig()
				cfg.SyncDepth = depth
				s, err := Open(b.TempDir(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				stores := make([]raft.LogStore, n)
				for i := range stores {
					if stores[i], err = s.Stream(uint32(i)); err != nil {
						b.Fatal(err)
					}
				}
				run(b, stores, func() uint64 { return s.Stats().Syncs })
			})
		}
		b.Run(fmt.Sprintf("separate/logs=%d", n), func(b *testing.B) {
			stores := make([]raft.LogStore, n)
			for i := range stores {
				stores[i] = openStream(b, b.TempDir(), DefaultConfig())
			}
			run(b, stores, func() (n uint64) {
				for _, s := range stores {
					n += s.(*Stream).log.Stats().Syncs
				}
				return n
			})
		})
	}
}

// openStream opens a Log in dir and returns its stream 1, closing the Log
// when the benchmark ends.
func openStream(b *testing.B, dir string, cfg Config) *Stream {
	l, err := Open(dir, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	st, err := l.Stream(1)
	if err != nil {
		b.Fatal(err)
	}
	return st
}
