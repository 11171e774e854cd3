package wal

import (
	"fmt"
	"path/filepath"
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
		l, err := Open(dir, DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { l.Close() })
		return l
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
