package cluster

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/followgraph/followgraph/fsm"
	"github.com/followgraph/followgraph/internal/testlog"
	"github.com/hashicorp/go-hclog"
)

// The crash test runs a node in a child process (this test binary, started
// with FG_CRASH_CHILD set), kills it with SIGKILL at a random moment while
// writers are busy, and checks the data directory in this process: every
// acknowledged write is there, with its followTime, and the reverse sides
// converge. Small snapshot thresholds make the kills land before, during
// and after snapshots; a slow relay makes them land between the forward
// commit and the reverse delivery. The data directory is a new one, so
// its shards share one raft log (wal/): kills land in the middle of
// group commits of several shards.

func TestMain(m *testing.M) {
	switch os.Getenv("FG_CRASH_CHILD") {
	case "":
		os.Exit(m.Run())
	case "trim":
		trimChild()
	default:
		crashChild()
	}
	os.Exit(0)
}

// crashConfig is quickConfig with frequent snapshots and compaction, so
// that a crash lands between them too.
func crashConfig(dir string) Config {
	cfg := quickConfig(dir)
	cfg.Raft.SnapshotThreshold = 64
	cfg.Raft.TrailingLogs = 32
	cfg.Raft.SnapshotInterval = 200 * time.Millisecond
	return cfg
}

// slowSender delays every delivery, so records wait in the outbox.
type slowSender struct {
	next  sender
	delay time.Duration
}

func (s slowSender) Deliver(ctx context.Context, dst, src int, recs []fsm.Record) (uint64, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return s.next.Deliver(ctx, dst, src, recs)
}

const crashWriters = 4

func crashChild() {
	cfg := crashConfig(os.Getenv("FG_CRASH_DIR"))
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Error, Output: os.Stderr})
	delay, _ := strconv.Atoi(os.Getenv("FG_CRASH_SLOW"))
	seed, _ := strconv.Atoi(os.Getenv("FG_CRASH_SEED"))
	ss := &slowSender{delay: time.Duration(delay) * time.Millisecond}
	cfg.sender = ss
	n, err := Open(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	ss.next = nodeSender{n}
	var out sync.Mutex
	emit := func(line string) {
		out.Lock()
		os.Stdout.WriteString(line + "\n")
		out.Unlock()
	}
	emit("READY")
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(seed), uint64(w)))
			for op := 0; ; op++ {
				actor := fmt.Sprintf("w%d-%d", w, rng.IntN(6))
				var targets []string
				for range 1 + rng.IntN(3) {
					targets = append(targets, fmt.Sprintf("t%d", rng.IntN(25)))
				}
				kind := "F"
				if rng.IntN(3) == 0 {
					kind = "U"
				}
				emit(fmt.Sprintf("S %d %d %s %s %s", w, op, kind, actor, strings.Join(targets, ",")))
				var err error
				opt := WriteOptions{Sync: rng.IntN(4) == 0}
				var res []string
				if kind == "F" {
					rs, e := n.Follow(context.Background(), actor, targets, opt)
					err = e
					for _, r := range rs {
						res = append(res, fmt.Sprintf("%v:%d", r.Changed, r.Time))
					}
				} else {
					rs, e := n.Unfollow(context.Background(), actor, targets, opt)
					err = e
					for _, r := range rs {
						res = append(res, fmt.Sprintf("%v:%d", r.Changed, r.Time))
					}
				}
				if err != nil {
					emit(fmt.Sprintf("E %d %d %v", w, op, err))
					continue
				}
				emit(fmt.Sprintf("A %d %d %s", w, op, strings.Join(res, ",")))
			}
		})
	}
	wg.Wait()
}

// pairState is what the acknowledged writes say about one (actor, target).
type pairState struct {
	following bool
	time      int64
}

type crashModel struct {
	pairs map[[2]string]pairState
	// inflight[w] lists the pairs of writer w's unacknowledged write.
	inflight map[int][][2]string
	acked    int
}

type sentOp struct {
	kind    string
	actor   string
	targets []string
}

func (m *crashModel) feed(t *testing.T, lines []string) {
	sent := map[[2]int]sentOp{}
	m.inflight = map[int][][2]string{}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		w, err1 := strconv.Atoi(f[1])
		op, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil {
			continue
		}
		switch f[0] {
		case "S":
			if len(f) != 6 {
				continue
			}
			s := sentOp{kind: f[3], actor: f[4], targets: strings.Split(f[5], ",")}
			sent[[2]int{w, op}] = s
			m.inflight[w] = nil
			for _, tg := range s.targets {
				m.inflight[w] = append(m.inflight[w], [2]string{s.actor, tg})
			}
		case "A":
			s, ok := sent[[2]int{w, op}]
			if !ok || len(f) != 4 {
				continue // a line cut by the kill
			}
			res := strings.Split(f[3], ",")
			if len(res) != len(s.targets) {
				continue
			}
			for i, tg := range s.targets {
				p := [2]string{s.actor, tg}
				changed, tm, _ := strings.Cut(res[i], ":")
				ts, _ := strconv.ParseInt(tm, 10, 64)
				st := m.pairs[p]
				if s.kind == "F" {
					if changed == "true" || !st.following {
						st = pairState{true, ts}
					}
				} else {
					st = pairState{}
				}
				m.pairs[p] = st
			}
			m.inflight[w] = nil
			m.acked++
		case "E":
			// A failed write may or may not be applied: like in flight.
		}
	}
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs child processes; skipped with -short")
	}
	dir := t.TempDir()
	m := &crashModel{pairs: map[[2]string]pairState{}}
	rng := rand.New(rand.NewPCG(1, 2))
	const rounds = 8
	for round := range rounds {
		delay := []int{0, 30, 150}[round%3]
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "FG_CRASH_CHILD=1", "FG_CRASH_DIR="+dir,
			fmt.Sprintf("FG_CRASH_SEED=%d", round), fmt.Sprintf("FG_CRASH_SLOW=%d", delay))
		stdout, _ := cmd.StdoutPipe()
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var lines []string
		ready := make(chan struct{})
		readDone := make(chan struct{})
		go func() {
			defer close(readDone)
			sc := bufio.NewScanner(stdout)
			once := sync.Once{}
			for sc.Scan() {
				if sc.Text() == "READY" {
					once.Do(func() { close(ready) })
					continue
				}
				lines = append(lines, sc.Text())
			}
			once.Do(func() { close(ready) })
		}()
		select {
		case <-ready:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("round %d: child did not start: %s", round, stderr.String())
		}
		time.Sleep(time.Duration(100+rng.IntN(700)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		<-readDone
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("round %d: child exited on its own (%v): %s", round, err, stderr.String())
		}
		before := m.acked
		m.feed(t, lines)

		// Recover in this process with a prompt relay.
		cfg := crashConfig(dir)
		cfg.Logger = testlog.Logger(t, "", "warn")
		n := openNode(t, cfg)
		if st := n.RaftLogStats(); st.Segments == 0 {
			t.Fatalf("round %d: the data directory has no raft log (%+v)", round, n.Meta())
		}
		waitFor(t, "relay to drain after restart", 20*time.Second, func() bool { return drained(n) })
		g := dumpGraph(t, n)
		checkGraph(t, g)
		uncertain := map[[2]string]bool{}
		for _, ps := range m.inflight {
			for _, p := range ps {
				uncertain[p] = true
			}
		}
		all := map[[2]string]bool{}
		for p := range m.pairs {
			all[p] = true
		}
		for p := range uncertain {
			all[p] = true
		}
		for p := range all {
			want := m.pairs[p]
			var got pairState
			if l := g[p[0]]; l != nil {
				for _, it := range l[0] {
					if it.UserID == p[1] {
						got = pairState{true, it.FollowTime}
					}
				}
			}
			if uncertain[p] {
				m.pairs[p] = got // either outcome is allowed; learn which
				continue
			}
			if got != want {
				t.Fatalf("round %d: %s -> %s is %+v after the crash, acknowledged state %+v", round, p[0], p[1], got, want)
			}
		}
		t.Logf("round %d: killed after %d acknowledged writes (relay delay %dms), all present", round, m.acked-before, delay)
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if m.acked < rounds*10 {
		t.Fatalf("only %d writes acknowledged in %d rounds", m.acked, rounds)
	}
}
