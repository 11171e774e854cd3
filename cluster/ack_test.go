package cluster

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/fsm"
	"github.com/followgraph/followgraph/internal/testlog"
	"github.com/followgraph/followgraph/shard"
	"github.com/hashicorp/go-hclog"
)

// entryTotals sums the entries n's replicas committed, by kind.
func entryTotals(n *Node) EntryCounts {
	var t EntryCounts
	for i := range n.Shards() {
		e := n.Replica(i).Entries()
		t.Writes += e.Writes
		t.Deliveries += e.Deliveries
		t.Acks += e.Acks
	}
	return t
}

// TestAcksRideOnEntries: under a steady trickle of cross-shard writes, the
// outbox is trimmed by the entries the shards write anyway, without
// entries of acknowledgements alone; once the writes stop, the last
// confirmations get one entry each (at most one per shard) and the
// outboxes drain.
func TestAcksRideOnEntries(t *testing.T) {
	n := openNode(t, testConfig(t, t.TempDir()))
	defer n.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	ctx := context.Background()
	records := 0
	for i := range 300 {
		actor := fmt.Sprintf("u%d", rng.IntN(40))
		targets := []string{fmt.Sprintf("u%d", rng.IntN(40)), fmt.Sprintf("u%d", rng.IntN(40))}
		var err error
		if i%4 == 3 {
			_, err = n.Unfollow(ctx, actor, targets, WriteOptions{})
		} else {
			_, err = n.Follow(ctx, actor, targets, WriteOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
		records += len(targets)
		time.Sleep(2 * time.Millisecond)
	}
	during := entryTotals(n)
	pending := 0
	for i := range n.Shards() {
		pending += n.Replica(i).Lag().Records
	}
	if during.Writes < 100 || during.Deliveries == 0 {
		t.Fatalf("entries while writing: %+v", during)
	}
	// Generous bounds for a loaded machine; acknowledging on a timer of
	// its own wrote one ack entry per shard every few writes here.
	if during.Acks > uint64(n.Shards()) {
		t.Fatalf("%d entries of acknowledgements alone while the shards wrote %d entries", during.Acks, during.Writes+during.Deliveries)
	}
	if pending > records/4 {
		t.Fatalf("%d of about %d records still in the outboxes: entries do not carry the acknowledgements", pending, records)
	}
	waitFor(t, "outboxes to drain after the writes", 10*time.Second, func() bool { return drained(n) })
	after := entryTotals(n)
	if after.Acks-during.Acks > uint64(n.Shards()) {
		t.Fatalf("%d ack entries to drain the outboxes of %d shards", after.Acks-during.Acks, n.Shards())
	}
	checkGraph(t, dumpGraph(t, n))
	t.Logf("entries while writing %+v (records pending %d of %d); after draining %+v", during, pending, records, after)
}

// crossPair returns a follower and a followee on different shards of n
// shards: the follow's reverse side goes through the relay.
func crossPair(shards int) (actor, target string, src, dst int) {
	actor = "trim-actor"
	src = shard.Of(actor, shards)
	for i := 0; ; i++ {
		target = fmt.Sprintf("trim-target-%d", i)
		if dst = shard.Of(target, shards); dst != src {
			return actor, target, src, dst
		}
	}
}

// gatedSender holds every delivery until its gate opens.
type gatedSender struct {
	next sender
	gate chan struct{}
}

func (g *gatedSender) Deliver(ctx context.Context, dst, src int, recs []fsm.Record) (uint64, error) {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return g.next.Deliver(ctx, dst, src, recs)
}

// confirmed returns the highest sequence dst confirmed to the relay of r.
func (r *Replica) confirmed(dst int) uint64 {
	r.relay.mu.Lock()
	defer r.relay.mu.Unlock()
	return r.relay.delivered[dst]
}

// trimChild is the child of TestCrashBetweenDeliveryAndTrim: it commits a
// follow and an unfollow of a cross-shard pair while deliveries are held,
// lets the relay deliver both, waits until the destination has confirmed
// them (no entry will carry the acknowledgement: AckAfter is an hour and
// nothing else is written), prints DELIVERED and waits to be killed.
func trimChild() {
	cfg := quickConfig(os.Getenv("FG_CRASH_DIR"))
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Error, Output: os.Stderr})
	cfg.Relay.AckAfter = time.Hour
	gs := &gatedSender{gate: make(chan struct{})}
	cfg.sender = gs
	n, err := Open(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	gs.next = nodeSender{n}
	actor, target, src, dst := crossPair(n.Shards())
	ctx := context.Background()
	if _, err := n.Follow(ctx, actor, []string{target}, WriteOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, "follow:", err)
		os.Exit(2)
	}
	if _, err := n.Unfollow(ctx, actor, []string{target}, WriteOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, "unfollow:", err)
		os.Exit(2)
	}
	close(gs.gate)
	for n.Replica(src).confirmed(dst) < 2 {
		time.Sleep(time.Millisecond)
	}
	fmt.Printf("DELIVERED %d %d\n", n.Replica(src).FSM().Head(dst), n.Replica(dst).FSM().Applied(src))
	select {}
}

// prefixSender delivers only the first record of the first delivery from
// src to dst, and remembers what that delivery returned. Until next is
// set (after Open), deliveries fail and the relay retries.
type prefixSender struct {
	next     sender // under mu
	src, dst int
	mu       sync.Mutex
	sent     []uint64 // sequences the cut delivery carried
	returned uint64
}

func (p *prefixSender) Deliver(ctx context.Context, dst, src int, recs []fsm.Record) (uint64, error) {
	p.mu.Lock()
	next := p.next
	first := next != nil && p.sent == nil && src == p.src && dst == p.dst
	if first {
		recs = recs[:1]
		p.sent = []uint64{recs[0].Seq}
	}
	p.mu.Unlock()
	if next == nil {
		return 0, codes.New(codes.ShardUnavailable, "not wired yet")
	}
	applied, err := next.Deliver(ctx, dst, src, recs)
	if first {
		p.mu.Lock()
		p.returned = applied
		p.mu.Unlock()
	}
	return applied, err
}

// TestCrashBetweenDeliveryAndTrim kills a node (SIGKILL) after the
// destination applied two records (follow, then unfollow) but before the
// source's log acknowledged them. After the restart the outbox still holds
// both; the relay sends them again, here only the follow, which the
// destination must skip (applying it would resurrect a follower whose
// edge is gone); then an entry of acknowledgements alone trims the outbox.
func TestCrashBetweenDeliveryAndTrim(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test runs child processes; skipped with -short")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FG_CRASH_CHILD=trim", "FG_CRASH_DIR="+dir)
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Scan()
		line <- sc.Text()
	}()
	var got string
	select {
	case got = <-line:
	case <-time.After(60 * time.Second):
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	var head, applied uint64
	if _, err := fmt.Sscanf(got, "DELIVERED %d %d", &head, &applied); err != nil || head != 1 || applied != 2 {
		t.Fatalf("child: %q (want outbox head 1, destination applied 2): %v %s", got, err, stderr.String())
	}

	cfg := testConfig(t, dir)
	cfg.Logger = testlog.Logger(t, "", "warn")
	actor, target, src, dst := crossPair(cfg.Shards)
	ps := &prefixSender{src: src, dst: dst}
	cfg.sender = ps
	n := openNode(t, cfg)
	defer n.Close()
	ps.mu.Lock()
	ps.next = nodeSender{n}
	ps.mu.Unlock()
	if h := n.Replica(src).FSM().Head(dst); h != 1 {
		// AckAfter (1 s) keeps a redelivery's acknowledgement out of
		// the log for a while; head 0 here means the crash lost nothing
		// only if the trim was committed, which the child prevented.
		t.Fatalf("outbox head after restart: %d, want 1 (the records survived untrimmed)", h)
	}
	waitFor(t, "outbox trimmed after the restart", 10*time.Second, func() bool { return drained(n) })
	ps.mu.Lock()
	sent, returned := slices.Clone(ps.sent), ps.returned
	ps.mu.Unlock()
	if !slices.Equal(sent, []uint64{1}) || returned != 2 {
		t.Fatalf("redelivery sent %v, destination returned %d: want [1] and 2 (it remembers both records)", sent, returned)
	}
	if r := n.Replica(dst).FSM().Redelivered(); r < 1 {
		t.Fatalf("destination skipped %d redelivered records, want at least 1", r)
	}
	if f := followers(t, n, target); len(f) != 0 {
		t.Fatalf("%s's followers after the redelivered follow: %v (the unfollow was applied before the crash)", target, f)
	}
	if e := n.Replica(src).Entries(); e.Acks < 1 || e.Writes != 0 {
		t.Fatalf("source entries after the restart: %+v, want one of acknowledgements alone", e)
	}
	g := dumpGraph(t, n)
	checkGraph(t, g)
	if l := g[actor]; l != nil && len(l[0]) != 0 {
		t.Fatalf("%s still follows %v", actor, l[0])
	}
}
