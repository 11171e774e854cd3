package shard

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/followgraph/followgraph/codes"
)

func TestMembers(t *testing.T) {
	var m Members
	m.Add([]byte("alice"), 5)
	m.Add([]byte("b"), 7)
	first := m.ID(0)
	for i := range 1000 {
		m.Add(fmt.Appendf(nil, "u%d", i), int64(i)) // the buffer grows
	}
	if first != "alice" || m.ID(1) != "b" || m.Time(1) != 7 || m.Len() != 1002 || m.ID(1001) != "u999" {
		t.Fatalf("members: %q %q %d %d %q", first, m.ID(1), m.Time(1), m.Len(), m.ID(1001))
	}
	if got := m.IDs(nil); len(got) != 1002 || got[2] != "u0" {
		t.Fatalf("IDs: %d, %q", len(got), got[2])
	}
	m.Reset()
	if m.Len() != 0 {
		t.Fatal("not empty after Reset")
	}
}

// CopyFollowing copies the whole list in list order; Probe finds entries
// of small and large lists with their times, and nothing else.
func TestCopyFollowingAndProbe(t *testing.T) {
	s := newStore(t)
	fans := ids(300, "fan") // a large followers list for "star"
	for i, f := range fans {
		mustFollow(t, s, f, int64(100+i%5), "star")
	}
	mustFollow(t, s, "v", 50, "fan3", "fan1", "fan299", "nobody", "star")
	var m Members
	if err := s.CopyFollowing("v", &m); err != nil {
		t.Fatal(err)
	}
	items, _, _ := s.List(Following, "v", "", 500)
	if m.Len() != len(items) {
		t.Fatalf("copied %d of %d", m.Len(), len(items))
	}
	for i, it := range items {
		if m.ID(i) != it.UserID || m.Time(i) != it.FollowTime {
			t.Fatalf("member %d: %q %d, list has %+v", i, m.ID(i), m.Time(i), it)
		}
	}
	probe := []string{"fan1", "fan299", "nobody", "v", "", "fan3", "no\x01valid", string(make([]byte, 70))}
	out := make([]int64, len(probe))
	if err := s.Probe(Followers, "star", probe, out); err != nil {
		t.Fatal(err)
	}
	if want := []int64{101, 104, -1, 50, -1, 103, -1, -1}; !slices.Equal(out, want) {
		t.Fatalf("probe of star's followers: %v, want %v", out, want)
	}
	if err := s.Probe(Following, "v", []string{"star", "fan1", "fan2"}, out[:3]); err != nil || !slices.Equal(out[:3], []int64{50, 50, -1}) {
		t.Fatalf("probe of v's following: %v %v", out[:3], err)
	}
	if err := s.Probe(Followers, "unknown", probe, out); err != nil || slices.ContainsFunc(out, func(t int64) bool { return t != -1 }) {
		t.Fatalf("probe of an unknown user: %v %v", out, err)
	}
	if allocs := testing.AllocsPerRun(100, func() { s.Probe(Followers, "star", probe, out) }); allocs != 0 {
		t.Fatalf("probe allocates %v times", allocs)
	}
	for name, err := range map[string]error{
		"kind 0":        s.Probe(0, "star", probe, out),
		"invalid owner": s.Probe(Followers, "", probe, out),
		"copy, invalid": s.CopyFollowing("\xff", &m),
	} {
		if !errors.Is(err, codes.ErrInvalidParam) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestRelation(t *testing.T) {
	s := newStore(t)
	mustFollow(t, s, "a", 1, "b", "c")
	mustFollow(t, s, "b", 2, "a")
	mustFollow(t, s, "d", 3, "a")
	for _, c := range []struct {
		a, b string
		want FollowType
	}{{"a", "b", BothWays}, {"a", "c", FollowedBy}, {"a", "d", FollowsActor}, {"c", "a", FollowsActor}, {"a", "a", NoRelation}, {"a", "zz", NoRelation}, {"zz", "a", NoRelation}, {"a", "", NoRelation}} {
		if got := s.Relation(c.a, c.b); got != c.want {
			t.Errorf("Relation(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

// The pager cuts pages of hits in list order after the cursor, and its
// cursors belong to one query and one ordered pair of users.
func TestSetPager(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CursorKey = []byte("k")
	hits := func() []Hit {
		return []Hit{{"c", 5}, {"a", 9}, {"b", 5}, {"d", 1}, {"e", 9}}
	}
	want := []Hit{{"a", 9}, {"e", 9}, {"b", 5}, {"c", 5}, {"d", 1}}
	var got []Hit
	cursor := ""
	for range 10 {
		p, err := NewSetPager(cfg, KnownFollowersQuery, "v", "x", cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		page, next := p.Page(hits())
		got = append(got, page...)
		if next == "" {
			break
		}
		cursor = next
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged %v, want %v", got, want)
	}
	p, _ := NewSetPager(cfg, KnownFollowersQuery, "v", "x", "", 2)
	_, c := p.Page(hits())
	// A member removed at the cursor does not move the next page.
	p, _ = NewSetPager(cfg, KnownFollowersQuery, "v", "x", c, 2)
	if page, _ := p.Page([]Hit{{"c", 5}, {"a", 9}, {"b", 5}, {"d", 1}}); !slices.Equal(page, want[2:4]) {
		t.Fatalf("after the cursor, without its entry: %v", page)
	}
	for name, q := range map[string]struct {
		q    SetQuery
		a, b string
	}{"other query": {CommonFollowingQuery, "v", "x"}, "swapped": {KnownFollowersQuery, "x", "v"}, "other viewer": {KnownFollowersQuery, "w", "x"}} {
		if _, err := NewSetPager(cfg, q.q, q.a, q.b, c, 2); !errors.Is(err, codes.ErrInvalidParam) {
			t.Errorf("cursor for %s: %v", name, err)
		}
	}
	if _, err := NewSetPager(cfg, KnownFollowersQuery, "v", "x", "", 501); !errors.Is(err, codes.ErrInvalidParam) {
		t.Errorf("limit 501: %v", err)
	}
	if _, err := NewSetPager(cfg, 3, "v", "x", "", 1); !errors.Is(err, codes.ErrInvalidParam) {
		t.Errorf("query 3: %v", err)
	}
	// Common following keeps the order its hits come in (A's list order).
	p, _ = NewSetPager(cfg, CommonFollowingQuery, "a", "b", "", 0)
	if page, next := p.Page(slices.Clone(want)); !slices.Equal(page, want) || next != "" {
		t.Fatalf("common following page: %v %q", page, next)
	}
}
