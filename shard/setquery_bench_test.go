package shard

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkProbeCelebrity: probing a following list of 5,000 against
// the followers of a user with 1M (-short: 100k) of them, about half of
// the 5,000 among them: by uid (ProbeMembers, members copied from a Store
// of the node: the set queries' path on one node) and by ID (Probe: what
// a probe from another node costs), back to back.
func BenchmarkProbeCelebrity(b *testing.B) {
	fans := 1_000_000
	if testing.Short() {
		fans = 100_000
	}
	s := newStore(b)
	for i := range fans {
		if _, err := s.AddFollower("star", fmt.Sprintf("fan%07d", i), int64(i)); err != nil {
			b.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for {
		var targets []string
		for range 20 {
			targets = append(targets, fmt.Sprintf("fan%07d", rng.IntN(2*fans)))
		}
		if _, err := s.Follow("viewer", targets, 1); err != nil {
			b.Fatal(err)
		}
		if f, _, _, _ := s.Counts("viewer"); f >= 5000 {
			break
		}
	}
	var m Members
	defer m.Release()
	if err := s.CopyFollowing("viewer", &m); err != nil {
		b.Fatal(err)
	}
	out := make([]int64, m.Len())
	ids := m.IDs(nil)
	b.Run("uid", func(b *testing.B) {
		for b.Loop() {
			s.ProbeMembers(Followers, "star", &m, out)
		}
	})
	b.Run("id", func(b *testing.B) {
		for b.Loop() {
			s.Probe(Followers, "star", ids, out)
		}
	})
}
