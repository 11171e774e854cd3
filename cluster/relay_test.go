package cluster

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/fsm"
)

// faultySender wraps the local sender with the failures a network and a
// crashing peer produce: lost requests, lost replies, duplicates, delays,
// partial and reordered batches, and a destination that is down for a
// while.
type faultySender struct {
	next     sender
	mu       sync.Mutex
	rng      *rand.Rand
	downDst  int
	downTill time.Time
	faults   atomic.Int64
}

func (f *faultySender) roll() (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rng.IntN(100), f.rng.IntN(20)
}

func (f *faultySender) Deliver(ctx context.Context, dst, src int, recs []fsm.Record) (uint64, error) {
	if dst == f.downDst && time.Now().Before(f.downTill) {
		f.faults.Add(1)
		return 0, codes.New(codes.ShardUnavailable, "shard %d is down", dst)
	}
	r, d := f.roll()
	switch {
	case r < 10: // the request is lost
		f.faults.Add(1)
		return 0, codes.New(codes.Timeout, "request lost")
	case r < 20: // the reply is lost
		f.faults.Add(1)
		f.next.Deliver(ctx, dst, src, recs)
		return 0, codes.New(codes.Timeout, "reply lost")
	case r < 30: // delivered twice
		f.faults.Add(1)
		f.next.Deliver(ctx, dst, src, recs)
		return f.next.Deliver(ctx, dst, src, recs)
	case r < 50: // delayed
		f.faults.Add(1)
		time.Sleep(time.Duration(d) * time.Millisecond)
	case r < 60 && len(recs) > 1: // only a prefix arrives
		f.faults.Add(1)
		return f.next.Deliver(ctx, dst, src, recs[:len(recs)/2])
	case r < 65 && len(recs) > 1: // reordered
		f.faults.Add(1)
		rev := make([]fsm.Record, len(recs))
		for i, rec := range recs {
			rev[len(recs)-1-i] = rec
		}
		return f.next.Deliver(ctx, dst, src, rev)
	}
	return f.next.Deliver(ctx, dst, src, recs)
}

// runWorkload runs the same writes on n: writers own disjoint actors, so
// each (actor, target) pair sees its writes in a fixed order.
func runWorkload(t *testing.T, n *Node, seed uint64) {
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for range 250 {
				actor := fmt.Sprintf("a%d-%d", w, rng.IntN(8))
				var targets []string
				for range 1 + rng.IntN(4) {
					targets = append(targets, fmt.Sprintf("t%d", rng.IntN(30)))
				}
				if rng.IntN(6) == 0 {
					targets = append(targets, fmt.Sprintf("a%d-%d", (w+1)%3, rng.IntN(8)))
				}
				var err error
				if rng.IntN(3) == 0 {
					_, err = n.Unfollow(context.Background(), actor, targets, WriteOptions{})
				} else {
					_, err = n.Follow(context.Background(), actor, targets, WriteOptions{})
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func drained(n *Node) bool {
	for i := range n.Shards() {
		if n.Replica(i).Lag().Records != 0 {
			return false
		}
	}
	return true
}

func TestRelayUnderFaults(t *testing.T) {
	clean := openNode(t, testConfig(t, t.TempDir()))
	defer clean.Close()
	runWorkload(t, clean, 42)
	waitFor(t, "clean relay", 10*time.Second, func() bool { return drained(clean) })
	want := dumpGraph(t, clean)
	checkGraph(t, want)

	cfg := testConfig(t, t.TempDir())
	fs := &faultySender{rng: rand.New(rand.NewPCG(7, 7)), downDst: 2, downTill: time.Now().Add(500 * time.Millisecond)}
	cfg.sender = fs
	cfg.Relay.Retry = time.Millisecond
	faulty := openNode(t, cfg)
	defer faulty.Close()
	fs.next = nodeSender{faulty}
	runWorkload(t, faulty, 42)
	waitFor(t, "faulty relay", 30*time.Second, func() bool { return drained(faulty) })
	got := dumpGraph(t, faulty)
	checkGraph(t, got)
	if !maps.Equal(edges(got), edges(want)) {
		t.Fatalf("the graph after faults differs from the fault-free one: %d vs %d edges", len(edges(got)), len(edges(want)))
	}
	if fs.faults.Load() < 20 {
		t.Fatalf("only %d faults injected", fs.faults.Load())
	}
	t.Logf("%d faults injected, %d edges", fs.faults.Load(), len(edges(got)))
}
