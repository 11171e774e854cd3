package shard

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/followgraph/followgraph/codes"
	"pgregory.net/rapid"
)

// Members hold their users: a user unfollowed (and so freed from the
// user table) while a copy of a list names it keeps its ID until the copy
// is released.
func TestMembersHoldTheirUsers(t *testing.T) {
	s := newStore(t)
	mustFollow(t, s, "v", 5, "alice", "bob")
	var m Members
	if err := s.CopyFollowing("v", &m); err != nil {
		t.Fatal(err)
	}
	mustUnfollow(t, s, "v", "alice", "bob")
	mustFollow(t, s, "w", 6, "carol", "dave") // may reuse freed uids
	if m.Len() != 2 || !slices.Equal(m.IDs(nil), []string{"alice", "bob"}) || m.Time(1) != 5 {
		t.Fatalf("members after their users left: %q", m.IDs(nil))
	}
	if !s.HasUser("alice") {
		t.Fatal("alice freed while a copy names her")
	}
	m.Release()
	if m.Len() != 0 || s.HasUser("alice") || s.HasUser("bob") {
		t.Fatalf("after Release: %d members, alice known %v", m.Len(), s.HasUser("alice"))
	}
	if err := s.CheckInvariants(); err != nil {
		t.Fatal(err)
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
	defer m.Release()
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
	// By uid, the members of v's list: the same answers, no allocation.
	mt := make([]int64, m.Len())
	if err := s.ProbeMembers(Followers, "star", &m, mt); err != nil {
		t.Fatal(err)
	}
	for i := range mt {
		if want := map[string]int64{"fan3": 103, "fan1": 101, "fan299": 104}[m.ID(i)]; mt[i] != want && !(want == 0 && mt[i] == -1) {
			t.Errorf("probe of member %s: %d", m.ID(i), mt[i])
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { s.ProbeMembers(Followers, "star", &m, mt) }); allocs != 0 {
		t.Fatalf("probe of members allocates %v times", allocs)
	}
	// Members of another node's table are probed by ID.
	other := newStore(t)
	mustFollow(t, other, "fan1", 7, "star")
	if err := other.ProbeMembers(Followers, "star", &m, mt); err != nil || slices.Index(mt, 7) != slices.Index(m.IDs(nil), "fan1") {
		t.Fatalf("probe of another table's members: %v %v", mt, err)
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

// Paging a set with the pager, whatever the page sizes, yields the whole
// set once, in list order: the same as sorting it.
func TestSetPagerMatchesASort(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CursorKey = []byte("k")
	rapid.Check(t, func(t *rapid.T) {
		ids := rapid.SliceOfDistinct(rapid.StringMatching(`[a-e]{1,3}`), rapid.ID[string]).Draw(t, "ids")
		set := make([]Hit, len(ids))
		for i, id := range ids {
			set[i] = Hit{ID: id, T: int64(rapid.IntRange(0, 3).Draw(t, "t"))}
		}
		want := slices.SortedFunc(slices.Values(set), cmpHit)
		var got []Hit
		cursor := ""
		for range len(set) + 1 {
			p, err := NewSetPager(cfg, KnownFollowersQuery, "v", "x", cursor, rapid.IntRange(1, 5).Draw(t, "limit"))
			if err != nil {
				t.Fatal(err)
			}
			page, next := p.Page(slices.Clone(set)) // each page sees the set afresh, unordered
			got = append(got, page...)
			if next == "" {
				break
			}
			cursor = next
		}
		if !slices.Equal(got, want) {
			t.Fatalf("paged %v, want %v", got, want)
		}
	})
}

// Probing members by uid (the merge over a large list's pages) gives the
// answers of a lookup per ID, on lists of every form and size.
func TestProbeMembersMatchesProbe(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := DefaultConfig()
		cfg.CursorKey = []byte("k")
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		follow := func(actor string, ts int64, targets ...string) {
			res, err := s.Follow(actor, targets, ts)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if r.Changed {
					if _, err := s.AddFollower(r.UserID, actor, r.Time); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		fans := rapid.IntRange(0, 700).Draw(t, "fans")
		for i := range fans {
			if rapid.IntRange(0, 3).Draw(t, "skip") > 0 {
				follow(fmt.Sprintf("f%03d", i), int64(i%7), "star")
			}
		}
		var targets []string
		for range rapid.IntRange(1, 200).Draw(t, "following") {
			targets = append(targets, fmt.Sprintf("f%03d", rapid.IntRange(0, 800).Draw(t, "target")))
		}
		for len(targets) > 0 {
			n := min(len(targets), 20)
			follow("v", 1, targets[:n]...)
			targets = targets[n:]
		}
		var m Members
		defer m.Release()
		if err := s.CopyFollowing("v", &m); err != nil {
			t.Fatal(err)
		}
		byID, byUID := make([]int64, m.Len()), make([]int64, m.Len())
		if err := s.Probe(Followers, "star", m.IDs(nil), byID); err != nil {
			t.Fatal(err)
		}
		if err := s.ProbeMembers(Followers, "star", &m, byUID); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(byID, byUID) {
			t.Fatalf("by uid %v, by ID %v", byUID, byID)
		}
	})
}
