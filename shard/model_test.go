package shard

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/followgraph/followgraph/codes"
	"pgregory.net/rapid"
)

// The model: the whole graph as plain maps, and the obviously-correct
// answers derived from it. Users are spread over two Stores by a hash, as
// shards are, and reverse edges travel through FIFO queues that the test
// drains at random moments (with random duplicate deliveries), as the relay
// does.

type model struct {
	fwd map[string]map[string]int64 // following, on the actor's home
	rev map[string]map[string]int64 // followers, as delivered to the followee's home
}

func newModel() *model {
	return &model{fwd: map[string]map[string]int64{}, rev: map[string]map[string]int64{}}
}

func (m *model) clone() *model {
	c := newModel()
	for k, v := range m.fwd {
		c.fwd[k] = maps.Clone(v)
	}
	for k, v := range m.rev {
		c.rev[k] = maps.Clone(v)
	}
	return c
}

func put(m map[string]map[string]int64, a, b string, t int64) {
	if m[a] == nil {
		m[a] = map[string]int64{}
	}
	m[a][b] = t
}

func del(m map[string]map[string]int64, a, b string) {
	delete(m[a], b)
	if len(m[a]) == 0 {
		delete(m, a)
	}
}

// list returns user's list k in list order, as the user's home Store holds it.
func (m *model) list(k Kind, user string) []Item {
	var items []Item
	switch k {
	case Following:
		for b, t := range m.fwd[user] {
			items = append(items, Item{b, t})
		}
	case Followers:
		for a, t := range m.rev[user] {
			items = append(items, Item{a, t})
		}
	case Mutual:
		for b, t := range m.fwd[user] {
			if tr, ok := m.rev[user][b]; ok {
				items = append(items, Item{b, max(t, tr)})
			}
		}
	}
	slices.SortFunc(items, func(x, y Item) int {
		if x.FollowTime != y.FollowTime {
			if x.FollowTime > y.FollowTime {
				return -1
			}
			return 1
		}
		return strings.Compare(x.UserID, y.UserID)
	})
	return items
}

type delivery struct {
	add                bool
	followee, follower string
	t                  int64
}

const testStores = 2

func home(id string) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % testStores)
}

type harness struct {
	t      *rapid.T
	cfg    Config
	stores [testStores]*Store
	m      *model
	queues [testStores][testStores][]delivery
	last   [testStores][testStores]*delivery
	now    int64
	users  []string
	scans  []*scanSession
}

// scanSession pages through one list while other operations run, and
// checks the stable-paging guarantee when it reaches the end.
type scanSession struct {
	k      Kind
	user   string
	cursor string
	stable map[string]int64 // entries present, unchanged, since the scan began
	// touched: peers whose entry may have been removed and added again
	// since the scan began; an import can add one back at an older time,
	// behind the cursor, so the scan may return it twice.
	touched map[string]bool
	seen    map[string]int
	prev    *Item
}

func newHarness(t *rapid.T) *harness {
	cfg := DefaultConfig()
	cfg.MaxFollowing = 150
	cfg.CursorKey = []byte("test key")
	// Half the runs give every Store the same user table, as a node does.
	if rapid.Bool().Draw(t, "shared user table") {
		cfg.Users = NewUsers()
	}
	h := &harness{t: t, cfg: cfg, m: newModel(), now: 1_700_000_000_000}
	for i := range h.stores {
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		h.stores[i] = s
	}
	// A pool with shared prefixes, different lengths and non-ASCII IDs, so
	// that ties in followTime are broken by real byte comparisons.
	for i := range 300 {
		h.users = append(h.users, fmt.Sprintf("u%d", i))
	}
	h.users = append(h.users, "é", "éa", "z", "中文", "a b", strings.Repeat("x", 64))
	return h
}

func (h *harness) user(name string) string { return rapid.SampledFrom(h.users).Draw(h.t, name) }

func (h *harness) target(name string) string {
	switch rapid.IntRange(0, 100).Draw(h.t, name+"kind") {
	case 97:
		return ""
	case 98:
		return "bad\x01id"
	case 99:
		return strings.Repeat("y", 65)
	}
	return h.user(name)
}

func (h *harness) tick() int64 {
	h.now += int64(rapid.IntRange(0, 2).Draw(h.t, "tick"))
	return h.now
}

func (h *harness) follow(actor string, targets []string) {
	now := h.tick()
	res, err := h.stores[home(actor)].Follow(actor, targets, now)
	if err != nil {
		h.t.Fatalf("Follow(%q, %q): %v", actor, targets, err)
	}
	times := make([]int64, len(targets))
	for i := range times {
		times[i] = now
	}
	h.checkFollows("Follow", actor, targets, times, res)
}

// importEdges imports edges with times of their own: some in the past,
// some out of range.
func (h *harness) importEdges(actor string, targets []string) {
	times := make([]int64, len(targets))
	for i := range times {
		times[i] = rapid.Int64Range(-1, h.now+2).Draw(h.t, "time")
	}
	if rapid.IntRange(0, 20).Draw(h.t, "late") == 0 {
		times[0] = MaxFollowTime + 1
	}
	res, err := h.stores[home(actor)].Import(actor, targets, times)
	if err != nil {
		h.t.Fatalf("Import(%q, %q): %v", actor, targets, err)
	}
	h.checkFollows("Import", actor, targets, times, res)
}

// checkFollows checks the results of a Follow or Import against the
// model, and applies them to it.
func (h *harness) checkFollows(op, actor string, targets []string, times []int64, res []Result) {
	for i, target := range targets {
		r := res[i]
		var want Result
		want.UserID = target
		switch {
		case !ValidUserID(target):
			want.Code = codes.InvalidParam
		case target == actor:
			want.Code = codes.InvalidParam
		case times[i] < 0 || times[i] > MaxFollowTime:
			want.Code = codes.InvalidParam
		default:
			if t, ok := h.m.fwd[actor][target]; ok {
				want.Time = t
			} else if len(h.m.fwd[actor]) >= h.cfg.MaxFollowing {
				want.Code = codes.FollowingLimit
			} else {
				want.Changed, want.Time = true, times[i]
				put(h.m.fwd, actor, target, times[i])
				h.send(true, target, actor, times[i])
			}
		}
		if r.UserID != want.UserID || r.Code != want.Code || r.Changed != want.Changed || r.Time != want.Time {
			h.t.Fatalf("%s(%q) item %d: got %+v, want %+v", op, actor, i, r, want)
		}
		h.changed(actor, Following, target)
	}
}

func (h *harness) unfollow(actor string, targets []string) {
	s := h.stores[home(actor)]
	res, err := s.Unfollow(actor, targets)
	if err != nil {
		h.t.Fatalf("Unfollow(%q, %q): %v", actor, targets, err)
	}
	for i, target := range targets {
		r := res[i]
		want := Result{UserID: target}
		switch {
		case !ValidUserID(target), target == actor:
			want.Code = codes.InvalidParam
		default:
			if t, ok := h.m.fwd[actor][target]; ok {
				want.Changed, want.Time = true, t
				del(h.m.fwd, actor, target)
				h.send(false, target, actor, t)
			}
		}
		if r.UserID != want.UserID || r.Code != want.Code || r.Changed != want.Changed || r.Time != want.Time {
			h.t.Fatalf("Unfollow(%q) item %d: got %+v, want %+v", actor, i, r, want)
		}
		h.changed(actor, Following, target)
	}
}

// send queues a reverse edge; on the same Store it is applied at once, as
// the FSM does within one log entry.
func (h *harness) send(add bool, followee, follower string, t int64) {
	d := delivery{add, followee, follower, t}
	src, dst := home(follower), home(followee)
	if src == dst {
		h.apply(dst, d)
		return
	}
	h.queues[src][dst] = append(h.queues[src][dst], d)
}

func (h *harness) apply(dst int, d delivery) {
	s := h.stores[dst]
	var changed bool
	var err error
	if d.add {
		changed, err = s.AddFollower(d.followee, d.follower, d.t)
	} else {
		changed, err = s.RemoveFollower(d.followee, d.follower, d.t)
	}
	if err != nil {
		h.t.Fatalf("deliver %+v: %v", d, err)
	}
	cur, present := h.m.rev[d.followee][d.follower]
	var want bool
	if d.add {
		want = !present || cur != d.t
		put(h.m.rev, d.followee, d.follower, d.t)
	} else {
		want = present && cur == d.t
		if want {
			del(h.m.rev, d.followee, d.follower)
		}
	}
	if changed != want {
		h.t.Fatalf("deliver %+v: changed=%v, want %v", d, changed, want)
	}
	h.changed(d.followee, Followers, d.follower)
}

// deliver drains some of one queue, sometimes delivering an item twice.
func (h *harness) deliver() {
	src := rapid.IntRange(0, testStores-1).Draw(h.t, "src")
	dst := rapid.IntRange(0, testStores-1).Draw(h.t, "dst")
	q := h.queues[src][dst]
	if len(q) == 0 {
		if l := h.last[src][dst]; l != nil && rapid.Bool().Draw(h.t, "redeliver") {
			h.apply(dst, *l) // a duplicate of the last delivery changes nothing
		}
		return
	}
	n := rapid.IntRange(1, len(q)).Draw(h.t, "n")
	for i := range n {
		h.apply(dst, q[i])
		d := q[i]
		h.last[src][dst] = &d
		if rapid.IntRange(0, 9).Draw(h.t, "dup") == 0 {
			h.apply(dst, q[i])
		}
	}
	h.queues[src][dst] = q[n:]
}

func (h *harness) deliverAll() {
	for src := range testStores {
		for dst := range testStores {
			for _, d := range h.queues[src][dst] {
				h.apply(dst, d)
			}
			h.queues[src][dst] = nil
		}
	}
}

// changed tells open scans that owner's list entry for peer may have
// changed (mutual lists change with either side).
func (h *harness) changed(owner string, k Kind, peer string) {
	for _, sc := range h.scans {
		if sc.user != owner {
			continue
		}
		if sc.k == k || sc.k == Mutual {
			sc.touched[peer] = true
			if t, ok := sc.stable[peer]; ok {
				if cur := h.entry(sc.k, owner, peer); cur == nil || cur.FollowTime != t {
					delete(sc.stable, peer)
				}
			}
		}
	}
}

func (h *harness) entry(k Kind, owner, peer string) *Item {
	for _, it := range h.m.list(k, owner) {
		if it.UserID == peer {
			return &it
		}
	}
	return nil
}

func (h *harness) checkList(k Kind, user string) {
	s := h.stores[home(user)]
	want := h.m.list(k, user)
	var got []Item
	cursor := ""
	for {
		limit := rapid.SampledFrom([]int{0, 1, 3, 7, 50, 500}).Draw(h.t, "limit")
		items, next, err := s.List(k, user, cursor, limit)
		if err != nil {
			h.t.Fatalf("List(%v, %q): %v", k, user, err)
		}
		if limit == 0 {
			limit = h.cfg.DefaultPage
		}
		if len(items) > limit || (next != "" && len(items) != limit) {
			h.t.Fatalf("List(%v, %q): %d items for limit %d, next %q", k, user, len(items), limit, next)
		}
		got = append(got, items...)
		if next == "" {
			break
		}
		cursor = next
	}
	if !slices.Equal(got, want) {
		h.t.Fatalf("list %v of %q:\n got %v\nwant %v", k, user, got, want)
	}
	fi, fe, mu, _ := s.Counts(user)
	if fi != len(h.m.list(Following, user)) || fe != len(h.m.list(Followers, user)) || mu != len(h.m.list(Mutual, user)) {
		h.t.Fatalf("counts of %q: %d %d %d", user, fi, fe, mu)
	}
}

func (h *harness) check(actor string, targets []string) {
	res, err := h.stores[home(actor)].Check(actor, targets)
	if err != nil {
		h.t.Fatal(err)
	}
	for i, target := range targets {
		var want CheckResult
		want.UserID = target
		if !ValidUserID(target) {
			want.Code = codes.InvalidParam
		} else if target != actor {
			if _, ok := h.m.rev[actor][target]; ok {
				want.Type |= FollowsActor
			}
			if _, ok := h.m.fwd[actor][target]; ok {
				want.Type |= FollowedBy
			}
		}
		if res[i] != want {
			h.t.Fatalf("Check(%q, %q): got %+v, want %+v", actor, target, res[i], want)
		}
	}
}

func (h *harness) startScan() {
	k := Kind(rapid.IntRange(1, 3).Draw(h.t, "kind"))
	user := h.user("scanuser")
	sc := &scanSession{k: k, user: user, stable: map[string]int64{}, touched: map[string]bool{}, seen: map[string]int{}}
	for _, it := range h.m.list(k, user) {
		sc.stable[it.UserID] = it.FollowTime
	}
	h.scans = append(h.scans, sc)
}

func (h *harness) stepScan() {
	if len(h.scans) == 0 {
		return
	}
	i := rapid.IntRange(0, len(h.scans)-1).Draw(h.t, "scan")
	sc := h.scans[i]
	limit := rapid.IntRange(1, 40).Draw(h.t, "scanlimit")
	items, next, err := h.stores[home(sc.user)].List(sc.k, sc.user, sc.cursor, limit)
	if err != nil {
		h.t.Fatalf("scan %v of %q: %v", sc.k, sc.user, err)
	}
	for _, it := range items {
		sc.seen[it.UserID]++
		if sc.seen[it.UserID] > 1 && !sc.touched[it.UserID] {
			h.t.Fatalf("scan %v of %q returned %q twice", sc.k, sc.user, it.UserID)
		}
		if sc.prev != nil && !(it.FollowTime < sc.prev.FollowTime || (it.FollowTime == sc.prev.FollowTime && it.UserID > sc.prev.UserID)) {
			h.t.Fatalf("scan %v of %q: %v after %v", sc.k, sc.user, it, *sc.prev)
		}
		it := it
		sc.prev = &it
	}
	sc.cursor = next
	if next == "" {
		for id := range sc.stable {
			if sc.seen[id] != 1 {
				h.t.Fatalf("scan %v of %q: %q stayed in the list but was returned %d times", sc.k, sc.user, id, sc.seen[id])
			}
		}
		h.scans = slices.Delete(h.scans, i, i+1)
	}
}

// snapshot takes a View of one Store, keeps writing, then checks that the
// View still shows the state at capture, that restoring it gives an equal
// Store, and continues on the restored Store.
func (h *harness) snapshot() {
	i := rapid.IntRange(0, testStores-1).Draw(h.t, "store")
	s := h.stores[i]
	v := s.View()
	atCapture := h.m.clone()
	for range rapid.IntRange(0, 5).Draw(h.t, "writes during snapshot") {
		h.follow(h.user("actor"), []string{h.user("t")})
		h.unfollow(h.user("actor"), []string{h.user("t")})
	}
	h.checkExport(v, i, atCapture)
	var buf bytes.Buffer
	if _, err := v.WriteTo(&buf); err != nil {
		h.t.Fatal(err)
	}
	v.Release()
	r, err := ReadFrom(bytes.NewReader(buf.Bytes()), h.cfg)
	if err != nil {
		h.t.Fatalf("ReadFrom: %v", err)
	}
	if err := r.CheckInvariants(); err != nil {
		h.t.Fatalf("restored store: %v", err)
	}
	// The restored Store equals the model at capture.
	saved := h.m
	h.m = atCapture
	for _, u := range h.users {
		if home(u) != i {
			continue
		}
		for k := Following; k <= Mutual; k++ {
			want := h.m.list(k, u)
			got, _, err := r.List(k, u, "", 500)
			if err != nil || !slices.Equal(got, want) {
				h.t.Fatalf("restored list %v of %q: %v %v, want %v", k, u, got, err, want)
			}
		}
	}
	h.m = saved
	// Its snapshot is byte-identical.
	var again bytes.Buffer
	v2 := r.View()
	if _, err := v2.WriteTo(&again); err != nil {
		h.t.Fatal(err)
	}
	v2.Release()
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		h.t.Fatalf("snapshot of the restored store differs")
	}
	r.Close()
}

// checkExport pages through the following entries of View v of store i
// (written to since) with random page sizes and compares them with the
// model at capture: every edge of an actor at home there, once, in list
// order.
func (h *harness) checkExport(v *View, i int, atCapture *model) {
	got := map[string][]Item{}
	pos := StartPosition
	for {
		max := rapid.IntRange(0, 40).Draw(h.t, "export page")
		stop := rapid.IntRange(0, 40).Draw(h.t, "export page stop")
		n := 0
		next, done := v.Following(pos, max, func(a, b []byte, t int64) bool {
			if n == stop {
				return false
			}
			n++
			got[string(a)] = append(got[string(a)], Item{string(b), t})
			return true
		})
		if done {
			break
		}
		pos = next
	}
	for _, u := range h.users {
		if home(u) != i {
			continue
		}
		if want := atCapture.list(Following, u); !slices.Equal(got[u], want) {
			h.t.Fatalf("export of %q: %v, want %v", u, got[u], want)
		}
		delete(got, u)
	}
	if len(got) > 0 {
		h.t.Fatalf("export has actors of other stores: %v", got)
	}
}

// restore replaces a Store with one rebuilt from its snapshot.
func (h *harness) restore() {
	i := rapid.IntRange(0, testStores-1).Draw(h.t, "store")
	v := h.stores[i].View()
	var buf bytes.Buffer
	if _, err := v.WriteTo(&buf); err != nil {
		h.t.Fatal(err)
	}
	v.Release()
	r, err := ReadFrom(&buf, h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.stores[i].Close()
	h.stores[i] = r
}

func (h *harness) invariants() {
	for i, s := range h.stores {
		if err := s.CheckInvariants(); err != nil {
			h.t.Fatalf("store %d: %v", i, err)
		}
	}
	if h.cfg.Users != nil {
		if err := checkSharedUsers(h.cfg.Users, h.stores[:]); err != nil {
			h.t.Fatal(err)
		}
	}
}

// checkSharedUsers verifies a table shared by stores: it holds exactly the
// users they name, each with exactly their references.
func checkSharedUsers(u *Users, stores []*Store) error {
	refs := map[uint32]uint32{}
	for _, s := range stores {
		s.eachRec(func(r *userRec) bool {
			refs[r.uid]++
			for k := range numKinds {
				s.st.each(r.sets[k], func(peer uint32, _ int64) { refs[peer]++ })
			}
			return true
		})
	}
	if got := u.live.Load(); got != int64(len(refs)) {
		return fmt.Errorf("shared table holds %d users, the stores name %d", got, len(refs))
	}
	for uid, n := range refs {
		if got := u.rec(uid).refs.Load(); got != n {
			return fmt.Errorf("uid %d (%q): %d references, the stores hold %d", uid, u.name(uid), got, n)
		}
	}
	return nil
}

func (h *harness) targets(name string, max int) []string {
	n := rapid.IntRange(1, max).Draw(h.t, name+"n")
	ts := make([]string, n)
	for i := range ts {
		ts[i] = h.target(name)
	}
	return ts
}

func TestStoreMatchesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := newHarness(t)
		celeb := h.users[0]
		steps := rapid.IntRange(1, 300).Draw(t, "steps")
		for range steps {
			switch rapid.IntRange(0, 15).Draw(t, "action") {
			case 0, 1:
				h.follow(h.user("actor"), h.targets("t", h.cfg.MaxTargets))
			case 2:
				h.unfollow(h.user("actor"), h.targets("t", h.cfg.MaxTargets))
			case 3:
				// A crowd follows one user: builds large follower lists.
				for range rapid.IntRange(1, 160).Draw(t, "crowd") {
					if a := h.user("fan"); a != celeb {
						h.follow(a, []string{celeb})
					}
				}
			case 4:
				// Many of the celebrity's followers leave: shrinks large
				// lists back (page merges, conversion to a small list).
				fans := slices.Sorted(maps.Keys(h.m.rev[celeb]))
				for range rapid.IntRange(0, len(fans)).Draw(t, "leave") {
					i := rapid.IntRange(0, len(fans)-1).Draw(t, "fan")
					h.unfollow(fans[i], []string{celeb})
				}
				fans = slices.Sorted(maps.Keys(h.m.fwd[celeb]))
				for range rapid.IntRange(0, len(fans)).Draw(t, "drop") {
					i := rapid.IntRange(0, len(fans)-1).Draw(t, "followee")
					h.unfollow(celeb, []string{fans[i]})
				}
			case 5:
				// One user follows many: builds large following lists.
				a := rapid.SampledFrom([]string{celeb, h.user("greedy")}).Draw(t, "greedy")
				for range rapid.IntRange(1, 9).Draw(t, "batches") {
					h.follow(a, h.targets("t", h.cfg.MaxTargets))
				}
			case 6, 7:
				h.deliver()
			case 8:
				h.checkList(Kind(rapid.IntRange(1, 3).Draw(t, "k")), rapid.SampledFrom([]string{celeb, h.user("u")}).Draw(t, "who"))
			case 9:
				h.check(h.user("actor"), h.targets("c", h.cfg.MaxCheck))
			case 10:
				h.startScan()
			case 11:
				h.stepScan()
			case 12:
				h.snapshot()
			case 13:
				h.restore()
			case 14:
				h.deliverAll()
			case 15:
				h.importEdges(h.user("actor"), h.targets("t", 3*h.cfg.MaxTargets))
			}
			h.invariants()
		}
		h.deliverAll()
		h.invariants()
		for _, u := range h.users {
			for k := Following; k <= Mutual; k++ {
				h.checkList(k, u)
			}
		}
		for len(h.scans) > 0 {
			h.stepScan()
		}
	})
}

func TestErrorsAreCodes(t *testing.T) {
	s, _ := New(DefaultConfig())
	_, err := s.Follow("", []string{"a"}, 1)
	if !errors.Is(err, codes.ErrInvalidParam) {
		t.Fatalf("got %v", err)
	}
}
