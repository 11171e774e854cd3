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
	FaultNone         FaultKind = "none" // quiet period (the baseline)
)

// gossipHealTime is how soon after a partition heals every node must see
// every other alive again (followd retries dead members every 5 s).
const gossipHealTime = 20 * time.Second

// AllFaults are the kinds in a default schedule.
var AllFaults = []FaultKind{FaultKill, FaultPause, FaultIsolate, FaultIsolateLead, FaultSplit, FaultWipe, FaultWipeSameID, FaultRollingStart}

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
	n := len(h.nodes)
	victim := r.IntN(n)
	if f.Kind == FaultKill || f.Kind == FaultIsolateLead || f.Kind == FaultPause && r.IntN(2) == 0 {
		if l, ok := h.busiestLeader(ctx); ok && (f.Kind != FaultKill || r.IntN(10) < 7) {
			victim = l
		}
	}
	f.Injected = time.Duration(h.hist.Now())
	defer func() { f.Healed = time.Duration(h.hist.Now()) }()
	hold := func() error {
		select {
		case <-time.After(f.Hold):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	node := h.nodes[victim]
	switch f.Kind {
	case FaultKill:
		f.Nodes = []string{node.ID}
		node.Kill()
		hold()
		return node.Start()
	case FaultPause:
		f.Nodes = []string{node.ID}
		if err := node.Pause(); err != nil {
			return err
		}
		hold()
		if err := node.Resume(); err != nil {
			return err
		}
		return h.gossipHealed(ctx, gossipHealTime)
	case FaultIsolate, FaultIsolateLead:
		f.Nodes = []string{node.ID}
		var rest []int
		for i := range n {
			if i != victim {
				rest = append(rest, i)
			}
		}
		if err := h.net.Partition([]int{victim}, rest); err != nil {
			return err
		}
		hold()
		if err := h.net.Heal(); err != nil {
			return err
		}
		return h.gossipHealed(ctx, gossipHealTime)
	case FaultSplit:
		perm := r.Perm(n)
		if n >= 5 {
			a, b := perm[:n/2], perm[n/2:]
			f.Nodes = []string{fmt.Sprint(h.ids(a)), fmt.Sprint(h.ids(b))}
			if err := h.net.Partition(a, b); err != nil {
				return err
			}
		} else {
			f.Nodes = []string{h.nodes[perm[0]].ID, h.nodes[perm[1]].ID}
			if err := h.net.Cut(perm[0], perm[1]); err != nil {
				return err
			}
		}
		hold()
		if err := h.net.Heal(); err != nil {
			return err
		}
		return h.gossipHealed(ctx, gossipHealTime)
	case FaultWipe, FaultWipeSameID:
		old := node.ID
		node.Kill()
		if err := node.Wipe(); err != nil {
			return err
		}
		if f.Kind == FaultWipe {
			node.ID = fmt.Sprintf("n%d-%d", victim+1, node.starts)
		}
		f.Nodes = []string{old + "->" + node.ID}
		hold()
		return node.Start()
	case FaultRollingStart:
		for _, i := range r.Perm(n) {
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
	case FaultNone:
		return hold()
	}
	return fmt.Errorf("unknown fault %q", f.Kind)
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
