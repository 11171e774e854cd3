package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
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

// Limits of the attacked process: small enough that the attacks reach
// them, and a frame limit large enough that allocating it per connection
// (40 stalled frames x 8 MiB = 320 MiB) would stand out against the
// memory bounds below.
const (
	abuseMaxConns = 64
	abuseMaxFrame = 8 << 20
	abuseToken    = "abuse-token"
	// The server's fixed timeouts (wire.DefaultServerConfig; followd has
	// no flags for them).
	abuseHandshakeTimeout = 5 * time.Second
	abuseReadTimeout      = 10 * time.Second
	// A well-behaved request must be answered within this during attacks.
	abuseLatencyBound = 2 * time.Second
	// RSS growth over all the attacks. Legitimate per-connection memory
	// is ~100 KiB (32 KiB read buffer, a hello buffer of at most 64 KiB,
	// two goroutine stacks), so 64 connections cost under 8 MiB, and the
	// slow readers' queued responses ~5 MiB; 64 MiB leaves room for the
	// GC's slack but not for MaxFrame-sized buffers per connection.
	abuseRSSBound = 64 << 20
	// Heap growth while 40 connections each declare a MaxFrame body.
	abuseHeapBound = 32 << 20
)

// abuseRig is one live followd under attack, a well-behaved client and the
// process's baseline.
type abuseRig struct {
	p         *proc
	pid       int
	good      *client.Client
	http      *http.Client
	baseFDs   int
	baseG     int
	baseConns int
	baseRSS   int64
	n         atomic.Int64 // probe targets

	mu   sync.Mutex
	open []*rawConn // attackers' connections, closed by closeAll
}

// Attacks on one live followd, each while a well-behaved client keeps
// working; see each subtest. After each: descriptors, goroutines and
// connections back to the baseline. At the end: alive, no panic logged,
// RSS growth bounded.
func TestAbuse(t *testing.T) {
	began := time.Now()
	p := start(t, t.TempDir(), "--max-conns", strconv.Itoa(abuseMaxConns), "--max-frame", strconv.Itoa(abuseMaxFrame), "--token", abuseToken)
	// No retries: an error from the good client must surface, not be
	// hidden by a retry.
	good, err := client.New(context.Background(), client.Config{Addrs: []string{p.addr}, Token: abuseToken, Retries: -1, RequestTimeout: 5 * time.Second, Name: "good"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { good.Close() })
	a := &abuseRig{p: p, pid: p.cmd.Process.Pid, good: good, http: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	// Open both of the client's connections before the baseline.
	for i := range 6 {
		if _, err := good.Follow(context.Background(), "warm", []string{fmt.Sprint("w", i)}); err != nil {
			t.Fatal(err)
		}
	}
	// A user with a 500-entry following list: pages of ~9 KB for the slow
	// readers.
	for i := range 25 {
		targets := make([]string, 20)
		for j := range targets {
			targets[j] = fmt.Sprintf("wide-%03d", i*20+j)
		}
		if _, err := good.Follow(context.Background(), "wide", targets); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	a.baseFDs, a.baseG, a.baseConns, a.baseRSS = a.fds(), a.metric(t, "go_goroutines"), a.metric(t, "followgraph_connections"), a.rss(t)
	t.Logf("baseline: %d fds, %d goroutines, %d connections, RSS %.1f MiB", a.baseFDs, a.baseG, a.baseConns, mib(a.baseRSS))

	t.Run("Flood", a.flood)
	t.Run("Slowloris", a.slowloris)
	t.Run("Oversize", a.oversize)
	t.Run("RandomBytes", a.randomBytes)
	t.Run("HostileBodies", a.hostileBodies)
	t.Run("FailedHandshake", a.failedHandshake)

	a.alive(t)
	grew := a.rss(t) - a.baseRSS
	t.Logf("RSS growth over all attacks: %.1f MiB (bound %d MiB); total %v", mib(grew), abuseRSSBound>>20, time.Since(began).Round(time.Millisecond))
	if grew > abuseRSSBound {
		t.Errorf("RSS grew by %.1f MiB over the attacks", mib(grew))
	}
	if l := p.log(); strings.Contains(strings.ToLower(l), "panic") {
		t.Errorf("followd logged a panic:\n%s", l)
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func (a *abuseRig) fds() int {
	es, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", a.pid))
	return len(es)
}

func (a *abuseRig) rss(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.pid))
	if err != nil {
		t.Fatalf("followd is gone: %v\n%s", err, a.p.log())
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// metric reads one unlabelled value from followd's /metrics.
func (a *abuseRig) metric(t *testing.T, name string) int {
	t.Helper()
	resp, err := a.http.Get("http://" + a.p.http + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %q", name, v)
			}
			return int(f)
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func (a *abuseRig) alive(t *testing.T) {
	t.Helper()
	select {
	case <-a.p.exited:
		t.Fatalf("followd exited:\n%s", a.p.log())
	default:
	}
	if err := syscall.Kill(a.pid, 0); err != nil {
		t.Fatalf("followd is gone: %v", err)
	}
}

// probeResult is what the well-behaved client saw during an attack.
type probeResult struct {
	ops     int
	max     time.Duration
	errs    []string
	peakFDs int
}

// probeOnce follows a target and checks it, from the good client's
// connections; it returns the slower of the two latencies.
func (a *abuseRig) probeOnce() (time.Duration, error) {
	target := fmt.Sprint("p", a.n.Add(1)%400)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	t0 := time.Now()
	res, err := a.good.Follow(ctx, "prober", []string{target})
	d1 := time.Since(t0)
	if err != nil {
		return d1, fmt.Errorf("follow: %w", err)
	}
	if len(res) != 1 || res[0].Code != 0 || res[0].UserID != target {
		return d1, fmt.Errorf("follow: %+v", res)
	}
	t1 := time.Now()
	ck, err := a.good.Check(ctx, "prober", target)
	d2 := time.Since(t1)
	if err != nil {
		return max(d1, d2), fmt.Errorf("check: %w", err)
	}
	if len(ck) != 1 || ck[0].FollowType&2 == 0 {
		return max(d1, d2), fmt.Errorf("check after follow: %+v", ck)
	}
	return max(d1, d2), nil
}

// during runs attack while the good client probes the server, and asserts
// every probe was answered correctly within abuseLatencyBound.
func (a *abuseRig) during(t *testing.T, attack func()) probeResult {
	t.Helper()
	var pr probeResult // the probe's own until stopProbe returns
	stopProbe := untilStopped(1, func(_, _ int) {
		d, err := a.probeOnce()
		pr.ops += 2
		pr.max = max(pr.max, d)
		if err != nil {
			pr.errs = append(pr.errs, err.Error())
		}
		pr.peakFDs = max(pr.peakFDs, a.fds())
		time.Sleep(20 * time.Millisecond)
	})
	func() {
		defer stopProbe() // also if the attack fails the test
		attack()
	}()
	if len(pr.errs) > 0 {
		t.Errorf("the good client failed during the attack: %q", pr.errs)
	}
	if pr.max > abuseLatencyBound {
		t.Errorf("the good client waited %v (bound %v)", pr.max, abuseLatencyBound)
	}
	if pr.ops == 0 {
		t.Error("no probe completed during the attack")
	}
	return pr
}

// settle waits (10 s at most) for the server's descriptors, goroutines
// and connections to return to the baseline once the attackers are gone,
// then checks the good client and a fresh connection still get service.
func (a *abuseRig) settle(t *testing.T, pr probeResult) {
	t.Helper()
	a.closeAll()
	a.alive(t)
	deadline := time.Now().Add(10 * time.Second)
	var fds, g, conns int
	for {
		fds, g, conns = a.fds(), a.metric(t, "go_goroutines"), a.metric(t, "followgraph_connections")
		// Slack: the metrics scrape itself holds a descriptor and a
		// goroutine or two; raft's timers come and go.
		if fds <= a.baseFDs+2 && g <= a.baseG+8 && conns == a.baseConns {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("not back to the baseline 10 s after the attack: %d fds (base %d), %d goroutines (base %d), %d connections (base %d)", fds, a.baseFDs, g, a.baseG, conns, a.baseConns)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d, err := a.probeOnce(); err != nil || d > abuseLatencyBound {
		t.Errorf("good client after the attack: %v in %v", err, d)
	}
	fresh, err := client.New(context.Background(), client.Config{Addrs: []string{a.p.addr}, Token: abuseToken, Retries: -1})
	if err != nil {
		t.Errorf("a new client after the attack: %v", err)
	} else {
		if err := fresh.Ping(context.Background(), a.p.addr); err != nil {
			t.Errorf("a new client after the attack: %v", err)
		}
		fresh.Close()
	}
	t.Logf("good client during the attack: %d ops, max latency %v; server fds peak %d, after %d (base %d); goroutines after %d (base %d); RSS %.1f MiB (base %.1f)",
		pr.ops, pr.max.Round(time.Microsecond), pr.peakFDs, fds, a.baseFDs, g, a.baseG, mib(a.rss(t)), mib(a.baseRSS))
}

// Raw protocol helpers.

type rawConn struct {
	net.Conn
	br *bufio.Reader
}

// dial connects. It may run in any goroutine: on failure it reports
// and ends the calling goroutine.
func (a *abuseRig) dial(t *testing.T) *rawConn {
	c, err := net.DialTimeout("tcp", a.p.addr, 5*time.Second)
	if err != nil {
		t.Errorf("dial: %v", err)
		runtime.Goexit()
	}
	rc := &rawConn{Conn: c, br: bufio.NewReader(c)}
	a.mu.Lock()
	a.open = append(a.open, rc)
	a.mu.Unlock()
	return rc
}

// closeAll closes every attacker connection still open.
func (a *abuseRig) closeAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.open {
		c.Close()
	}
	a.open = nil
}

// dialHello connects and completes a valid handshake (any goroutine, as
// dial).
func (a *abuseRig) dialHello(t *testing.T, name string) *rawConn {
	c := a.dial(t)
	c.Write(helloFrame(0, 1, abuseToken, name))
	if id, code, _, err := c.read(5 * time.Second); err != nil || code != 0 || id != 0 {
		t.Errorf("handshake: id %d code %d %v", id, code, err)
		runtime.Goexit()
	}
	return c
}

// helloFrame is a hello request, the first frame a client sends; the raw
// protocol tests of every file build theirs with it and reqFrame.
func helloFrame(id uint32, version int, token, name string) []byte {
	b, st := wire.AppendRequestHeader(nil, id, wire.OpHello)
	return wire.EndFrame(wire.AppendHello(b, wire.Hello{Version: version, Token: token, Client: name}), st)
}

// reqFrame is a request frame: op with body, under request id.
func reqFrame(id uint32, op wire.Op, body []byte) []byte {
	b, st := wire.AppendRequestHeader(nil, id, op)
	return wire.EndFrame(append(b, body...), st)
}

// frameOf prefixes payload with its length.
func frameOf(payload []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(payload))), payload...)
}

// read reads one response frame.
func (c *rawConn) read(timeout time.Duration) (id uint32, code codes.Code, body []byte, err error) {
	c.SetReadDeadline(time.Now().Add(timeout))
	payload, err := wire.ReadFrame(c.br, nil, abuseMaxFrame)
	if err != nil {
		return 0, 0, nil, err
	}
	id, body, err = wire.ParseResponseHeader(payload)
	var ce *codes.Error
	if errors.As(err, &ce) {
		return id, ce.Code, []byte(ce.Msg), nil
	}
	return id, 0, body, err
}

// expectError reads one frame and checks it is an error with id and code.
func (c *rawConn) expectError(t *testing.T, what string, id uint32, code codes.Code, timeout time.Duration) string {
	t.Helper()
	gid, gcode, msg, err := c.read(timeout)
	if err != nil || gid != id || gcode != code {
		t.Errorf("%s: want id %d code %d, got id %d code %d %q %v", what, id, code, gid, gcode, msg, err)
	}
	return string(msg)
}

func closedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// closed reports whether the server closed the connection within timeout
// without sending anything more; a frame or silence is an error.
func (c *rawConn) closed(timeout time.Duration) error {
	c.SetReadDeadline(time.Now().Add(timeout))
	var b [1]byte
	n, err := io.ReadFull(c.br, b[:])
	switch {
	case n > 0:
		return fmt.Errorf("got data (%#x) instead of a close", b[0])
	case closedErr(err):
		return nil
	}
	return fmt.Errorf("not closed: %w", err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// 1. More connections than --max-conns: the excess gets 40003 and a close,
// the good client keeps its connections and service, a new connection
// gets service again once the flood is gone.
func (a *abuseRig) flood(t *testing.T) {
	const n = 3 * abuseMaxConns
	var accepted, rejected, handshaked atomic.Int64
	pr := a.during(t, func() {
		conns := make([]*rawConn, n)
		for i := range conns {
			conns[i] = a.dial(t)
			switch i % 3 {
			case 1: // a full handshake
				conns[i].Write(helloFrame(0, 1, abuseToken, "flood"))
			case 2: // half a hello
				conns[i].Write(helloFrame(0, 1, abuseToken, "flood")[:6])
			}
		}
		var wg sync.WaitGroup
		for i, c := range conns {
			wg.Go(func() {
				id, code, msg, err := c.read(time.Second)
				switch {
				case err == nil && id == 0 && code == codes.Overloaded:
					rejected.Add(1)
					if err := c.closed(2 * time.Second); err != nil {
						t.Errorf("flood connection %d after 40003: %v", i, err)
					}
				case err == nil && i%3 == 1 && code == 0:
					accepted.Add(1)
					handshaked.Add(1)
				case isTimeout(err) && i%3 != 1:
					accepted.Add(1) // waiting for its hello
				default:
					t.Errorf("flood connection %d (mode %d): id %d code %d %q %v", i, i%3, id, code, msg, err)
				}
			})
		}
		wg.Wait()
		// At the limit, a new connection is refused at once.
		c := a.dial(t)
		c.expectError(t, "a connection at the limit", 0, codes.Overloaded, 2*time.Second)
		if err := c.closed(2 * time.Second); err != nil {
			t.Errorf("a connection at the limit: %v", err)
		}
	})
	free := abuseMaxConns - a.baseConns
	t.Logf("flood of %d: %d accepted (%d handshaked), %d refused with 40003; %d slots were free", n, accepted.Load(), handshaked.Load(), rejected.Load(), free)
	if accepted.Load() > int64(free) || accepted.Load()+rejected.Load() != n || rejected.Load() < n-int64(free) {
		t.Errorf("flood: %d accepted, %d refused, with %d free slots", accepted.Load(), rejected.Load(), free)
	}
	// Slots free: a new client is served at once.
	a.closeAll()
	t0 := time.Now()
	for {
		fresh, err := client.New(context.Background(), client.Config{Addrs: []string{a.p.addr}, Token: abuseToken, Retries: -1})
		if err == nil {
			_, err = fresh.Follow(context.Background(), "after-flood", []string{"x"})
			fresh.Close()
		}
		if err == nil {
			break
		}
		if !errors.Is(err, client.ErrOverloaded) || time.Since(t0) > 5*time.Second {
			t.Fatalf("a new client after the flood: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("a new client was served %v after the flood ended", time.Since(t0).Round(time.Millisecond))
	a.settle(t, pr)
}

// trickle writes b one byte at a time, every gap, until done or a write
// fails (the server closed); it returns how many bytes went out.
func trickle(c net.Conn, b []byte, gap time.Duration, stop <-chan struct{}) int {
	for i := range b {
		select {
		case <-stop:
			return i
		default:
		}
		c.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := c.Write(b[i : i+1]); err != nil {
			return i
		}
		time.Sleep(gap)
	}
	return len(b)
}

// 2. Slow senders and a slow reader. A valid frame trickled within the
// deadlines is served; a frame body trickled past the read timeout gets
// 30007 and a close (trickling does not extend the deadline); a hello not
// complete within the handshake timeout is closed silently; a half header
// after the handshake waits for the idle timeout (5 min, no flag: closed by
// the test); a client that never reads its responses is closed after the
// write timeout. Others are served throughout.
func (a *abuseRig) slowloris(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	var wg sync.WaitGroup
	var idle []*rawConn
	pr := a.during(t, func() {
		// Slow readers: ~27 MB of responses that are never read.
		const pages = 3000
		var readers []*rawConn
		for range 2 {
			c := a.dialHello(t, "slow-reader")
			var out []byte
			for i := uint32(1); i <= pages; i++ {
				out = append(out, reqFrame(i, wire.OpFollowing, wire.AppendListRequest(nil, wire.ListRequest{User: "wide", Limit: 500}))...)
			}
			go func() { c.SetWriteDeadline(time.Now().Add(20 * time.Second)); c.Write(out) }()
			readers = append(readers, c)
		}
		readersFrom := time.Now()
		// Valid frames, one byte every 100-150 ms: served.
		for i := range 3 {
			wg.Go(func() {
				c := a.dial(t)
				t0 := time.Now()
				trickle(c, helloFrame(0, 1, abuseToken, "slow"), 100*time.Millisecond, stop)
				if id, code, _, err := c.read(3 * time.Second); err != nil || id != 0 || code != 0 {
					t.Errorf("slow hello %d: id %d code %d %v", i, id, code, err)
					return
				}
				actor, target := fmt.Sprint("slowpoke", i), "slow-target"
				trickle(c, reqFrame(7, wire.OpFollow, wire.AppendWriteRequest(nil, wire.WriteRequest{Actor: actor, Targets: []string{target}})), 150*time.Millisecond, stop)
				id, code, body, err := c.read(3 * time.Second)
				if err != nil || id != 7 || code != 0 {
					t.Errorf("slow follow %d: id %d code %d %v", i, id, code, err)
					return
				}
				if rs, err := wire.ParseResults(body); err != nil || len(rs) != 1 || rs[0].Code != 0 {
					t.Errorf("slow follow %d: %+v %v", i, rs, err)
				}
				t.Logf("slow sender %d: hello and follow served, %v", i, time.Since(t0).Round(time.Millisecond))
			})
		}
		// A frame body trickled forever, or never sent: 30007 and a close
		// after the read timeout.
		for i := range 5 {
			wg.Go(func() {
				c := a.dialHello(t, "slow-body")
				t0 := time.Now()
				if i < 3 {
					c.Write([]byte{0, 0, 0, 200})
					go trickle(c, bytes.Repeat([]byte{0x90}, 200), 150*time.Millisecond, stop)
				} else {
					c.Write(binary.BigEndian.AppendUint32(nil, abuseMaxFrame))
				}
				msg := c.expectError(t, fmt.Sprint("stalled body ", i), 0, codes.Timeout, abuseReadTimeout+5*time.Second)
				took := time.Since(t0)
				if err := c.closed(2 * time.Second); err != nil {
					t.Errorf("stalled body %d after 30007: %v", i, err)
				}
				if took < abuseReadTimeout-time.Second {
					t.Errorf("stalled body %d: 30007 after only %v", i, took)
				}
				t.Logf("stalled body %d: %q after %v, then closed", i, msg, took.Round(time.Millisecond))
			})
		}
		// Before the handshake: half a header, or a hello declared longer
		// than what trickles in: closed silently at the handshake timeout.
		for i := range 4 {
			wg.Go(func() {
				c := a.dial(t)
				t0 := time.Now()
				if i < 2 {
					c.Write([]byte{0, 0})
				} else {
					c.Write([]byte{0, 0, 3, 0xe8, 0x92})
					go trickle(c, bytes.Repeat([]byte{0xa0}, 999), 150*time.Millisecond, stop)
				}
				if err := c.closed(abuseHandshakeTimeout + 3*time.Second); err != nil {
					t.Errorf("stalled hello %d: %v", i, err)
				}
				if took := time.Since(t0); took < abuseHandshakeTimeout-time.Second {
					t.Errorf("stalled hello %d: closed after only %v", i, took)
				} else {
					t.Logf("stalled hello %d: closed silently after %v", i, took.Round(time.Millisecond))
				}
			})
		}
		// After the handshake, half a header: kept until the idle timeout.
		for range 2 {
			c := a.dialHello(t, "half-header")
			c.Write([]byte{0, 0})
			idle = append(idle, c)
		}
		wg.Wait()
		// The slow readers: closed by the server once its writes block
		// for the write timeout (10 s).
		for i, c := range readers {
			time.Sleep(time.Until(readersFrom.Add(12 * time.Second)))
			got := 0
			var err error
			for {
				if _, _, _, err = c.read(3 * time.Second); err != nil {
					break
				}
				got++
			}
			if !closedErr(err) || got >= pages {
				t.Errorf("slow reader %d: %d of %d responses, then %v (want a close)", i, got, pages, err)
			} else {
				t.Logf("slow reader %d: closed by the server after %d of %d responses", i, got, pages)
			}
		}
		for i, c := range idle {
			if _, _, _, err := c.read(10 * time.Millisecond); !isTimeout(err) {
				t.Errorf("half header %d: %v (want still open: the idle timeout is 5 min)", i, err)
			}
		}
	})
	a.settle(t, pr)
}

// 3. Oversize and zero lengths get 40005 and a close, before and after the
// handshake. Frames declared at exactly MaxFrame whose bodies never come
// must not make the server allocate MaxFrame each (checked with the heap
// and RSS while 40 of them wait, twice: the second round would reuse
// and zero freed buffers, which shows in RSS).
func (a *abuseRig) oversize(t *testing.T) {
	pr := a.during(t, func() {
		for _, n := range []uint32{0xffffffff, abuseMaxFrame + 1, 0} {
			c := a.dialHello(t, "oversize")
			c.Write(binary.BigEndian.AppendUint32(nil, n))
			msg := c.expectError(t, fmt.Sprint("length ", n), 0, codes.FrameTooLarge, 5*time.Second)
			if want := fmt.Sprintf("frame of %d bytes; the limit is %d", n, abuseMaxFrame); msg != want {
				t.Errorf("length %d: message %q, want %q", n, msg, want)
			}
			if err := c.closed(2 * time.Second); err != nil {
				t.Errorf("length %d: %v", n, err)
			}
		}
		// Before the handshake the limit is 64 KiB.
		for _, tc := range []struct {
			n    uint32
			code codes.Code
		}{{0xffffffff, codes.FrameTooLarge}, {64<<10 + 1, codes.FrameTooLarge}, {abuseMaxFrame, codes.FrameTooLarge}, {0, codes.InvalidParam}} {
			c := a.dial(t)
			c.Write(binary.BigEndian.AppendUint32(nil, tc.n))
			msg := c.expectError(t, fmt.Sprint("hello length ", tc.n), 0, tc.code, 5*time.Second)
			if !strings.HasPrefix(msg, "expected a hello frame:") {
				t.Errorf("hello length %d: message %q", tc.n, msg)
			}
			if err := c.closed(2 * time.Second); err != nil {
				t.Errorf("hello length %d: %v", tc.n, err)
			}
		}
		// Large valid frames are still read whole while the server's
		// buffer grows to them, and again once it has: a check with 4096
		// targets of 255 bytes (1 MiB) gets the count error, not
		// "malformed".
		c := a.dialHello(t, "large")
		targets := make([]string, 4096)
		for i := range targets {
			targets[i] = fmt.Sprintf("%0255d", i)
		}
		big := wire.AppendCheckRequest(nil, wire.CheckRequest{Actor: "large", Targets: targets})
		for i := range uint32(3) {
			c.Write(reqFrame(10+i, wire.OpCheck, big))
			if msg := c.expectError(t, "a 1 MiB frame", 10+i, codes.InvalidParam, 5*time.Second); msg != "4096 targets: want 1 to 100" {
				t.Errorf("a 1 MiB frame: %q", msg)
			}
			c.Write(reqFrame(20+i, wire.OpPing, wire.AppendEmpty(nil)))
			if id, code, _, err := c.read(5 * time.Second); err != nil || id != 20+i || code != 0 {
				t.Errorf("ping after a 1 MiB frame: id %d code %d %v", id, code, err)
			}
		}
		for round := range 2 {
			heap0, rss0 := a.metric(t, "go_memstats_heap_alloc_bytes"), a.rss(t)
			var stalled []*rawConn
			for range 40 {
				c := a.dialHello(t, "max-frame")
				c.Write(binary.BigEndian.AppendUint32(nil, abuseMaxFrame))
				stalled = append(stalled, c)
			}
			time.Sleep(time.Second)
			heap1, rss1 := a.metric(t, "go_memstats_heap_alloc_bytes"), a.rss(t)
			for i, c := range stalled {
				// A MaxFrame length is allowed: no answer until the body
				// comes (or the read timeout).
				if _, _, _, err := c.read(time.Millisecond); !isTimeout(err) {
					t.Errorf("round %d: stalled max-frame %d: %v", round, i, err)
				}
				c.Close()
			}
			t.Logf("round %d: 40 frames of %d MiB declared: heap +%.1f MiB, RSS +%.1f MiB", round, abuseMaxFrame>>20, mib(int64(heap1-heap0)), mib(rss1-rss0))
			if heap1-heap0 > abuseHeapBound || rss1-rss0 > abuseHeapBound {
				t.Errorf("round %d: 40 declared frames grew the heap by %.1f MiB and RSS by %.1f MiB (bound %d MiB)", round, mib(int64(heap1-heap0)), mib(rss1-rss0), abuseHeapBound>>20)
			}
			// Let the closes land before the next round.
			time.Sleep(200 * time.Millisecond)
		}
	})
	a.settle(t, pr)
}

// Random input, simulated: what the server must answer to a byte stream,
// computed from the framing rules of PROTOCOL.md sections 2 and 5.

// expectAfterHello returns, for a byte stream sent after the handshake,
// how many responses each request ID must get (complete frames), whether
// a 40005 ends it (a bad length), or else whether a frame stays
// incomplete (the server waits).
func expectAfterHello(b []byte) (ids map[uint32]int, tooLarge bool) {
	ids = map[uint32]int{}
	for len(b) >= 4 {
		n := binary.BigEndian.Uint32(b)
		if n == 0 || n > abuseMaxFrame {
			return ids, true
		}
		if len(b)-4 < int(n) {
			break
		}
		id, _, _, err := wire.ParseRequestHeader(b[4 : 4+n])
		if err != nil {
			id = 0
		}
		ids[id]++
		b = b[4+n:]
	}
	return ids, false
}

// expectHandshake returns the error a first frame must get; silent means
// the server waits for more bytes, then closes without a word.
func expectHandshake(b []byte) (id uint32, code codes.Code, silent bool) {
	if len(b) < 4 {
		return 0, 0, true
	}
	n := binary.BigEndian.Uint32(b)
	switch {
	case n > 64<<10:
		return 0, codes.FrameTooLarge, false
	case n == 0:
		return 0, codes.InvalidParam, false
	case len(b)-4 < int(n):
		return 0, 0, true
	}
	id, op, body, err := wire.ParseRequestHeader(b[4 : 4+n])
	if err != nil {
		return 0, codes.InvalidParam, false
	}
	if op != wire.OpHello {
		return id, codes.InvalidParam, false
	}
	h, err := wire.ParseHello(body)
	switch {
	case err != nil:
		return id, codes.InvalidParam, false
	case h.Version != 1:
		return id, codes.UnsupportedVersion, false
	case h.Token != abuseToken:
		return id, codes.AuthFailed, false
	}
	return id, 0, false // a valid hello by chance
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// 4. Seeded random bytes, before and after a valid handshake: raw, inside
// well-formed frames, and as bodies of valid headers. Each connection gets
// exactly the answers the framing rules predict (simulated above), and a
// connection whose framing survives still answers a ping.
func (a *abuseRig) randomBytes(t *testing.T) {
	seeds := []uint64{1, 2, 3, uint64(time.Now().UnixNano())}
	t.Logf("seeds %v", seeds)
	pr := a.during(t, func() {
		for _, seed := range seeds {
			var wg sync.WaitGroup
			for k := range 12 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(seed, uint64(k)))
					where := fmt.Sprintf("seed %d conn %d", seed, k)
					switch k % 4 {
					case 0: // raw bytes instead of a hello
						a.randomHello(t, where, randBytes(rng, 1+rng.IntN(512)))
					case 1: // a frame of random bytes instead of a hello
						a.randomHello(t, where, frameOf(randBytes(rng, 1+rng.IntN(300))))
					case 2: // raw bytes after the handshake
						b := randBytes(rng, 1+rng.IntN(512))
						if k%8 == 6 {
							// A small first length, so that some frames
							// are read whole.
							b[0], b[1], b[2] = 0, 0, 0
						}
						a.randomAfterHello(t, where, b)
					case 3: // frames of random payloads, and valid headers with random bodies
						var b []byte
						for i := range 40 {
							if i%2 == 0 {
								b = append(b, frameOf(randBytes(rng, 1+rng.IntN(200)))...)
							} else {
								b = append(b, reqFrame(uint32(1000+i), wire.Op(rng.IntN(256)), randBytes(rng, rng.IntN(200)))...)
							}
						}
						a.randomAfterHello(t, where, b)
					}
				})
			}
			wg.Wait()
		}
	})
	a.settle(t, pr)
}

func (a *abuseRig) randomHello(t *testing.T, where string, b []byte) {
	c := a.dial(t)
	c.Write(b)
	id, code, silent := expectHandshake(b)
	if silent {
		if err := c.closed(abuseHandshakeTimeout + 3*time.Second); err != nil {
			t.Errorf("%s: %x: %v", where, b, err)
		}
		return
	}
	if code == 0 {
		return // a valid hello: nothing to check
	}
	gid, gcode, msg, err := c.read(5 * time.Second)
	if err != nil || gid != id || gcode != code {
		t.Errorf("%s: %x: want id %d code %d, got id %d code %d %q %v", where, b, id, code, gid, gcode, msg, err)
		return
	}
	if err := c.closed(2 * time.Second); err != nil {
		t.Errorf("%s: after the error: %v", where, err)
	}
}

func (a *abuseRig) randomAfterHello(t *testing.T, where string, b []byte) {
	c := a.dialHello(t, "random")
	want, tooLarge := expectAfterHello(b)
	whole := completeFrames(b)
	switch {
	case tooLarge:
		want[0]++ // the 40005
	case whole:
		// Framing survives: a ping behind the garbage is answered too.
		b = append(b, reqFrame(0xfffffff0, wire.OpPing, wire.AppendEmpty(nil))...)
		want[0xfffffff0]++
	}
	total := 0
	for _, n := range want {
		total += n
	}
	got := map[uint32]int{}
	sawTooLarge := false
	var rerr error
	done := make(chan struct{})
	go func() { // read while writing: responses must not back up
		defer close(done)
		for range total {
			id, code, _, err := c.read(5 * time.Second)
			if err != nil {
				rerr = err
				return
			}
			got[id]++
			sawTooLarge = sawTooLarge || id == 0 && code == codes.FrameTooLarge
		}
	}()
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c.Write(b)
	<-done
	if rerr != nil {
		t.Errorf("%s: %x: %v after %v (want %v)", where, b, rerr, got, want)
		return
	}
	for id, n := range want {
		if got[id] != n {
			t.Errorf("%s: %x: answers by id %v, want %v", where, b, got, want)
			break
		}
	}
	switch {
	case tooLarge:
		if !sawTooLarge {
			t.Errorf("%s: %x: no 40005", where, b)
		}
		if err := c.closed(2 * time.Second); err != nil {
			t.Errorf("%s: after 40005: %v", where, err)
		}
	case !whole:
		// The server waits for the rest of a frame.
		if _, _, _, err := c.read(100 * time.Millisecond); !isTimeout(err) {
			t.Errorf("%s: %x: want silence, got %v", where, b, err)
		}
	}
}

// completeFrames reports whether b is a whole number of frames.
func completeFrames(b []byte) bool {
	for len(b) >= 4 {
		n := int(binary.BigEndian.Uint32(b))
		if len(b)-4 < n {
			return false
		}
		b = b[4+n:]
	}
	return len(b) == 0
}

// Hostile msgpack values, by the type a field expects.
var (
	hostileAny = [][]byte{
		{0xc0},                               // nil
		{0xc1},                               // never used
		{0xca, 0x3f, 0x80, 0, 0},             // float32
		{0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0}, // float64
		{0x81, 0xa1, 'k', 0x01},              // map
		{0xdf, 0xff, 0xff, 0xff, 0xff},       // map 32, 2^32-1 pairs, no data
		{0xc4, 1, 'a'},                       // bin
		{0xc6, 0xff, 0xff, 0xff, 0xff},       // bin 32, no data
		{0xd4, 0x01, 0x00},                   // fixext 1
		{0xc7, 0x01, 0x05, 0x00},             // ext 8
		{0xc9, 0xff, 0xff, 0xff, 0xff, 0x01}, // ext 32, no data
		{0xd6, 0xff, 0, 0, 0, 0},             // timestamp
		{0xdd, 0xff, 0xff, 0xff, 0xff},       // array 32, no data
		{0xdb, 0xff, 0xff, 0xff, 0xff},       // str 32, no data
		{0xcf, 0x00},                         // truncated uint 64
	}
	hostileUint = append([][]byte{{0xa1, 'x'}, {0x90}, {0xc3}, {0xff}, {0xd0, 0x80}, {0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}}, hostileAny...)
	hostileStr  = append([][]byte{{0x01}, {0xff}, {0xc3}, {0x90}, {0xa5, 'a'}, append([]byte{0xda, 0x01, 0x2c}, bytes.Repeat([]byte{'a'}, 300)...)}, hostileAny...)
	hostileBool = append([][]byte{{0x00}, {0xa0}, {0x90}, {0xff}}, hostileAny...)
	hostileInt  = append([][]byte{{0xa1, 'x'}, {0x90}, {0xc3}, {0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, hostileAny...)
	tooBig      = []byte{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
)

// hostileField is one element of a request body: a valid encoding and the
// hostile values to put in its place.
type hostileField struct {
	name  string
	valid []byte
	bad   [][]byte
}

// mpStr and mpUint encode short strings and small uints.
func mpStr(v string) []byte { return append([]byte{0xa0 | byte(len(v))}, v...) }

func mpUint(v int) []byte { return []byte{byte(v)} }

func mpStrArray(ss ...string) []byte {
	b := []byte{0x90 | byte(len(ss))}
	for _, v := range ss {
		b = append(b, mpStr(v)...)
	}
	return b
}

// hostileOps are the request bodies of every op, as fields.
func hostileOps() map[wire.Op][]hostileField {
	strArr := func(name string, valid []byte) hostileField {
		bad := append([][]byte{{0x01}, {0xa1, 'x'}, {0xc3}, {0xdd, 0, 0, 0x10, 0x01}, {0xdc, 0, 3, 0xa1, 'x'}}, hostileAny...)
		for _, h := range hostileStr {
			bad = append(bad, append([]byte{0x91}, h...)) // a hostile element
		}
		return hostileField{name, valid, bad}
	}
	uintF := func(name string, v int, limited bool) hostileField {
		bad := hostileUint
		if limited {
			bad = append([][]byte{tooBig}, bad...)
		}
		return hostileField{name, mpUint(v), bad}
	}
	write := []hostileField{
		{"actor", mpStr("hostile-a"), hostileStr},
		strArr("targets", mpStrArray("hostile-b")),
		{"flags", mpUint(0), hostileUint},
	}
	list := []hostileField{
		{"user", mpStr("hostile-a"), hostileStr},
		{"cursor", []byte{0xa0}, hostileStr},
		uintF("limit", 10, true),
		{"consistency", mpUint(0), append([][]byte{{0x03}}, hostileUint...)},
	}
	record := []hostileField{
		uintF("seq", 1, false),
		{"kind", mpUint(1), append([][]byte{{0x06}}, hostileUint...)},
		{"followee", mpStr("hostile-b"), hostileStr},
		{"follower", mpStr("hostile-c"), hostileStr},
		{"time", mpUint(1), hostileInt},
		{"created", mpUint(1), hostileInt},
	}
	var recBad [][]byte
	for i, f := range record {
		for _, h := range f.bad {
			recBad = append(recBad, append([]byte{0x91}, assemble(record, i, h)...))
		}
	}
	recBad = append(recBad, []byte{0xdd, 0, 0x10, 0, 0x01}) // 2^20+1 records, no data
	recBad = append(recBad, hostileAny...)
	importCmd := []hostileField{
		{"actor", mpStr("hostile-a"), hostileStr},
		strArr("targets", mpStrArray("hostile-b")),
		{"times", []byte{0x91, 0x01}, append([][]byte{{0x90}, {0x92, 0x01, 0x01}, {0x91, 0xa1, 'x'}, {0x91, 0xc0}}, hostileAny...)},
	}
	pair := []hostileField{{"from", mpStr("hostile-a"), hostileStr}, {"to", mpStr("hostile-b"), hostileStr}}
	var pairsBad [][]byte
	for i, f := range pair {
		for _, h := range f.bad {
			pairsBad = append(pairsBad, append([]byte{0x91}, assemble(pair, i, h)...))
		}
	}
	pairsBad = append(pairsBad, []byte{0x91, 0x91, 0xa1, 'a'}, []byte{0x91, 0x93, 0xa1, 'a', 0xa1, 'b', 0xa1, 'c'}, []byte{0xdd, 0, 0, 0x10, 0x01})
	pairsBad = append(pairsBad, hostileAny...)
	setQuery := []hostileField{
		{"first user", mpStr("hostile-a"), hostileStr},
		{"second user", mpStr("hostile-b"), hostileStr},
		{"cursor", []byte{0xa0}, hostileStr},
		uintF("limit", 10, true),
		{"consistency", mpUint(0), append([][]byte{{0x03}}, hostileUint...)},
	}
	var importBad [][]byte
	for i, f := range importCmd {
		for _, h := range f.bad {
			importBad = append(importBad, append([]byte{0x91}, assemble(importCmd, i, h)...))
		}
	}
	importBad = append(importBad, []byte{0xdd, 0, 0, 0x27, 0x11}) // 10,001 commands, no data
	importBad = append(importBad, hostileAny...)
	return map[wire.Op][]hostileField{
		wire.OpHello:     {uintF("version", 1, true), {"token", mpStr(abuseToken), hostileStr}, {"client", mpStr("x"), hostileStr}},
		wire.OpFollow:    write,
		wire.OpUnfollow:  write,
		wire.OpFollowers: list,
		wire.OpFollowing: list,
		wire.OpMutual:    list,
		wire.OpInfo:      {strArr("users", mpStrArray("hostile-a")), {"consistency", mpUint(0), append([][]byte{{0x03}}, hostileUint...)}},
		wire.OpCheck:     {{"actor", mpStr("hostile-a"), hostileStr}, strArr("targets", mpStrArray("hostile-b")), {"consistency", mpUint(0), append([][]byte{{0x03}}, hostileUint...)}},
		wire.OpStatus:    {},
		wire.OpShardMap:  {},
		wire.OpPing:      {},
		wire.OpDeliver:   {uintF("dst", 0, true), uintF("src", 1, true), {"records", append([]byte{0x91}, assemble(record, -1, nil)...), recBad}},
		wire.OpDrain:     {{"node", mpStr("node1"), hostileStr}, {"on", []byte{0xc2}, hostileBool}},
		wire.OpScanUsers: {uintF("shard", 0, true), uintF("from", 0, true), uintF("limit", 10, true)},
		wire.OpRecover:   {{"node", mpStr("node1"), hostileStr}, {"shard", mpUint(0), hostileInt}, {"acceptDataLoss", []byte{0xc2}, hostileBool}},
		wire.OpWatch: {uintF("shard", 0, true), uintF("from", 0, false), {"start", mpUint(0), append([][]byte{{0x03}}, hostileUint...)},
			uintF("max", 10, true), uintF("wait", 0, true), uintF("kinds", 0, true), strArr("users", mpStrArray("hostile-a"))},
		wire.OpImport:     {{"flags", mpUint(0), hostileUint}, {"commands", append([]byte{0x91}, assemble(importCmd, -1, nil)...), importBad}},
		wire.OpExport:     {uintF("shard", 0, true), uintF("session", 0, false), uintF("position", 0, false), uintF("maxEdges", 10, true), uintF("maxBytes", 0, true)},
		wire.OpRemoveUser: {{"user", mpStr("hostile-a"), hostileStr}, {"flags", mpUint(1), hostileUint}},
		// A list (action 0) must carry an empty key; another action, a
		// valid one: each hostile string is refused either way.
		wire.OpGossipKeys:      {{"action", mpUint(0), append([][]byte{{0x04}}, hostileUint...)}, {"key", mpStr(""), hostileStr}},
		wire.OpKnownFollowers:  setQuery,
		wire.OpCommonFollowing: setQuery,
		wire.OpRelationships:   {{"pairs", append([]byte{0x91}, assemble(pair, -1, nil)...), pairsBad}, {"consistency", mpUint(0), append([][]byte{{0x03}}, hostileUint...)}},
		// Peer only: refused before its body is read.
		wire.OpProbe: {{"owner", mpStr("hostile-a"), hostileStr}, uintF("kind", 2, true), strArr("ids", mpStrArray("hostile-b"))},
	}
}

// assemble encodes fields as an array, with field i replaced by h.
func assemble(fs []hostileField, i int, h []byte) []byte {
	b := []byte{0x90 | byte(len(fs))}
	for j, f := range fs {
		if j == i {
			b = append(b, h...)
		} else {
			b = append(b, f.valid...)
		}
	}
	return b
}

// malformedBodies lists, for an op, every malformed body with its name.
func malformedBodies(fs []hostileField, minLen int) (names []string, bodies [][]byte) {
	add := func(name string, b []byte) { names, bodies = append(names, name), append(bodies, b) }
	for i, f := range fs {
		for k, h := range f.bad {
			add(fmt.Sprintf("%s #%d %x", f.name, k, h[:min(len(h), 8)]), assemble(fs, i, h))
		}
	}
	valid := assemble(fs, -1, nil)
	add("trailing byte", slices.Concat(valid, []byte{0x00}))
	add("one element too many", slices.Concat([]byte{0x90 | byte(len(fs)+1)}, valid[1:], []byte{0x00}))
	if minLen > 0 {
		add("one element too few", assemble(fs[:minLen-1], -1, nil))
	}
	add("no body", nil)
	add("100k nested arrays", append(bytes.Repeat([]byte{0x91}, 100_000), 0x90))
	add("50k nested maps", append(bytes.Repeat([]byte{0x81, 0xa0}, 50_000), 0xc0))
	for _, h := range hostileAny {
		add(fmt.Sprintf("body %x", h[:min(len(h), 8)]), h)
	}
	return names, bodies
}

// 5. Complete frames with hostile bodies, for every op and every field of
// its body: 30001 for that request, and the connection stays usable
// (PROTOCOL.md section 15). Malformed headers: 30001 with ID 0, usable.
// Deliveries, which only other nodes may send over the raft port, get
// 40012 before their body is read. Nothing is applied. A frame whose
// length cuts its body loses the framing: 40005 and a close.
func (a *abuseRig) hostileBodies(t *testing.T) {
	// Bodies with an optional last element (the consistency).
	minLen := map[wire.Op]int{wire.OpFollowers: 3, wire.OpFollowing: 3, wire.OpMutual: 3, wire.OpInfo: 1, wire.OpCheck: 2,
		wire.OpKnownFollowers: 4, wire.OpCommonFollowing: 4, wire.OpRelationships: 1}
	count := 0
	pr := a.during(t, func() {
		c := a.dialHello(t, "hostile")
		id := uint32(0)
		want := codes.InvalidParam
		ask := func(c *rawConn, what string, frame []byte, wantID uint32) {
			count++
			c.Write(frame)
			gid, code, msg, err := c.read(5 * time.Second)
			if err != nil || gid != wantID || code != want {
				t.Fatalf("%s: want id %d code %d, got id %d code %d %q %v", what, wantID, want, gid, code, msg, err)
			}
		}
		ping := func(c *rawConn, what string) {
			id++
			c.Write(reqFrame(id, wire.OpPing, wire.AppendEmpty(nil)))
			if gid, code, _, err := c.read(5 * time.Second); err != nil || gid != id || code != 0 {
				t.Fatalf("ping after %s: id %d code %d %v", what, gid, code, err)
			}
		}
		ops := hostileOps()
		var order []wire.Op
		for op := wire.OpHello; op <= wire.OpScanUsers; op++ {
			order = append(order, op)
		}
		for _, op := range append(order, wire.OpWatch, wire.OpImport, wire.OpExport, wire.OpRemoveUser, wire.OpGossipKeys,
			wire.OpKnownFollowers, wire.OpCommonFollowing, wire.OpRelationships, wire.OpProbe) {
			want = codes.InvalidParam
			if op == wire.OpDeliver || op == wire.OpProbe {
				want = codes.NotAllowed
			}
			ml, ok := minLen[op]
			if !ok {
				ml = len(ops[op])
			}
			names, bodies := malformedBodies(ops[op], ml)
			for i, body := range bodies {
				id++
				ask(c, fmt.Sprintf("%s: %s", op, names[i]), reqFrame(id, op, body), id)
			}
			ping(c, op.String())
		}
		want = codes.InvalidParam
		// Malformed headers: ID 0.
		for _, h := range [][]byte{
			{0x92, 0xa1, '1', 0x0a},                          // id as str
			{0x92, 0xff, 0x0a},                               // negative id
			{0x92, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0, 0x0a},       // id 2^32
			{0x92, 0x01, 0xcd, 1, 0},                         // op 256
			{0x92, 0x01, 0xc0},                               // op nil
			{0x92, 0x01, 0xcb, 0x40, 0x24, 0, 0, 0, 0, 0, 0}, // op 10.0
			{0x93, 0x01, 0x0a, 0x00},                         // three elements
			{0x91, 0x01},                                     // one element
			{0x82, 0x01, 0x0a, 0x02, 0x03},                   // a map
			append(bytes.Repeat([]byte{0x91}, 100_000), 0x90),
			{0xc0},
		} {
			ask(c, fmt.Sprintf("header %x", h[:min(len(h), 8)]), frameOf(append(h, 0x90)), 0)
			ping(c, "a malformed header")
		}
		// A length that cuts the body: the rest reads as a length.
		c.Write(append(frameOf([]byte{0x92, 0x7f, 0x0a, 0x90}), 0xdd, 0xff, 0xff, 0xff, 0xff))
		if gid, code, _, err := c.read(5 * time.Second); err != nil || gid != 0x7f || code != 0 {
			t.Errorf("ping before lost framing: id %d code %d %v", gid, code, err)
		}
		c.expectError(t, "lost framing", 0, codes.FrameTooLarge, 5*time.Second)
		if err := c.closed(2 * time.Second); err != nil {
			t.Errorf("lost framing: %v", err)
		}
	})
	// Nothing was applied.
	in, err := a.good.Info(context.Background(), "hostile-a", "hostile-b", "hostile-c")
	if err != nil || in[0].Following != 0 || in[1].Followers != 0 || in[2].Following != 0 {
		t.Errorf("hostile requests changed the graph: %+v %v", in, err)
	}
	t.Logf("%d hostile requests, each answered 30001 on a connection that stayed usable", count)
	a.settle(t, pr)
}

// 6. Failed handshakes: one error frame with the documented code and ID,
// then a close; the requests sent behind the hello, or after the error,
// get no answer and are not applied.
func (a *abuseRig) failedHandshake(t *testing.T) {
	follow := reqFrame(1, wire.OpFollow, wire.AppendWriteRequest(nil, wire.WriteRequest{Actor: "evil", Targets: []string{"victim"}, Sync: true}))
	cases := []struct {
		name  string
		first []byte
		id    uint32
		code  codes.Code
	}{
		{"wrong token", helloFrame(7, 1, "wrong", "x"), 7, codes.AuthFailed},
		{"no token", helloFrame(7, 1, "", "x"), 7, codes.AuthFailed},
		{"peer name, wrong token", helloFrame(7, 1, "wrong", wire.PeerName), 7, codes.AuthFailed},
		{"version 2", helloFrame(7, 2, abuseToken, "x"), 7, codes.UnsupportedVersion},
		{"version 0", helloFrame(7, 0, abuseToken, "x"), 7, codes.UnsupportedVersion},
		{"version 2, wrong token", helloFrame(7, 2, "wrong", "x"), 7, codes.UnsupportedVersion},
		{"token as uint", reqFrame(7, wire.OpHello, []byte{0x93, 0x01, 0x01, 0xa1, 'x'}), 7, codes.InvalidParam},
		{"token of 1025 bytes", helloFrame(7, 1, strings.Repeat("t", 1025), "x"), 7, codes.InvalidParam},
		{"version 65537", reqFrame(7, wire.OpHello, []byte{0x93, 0xce, 0, 1, 0, 1, 0xa0, 0xa0}), 7, codes.InvalidParam},
		{"hello with trailing bytes", frameOf(append(helloFrame(7, 1, abuseToken, "x")[4:], 0x00)), 7, codes.InvalidParam},
		{"follow first", follow, 1, codes.InvalidParam},
		{"malformed header", frameOf([]byte{0x92, 0xc0, 0x00, 0x93, 0x01, 0xa0, 0xa0}), 0, codes.InvalidParam},
		{"empty frame", []byte{0, 0, 0, 0}, 0, codes.InvalidParam},
		{"HTTP request", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 0, codes.FrameTooLarge},
	}
	framed, reset := 0, 0 // how the pipelined attempts ended
	pr := a.during(t, func() {
		for round := range 10 {
			for _, tc := range cases {
				what := fmt.Sprintf("%s (round %d)", tc.name, round)
				// The error comes, then the close; requests sent after
				// the error are not served.
				c := a.dial(t)
				c.Write(tc.first)
				c.expectError(t, what, tc.id, tc.code, 5*time.Second)
				c.SetWriteDeadline(time.Now().Add(time.Second))
				c.Write(follow) // may fail: the server has closed
				if err := c.closed(2 * time.Second); err != nil {
					t.Errorf("%s: a follow after the error: %v", what, err)
				}
				// Requests pipelined behind the hello: no answer. The
				// server closes with them unread, so the close may come
				// as a reset.
				c = a.dial(t)
				c.Write(append(append(append([]byte(nil), tc.first...), follow...), reqFrame(2, wire.OpPing, wire.AppendEmpty(nil))...))
				id, code, msg, err := c.read(5 * time.Second)
				if err == nil && (id != tc.id || code != tc.code) || err != nil && !closedErr(err) {
					t.Errorf("%s, pipelined: id %d code %d %q %v", what, id, code, msg, err)
				}
				if err == nil {
					framed++
					if err := c.closed(2 * time.Second); err != nil {
						t.Errorf("%s, pipelined: %v", what, err)
					}
				} else {
					reset++
				}
				c.Close()
			}
		}
	})
	t.Logf("%d failed handshakes; pipelined behind them: %d got the error frame, %d a reset", 2*10*len(cases), framed, reset)
	ctx := context.Background()
	ck, err := a.good.Check(ctx, "evil", "victim")
	if err != nil || ck[0].FollowType != 0 {
		t.Errorf("a follow sent with a failed handshake was applied: %+v %v", ck, err)
	}
	in, err := a.good.Info(ctx, "evil", "victim")
	if err != nil || in[0].Following != 0 || in[1].Followers != 0 {
		t.Errorf("a follow sent with a failed handshake was applied: %+v %v", in, err)
	}
	a.settle(t, pr)
}
