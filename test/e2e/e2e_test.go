// Package e2e tests the followd binary as a user runs it: built with go
// build, started as a process, reached over TCP, killed with signals.
package e2e

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/wire"
)

var followd, followbench, followctl, gencerts string // paths of the built binaries

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "followd-e2e")
	if err != nil {
		panic(err)
	}
	followd = filepath.Join(dir, "followd")
	followbench = filepath.Join(dir, "followbench")
	followctl = filepath.Join(dir, "followctl")
	gencerts = filepath.Join(dir, "gencerts")
	build := exec.Command("go", "build", "-o", dir, "../../cmd/followd", "../../cmd/followbench", "../../cmd/followctl", "../../scripts/gencerts")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binaries:", err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running followd.
type proc struct {
	dir  string   // data directory
	args []string // flags after --data-dir (restart passes them again)
	cmd  *exec.Cmd
	addr string
	http string
	logs *strings.Builder
	mu   *sync.Mutex
	done chan error // the exit status, once
	// exited is closed when the process has exited.
	exited chan struct{}
}

var readyLine = regexp.MustCompile(`followd ready: .*listen=(\S+) http=(\S*)`)

// start runs followd with args on dir and waits for its ready line.
func start(t *testing.T, dir string, args ...string) *proc { return startB(t, dir, args...) }

func startB(t testing.TB, dir string, args ...string) *proc {
	t.Helper()
	p, err := startProc(dir, args...)
	if p != nil {
		t.Cleanup(p.stop)
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startProc runs followd with args on dir and waits for its ready line.
// It returns the process (to be stopped) with an error if followd exited
// or did not get ready; it never calls into testing, so it can run in any
// goroutine.
func startProc(dir string, args ...string) (*proc, error) {
	all := append([]string{"--data-dir", dir, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--shards", "4"}, args...)
	cmd := exec.Command(followd, all...)
	stderr, _ := cmd.StderrPipe()
	p := &proc{dir: dir, args: args, cmd: cmd, logs: &strings.Builder{}, mu: &sync.Mutex{}, done: make(chan error, 1), exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan [2]string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := readyLine.FindStringSubmatch(sc.Text()); m != nil {
				ready <- [2]string{m[1], m[2]}
			}
		}
	}()
	go func() {
		// Wait closes the pipe: read it to the end first.
		<-scanned
		err := cmd.Wait()
		close(p.exited)
		p.done <- err
	}()
	select {
	case a := <-ready:
		p.addr, p.http = a[0], a[1]
		return p, nil
	case err := <-p.done:
		p.done <- err
		return p, fmt.Errorf("followd exited at start: %v\n%s", err, p.log())
	case <-time.After(60 * time.Second):
		return p, fmt.Errorf("followd did not get ready:\n%s", p.log())
	}
}

// stop kills the process if it still runs and waits for it.
func (p *proc) stop() {
	select {
	case <-p.exited:
	default:
		p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

func (p *proc) kill(t testing.TB) {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// untilStopped runs body(w, i) for i = 0, 1, 2... in each of n goroutines
// (w = 0 to n-1) until the returned stop is called, which waits for them:
// the background load that a test keeps up while it looks at the server.
func untilStopped(n int, body func(w, i int)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				body(w, i)
			}
		})
	}
	return func() {
		close(done)
		wg.Wait()
	}
}

func newClient(t *testing.T, addr string, token string) *client.Client {
	t.Helper()
	c, err := client.New(context.Background(), client.Config{Addrs: []string{addr}, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Every operation and its limits, through the binary.
func TestOperationsAndLimits(t *testing.T) {
	p := start(t, t.TempDir())
	c := newClient(t, p.addr, "")
	ctx := context.Background()
	targets := make([]string, 20)
	for i := range targets {
		targets[i] = fmt.Sprintf("t%d", i)
	}
	res, err := c.Follow(ctx, "alice", targets, client.Sync())
	if err != nil || len(res) != 20 {
		t.Fatal(res, err)
	}
	if _, err := c.Follow(ctx, "alice", append(targets, "t20")); !errors.Is(err, client.ErrInvalidParam) {
		t.Fatalf("21 targets: %v", err)
	}
	checks := make([]string, 101)
	for i := range checks {
		checks[i] = "x"
	}
	if _, err := c.Check(ctx, "alice", checks...); !errors.Is(err, client.ErrInvalidParam) {
		t.Fatalf("101 checks: %v", err)
	}
	if _, err := c.Check(ctx, "alice", checks[:100]...); err != nil {
		t.Fatalf("100 checks: %v", err)
	}
	// The server takes at most 100 users per info request; the client
	// splits a larger call.
	if _, err := c.Call(ctx, p.addr, wire.OpInfo, func(b []byte) []byte { return wire.AppendUsersRequest(b, checks) }); !errors.Is(err, client.ErrInvalidParam) {
		t.Fatalf("101 infos in one request: %v", err)
	}
	if is, err := c.Info(ctx, checks...); err != nil || len(is) != 101 {
		t.Fatalf("101 infos through the client: %d results, %v", len(is), err)
	}
	if _, err := c.Followers(ctx, "t1", client.Limit(501)); !errors.Is(err, client.ErrInvalidParam) {
		t.Fatalf("limit 501: %v", err)
	}
	p1, err := c.Following(ctx, "alice", client.Limit(7))
	if err != nil || len(p1.Items) != 7 {
		t.Fatal(p1, err)
	}
	all := p1.Items
	for cur := p1.NextCursor; cur != ""; {
		pg, err := c.Following(ctx, "alice", client.Limit(7), client.Cursor(cur))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, pg.Items...)
		cur = pg.NextCursor
	}
	if len(all) != 20 {
		t.Fatalf("paged %d of 20", len(all))
	}
	in, err := c.Info(ctx, "alice", "t5")
	if err != nil || in[0].Following != 20 || in[1].Followers != 1 {
		t.Fatalf("info: %+v %v", in, err)
	}
	res, err = c.Unfollow(ctx, "alice", targets[:5], client.Sync())
	if err != nil || res[0].Code != 0 {
		t.Fatal(res, err)
	}
	ck, _ := c.Check(ctx, "alice", "t0", "t19")
	if ck[0].FollowType != 0 || ck[1].FollowType != 2 {
		t.Fatalf("check: %+v", ck)
	}
}

// Paging while writes happen: users present for the whole scan are
// returned exactly once.
func TestStablePagingUnderWrites(t *testing.T) {
	p := start(t, t.TempDir())
	c := newClient(t, p.addr, "")
	ctx := context.Background()
	const stayers = 300
	for i := 0; i < stayers; i++ {
		if _, err := c.Follow(ctx, fmt.Sprintf("s%03d", i), []string{"celeb"}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // reverse side, without sync
	stop := untilStopped(1, func(_, i int) {
		u := fmt.Sprintf("churn%d", i%50)
		if i%2 == 0 {
			c.Follow(ctx, u, []string{"celeb"})
		} else {
			c.Unfollow(ctx, u, []string{"celeb"})
		}
	})
	seen := map[string]int{}
	cursor := ""
	for {
		pg, err := c.Followers(ctx, "celeb", client.Limit(13), client.Cursor(cursor))
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range pg.Items {
			seen[it.UserID]++
		}
		if pg.NextCursor == "" {
			break
		}
		cursor = pg.NextCursor
		time.Sleep(2 * time.Millisecond)
	}
	stop()
	for i := range stayers {
		if n := seen[fmt.Sprintf("s%03d", i)]; n != 1 {
			t.Fatalf("s%03d returned %d times", i, n)
		}
	}
	for u, n := range seen {
		if n != 1 {
			t.Fatalf("%s returned %d times", u, n)
		}
	}
}

// Acknowledged writes survive kill -9 of the process.
func TestKillDashNineLosesNoAcknowledgedWrite(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir)
	c := newClient(t, p.addr, "")
	var acked sync.Map // "actor>target" -> followTime
	var n atomic.Int64
	stop := untilStopped(8, func(w, i int) {
		actor, target := fmt.Sprintf("k%d", w), fmt.Sprintf("v%d", i)
		res, err := c.Follow(context.Background(), actor, []string{target})
		if err == nil && res[0].Code == 0 {
			acked.Store(actor+">"+target, true)
			n.Add(1)
		}
	})
	for n.Load() < 300 {
		time.Sleep(5 * time.Millisecond)
	}
	p.kill(t)
	stop()
	p2 := start(t, dir)
	c2 := newClient(t, p2.addr, "")
	following := map[string]map[string]bool{}
	for w := range 8 {
		actor := fmt.Sprintf("k%d", w)
		following[actor] = map[string]bool{}
		cur := ""
		for {
			pg, err := c2.Following(context.Background(), actor, client.Limit(500), client.Cursor(cur))
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range pg.Items {
				following[actor][it.UserID] = true
			}
			if cur = pg.NextCursor; cur == "" {
				break
			}
		}
	}
	missing := 0
	acked.Range(func(k, _ any) bool {
		a, b, _ := strings.Cut(k.(string), ">")
		if !following[a][b] {
			missing++
		}
		return true
	})
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged follows lost after kill -9", missing, n.Load())
	}
	t.Logf("%d acknowledged follows, all present after kill -9 and restart", n.Load())
}

// SIGTERM with requests in flight: the process exits cleanly, every
// request gets an answer (its result, or 40008: not applied), and what was
// acknowledged is kept.
func TestGracefulShutdownWithRequestsInFlight(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir)
	c, err := client.New(context.Background(), client.Config{Addrs: []string{p.addr}, Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var acked, unanswered sync.Map
	var wg sync.WaitGroup
	var ok, refused, other, noAnswer atomic.Int64
	for w := range 32 {
		wg.Go(func() {
			for i := 0; i < 400; i++ {
				actor, target := fmt.Sprintf("g%d", w), fmt.Sprintf("x%d", i)
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				res, err := c.Follow(ctx, actor, []string{target}, client.Sync())
				cancel()
				switch {
				case err == nil && res[0].Code == 0:
					acked.Store(actor+">"+target, true)
					ok.Add(1)
				case errors.Is(err, client.ErrShuttingDown), errors.Is(err, client.ErrShardUnavailable):
					refused.Add(1)
					return
				case errors.Is(err, client.ErrTimeout) && strings.Contains(err.Error(), "lost with the request in flight"):
					// Sent after the server stopped reading: never
					// read, so never applied (checked below).
					unanswered.Store(actor+">"+target, true)
					noAnswer.Add(1)
					return
				default:
					other.Add(1)
					t.Errorf("unclear outcome during shutdown: %+v %v", res, err)
					return
				}
			}
		})
	}
	for ok.Load() < 200 {
		time.Sleep(2 * time.Millisecond)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("followd exited with %v after SIGTERM:\n%s", err, p.log())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("followd did not exit after SIGTERM")
	}
	wg.Wait()
	if !strings.Contains(p.log(), "followd stopped") {
		t.Fatalf("no clean stop in the log:\n%s", p.log())
	}
	p2 := start(t, dir)
	c2 := newClient(t, p2.addr, "")
	lost := 0
	acked.Range(func(k, _ any) bool {
		a, b, _ := strings.Cut(k.(string), ">")
		ck, err := c2.Check(context.Background(), a, b)
		if err != nil || ck[0].FollowType&2 == 0 {
			lost++
		}
		return true
	})
	if lost > 0 {
		t.Fatalf("%d acknowledged writes lost in a graceful shutdown", lost)
	}
	// A request the server read gets its answer before the connection
	// closes (no reset discards it): so an unanswered one was not applied.
	applied := 0
	unanswered.Range(func(k, _ any) bool {
		a, b, _ := strings.Cut(k.(string), ">")
		if ck, err := c2.Check(context.Background(), a, b); err == nil && ck[0].FollowType&2 != 0 {
			applied++
		}
		return true
	})
	if applied > 0 {
		t.Fatalf("%d writes were applied but their answers never reached the client", applied)
	}
	t.Logf("%d acknowledged, %d refused, %d unanswered (not applied) while shutting down", ok.Load(), refused.Load(), noAnswer.Load())
	// The go-away notice: the server answers what it read and refuses
	// (40008) what it reads after telling the client, which sends nothing
	// more; no request is left without an answer, so none ends as an
	// unknown outcome (30007).
	if noAnswer.Load() > 0 {
		t.Fatalf("%d requests got no answer (reported as unknown outcome) in a graceful shutdown", noAnswer.Load())
	}
}

// Bad input of every kind, while a well-behaved client keeps working with
// no errors at all.
func TestBadInputLeavesOthersUnaffected(t *testing.T) {
	p := start(t, t.TempDir(), "--max-conns", "64")
	good := newClient(t, p.addr, "")
	var goodErrs, goodOps atomic.Int64
	stop := untilStopped(1, func(_, i int) {
		ctx := context.Background()
		if _, err := good.Follow(ctx, "goodie", []string{fmt.Sprintf("g%d", i%30)}); err != nil {
			goodErrs.Add(1)
			t.Errorf("good client: %v", err)
		}
		if _, err := good.Following(ctx, "goodie", client.Limit(10)); err != nil {
			goodErrs.Add(1)
			t.Errorf("good client: %v", err)
		}
		goodOps.Add(2)
	})
	dial := func() net.Conn {
		c, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	hello := func(c net.Conn) {
		c.Write(helloFrame(0, 1, "", ""))
		if _, err := wire.ReadFrame(c, nil, 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	expectError := func(c net.Conn, want codes.Code) {
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		payload, err := wire.ReadFrame(c, nil, 1<<20)
		if err != nil {
			t.Fatalf("want error %d, got %v", want, err)
		}
		if _, _, err := wire.ParseResponseHeader(payload); codes.Of(err) != want {
			t.Fatalf("want error %d, got %v", want, err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 1))
	// Garbage instead of a handshake.
	for range 20 {
		c := dial()
		junk := make([]byte, 1+rng.IntN(200))
		for i := range junk {
			junk[i] = byte(rng.IntN(256))
		}
		c.Write(junk)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, c) // the server answers or closes; it never hangs
		c.Close()
	}
	// An oversize frame after the handshake.
	c := dial()
	hello(c)
	c.Write(binary.BigEndian.AppendUint32(nil, 64<<20))
	expectError(c, codes.FrameTooLarge)
	c.Close()
	// Malformed bodies, wrong types, unknown ops, invalid IDs, forged
	// cursors: per-request errors on a connection that stays usable.
	c = dial()
	hello(c)
	send := func(id uint32, op wire.Op, body []byte) { c.Write(reqFrame(id, op, body)) }
	send(1, wire.OpFollow, []byte{0x93, 0x01, 0x02, 0x03})
	expectError(c, codes.InvalidParam)
	send(2, 200, wire.AppendEmpty(nil))
	expectError(c, codes.UnknownOp)
	send(3, wire.OpFollow, wire.AppendWriteRequest(nil, wire.WriteRequest{Actor: "bad\x00id", Targets: []string{"x"}}))
	expectError(c, codes.InvalidParam)
	send(4, wire.OpFollowers, wire.AppendListRequest(nil, wire.ListRequest{User: "goodie", Cursor: "Zm9yZ2VkLWN1cnNvcg"}))
	expectError(c, codes.InvalidParam)
	send(5, wire.OpInfo, []byte{0x91, 0x91, 0xc3})
	expectError(c, codes.InvalidParam)
	c.Close()
	// A truncated frame, then the connection is dropped mid-frame.
	c = dial()
	hello(c)
	c.Write([]byte{0, 0, 1, 0, 0x92, 0x01})
	c.Close()
	// A connection flood beyond --max-conns.
	var flood []net.Conn
	rejected := 0
	for range 100 {
		fc, err := net.Dial("tcp", p.addr)
		if err != nil {
			continue
		}
		flood = append(flood, fc)
	}
	for _, fc := range flood {
		fc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		payload, err := wire.ReadFrame(fc, nil, 1<<20)
		if err == nil {
			if _, _, err := wire.ParseResponseHeader(payload); errors.Is(err, codes.ErrOverloaded) {
				rejected++
			}
		}
	}
	for _, fc := range flood {
		fc.Close()
	}
	if rejected == 0 {
		t.Fatal("a flood of 100 connections over a limit of 64 was not refused")
	}
	// A slow client that sends half a frame and waits.
	slow := dial()
	hello(slow)
	slow.Write([]byte{0, 0, 0, 50, 0x92})
	time.Sleep(200 * time.Millisecond)
	stop()
	slow.Close()
	if goodErrs.Load() > 0 || goodOps.Load() < 20 {
		t.Fatalf("the good client saw %d errors in %d operations", goodErrs.Load(), goodOps.Load())
	}
	t.Logf("good client: %d operations, no errors; %d of 100 flood connections refused", goodOps.Load(), rejected)
}

// Pipelining over the real server: many requests on one connection, with
// writes (which wait for raft) and reads (served at once) interleaved;
// every response matches its request, and reads overtake writes.
func TestPipeliningOnOneConnection(t *testing.T) {
	p := start(t, t.TempDir())
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(helloFrame(0, 1, "", ""))
	br := bufio.NewReader(c)
	if _, err := wire.ReadFrame(br, nil, 1<<20); err != nil {
		t.Fatal(err)
	}
	var out []byte
	kinds := map[uint32]wire.Op{}
	for i := uint32(1); i <= 200; i++ {
		op := wire.OpPing
		var body []byte
		if i%2 == 1 {
			op = wire.OpFollow
			body = wire.AppendWriteRequest(nil, wire.WriteRequest{Actor: fmt.Sprintf("p%d", i), Targets: []string{"q"}, Sync: true})
		} else {
			body = wire.AppendEmpty(nil)
		}
		kinds[i] = op
		out = append(out, reqFrame(i, op, body)...)
	}
	c.Write(out) // 200 requests in one write
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	seen := map[uint32]bool{}
	overtaken := false
	pendingWrite := false
	for range 200 {
		payload, err := wire.ReadFrame(br, nil, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		id, body, err := wire.ParseResponseHeader(payload)
		if err != nil || seen[id] || kinds[id] == 0 && id != 0 {
			t.Fatalf("response %d: %v (seen %v)", id, err, seen[id])
		}
		seen[id] = true
		if kinds[id] == wire.OpFollow {
			if rs, err := wire.ParseResults(body); err != nil || len(rs) != 1 || rs[0].UserID != "q" {
				t.Fatalf("write response %d: %+v %v", id, rs, err)
			}
		} else if !seen[id-1] {
			overtaken = true // a ping answered before the write sent ahead of it
		}
		_ = pendingWrite
	}
	if len(seen) != 200 {
		t.Fatalf("%d responses", len(seen))
	}
	if !overtaken {
		t.Fatal("responses came strictly in order: reads did not overtake writes")
	}
}

func TestTokenRequired(t *testing.T) {
	p := start(t, t.TempDir(), "--token", "s3cret")
	if _, err := client.New(context.Background(), client.Config{Addrs: []string{p.addr}}); !errors.Is(err, client.ErrAuthFailed) {
		t.Fatalf("no token: %v", err)
	}
	c := newClient(t, p.addr, "s3cret")
	if _, err := c.Follow(context.Background(), "a", []string{"b"}); err != nil {
		t.Fatal(err)
	}
	// The token can come from the environment too.
	os.Setenv("FOLLOWD_TOKEN", "from-env")
	defer os.Unsetenv("FOLLOWD_TOKEN")
	p2 := start(t, t.TempDir())
	if _, err := client.New(context.Background(), client.Config{Addrs: []string{p2.addr}, Token: "from-env"}); err != nil {
		t.Fatalf("env token: %v", err)
	}
}

// followbench's smoke preset against the followd binary: the command an
// SRE runs first. It must load, run, verify (zero violations, zero errors)
// and write the JSON report and the charts.
func TestFollowbenchSmoke(t *testing.T) {
	p := start(t, t.TempDir())
	dir := t.TempDir()
	out := filepath.Join(dir, "r.json")
	cmd := exec.Command(followbench, "run", "--preset", "smoke", "--target", "followd://"+p.addr, "--metrics", "http://"+p.http, "--out", out)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("followbench: %v\n%s", err, b)
	}
	text := string(b)
	for _, want := range []string{"p99 ms", "0 violations", "bytes/edge", "report: " + out, "charts: "} {
		if !strings.Contains(text, want) {
			t.Fatalf("output lacks %q:\n%s", want, text)
		}
	}
	for _, f := range []string{out, filepath.Join(dir, "r-latency.png"), filepath.Join(dir, "r-throughput.png")} {
		if fi, err := os.Stat(f); err != nil || fi.Size() == 0 {
			t.Fatalf("%s: %v", f, err)
		}
	}
	if m := regexp.MustCompile(`(?m)^\s+all\s.*\s(\S+)$`).FindStringSubmatch(text); m == nil || m[1] != "0" {
		t.Fatalf("errors in the run:\n%s", text)
	}
	// CPU per operation, of followd (from its /metrics) and of followbench.
	if !regexp.MustCompile(`(?m)^cpu: followd [0-9.]+ cores, [0-9.]+ µs/op; followbench `).MatchString(text) {
		t.Fatalf("no CPU line:\n%s", text)
	}
	var rep struct {
		CPU struct {
			Server       struct{ Seconds, UsPerOp float64 }
			Harness      struct{ Seconds, UsPerOp float64 }
			HarnessShare float64
		}
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if c := rep.CPU; c.Server.Seconds <= 0 || c.Server.UsPerOp <= 0 || c.Harness.UsPerOp <= 0 || c.HarnessShare <= 0 {
		t.Fatalf("report's cpu: %+v", c)
	}
}

// A healthy start logs no warnings: not on a fresh data directory, not on
// a restart of it.
func TestCleanStartLogsNoWarnings(t *testing.T) {
	dir := t.TempDir()
	for _, run := range []string{"fresh", "restart"} {
		p := start(t, dir)
		c := newClient(t, p.addr, "")
		if _, err := c.Follow(context.Background(), "a", []string{"b"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		p.cmd.Process.Signal(syscall.SIGTERM)
		<-p.exited
		for _, line := range strings.Split(p.log(), "\n") {
			if strings.Contains(line, "[WARN]") || strings.Contains(line, "[ERROR]") {
				t.Errorf("%s start logged: %s", run, line)
			}
		}
	}
}
