package shard

import (
	"fmt"
	"testing"
)

// The shard of a user is part of the data format: these placements must
// never change.
func TestOfIsStable(t *testing.T) {
	fnv1a := func(s string) uint64 {
		h := uint64(14695981039346656037)
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= 1099511628211
		}
		return h
	}
	for i := range 1000 {
		u := fmt.Sprintf("user-%d", i)
		for _, n := range []int{1, 3, 16, 64, 1024} {
			if got, want := Of(u, n), int(fnv1a(u)%uint64(n)); got != want {
				t.Fatalf("Of(%q, %d) = %d, want %d", u, n, got, want)
			}
		}
	}
	for u, want := range map[string]int{"alice": 7, "bob": 4} {
		if got := Of(u, 16); got != want {
			t.Errorf("Of(%q, 16) = %d, want %d", u, got, want)
		}
	}
}
