package shard

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/followgraph/followgraph/codes"
)

func newStore(t testing.TB, mod ...func(*Config)) *Store {
	t.Helper()
	cfg := DefaultConfig()
	cfg.CursorKey = []byte("k")
	for _, m := range mod {
		m(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustFollow(t testing.TB, s *Store, actor string, now int64, targets ...string) []Result {
	t.Helper()
	res, err := s.Follow(actor, targets, now)
	if err != nil {
		t.Fatalf("Follow(%q, %q): %v", actor, targets, err)
	}
	for _, r := range res {
		if r.Changed {
			// Same Store: deliver the reverse side at once.
			if _, err := s.AddFollower(r.UserID, actor, r.Time); err != nil {
				t.Fatal(err)
			}
		}
	}
	return res
}

func mustUnfollow(t testing.TB, s *Store, actor string, targets ...string) []Result {
	t.Helper()
	res, err := s.Unfollow(actor, targets)
	if err != nil {
		t.Fatalf("Unfollow(%q, %q): %v", actor, targets, err)
	}
	for _, r := range res {
		if r.Changed {
			if _, err := s.RemoveFollower(r.UserID, actor, r.Time); err != nil {
				t.Fatal(err)
			}
		}
	}
	return res
}

func ids(n int, prefix string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

func TestValidateUserID(t *testing.T) {
	cases := []struct {
		id string
		ok bool
	}{
		{"a", true},
		{"alice_01", true},
		{strings.Repeat("x", 64), true},
		{strings.Repeat("é", 32), true}, // 64 bytes
		{"中文用户", true},
		{"with space", true},
		{"", false},
		{strings.Repeat("x", 65), false},
		{strings.Repeat("é", 32) + "x", false}, // 65 bytes
		{"bad\xffutf8", false},
		{"\xc3", false}, // truncated sequence
		{"nul\x00", false},
		{"tab\t", false},
		{"newline\n", false},
		{"del\x7f", false},
		{"c1\u0085", false},
		{"\u200b", true}, // zero-width space is a format character, not a control
	}
	for _, c := range cases {
		err := ValidateUserID(c.id)
		if (err == nil) != c.ok {
			t.Errorf("ValidateUserID(%q) = %v, want ok=%v", c.id, err, c.ok)
		}
		if err != nil && !errors.Is(err, codes.ErrInvalidParam) {
			t.Errorf("ValidateUserID(%q) error %v does not carry 30001", c.id, err)
		}
	}
}

func TestRequestLimits(t *testing.T) {
	s := newStore(t)
	cases := []struct {
		name string
		err  error
	}{
		{"follow no targets", func() error { _, err := s.Follow("a", nil, 1); return err }()},
		{"follow 21 targets", func() error { _, err := s.Follow("a", ids(21, "t"), 1); return err }()},
		{"unfollow 21 targets", func() error { _, err := s.Unfollow("a", ids(21, "t")); return err }()},
		{"follow invalid actor", func() error { _, err := s.Follow("", []string{"b"}, 1); return err }()},
		{"follow negative time", func() error { _, err := s.Follow("a", []string{"b"}, -1); return err }()},
		{"follow time over 48 bits", func() error { _, err := s.Follow("a", []string{"b"}, 1<<48); return err }()},
		{"check 101 targets", func() error { _, err := s.Check("a", ids(101, "t")); return err }()},
		{"check no targets", func() error { _, err := s.Check("a", nil); return err }()},
		{"info 101 users", func() error { _, err := s.Info(ids(101, "u")); return err }()},
		{"info no users", func() error { _, err := s.Info(nil); return err }()},
		{"list limit 501", func() error { _, _, err := s.List(Followers, "a", "", 501); return err }()},
		{"list limit -1", func() error { _, _, err := s.List(Followers, "a", "", -1); return err }()},
		{"list kind 0", func() error { _, _, err := s.List(0, "a", "", 10); return err }()},
		{"list invalid user", func() error { _, _, err := s.List(Following, "a\n", "", 10); return err }()},
		{"add follower self", func() error { _, err := s.AddFollower("a", "a", 1); return err }()},
		{"add follower bad time", func() error { _, err := s.AddFollower("a", "b", 1<<48); return err }()},
	}
	for _, c := range cases {
		if !errors.Is(c.err, codes.ErrInvalidParam) {
			t.Errorf("%s: got %v, want code 30001", c.name, c.err)
		}
	}
	// Exactly at the limits is fine.
	if _, err := s.Follow("a", ids(20, "t"), 1); err != nil {
		t.Errorf("20 targets: %v", err)
	}
	if _, err := s.Check("a", ids(100, "t")); err != nil {
		t.Errorf("check 100: %v", err)
	}
	if _, err := s.Info(ids(100, "u")); err != nil {
		t.Errorf("info 100: %v", err)
	}
	if _, _, err := s.List(Following, "a", "", 500); err != nil {
		t.Errorf("limit 500: %v", err)
	}
	// Nothing was written by the failed requests.
	if st := s.Stats(); st.Following != 20 {
		t.Errorf("%d following entries, want 20", st.Following)
	}
}

func TestFollowItemCodes(t *testing.T) {
	s := newStore(t, func(c *Config) { c.MaxFollowing = 3 })
	res := mustFollow(t, s, "a", 100, "b", "a", "bad\x00", "c", "b", "d", "e", "f")
	want := []struct {
		code    codes.Code
		changed bool
	}{
		{0, true},                     // b
		{codes.InvalidParam, false},   // self
		{codes.InvalidParam, false},   // invalid ID
		{0, true},                     // c
		{0, false},                    // b again: idempotent
		{0, true},                     // d: third follow
		{codes.FollowingLimit, false}, // e: over the cap
		{codes.FollowingLimit, false}, // f
	}
	for i, w := range want {
		if res[i].Code != w.code || res[i].Changed != w.changed {
			t.Errorf("item %d (%q): %+v, want code %d changed %v", i, res[i].UserID, res[i], w.code, w.changed)
		}
		if res[i].Code != 0 && res[i].Info == "" {
			t.Errorf("item %d: no info for code %d", i, res[i].Code)
		}
	}
	// At the cap, following someone already followed still succeeds.
	res = mustFollow(t, s, "a", 200, "c", "g")
	if res[0].Code != 0 || res[0].Time != 100 || res[1].Code != codes.FollowingLimit {
		t.Errorf("at cap: %+v", res)
	}
	// The refused targets left no trace.
	if s.HasUser("e") || s.HasUser("g") {
		t.Error("refused targets were interned")
	}
}

func TestIdempotenceAndRefollow(t *testing.T) {
	s := newStore(t)
	mustFollow(t, s, "a", 100, "b")
	res := mustFollow(t, s, "a", 200, "b")
	if res[0].Changed || res[0].Time != 100 {
		t.Fatalf("second follow: %+v", res[0])
	}
	if res := mustUnfollow(t, s, "a", "b"); !res[0].Changed || res[0].Time != 100 {
		t.Fatalf("unfollow: %+v", res[0])
	}
	if res := mustUnfollow(t, s, "a", "b", "never"); res[0].Changed || res[0].Code != 0 || res[1].Code != 0 {
		t.Fatalf("second unfollow: %+v", res)
	}
	res = mustFollow(t, s, "a", 300, "b")
	if !res[0].Changed || res[0].Time != 300 {
		t.Fatalf("re-follow keeps the old time: %+v", res[0])
	}
	items, _, _ := s.List(Followers, "b", "", 10)
	if len(items) != 1 || items[0] != (Item{"a", 300}) {
		t.Fatalf("followers of b: %v", items)
	}
	// Duplicate reverse deliveries change nothing.
	if changed, _ := s.AddFollower("b", "a", 300); changed {
		t.Fatal("duplicate AddFollower changed the store")
	}
	if changed, _ := s.RemoveFollower("b", "a", 100); changed {
		t.Fatal("stale RemoveFollower changed the store")
	}
	if changed, _ := s.RemoveFollower("b", "zz", 100); changed {
		t.Fatal("RemoveFollower of an unknown edge changed the store")
	}
	if err := s.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

func TestFollowersLimit(t *testing.T) {
	s := newStore(t, func(c *Config) { c.MaxFollowers = 2 })
	for i, f := range []string{"x", "y"} {
		if _, err := s.AddFollower("star", f, int64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.AddFollower("star", "z", 3)
	if !errors.Is(err, codes.ErrFollowersLimit) {
		t.Fatalf("third follower: %v, want 32101", err)
	}
	// Re-delivering an existing follower is not a new follower.
	if _, err := s.AddFollower("star", "x", 1); err != nil {
		t.Fatalf("existing follower: %v", err)
	}
	if s.HasUser("z") {
		t.Fatal("refused follower was interned")
	}
}

func TestMutualTimeIsTheLaterFollow(t *testing.T) {
	s := newStore(t)
	mustFollow(t, s, "a", 100, "b")
	mustFollow(t, s, "b", 250, "a")
	for _, u := range []string{"a", "b"} {
		items, _, _ := s.List(Mutual, u, "", 10)
		if len(items) != 1 || items[0].FollowTime != 250 {
			t.Fatalf("mutual of %s: %v", u, items)
		}
	}
	// The reverse side can arrive with an earlier time than the forward
	// side (another shard's clock): still the later of the two.
	s2 := newStore(t)
	mustFollow(t, s2, "a", 500, "b")
	s2.AddFollower("a", "b", 400) // b's shard stamped b->a at 400
	items, _, _ := s2.List(Mutual, "a", "", 10)
	if len(items) != 1 || items[0].FollowTime != 500 {
		t.Fatalf("mutual of a: %v", items)
	}
	mustUnfollow(t, s, "a", "b")
	if _, _, m, _ := s.Counts("b"); m != 0 {
		t.Fatal("mutual survived an unfollow")
	}
}

func TestCheckTypes(t *testing.T) {
	s := newStore(t)
	mustFollow(t, s, "me", 1, "friend", "idol")
	mustFollow(t, s, "friend", 2, "me")
	mustFollow(t, s, "fan", 3, "me")
	res, err := s.Check("me", []string{"friend", "idol", "fan", "stranger", "me", "bad\x01"})
	if err != nil {
		t.Fatal(err)
	}
	want := []CheckResult{
		{"friend", 0, BothWays},
		{"idol", 0, FollowedBy},
		{"fan", 0, FollowsActor},
		{"stranger", 0, NoRelation},
		{"me", 0, NoRelation},
		{"bad\x01", codes.InvalidParam, NoRelation},
	}
	for i := range want {
		if res[i] != want[i] {
			t.Errorf("check %d: %+v, want %+v", i, res[i], want[i])
		}
	}
	if BothWays != 3 || FollowedBy != 2 || FollowsActor != 1 {
		t.Error("follow type numbering changed")
	}
}

func TestInfo(t *testing.T) {
	s := newStore(t)
	mustFollow(t, s, "a", 1, "b", "c")
	mustFollow(t, s, "b", 2, "a")
	res, err := s.Info([]string{"a", "b", "nobody", ""})
	if err != nil {
		t.Fatal(err)
	}
	want := []Info{
		{"a", 0, 2, 1, 1},
		{"b", 0, 1, 1, 1},
		{"nobody", 0, 0, 0, 0},
		{"", codes.InvalidParam, 0, 0, 0},
	}
	for i := range want {
		if res[i] != want[i] {
			t.Errorf("info %d: %+v, want %+v", i, res[i], want[i])
		}
	}
}

func TestListOrderAndTies(t *testing.T) {
	s := newStore(t)
	// One batch: all get the same time, ordered by ID ascending (bytes).
	mustFollow(t, s, "a", 10, "b", "é", "B", "aa", "b0")
	mustFollow(t, s, "a", 20, "z")
	mustFollow(t, s, "a", 5, "y")
	items, next, err := s.List(Following, "a", "", 0)
	if err != nil || next != "" {
		t.Fatal(err, next)
	}
	var got []string
	for _, it := range items {
		got = append(got, fmt.Sprintf("%s@%d", it.UserID, it.FollowTime))
	}
	want := "z@20 B@10 aa@10 b@10 b0@10 é@10 y@5"
	if strings.Join(got, " ") != want {
		t.Fatalf("order: %s, want %s", strings.Join(got, " "), want)
	}
}

func TestCursors(t *testing.T) {
	s := newStore(t)
	for i := range 30 {
		mustFollow(t, s, fmt.Sprintf("f%02d", i), int64(1000+i), "star")
	}
	page1, next, err := s.List(Followers, "star", "", 10)
	if err != nil || len(page1) != 10 || next == "" {
		t.Fatalf("page 1: %v %q %v", page1, next, err)
	}
	// The cursor still works after the entry it names is removed.
	mustUnfollow(t, s, page1[9].UserID, "star")
	page2, next2, err := s.List(Followers, "star", next, 10)
	if err != nil || len(page2) != 10 || page2[0].UserID != "f19" {
		t.Fatalf("page 2: %v %v", page2, err)
	}
	// The last page has an empty next cursor; a cursor at the end gives an
	// empty page.
	page3, next3, _ := s.List(Followers, "star", next2, 100)
	if len(page3) != 10 || next3 != "" {
		t.Fatalf("page 3: %d items, next %q", len(page3), next3)
	}
	// A page that ends exactly at the end of the list says so.
	if _, n, _ := s.List(Followers, "star", next2, 10); n != "" {
		t.Fatalf("exact last page: next %q", n)
	}
	// A cursor whose successors have all gone gives an empty last page.
	_, nearEnd, _ := s.List(Followers, "star", next2, 9)
	mustUnfollow(t, s, page3[9].UserID, "star")
	if items, n, err := s.List(Followers, "star", nearEnd, 10); err != nil || len(items) != 0 || n != "" {
		t.Fatalf("after the end: %v %q %v", items, n, err)
	}

	bad := map[string]string{
		"garbage":          "!!!not base64!!!",
		"truncated":        next[:len(next)-3],
		"flipped":          flip(next),
		"too long":         strings.Repeat("A", 200),
		"empty payload":    "AA",
		"other list":       mustCursor(t, s, Following, "f00"),
		"other user":       mustCursor(t, s, Followers, "f00x"),
		"other key":        mustCursor(t, newStore(t, func(c *Config) { c.CursorKey = []byte("other") }), Followers, "star"),
		"other store list": otherKind(t, s),
	}
	for name, c := range bad {
		if c == "" {
			t.Fatalf("%s: no cursor to test", name)
		}
		_, _, err := s.List(Followers, "star", c, 10)
		if !errors.Is(err, codes.ErrInvalidParam) {
			t.Errorf("%s cursor: %v, want 30001", name, err)
		}
	}
}

func flip(c string) string {
	b := []byte(c)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// mustCursor returns a next cursor for list k of user on s (making the
// list long enough to have one).
func mustCursor(t *testing.T, s *Store, k Kind, user string) string {
	t.Helper()
	for i := range 3 {
		switch k {
		case Following:
			mustFollow(t, s, user, 1, fmt.Sprintf("x%d", i))
		default:
			mustFollow(t, s, fmt.Sprintf("x%d", i), 1, user)
		}
	}
	_, next, err := s.List(k, user, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	return next
}

func otherKind(t *testing.T, s *Store) string {
	_, next, _ := s.List(Followers, "star", "", 1)
	// Same bytes, claimed for the mutual list: the MAC covers the kind.
	_, _, err := s.List(Mutual, "star", next, 1)
	if !errors.Is(err, codes.ErrInvalidParam) {
		t.Errorf("followers cursor accepted for mutual: %v", err)
	}
	return next[:len(next)-1] + "~"
}

func TestLargeListPaging(t *testing.T) {
	s := newStore(t)
	const n = 3000
	for i := range n {
		mustFollow(t, s, fmt.Sprintf("fan%05d", i), int64(i/7), "star")
	}
	seen := 0
	cursor := ""
	prev := Item{FollowTime: 1 << 47}
	for {
		items, next, err := s.List(Followers, "star", cursor, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if it.FollowTime > prev.FollowTime || (it.FollowTime == prev.FollowTime && it.UserID <= prev.UserID) {
				t.Fatalf("%v after %v", it, prev)
			}
			prev = it
			seen++
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if seen != n {
		t.Fatalf("paged %d of %d", seen, n)
	}
	res, _ := s.Check("star", []string{"fan00000", "fan02999", "fan99999"})
	if res[0].Type != FollowsActor || res[1].Type != FollowsActor || res[2].Type != NoRelation {
		t.Fatalf("check on a large list: %+v", res)
	}
	for i := 0; i < n; i += 2 {
		mustUnfollow(t, s, fmt.Sprintf("fan%05d", i), "star")
	}
	if _, fe, _, _ := s.Counts("star"); fe != n/2 {
		t.Fatalf("%d followers after removing half", fe)
	}
	if err := s.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

func TestUsersAreFreed(t *testing.T) {
	s := newStore(t)
	mustFollow(t, s, "a", 1, "b", "c")
	mustUnfollow(t, s, "a", "b", "c")
	if st := s.Stats(); st.Users != 0 || st.Following != 0 || st.Followers != 0 {
		t.Fatalf("after unfollowing everything: %+v", st)
	}
	mustFollow(t, s, "d", 1, "e")
	if err := s.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

func snapshotBytes(t testing.TB, s *Store) []byte {
	t.Helper()
	v := s.View()
	defer v.Release()
	var buf bytes.Buffer
	if _, err := v.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSnapshotErrors(t *testing.T) {
	s := newStore(t)
	for i := range 200 {
		mustFollow(t, s, fmt.Sprintf("u%d", i), int64(i), "star", fmt.Sprintf("u%d", (i+1)%200))
	}
	good := snapshotBytes(t, s)
	if _, err := ReadFrom(bytes.NewReader(good), s.Config()); err != nil {
		t.Fatal(err)
	}
	// Every truncation is reported as truncated.
	for n := 0; n < len(good); n += 1 + n/50 {
		_, err := ReadFrom(bytes.NewReader(good[:n]), s.Config())
		if !errors.Is(err, ErrSnapshotTruncated) {
			t.Fatalf("truncated at %d of %d: %v", n, len(good), err)
		}
	}
	// A flipped byte anywhere is an error: corrupt, an unsupported version
	// (in the header), or truncated (a frame length made larger).
	for i := 0; i < len(good); i += 1 + i/40 {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		_, err := ReadFrom(bytes.NewReader(b), s.Config())
		if !errors.Is(err, ErrSnapshotCorrupt) && !errors.Is(err, ErrSnapshotVersion) && !errors.Is(err, ErrSnapshotTruncated) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	b := bytes.Clone(good)
	b[len(snapMagic)] = 9
	if _, err := ReadFrom(bytes.NewReader(b), s.Config()); !errors.Is(err, ErrSnapshotVersion) {
		t.Fatalf("version 9: %v", err)
	}
	// The reader stops at the snapshot's end: what follows is untouched.
	r := bytes.NewReader(append(bytes.Clone(good), "trailer"...))
	if _, err := ReadFrom(r, s.Config()); err != nil {
		t.Fatal(err)
	}
	if r.Len() != len("trailer") {
		t.Fatalf("reader consumed %d bytes past the snapshot", len("trailer")-r.Len())
	}
}

// A View taken before a burst of writes streams, from another goroutine
// and while the writes run, exactly the state at capture.
func TestViewIsolatedFromConcurrentWrites(t *testing.T) {
	s := newStore(t)
	for i := range 2000 {
		mustFollow(t, s, fmt.Sprintf("u%d", i), int64(i), "star", fmt.Sprintf("u%d", (i*7)%2000))
	}
	want := snapshotBytes(t, s)
	v := s.View()
	var got bytes.Buffer
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := v.WriteTo(&got); err != nil {
			t.Error(err)
		}
		v.Release()
	})
	for i := range 4000 {
		u := fmt.Sprintf("u%d", i%2000)
		if i%3 == 0 {
			mustUnfollow(t, s, u, "star")
		} else {
			mustFollow(t, s, u, int64(5000+i), "star", fmt.Sprintf("n%d", i))
		}
	}
	wg.Wait()
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatal("the View changed under concurrent writes")
	}
	// After release the Store reuses memory and stays consistent.
	for i := range 1000 {
		mustFollow(t, s, fmt.Sprintf("w%d", i), 9000, "star")
	}
	if err := s.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []func(*Config){
		func(c *Config) { c.MaxFollowing = 0 },
		func(c *Config) { c.MaxFollowers = -1 },
		func(c *Config) { c.MaxTargets = 0 },
		func(c *Config) { c.MaxCheck = 0 },
		func(c *Config) { c.MaxInfo = 0 },
		func(c *Config) { c.MaxPage = 0 },
		func(c *Config) { c.DefaultPage = 501 },
	}
	for i, m := range bad {
		c := DefaultConfig()
		m(&c)
		if _, err := New(c); err == nil {
			t.Errorf("bad config %d accepted", i)
		}
	}
}

// IDs of 64 bytes fill the string arena's chunks exactly.
func TestManyLongIDs(t *testing.T) {
	s := newStore(t)
	for i := range 3000 {
		id := fmt.Sprintf("%064d", i)
		mustFollow(t, s, id, int64(i), "star")
	}
	if _, fe, _, _ := s.Counts("star"); fe != 3000 {
		t.Fatalf("%d followers", fe)
	}
	if err := s.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	b := snapshotBytes(t, s)
	r, err := ReadFrom(bytes.NewReader(b), s.Config())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

// TestEdgeChanges: what each change reports, for the change feed.
func TestEdgeChanges(t *testing.T) {
	s := newStore(t)
	res, _ := s.Follow("a", []string{"b"}, 10)
	if !res[0].Changed || res[0].Mutual {
		t.Fatalf("a follows b: %+v", res[0])
	}
	c, _ := s.AddFollowerChange("a", "b", 20) // b follows a: mutual for a
	if c != (EdgeChange{Changed: true, Edge: true, Mutual: true}) {
		t.Fatalf("b follows a (a follows b): %+v", c)
	}
	if c, _ = s.AddFollowerChange("a", "b", 20); c != (EdgeChange{}) {
		t.Fatalf("the same delivery again: %+v", c)
	}
	if c, _ = s.AddFollowerChange("a", "b", 25); c != (EdgeChange{Changed: true}) {
		t.Fatalf("a new followTime for b: %+v, want re-timed only", c)
	}
	res, _ = s.Unfollow("a", []string{"b"})
	if !res[0].Changed || !res[0].Mutual {
		t.Fatalf("a unfollows b (b follows a): %+v", res[0])
	}
	res, _ = s.Follow("a", []string{"b"}, 30)
	if !res[0].Mutual {
		t.Fatalf("a follows b again (b follows a): %+v", res[0])
	}
	if c, _ = s.RemoveFollowerChange("a", "b", 20); c != (EdgeChange{}) {
		t.Fatalf("a stale removal: %+v", c)
	}
	if c, _ = s.RemoveFollowerChange("a", "b", 25); c != (EdgeChange{Changed: true, Edge: true, Mutual: true}) {
		t.Fatalf("b unfollows a: %+v", c)
	}
}
