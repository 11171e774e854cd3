package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// FaultKind names a fault.
type FaultKind string

// The faults the harness injects.
const (
	FaultKill         FaultKind = "kill"           // SIGKILL a node (the busiest leader, mostly), restart it after the hold
	FaultPause        FaultKind = "pause"          // SIGSTOP a node, SIGCONT after the hold
	FaultIsolate      FaultKind = "isolate"        // cut one random node off from the others (it is a minority of one)
	FaultIsolateLead  FaultKind = "isolate-leader" // cut off the node that leads the most shards
	FaultSplit        FaultKind = "split"          // with 5 nodes: 2 | 3; with 3: a bridge (a and b cut, c sees both)
	FaultWipe         FaultKind = "wipe"           // SIGKILL a node, delete its data, bring it back empty under a new ID
	FaultWipeSameID   FaultKind = "wipe-same-id"   // the same, but back under its old ID (a replaced disk)
	FaultRollingStart FaultKind = "rolling-restart"
	FaultClockForward FaultKind = "clock-forward" // one node's wall clock jumps an hour ahead, back after the hold (clock.go)
	FaultClockBack    FaultKind = "clock-back"    // one node's wall clock jumps an hour back, then forward again
	FaultNone         FaultKind = "none"          // quiet period (the baseline)
)

// gossipHealTime is how soon after a partition heals every node must see
// every other alive again (followd retries dead members every 5 s).
const gossipHealTime = 20 * time.Second

// AllFaults are the kinds in a default schedule.
var AllFaults = []FaultKind{FaultKill, FaultPause, FaultIsolate, FaultIsolateLead, FaultSplit, FaultWipe, FaultWipeSameID, FaultRollingStart, FaultClockForward, FaultClockBack}

// Fault is one entry of the schedule: inject at At, heal after Hold.
type Fault struct {
	Kind FaultKind     `json:"kind"`
	At   time.Duration `json:"at"`
	Hold time.Duration `json:"hold"`
	// Pick seeds the choice of nodes (resolved at injection, because
	// which node leads is only known then).
	Pick uint64 `json:"pick"`

	// Filled in when injected.
	Nodes    []string      `json:"nodes,omitempty"`
	Injected time.Duration `json:"injected,omitempty"` // since the run started
	Healed   time.Duration `json:"healed,omitempty"`
	// Restored is how long after the heal every shard had its voters on
	// current nodes again (measured before the next fault).
	Restored time.Duration `json:"restored,omitempty"`
	Err      string        `json:"err,omitempty"`
}

// Schedule makes a seeded fault schedule for a run of length d: faults
// one after another, each held 2-6 s, with 2-4 s of quiet between.
func Schedule(seed uint64, d time.Duration, kinds []FaultKind) []Fault {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	var out []Fault
	at := 3 * time.Second // warm up first
	for {
		f := Fault{Kind: kinds[r.IntN(len(kinds))], Hold: time.Duration(2000+r.IntN(4000)) * time.Millisecond, Pick: r.Uint64()}
		if f.Kind == FaultRollingStart {
			f.Hold = 0 // as long as it takes
		}
		f.At = at
		if at+f.Hold > d {
			return out
		}
		out = append(out, f)
		at += f.Hold + time.Duration(2000+r.IntN(2000))*time.Millisecond
		if f.Kind == FaultRollingStart || f.Kind == FaultWipe || f.Kind == FaultWipeSameID {
			at += 5 * time.Second // these take longer to settle
		}
	}
}

// inject applies f, waits for its hold, then heals it. It records what it
// did in f.
func (h *Harness) inject(ctx context.Context, f *Fault) error {
	r := rand.New(rand.NewPCG(f.Pick, 1))
	victim := h.pickVictim(ctx, f.Kind, r)
	f.Injected = time.Duration(h.hist.Now())
	defer func() { f.Healed = time.Duration(h.hist.Now()) }()
	node := h.nodes[victim]
	switch f.Kind {
	case FaultKill:
		f.Nodes = []string{node.ID}
		node.Kill()
		sleep(ctx, f.Hold)
		return node.Start()
	case FaultPause:
		f.Nodes = []string{node.ID}
		return h.holdThenHeal(ctx, f.Hold, node.Pause, node.Resume)
	case FaultIsolate, FaultIsolateLead:
		return h.isolate(ctx, f, victim)
	case FaultSplit:
		return h.split(ctx, f, r)
	case FaultWipe, FaultWipeSameID:
		return h.wipe(ctx, f, victim)
	case FaultRollingStart:
		return h.rollingRestart(ctx, f, r)
	case FaultClockForward, FaultClockBack:
		return h.jumpClock(ctx, f, victim)
	case FaultNone:
		return sleep(ctx, f.Hold)
	}
	return fmt.Errorf("unknown fault %q", f.Kind)
}

// pickVictim chooses the node a fault of kind hits: a random one, except
// that a kill or a clock jump (7 times in 10), an isolate-leader (always)
// and a pause (half the time) hit the node leading the most shards, whose
// loss hurts most (and whose clock stamps the most followTimes). The
// draws from r depend only on the fault, so a seed replays them.
func (h *Harness) pickVictim(ctx context.Context, kind FaultKind, r *rand.Rand) int {
	victim := r.IntN(len(h.nodes))
	often := kind == FaultKill || kind == FaultClockForward || kind == FaultClockBack
	if often || kind == FaultIsolateLead || kind == FaultPause && r.IntN(2) == 0 {
		if l, ok := h.busiestLeader(ctx); ok && (!often || r.IntN(10) < 7) {
			victim = l
		}
	}
	return victim
}

// holdThenHeal applies a fault with apply, holds it for hold, undoes it
// with undo, then waits until every node's gossip sees every other alive
// again: while the fault held, either side may have marked the other dead.
func (h *Harness) holdThenHeal(ctx context.Context, hold time.Duration, apply, undo func() error) error {
	if err := apply(); err != nil {
		return err
	}
	sleep(ctx, hold)
	if err := undo(); err != nil {
		return err
	}
	return h.gossipHealed(ctx, gossipHealTime)
}

// isolate cuts node victim off from all the others (a minority of one)
// for the fault's hold.
func (h *Harness) isolate(ctx context.Context, f *Fault, victim int) error {
	f.Nodes = []string{h.nodes[victim].ID}
	var rest []int
	for i := range len(h.nodes) {
		if i != victim {
			rest = append(rest, i)
		}
	}
	return h.holdThenHeal(ctx, f.Hold, func() error { return h.net.Partition([]int{victim}, rest) }, h.net.Heal)
}

// split partitions the cluster for the fault's hold: with 5 nodes or more
// into two random groups (2 | 3 of 5), with fewer by cutting the link
// between two random nodes, which both still see the third (a bridge).
func (h *Harness) split(ctx context.Context, f *Fault, r *rand.Rand) error {
	n := len(h.nodes)
	perm := r.Perm(n)
	cut := func() error { return h.net.Cut(perm[0], perm[1]) }
	if n >= 5 {
		a, b := perm[:n/2], perm[n/2:]
		f.Nodes = []string{fmt.Sprint(h.ids(a)), fmt.Sprint(h.ids(b))}
		cut = func() error { return h.net.Partition(a, b) }
	} else {
		f.Nodes = []string{h.nodes[perm[0]].ID, h.nodes[perm[1]].ID}
	}
	return h.holdThenHeal(ctx, f.Hold, cut, h.net.Heal)
}

// wipe kills node victim and deletes its data, and after the fault's hold
// brings it back empty: under a new ID for FaultWipe (a replaced machine),
// under its old one for FaultWipeSameID (a replaced disk).
func (h *Harness) wipe(ctx context.Context, f *Fault, victim int) error {
	node := h.nodes[victim]
	old := node.ID
	node.Kill()
	if err := node.Wipe(); err != nil {
		return err
	}
	if f.Kind == FaultWipe {
		node.ID = fmt.Sprintf("n%d-%d", victim+1, node.starts)
	}
	f.Nodes = []string{old + "->" + node.ID}
	sleep(ctx, f.Hold)
	return node.Start()
}

// rollingRestart stops (gracefully) and restarts every node in a random
// order, waiting for each to be ready before the next, as an upgrade does.
func (h *Harness) rollingRestart(ctx context.Context, f *Fault, r *rand.Rand) error {
	for _, i := range r.Perm(len(h.nodes)) {
		nd := h.nodes[i]
		f.Nodes = append(f.Nodes, nd.ID)
		if err := nd.Stop(); err != nil {
			nd.Start()
			return err
		}
		if err := nd.Start(); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		err := nd.WaitReady(wctx)
		cancel()
		if err != nil {
			return fmt.Errorf("rolling restart: %s not ready: %v", nd.ID, err)
		}
	}
	return nil
}

// gossipHealed waits until every node's gossip sees every current node
// alive. After a partition heals or a pause ends, each side may have
// marked the other dead; if gossip never merges again, the leaders move
// the replicas of healthy nodes away once --dead-timeout passes (found by
// this suite: memberlist does not probe dead nodes, so followd now
// rejoins them itself).
func (h *Harness) gossipHealed(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	return poll(ctx, 250*time.Millisecond, func() error {
		for _, n := range h.nodes {
			st, err := h.admin.Status(ctx, n.Addr)
			if err != nil {
				return fmt.Errorf("status of %s: %v", n.ID, err)
			}
			alive := map[string]bool{}
			for _, m := range st.Members {
				alive[m.NodeID] = m.Alive
			}
			for _, o := range h.nodes {
				if !alive[o.ID] {
					return fmt.Errorf("%s's gossip does not see %s alive", n.ID, o.ID)
				}
			}
		}
		return nil
	})
}

func (h *Harness) ids(idx []int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, h.nodes[i].ID)
	}
	slices.Sort(out)
	return out
}

// busiestLeader is the index of the node that leads the most shards.
func (h *Harness) busiestLeader(ctx context.Context) (int, bool) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	m, err := h.admin.ShardMap(ctx)
	if err != nil {
		return 0, false
	}
	count := map[string]int{}
	for _, l := range m.Leaders {
		count[l.LeaderID]++
	}
	best, bestN := -1, 0
	for i, n := range h.nodes {
		if count[n.ID] > bestN {
			best, bestN = i, count[n.ID]
		}
	}
	return best, best >= 0
}
