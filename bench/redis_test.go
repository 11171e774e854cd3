package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/followgraph/followgraph/codes"
)

// startRedis runs a private redis-server on a free loopback port for the
// test and returns its address. args are appended to the command line.
func startRedis(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not on PATH (%v): run .ci/deps.sh to install it", err)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		addr, err := tryStartRedis(t, bin, args)
		if err == nil {
			return addr
		}
		lastErr = err // most likely the port was taken meanwhile: try another
	}
	t.Fatalf("starting redis-server: %v", lastErr)
	return ""
}

func tryStartRedis(t *testing.T, bin string, args []string) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	cmdArgs := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no"}
	cmdArgs = append(cmdArgs, args...) // later options override earlier ones
	cmd := exec.Command(bin, cmdArgs...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}

	deadline := time.Now().Add(10 * time.Second)
	for {
		if pingRaw(addr) {
			t.Cleanup(stop)
			return addr, nil
		}
		select {
		case <-exited:
			return "", fmt.Errorf("redis-server exited at start: %s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return "", fmt.Errorf("redis-server on %s does not answer PING after 10s: %s", addr, out.String())
		}
	}
}

// pingRaw sends an inline PING and reports whether +PONG came back.
func pingRaw(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 7)
	n, _ := c.Read(buf)
	return strings.HasPrefix(string(buf[:n]), "+PONG")
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newRedisTarget starts a server and opens a target on it through Open.
func newRedisTarget(t *testing.T, args ...string) *RedisTarget {
	t.Helper()
	addr := startRedis(t, args...)
	ctx := context.Background()
	tg, err := Open(ctx, "redis://"+addr, TargetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	r, ok := tg.(*RedisTarget)
	if !ok {
		t.Fatalf("Open returned %T", tg)
	}
	return r
}

// followAt makes actor follow targets at an explicit time (both sides, in
// one MULTI/EXEC, as Follow does), to build ties deterministically.
func followAt(t *testing.T, r *RedisTarget, score float64, actor string, targets ...string) {
	t.Helper()
	must(t, r.tx(context.Background(), r.appendFollows(nil, actor, targets, score)))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func checkTypes(t *testing.T, r *RedisTarget, actor string, targets []string, want []uint8) {
	t.Helper()
	got, err := r.Check(context.Background(), actor, targets)
	must(t, err)
	if !slices.Equal(got, want) {
		t.Fatalf("Check(%s, %v) = %v, want %v", actor, targets, got, want)
	}
}

func checkCounts(t *testing.T, r *RedisTarget, users []string, want []Counts) {
	t.Helper()
	got, err := r.Counts(context.Background(), users)
	must(t, err)
	if !slices.Equal(got, want) {
		t.Fatalf("Counts(%v) = %+v, want %+v", users, got, want)
	}
}

func TestRedisFollowCheckCounts(t *testing.T) {
	r := newRedisTarget(t)
	ctx := context.Background()

	// Every combination of x->y and y->x, from both sides, through
	// follows and unfollows.
	for state := 0; state < 4; state++ {
		x, y := fmt.Sprintf("x%d", state), fmt.Sprintf("y%d", state)
		xy, yx := state&2 != 0, state&1 != 0
		if xy {
			must(t, r.Follow(ctx, x, []string{y}))
		}
		if yx {
			must(t, r.Follow(ctx, y, []string{x}))
		}
		// From x: flag 2 = x follows y, flag 1 = y follows x.
		checkTypes(t, r, x, []string{y}, []uint8{uint8(state)})
		swapped := uint8(0)
		if yx {
			swapped |= 2
		}
		if xy {
			swapped |= 1
		}
		checkTypes(t, r, y, []string{x}, []uint8{swapped})
		b := func(v bool) int64 {
			if v {
				return 1
			}
			return 0
		}
		checkCounts(t, r, []string{x, y}, []Counts{
			{Following: b(xy), Followers: b(yx), Mutual: b(xy && yx)},
			{Following: b(yx), Followers: b(xy), Mutual: b(xy && yx)},
		})
		// Undo one side at a time.
		must(t, r.Unfollow(ctx, x, []string{y}))
		checkTypes(t, r, x, []string{y}, []uint8{uint8(state) &^ 2})
		must(t, r.Unfollow(ctx, y, []string{x}))
		checkTypes(t, r, x, []string{y}, []uint8{0})
		checkCounts(t, r, []string{x, y}, []Counts{{}, {}})
	}

	// A batch: a follows b and d; c and d follow a.
	must(t, r.Follow(ctx, "a", []string{"b", "d"}))
	must(t, r.Follow(ctx, "c", []string{"a"}))
	must(t, r.Follow(ctx, "d", []string{"a", "b"}))
	checkTypes(t, r, "a", []string{"b", "c", "d", "e", "a"}, []uint8{2, 1, 3, 0, 0})
	checkTypes(t, r, "b", []string{"a", "d"}, []uint8{1, 1})
	checkCounts(t, r, []string{"a", "b", "c", "d", "nobody"}, []Counts{
		{Following: 2, Followers: 2, Mutual: 1},
		{Following: 0, Followers: 2, Mutual: 0},
		{Following: 1, Followers: 0, Mutual: 0},
		{Following: 2, Followers: 1, Mutual: 1},
		{},
	})
	must(t, r.Unfollow(ctx, "a", []string{"d", "b", "zzz"}))
	must(t, r.Unfollow(ctx, "a", []string{"d"})) // idempotent
	checkTypes(t, r, "a", []string{"b", "c", "d"}, []uint8{0, 1, 1})
	checkCounts(t, r, []string{"a", "d"}, []Counts{
		{Following: 0, Followers: 2, Mutual: 0},
		{Following: 2, Followers: 0, Mutual: 0},
	})
	if got, err := r.Counts(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("Counts(nil) = %v, %v", got, err)
	}
	if got, err := r.Check(ctx, "a", nil); err != nil || len(got) != 0 {
		t.Fatalf("Check(a, nil) = %v, %v", got, err)
	}
}

// listAll pages through a list and checks the paging contract: full pages
// except the last, Next "" only on the last one.
func listAll(t *testing.T, r *RedisTarget, kind ListKind, user string, limit int) []Item {
	t.Helper()
	var all []Item
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatalf("%s(%s): paging does not end", kind, user)
		}
		p, err := r.List(context.Background(), kind, user, cursor, limit)
		must(t, err)
		all = append(all, p.Items...)
		if p.Next == "" {
			if len(p.Items) > limit || (len(p.Items) == 0 && pages > 0) {
				t.Fatalf("%s(%s): last page has %d items (limit %d)", kind, user, len(p.Items), limit)
			}
			return all
		}
		if len(p.Items) != limit {
			t.Fatalf("%s(%s): page %d has %d items, want %d", kind, user, pages, len(p.Items), limit)
		}
		cursor = p.Next
	}
}

// checkOrder checks that items are newest first, each user once, and are
// exactly want.
func checkOrder(t *testing.T, items []Item, want []string) {
	t.Helper()
	seen := map[string]bool{}
	for i, it := range items {
		if seen[it.User] {
			t.Fatalf("%s returned twice", it.User)
		}
		seen[it.User] = true
		if i > 0 && it.Time > items[i-1].Time {
			t.Fatalf("item %d (%s, %d) is newer than item %d (%s, %d)", i, it.User, it.Time, i-1, items[i-1].User, items[i-1].Time)
		}
		if it.Time <= 0 {
			t.Fatalf("item %s has time %d", it.User, it.Time)
		}
	}
	if len(items) != len(want) {
		t.Fatalf("%d items, want %d", len(items), len(want))
	}
	for _, w := range want {
		if !seen[w] {
			t.Fatalf("%s missing", w)
		}
	}
}

func TestRedisFollowIdempotentAndSelf(t *testing.T) {
	r := newRedisTarget(t)
	ctx := context.Background()
	must(t, r.Follow(ctx, "a", []string{"b"}))
	first := listAll(t, r, Following, "a", 10)
	time.Sleep(5 * time.Millisecond)
	must(t, r.Follow(ctx, "a", []string{"b", "c"}))
	again := listAll(t, r, Following, "a", 10)
	if len(first) != 1 || len(again) != 2 {
		t.Fatalf("following: %v then %v", first, again)
	}
	byUser := map[string]int64{}
	for _, it := range again {
		byUser[it.User] = it.Time
	}
	if byUser["b"] != first[0].Time {
		t.Fatalf("following again changed the time of b: %d, was %d", byUser["b"], first[0].Time)
	}
	if byUser["c"] <= byUser["b"] {
		t.Fatalf("c (%d) should be newer than b (%d)", byUser["c"], byUser["b"])
	}
	fb := listAll(t, r, Followers, "b", 10)
	if len(fb) != 1 || fb[0] != (Item{"a", first[0].Time}) {
		t.Fatalf("followers(b) = %v, want a at %d", fb, first[0].Time)
	}

	// Self-follows are skipped, the rest of the batch applies.
	must(t, r.Follow(ctx, "s", []string{"s"}))
	must(t, r.Follow(ctx, "s", []string{"s", "t"}))
	must(t, r.Load(ctx, []FollowBatch{{Actor: "s", Targets: []string{"s"}}}))
	must(t, r.Unfollow(ctx, "s", []string{"s"}))
	checkTypes(t, r, "s", []string{"s", "t"}, []uint8{0, 2})
	checkCounts(t, r, []string{"s"}, []Counts{{Following: 1}})
}

func TestRedisListPagingTies(t *testing.T) {
	r := newRedisTarget(t)
	ctx := context.Background()

	// 250 followers in the same millisecond (concurrent follows can do
	// that): a 250-way tie.
	s0 := float64(time.Now().Add(-time.Minute).UnixMilli())
	var want []string
	for i := 0; i < 250; i++ {
		u := fmt.Sprintf("f%03d", i)
		want = append(want, u)
		followAt(t, r, s0, u, "celeb")
	}
	for _, limit := range []int{7, 10, 250, 500} {
		items := listAll(t, r, Followers, "celeb", limit)
		checkOrder(t, items, want)
		if items[0].Time != items[249].Time || items[0].Time != int64(s0) {
			t.Fatalf("tie has scores %d..%d, want %d", items[0].Time, items[249].Time, int64(s0))
		}
	}

	// Later follows: a 6-way tie one millisecond later, so pages cross
	// score boundaries; then one Load call of 3 batches, each batch its
	// own millisecond (the call's time + i); then plain follows.
	for i := 0; i < 6; i++ {
		u := fmt.Sprintf("g%02d", i)
		want = append(want, u)
		followAt(t, r, s0+1, u, "celeb")
	}
	var batch []FollowBatch
	for i := 6; i < 9; i++ {
		u := fmt.Sprintf("g%02d", i)
		want = append(want, u)
		batch = append(batch, FollowBatch{Actor: u, Targets: []string{"celeb"}})
	}
	must(t, r.Load(ctx, batch))
	time.Sleep(10 * time.Millisecond) // past the Load's last batch time
	for i := 9; i < 12; i++ {
		u := fmt.Sprintf("g%02d", i)
		want = append(want, u)
		must(t, r.Follow(ctx, u, []string{"celeb"}))
	}
	for _, limit := range []int{1, 3, 7, 131, 262} {
		items := listAll(t, r, Followers, "celeb", limit)
		checkOrder(t, items, want)
		if !strings.HasPrefix(items[len(items)-1].User, "f") || !strings.HasPrefix(items[0].User, "g") {
			t.Fatalf("limit %d: first %s, last %s", limit, items[0].User, items[len(items)-1].User)
		}
		times := map[string]int64{}
		for _, it := range items {
			times[it.User] = it.Time
		}
		if times["g07"] != times["g06"]+1 || times["g08"] != times["g06"]+2 {
			t.Fatalf("Load batch times %d, %d, %d: want consecutive milliseconds", times["g06"], times["g07"], times["g08"])
		}
		if times["g05"] != int64(s0)+1 || times["g09"] <= times["g08"] {
			t.Fatalf("times: g05 %d (want %d), g08 %d, g09 %d", times["g05"], int64(s0)+1, times["g08"], times["g09"])
		}
	}
	checkCounts(t, r, []string{"celeb"}, []Counts{{Followers: 262}})

	// The following side pages the same way: one actor, 250 targets in
	// one Load call of 13 batches of up to 20 targets, a tie each.
	var targets []string
	batch = batch[:0]
	for i := 0; i < 250; i += 20 {
		b := FollowBatch{Actor: "fan"}
		for j := i; j < min(i+20, 250); j++ {
			b.Targets = append(b.Targets, fmt.Sprintf("t%03d", j))
		}
		targets = append(targets, b.Targets...)
		batch = append(batch, b)
	}
	must(t, r.Load(ctx, batch))
	fan := listAll(t, r, Following, "fan", 7)
	checkOrder(t, fan, targets)
	var t0 int64
	for _, it := range fan {
		if it.User == "t000" {
			t0 = it.Time
		}
	}
	for _, it := range fan {
		j, _ := strconv.Atoi(it.User[1:])
		if it.Time != t0+int64(j/20) {
			t.Fatalf("following(fan): %s at %d, want batch %d's time %d", it.User, it.Time, j/20, t0+int64(j/20))
		}
	}

	// Limit 0 is 100; unknown users have empty lists.
	p, err := r.List(ctx, Followers, "celeb", "", 0)
	must(t, err)
	if len(p.Items) != 100 || p.Next == "" {
		t.Fatalf("limit 0: %d items, next %q", len(p.Items), p.Next)
	}
	for _, k := range []ListKind{Following, Followers, Mutual} {
		p, err := r.List(ctx, k, "nobody", "", 10)
		if err != nil || len(p.Items) != 0 || p.Next != "" {
			t.Fatalf("%s(nobody) = %+v, %v", k, p, err)
		}
	}
	// Bad cursors and limits are InvalidParam.
	for _, c := range []struct {
		kind   ListKind
		cursor string
		limit  int
	}{
		{Followers, "garbage", 10}, {Followers, "12:0", 10}, {Followers, "x:1", 10},
		{Mutual, "-3", 10}, {Mutual, "abc", 10}, {Following, "", 501}, {Following, "", -1},
	} {
		_, err := r.List(ctx, c.kind, "celeb", c.cursor, c.limit)
		if codes.Of(err) != codes.InvalidParam {
			t.Errorf("List(%s, %q, %d) = %v, want InvalidParam", c.kind, c.cursor, c.limit, err)
		}
	}
}

func TestRedisMutualPaging(t *testing.T) {
	r := newRedisTarget(t)
	ctx := context.Background()

	// One Load call (batch i at the call's time + i): u00..u19 follow m,
	// as do v1 and v2 (followers of m that m does not follow: not mutual),
	// then m follows u00..u39 in two batches, after all the follow-backs:
	// u00..u19 are mutual at the time of m's first batch, one 20-way tie.
	// u20..u29 follow back later, so their mutual time is their own.
	var batch []FollowBatch
	var want []string
	for i := 0; i < 20; i++ {
		u := fmt.Sprintf("u%02d", i)
		want = append(want, u)
		batch = append(batch, FollowBatch{Actor: u, Targets: []string{"m"}})
	}
	batch = append(batch, FollowBatch{Actor: "v1", Targets: []string{"m"}}, FollowBatch{Actor: "v2", Targets: []string{"m"}})
	for i := 0; i < 40; i += 20 {
		b := FollowBatch{Actor: "m"}
		for j := i; j < i+20; j++ {
			b.Targets = append(b.Targets, fmt.Sprintf("u%02d", j))
		}
		batch = append(batch, b)
	}
	must(t, r.Load(ctx, batch))
	time.Sleep(time.Duration(len(batch)+5) * time.Millisecond) // past the Load's last batch time
	for i := 20; i < 30; i++ {
		u := fmt.Sprintf("u%02d", i)
		want = append(want, u)
		must(t, r.Follow(ctx, u, []string{"m"}))
	}
	checkCounts(t, r, []string{"m"}, []Counts{{Following: 40, Followers: 32, Mutual: 30}})

	following := map[string]int64{}
	for _, it := range listAll(t, r, Following, "m", 500) {
		following[it.User] = it.Time
	}
	followers := map[string]int64{}
	for _, it := range listAll(t, r, Followers, "m", 500) {
		followers[it.User] = it.Time
	}
	for _, limit := range []int{1, 7, 10, 30, 100} {
		items := listAll(t, r, Mutual, "m", limit)
		checkOrder(t, items, want)
		for i, it := range items {
			if w := max(following[it.User], followers[it.User]); it.Time != w {
				t.Fatalf("mutual %s at %d, want the later follow %d", it.User, it.Time, w)
			}
			// Equal times by user ascending.
			if i > 0 && it.Time == items[i-1].Time && it.User < items[i-1].User {
				t.Fatalf("mutual ties out of order: %s after %s", it.User, items[i-1].User)
			}
		}
		// The later follow-backs (u20..u29) come first.
		var first []string
		for _, it := range items[:10] {
			first = append(first, it.User)
		}
		slices.Sort(first)
		if !slices.Equal(first, want[20:]) {
			t.Fatalf("limit %d: mutual starts with %v, want the later %v", limit, first, want[20:])
		}
		// Then u00..u19, one tie (at m's first Load batch), by user.
		for i, it := range items[10:] {
			if it.User != want[i] || it.Time != items[10].Time {
				t.Fatalf("limit %d: mutual item %d is %s at %d, want %s at %d", limit, 10+i, it.User, it.Time, want[i], items[10].Time)
			}
		}
	}
	// The mutual list from the other side: u05's only mutual is m.
	if items := listAll(t, r, Mutual, "u05", 10); len(items) != 1 || items[0].User != "m" {
		t.Fatalf("mutual(u05) = %v", items)
	}
}

func TestRedisMemoryInfoFlush(t *testing.T) {
	r := newRedisTarget(t)
	ctx := context.Background()
	must(t, r.Follow(ctx, "a", []string{"b", "c"}))
	m, err := r.Memory(ctx)
	must(t, err)
	if m.RSSBytes <= 0 || m.Source == "" || m.Edges != 0 {
		t.Fatalf("Memory = %+v", m)
	}
	c0, src, err := r.CPUSeconds(ctx)
	must(t, err)
	for i := range 2000 {
		must(t, r.Follow(ctx, "cpu", []string{strconv.Itoa(i)}))
	}
	c1, _, err := r.CPUSeconds(ctx)
	must(t, err)
	if c0 <= 0 || c1 <= c0 || src == "" {
		t.Fatalf("CPUSeconds %v then %v after 2000 follows (%s)", c0, c1, src)
	}
	in, err := r.Info(ctx)
	must(t, err)
	if in.Kind != "redis" || in.Addr == "" || in.Version == "" || in.Version[0] < '0' || in.Version[0] > '9' {
		t.Fatalf("Info = %+v", in)
	}
	for _, s := range []string{"appendonly=no", "appendfsync=", "save= ", "client=rueidis auto-pipelining", "conns=4"} {
		if !strings.Contains(in.Notes, s) {
			t.Errorf("Info notes %q lack %q", in.Notes, s)
		}
	}
	must(t, r.Quiesce(ctx))
	must(t, r.Flush(ctx))
	checkCounts(t, r, []string{"a", "b", "c"}, []Counts{{}, {}, {}})
	checkTypes(t, r, "a", []string{"b"}, []uint8{0})
	if n, err := r.Client().Do(ctx, r.Client().B().Dbsize().Build()).AsInt64(); err != nil || n != 0 {
		t.Fatalf("after Flush: %d keys, %v", n, err)
	}
}

func TestRedisAppendFsyncAlways(t *testing.T) {
	dir := t.TempDir()
	r := newRedisTarget(t, "--appendonly", "yes", "--appendfsync", "always", "--dir", dir)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		must(t, r.Follow(ctx, fmt.Sprintf("p%d", i), []string{"q", "r"}))
	}
	checkCounts(t, r, []string{"q"}, []Counts{{Followers: 5}})
	in, err := r.Info(ctx)
	must(t, err)
	for _, s := range []string{"appendonly=yes", "appendfsync=always"} {
		if !strings.Contains(in.Notes, s) {
			t.Errorf("Info notes %q lack %q", in.Notes, s)
		}
	}
	// The follows are in the append-only file (appendonlydir in Redis 7).
	var size int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && strings.Contains(fi.Name(), "aof") {
			size += fi.Size()
		}
		return nil
	})
	if size == 0 {
		t.Fatalf("no append-only file data under %s", dir)
	}
}

// Concurrent follows, unfollows and reads keep both sides consistent.
func TestRedisConcurrent(t *testing.T) {
	r := newRedisTarget(t)
	ctx := context.Background()
	const workers, users = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				actor := fmt.Sprintf("c%02d", (w*7+i)%users)
				targets := []string{fmt.Sprintf("c%02d", (w+i*3)%users), fmt.Sprintf("c%02d", (w*5+i)%users)}
				var err error
				switch i % 4 {
				case 0, 1:
					err = r.Follow(ctx, actor, targets)
				case 2:
					err = r.Unfollow(ctx, actor, targets[:1])
				default:
					_, err = r.Check(ctx, actor, targets)
					if err == nil {
						_, err = r.Counts(ctx, targets)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Every following edge has its followers twin with the same time.
	edges := 0
	for i := 0; i < users; i++ {
		u := fmt.Sprintf("c%02d", i)
		for _, it := range listAll(t, r, Following, u, 500) {
			edges++
			var found bool
			for _, f := range listAll(t, r, Followers, it.User, 500) {
				if f.User == u {
					found = f.Time == it.Time
				}
			}
			if !found {
				t.Fatalf("%s follows %s at %d: followers side missing or differs", u, it.User, it.Time)
			}
		}
	}
	if edges == 0 {
		t.Fatal("no edges left")
	}
}

// Errors carry a code: a server that went away is Internal, an expired
// context is Timeout.
func TestRedisErrorCodes(t *testing.T) {
	addr := startRedis(t)
	ctx := context.Background()
	r, err := OpenRedis(ctx, addr, TargetOptions{Conns: 8})
	must(t, err)
	defer r.Close()

	dctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := r.Follow(dctx, "a", []string{"b"}); codes.Of(err) != codes.Timeout {
		t.Fatalf("Follow with a cancelled context = %v, want Timeout", err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	dead := l.Addr().String()
	l.Close()
	_, err = OpenRedis(ctx, dead, TargetOptions{})
	if err == nil || codes.Of(err) != codes.Internal {
		t.Fatalf("OpenRedis(%s) = %v, want an Internal error", dead, err)
	}
	var ce *codes.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v carries no code", err)
	}
}
