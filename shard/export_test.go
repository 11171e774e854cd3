package shard

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

type exportedEdge struct {
	actor, target string
	t             int64
}

// exportAll pages through v's following entries with pages of at most
// max entries (and, if stopAt > 0, ends each page early after stopAt
// entries, as a full frame does) and returns them in export order.
func exportAll(t testing.TB, v *View, max, stopAt int) []exportedEdge {
	t.Helper()
	var out []exportedEdge
	pos := StartPosition
	for pages := 0; ; pages++ {
		if pages > 1_000_000 {
			t.Fatal("export does not end")
		}
		n := 0
		next, done := v.Following(pos, max, func(a, b []byte, ft int64) bool {
			if stopAt > 0 && n == stopAt {
				return false
			}
			n++
			out = append(out, exportedEdge{string(a), string(b), ft})
			return true
		})
		if n > max {
			t.Fatalf("page of %d entries, max %d", n, max)
		}
		if done {
			return out
		}
		if next == pos && n == 0 {
			t.Fatalf("no progress at position %#x", pos)
		}
		pos = next
	}
}

// followingOf reads every user's following list through List: what an
// export of a View taken now must give.
func followingOf(t testing.TB, s *Store) map[string][]Item {
	t.Helper()
	want := map[string][]Item{}
	s.EachUser(func(id string) bool {
		var items []Item
		for cursor := ""; ; {
			page, next, err := s.List(Following, id, cursor, s.cfg.MaxPage)
			if err != nil {
				t.Fatal(err)
			}
			items = append(items, page...)
			if next == "" {
				break
			}
			cursor = next
		}
		if len(items) > 0 {
			want[id] = items
		}
		return true
	})
	return want
}

// checkExport compares an export with the lists: every edge once, each
// user's edges together and in list order.
func checkExport(t testing.TB, got []exportedEdge, want map[string][]Item) {
	t.Helper()
	byActor := map[string][]Item{}
	for i, e := range got {
		if i == 0 || got[i-1].actor != e.actor {
			if _, seen := byActor[e.actor]; seen {
				t.Fatalf("edges of %q are not together", e.actor)
			}
		}
		byActor[e.actor] = append(byActor[e.actor], Item{e.target, e.t})
	}
	if len(byActor) != len(want) {
		t.Fatalf("export has %d actors, the lists %d", len(byActor), len(want))
	}
	for a, items := range want {
		if !slices.Equal(byActor[a], items) {
			t.Fatalf("export of %q: %v, want %v", a, byActor[a], items)
		}
	}
}

func buildExportStore(t testing.TB, users, edges int) *Store {
	t.Helper()
	s := newStore(t)
	r := rand.New(rand.NewPCG(1, 2))
	now := int64(1_700_000_000_000)
	// One user past the large-list threshold (128), several pages of it.
	for i := range 700 {
		mustFollow(t, s, "big", now+int64(i%50), fmt.Sprintf("u%d", i))
	}
	for range edges {
		a, b := fmt.Sprintf("u%d", r.IntN(users)), fmt.Sprintf("u%d", r.IntN(users))
		if a != b {
			mustFollow(t, s, a, now+r.Int64N(1000), b)
		}
	}
	return s
}

func TestViewFollowingPages(t *testing.T) {
	s := buildExportStore(t, 300, 5000)
	want := followingOf(t, s)
	v := s.View()
	defer v.Release()
	if got := v.Edges(); got != s.Stats().Following {
		t.Fatalf("Edges() = %d, store has %d", got, s.Stats().Following)
	}
	// Writes after the View: none of them may show in its export.
	for i := range 300 {
		mustFollow(t, s, "big", 1_800_000_000_000, fmt.Sprintf("new%d", i))
		mustUnfollow(t, s, fmt.Sprintf("u%d", i), fmt.Sprintf("u%d", (i*7)%300))
		mustFollow(t, s, "late", 1_800_000_000_000, fmt.Sprintf("u%d", i))
	}
	mustUnfollow(t, s, "big", "u1", "u2", "u3")
	for _, c := range []struct{ max, stopAt int }{{1, 0}, {7, 0}, {128, 0}, {129, 0}, {1000, 0}, {1 << 30, 0}, {1000, 3}, {64, 100}} {
		t.Run(fmt.Sprintf("max%d-stop%d", c.max, c.stopAt), func(t *testing.T) {
			got := exportAll(t, v, c.max, c.stopAt)
			if int64(len(got)) != v.Edges() {
				t.Fatalf("exported %d edges, the View has %d", len(got), v.Edges())
			}
			checkExport(t, got, want)
		})
	}
}

func TestViewFollowingEmptyAndEnd(t *testing.T) {
	s := newStore(t)
	v := s.View()
	if next, done := v.Following(StartPosition, 10, func(a, b []byte, _ int64) bool { t.Fatal("entry in an empty store"); return true }); !done {
		t.Fatalf("empty store: not done, next %#x", next)
	}
	v.Release()
	mustFollow(t, s, "a", 1, "b", "c")
	mustUnfollow(t, s, "a", "b", "c") // a record with no following left
	mustFollow(t, s, "d", 2, "a")
	v = s.View()
	defer v.Release()
	// A page that ends exactly at the last entry says done.
	n := 0
	next, done := v.Following(StartPosition, 1, func(a, b []byte, ft int64) bool {
		n++
		if string(a) != "d" || string(b) != "a" || ft != 2 {
			t.Fatalf("edge %s -> %s at %d", a, b, ft)
		}
		return true
	})
	if n != 1 || !done {
		t.Fatalf("%d edges, done %v (next %#x)", n, done, next)
	}
	// A position past the end is done at once; max 0 makes no progress.
	if _, done := v.Following(ExportPosition(1<<31, 0), 10, func([]byte, []byte, int64) bool { return true }); !done {
		t.Fatal("position past the end is not done")
	}
	next, done = v.Following(StartPosition, 0, func([]byte, []byte, int64) bool { t.Fatal("entry with max 0"); return true })
	if done {
		t.Fatal("max 0 before the last entry: done")
	}
	if got := exportAll(t, v, 5, 0); len(got) != 1 {
		t.Fatalf("export %v", got)
	}
	n = 0
	if _, done := v.Following(next, 1, func([]byte, []byte, int64) bool { n++; return true }); !done || n != 1 {
		t.Fatalf("from the position max 0 returned: %d edges, done %v", n, done)
	}
}

// TestViewFollowingConcurrentWrites reads a View from other goroutines
// while the Store keeps writing (the race detector checks the sharing).
func TestViewFollowingConcurrentWrites(t *testing.T) {
	s := buildExportStore(t, 200, 3000)
	want := followingOf(t, s)
	v := s.View()
	var wg sync.WaitGroup
	results := make([][]exportedEdge, 3)
	for i := range results {
		wg.Go(func() { results[i] = exportAll(t, v, 50+i*100, 0) })
	}
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 3000 {
		a, b := fmt.Sprintf("u%d", r.IntN(200)), fmt.Sprintf("u%d", r.IntN(200))
		if a == b {
			continue
		}
		if i%3 == 0 {
			mustUnfollow(t, s, a, b)
		} else {
			mustFollow(t, s, a, 1_900_000_000_000+int64(i), b)
		}
	}
	wg.Wait()
	for _, got := range results {
		checkExport(t, got, want)
	}
	v.Release()
}
