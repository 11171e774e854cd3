package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/shard"
	"github.com/followgraph/followgraph/wire"
)

// TestFailoverInvisibleToCallers: three followd processes, a client with
// the default configuration (it knows every node), and writers with 5 s
// deadlines, half of them on a shard whose leader is then stopped, by
// SIGKILL and, in a second cluster, by SIGTERM. No caller sees an error:
// the client retries what did not apply until the deadline. Three more
// writers each send to one node, without the client's routing or
// retries (Client.Call): the nodes that survive absorb the failover
// themselves, retrying the forward to the shard's new leader. The test reports the latency the
// failover added (the slowest write around it, against the median).
func TestFailoverInvisibleToCallers(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) { failoverWithoutErrors(t, sig) })
	}
}

func failoverWithoutErrors(t *testing.T, sig syscall.Signal) {
	const shards, victimShard = 8, 0
	procs := startCluster(t, shards)
	var addrs []string
	for _, p := range procs {
		addrs = append(addrs, p.addr)
	}
	c, err := client.New(context.Background(), client.Config{Addrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitMap(t, c, 60*time.Second)
	direct := func(ctx context.Context, node int, actor, target string) error {
		_, err := c.Call(ctx, procs[node].addr, wire.OpFollow, func(b []byte) []byte {
			return wire.AppendWriteRequest(b, wire.WriteRequest{Actor: actor, Targets: []string{target}})
		})
		return err
	}
	// Writers 0-3 write to the victim's shard, 4-7 anywhere.
	var home []string
	for i := 0; len(home) < 40; i++ {
		if a := fmt.Sprintf("actor%d", i); shard.Of(a, shards) == victimShard {
			home = append(home, a)
		}
	}
	var mu sync.Mutex
	var errs []string
	var lat []time.Duration
	var slowest time.Duration
	ambiguous := 0                             // direct writes whose forward the kill cut off in flight
	singleErrs := make([][]string, len(procs)) // by the one node the client knows
	stop := untilStopped(11, func(w, i int) {
		a, tg := home[(i*4+w)%len(home)], fmt.Sprintf("t%d-%d", w, i)
		switch {
		case w >= 8:
			a = home[(i*3+w)%len(home)]
		case w >= 4:
			a = fmt.Sprintf("any%d-%d", w, i%50)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		start := time.Now()
		var err error
		if w >= 8 {
			err = direct(ctx, w-8, a, tg)
		} else {
			_, err = c.Follow(ctx, a, []string{tg})
		}
		took := time.Since(start)
		cancel()
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			e := fmt.Sprintf("%s after %v: %v", a, took.Round(time.Millisecond), err)
			if w >= 8 && codes.Of(err) == codes.Timeout {
				// The forward was in flight on the connection the kill
				// broke: the node cannot know whether the leader applied
				// it, and retrying could apply a write twice around a
				// concurrent one, so it says so (30007). The Go client
				// retries that unless KnownOutcomeWrites is set.
				ambiguous++
			} else if w >= 8 {
				singleErrs[w-8] = append(singleErrs[w-8], e)
			} else {
				errs = append(errs, e)
			}
		}
		if w < 8 {
			lat = append(lat, took)
			slowest = max(slowest, took)
		}
		time.Sleep(5 * time.Millisecond)
	})
	time.Sleep(time.Second)
	var victim *proc
	for deadline := time.Now().Add(10 * time.Second); victim == nil; time.Sleep(50 * time.Millisecond) {
		for _, p := range procs {
			if leadsShard(c, p.addr, victimShard) {
				victim = p
			}
		}
		if victim == nil && time.Now().After(deadline) {
			stop()
			t.Fatalf("no node leads shard %d", victimShard)
		}
	}
	victim.cmd.Process.Signal(sig)
	<-victim.exited
	time.Sleep(6 * time.Second)
	stop()
	slices.Sort(lat)
	t.Logf("%v of the leader of shard %d: %d writes, median %v, p99 %v, slowest %v, %d errors; %d direct writes cut off in flight (30007)",
		sig, victimShard, len(lat), lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Millisecond), slowest.Round(time.Millisecond), len(errs), ambiguous)
	if len(errs) > 0 {
		t.Fatalf("%d writes failed; the first: %s", len(errs), errs[0])
	}
	if sig == syscall.SIGTERM && ambiguous > 0 {
		t.Fatalf("a graceful stop left %d forwarded writes with an unknown outcome", ambiguous)
	}
	for i, p := range procs {
		if p != victim && len(singleErrs[i]) > 0 {
			t.Fatalf("through %s alone, without client retries: %d writes failed; the first: %s", p.addr, len(singleErrs[i]), singleErrs[i][0])
		}
	}
	if len(lat) < 200 {
		t.Fatalf("only %d writes in 7 s", len(lat))
	}
}

// TestPausedNodeDoesNotStallCallers stops (SIGSTOP) the node that leads
// the most shards for 7 s, a frozen VM or a long GC pause, while writers
// with 5 s deadlines write to every shard through the default client. No
// caller sees an error, and no write waits much longer than a failover:
// an attempt that gets no answer within the client's attempt timeout is
// retried elsewhere, where the shard's new leader soon is.
func TestPausedNodeDoesNotStallCallers(t *testing.T) {
	const shards = 8
	procs := startCluster(t, shards)
	var addrs []string
	for _, p := range procs {
		addrs = append(addrs, p.addr)
	}
	c, err := client.New(context.Background(), client.Config{Addrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitMap(t, c, 60*time.Second)
	var mu sync.Mutex
	var errs []string
	var lat []time.Duration
	stop := untilStopped(8, func(w, i int) {
		a := fmt.Sprintf("p%d-%d", w, i%64)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		start := time.Now()
		_, err := c.Follow(ctx, a, []string{fmt.Sprintf("t%d-%d", w, i)})
		took := time.Since(start)
		cancel()
		mu.Lock()
		lat = append(lat, took)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s after %v: %v", a, took.Round(time.Millisecond), err))
		}
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	})
	time.Sleep(time.Second)
	var victim *proc
	most := -1
	for _, p := range procs {
		n := 0
		for i := range shards {
			if leadsShard(c, p.addr, i) {
				n++
			}
		}
		if n > most {
			victim, most = p, n
		}
	}
	victim.cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(7 * time.Second)
	victim.cmd.Process.Signal(syscall.SIGCONT)
	time.Sleep(3 * time.Second)
	stop()
	slices.Sort(lat)
	slowest := lat[len(lat)-1]
	t.Logf("SIGSTOP for 7 s of a node leading %d of %d shards: %d writes, median %v, p99 %v, slowest %v, %d errors",
		most, shards, len(lat), lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Millisecond), slowest.Round(time.Millisecond), len(errs))
	if len(errs) > 0 {
		t.Fatalf("%d writes failed; the first: %s", len(errs), errs[0])
	}
	// An attempt timeout (1.5 s) plus an election and some noise; the
	// pause itself is 7 s.
	if slowest > 4*time.Second {
		t.Fatalf("a write waited %v through the pause", slowest)
	}
}

// TestRollingRestartWithoutErrors restarts every node of a 3-node cluster
// in turn (SIGTERM, start again on its data, wait until every shard is
// led) while writers and readers with 5 s deadlines run through the
// default client: no caller sees an error.
func TestRollingRestartWithoutErrors(t *testing.T) {
	const shards = 8
	procs := startCluster(t, shards)
	var addrs []string
	for _, p := range procs {
		addrs = append(addrs, p.addr)
	}
	c, err := client.New(context.Background(), client.Config{Addrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitMap(t, c, 60*time.Second)
	var mu sync.Mutex
	var errs []string
	var lat []time.Duration
	stop := untilStopped(8, func(w, i int) {
		a := fmt.Sprintf("r%d-%d", w, i%40)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		start := time.Now()
		var err error
		if w%2 == 0 {
			_, err = c.Follow(ctx, a, []string{fmt.Sprintf("t%d", i%100)})
		} else {
			_, err = c.Following(ctx, a)
		}
		took := time.Since(start)
		cancel()
		mu.Lock()
		lat = append(lat, took)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s after %v: %v", a, took.Round(time.Millisecond), err))
		}
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	})
	for i, p := range procs {
		began := time.Now()
		p.cmd.Process.Signal(syscall.SIGTERM)
		<-p.exited
		procs[i] = startB(t, p.dir, p.args...)
		waitMap(t, c, 60*time.Second)
		t.Logf("node %d restarted, every shard led after %v", i+1, time.Since(began).Round(time.Millisecond))
		time.Sleep(time.Second)
	}
	stop()
	slices.Sort(lat)
	t.Logf("rolling restart: %d requests, median %v, p99 %v, slowest %v, %d errors",
		len(lat), lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), len(errs))
	if len(errs) > 0 {
		t.Fatalf("%d requests failed; the first: %s", len(errs), errs[0])
	}
}
