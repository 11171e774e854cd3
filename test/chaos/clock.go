package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/shard"
	"github.com/followgraph/followgraph/wire"
)

// Clock jumps. A Go process reads the time without calling libc, so a
// preloaded shim cannot shift it, and a time namespace cannot offset the
// real-time clock. Go's timers and durations run on the monotonic clock,
// which a real wall-clock step does not move either, so stepping one
// node's wall clock is the same as offsetting its wall-clock reads:
// followd takes the offset from the file named by FOLLOWD_TEST_CLOCK_FILE
// (internal/clock), and these faults write that file.

// clockJump is how far a clock fault moves a node's wall clock.
const clockJump = time.Hour

// clockFaults reports whether the run's schedule may jump clocks (only
// then do the nodes get a clock file, so other runs are unchanged).
func (c *Config) clockFaults() bool {
	return slices.Contains(c.Faults, FaultClockForward) || slices.Contains(c.Faults, FaultClockBack)
}

func (n *Node) clockFile() string { return filepath.Join(n.dir, "clock-offset") }

// SetClock sets the node's wall-clock offset (followd applies it within
// 100 ms). The file is replaced whole, so followd never reads half of it.
func (n *Node) SetClock(d time.Duration) error {
	tmp := n.clockFile() + ".tmp"
	if err := os.WriteFile(tmp, []byte(d.String()+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, n.clockFile())
}

// jumpClock moves node victim's wall clock by clockJump (back for
// FaultClockBack) for the fault's hold, then back to the real time.
func (h *Harness) jumpClock(ctx context.Context, f *Fault, victim int) error {
	node := h.nodes[victim]
	d := clockJump
	if f.Kind == FaultClockBack {
		d = -d
	}
	f.Nodes = []string{fmt.Sprintf("%s %+dm", node.ID, int(d.Minutes()))}
	if err := node.SetClock(d); err != nil {
		return err
	}
	sleep(ctx, f.Hold)
	return node.SetClock(0)
}

// ClockResult is what the followTime probe saw: for a few shards, a new
// edge every round and the followTime the cluster gave it.
type ClockResult struct {
	Shards  int `json:"shards"`  // probed
	Samples int `json:"samples"` // edges whose followTime was read
	// Frozen counts samples stamped with the same time as the previous
	// one of their shard, although 500 ms passed: the leader clamping to
	// its last stamp after its clock went back.
	Frozen int `json:"frozen"`
	// MaxForward is the largest step forward between two samples of a
	// shard (a clock jumped ahead shows up as about clockJump).
	MaxForward time.Duration `json:"maxForward"`
	// Back counts samples earlier than their shard's previous one where
	// the leader had changed in between (a different node, or the same
	// one restarted), and MaxBack is the largest such step back. That
	// is allowed; on the same leader it is a violation.
	Back       int           `json:"back"`
	MaxBack    time.Duration `json:"maxBack"`
	Violations []string      `json:"violations,omitempty"`
}

// probeSample is one probed edge: its followTime and the leader that
// stamped it ("" if the leader changed during the round).
type probeSample struct {
	at     time.Duration
	time   int64 // followTime, ms
	leader string
}

// probeShards is how many shards the probe follows.
const probeShards = 8

// startClockProbe runs the followTime probe until stop, if the run jumps
// clocks, and then puts its findings in res.Clock.
func (h *Harness) startClockProbe(ctx context.Context, res *Result) (stop func()) {
	if !h.cfg.clockFaults() {
		return func() {}
	}
	c, err := h.newClient(ctx, "chaos-clock-probe")
	if err != nil {
		res.Errors = append(res.Errors, "clock probe: "+err.Error())
		return func() {}
	}
	pctx, cancel := context.WithCancel(ctx)
	samples := map[int][]probeSample{}
	var wg sync.WaitGroup
	wg.Go(func() {
		defer c.Close()
		actors := probeActors(min(probeShards, h.cfg.Shards), h.cfg.Shards)
		for round := 0; pctx.Err() == nil; round++ {
			h.probeRound(pctx, c, actors, round, samples)
			sleep(pctx, 500*time.Millisecond)
		}
	})
	return func() {
		cancel()
		wg.Wait()
		res.Clock = analyseProbe(samples)
		res.Clock.Shards = min(probeShards, h.cfg.Shards)
	}
}

// probeActors names one probe user in each of the first n shards.
func probeActors(n, shards int) map[int]string {
	out := map[int]string{}
	for k := 0; len(out) < n; k++ {
		id := fmt.Sprintf("ck-%d", k)
		if s := shard.Of(id, shards); s < n && out[s] == "" {
			out[s] = id
		}
	}
	return out
}

// probeRound follows a new target from each probe actor, reads the
// followTime the edge got, and unfollows the actor's older targets (so
// its list stays one page). The leader of each shard is read before and
// after; a sample is attributed to it only if it did not change.
func (h *Harness) probeRound(ctx context.Context, c *client.Client, actors map[int]string, round int, samples map[int][]probeSample) {
	before := h.leaderIncarnations(ctx, c)
	got := map[int]int64{}
	for s, actor := range actors {
		target := fmt.Sprintf("ckt-%d-%d", s, round)
		if t, ok := h.probeEdge(ctx, c, actor, target); ok {
			got[s] = t
		}
	}
	after := h.leaderIncarnations(ctx, c)
	at := time.Duration(h.hist.Now())
	for s, t := range got {
		leader := before[s]
		if leader != after[s] {
			leader = ""
		}
		samples[s] = append(samples[s], probeSample{at: at, time: t, leader: leader})
	}
}

// probeEdge makes actor follow target and returns the edge's followTime.
func (h *Harness) probeEdge(ctx context.Context, c *client.Client, actor, target string) (int64, bool) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.OpTimeout)
	defer cancel()
	if rs, err := c.Follow(ctx, actor, []string{target}); err != nil || len(rs) != 1 || rs[0].Code != 0 {
		return 0, false
	}
	p, err := c.Following(ctx, actor, client.Limit(20), client.ReadConsistency(wire.Linearizable))
	if err != nil {
		return 0, false
	}
	var t int64
	var found bool
	var old []string
	for _, it := range p.Items {
		if it.UserID == target {
			t, found = it.FollowTime, true
		} else {
			old = append(old, it.UserID)
		}
	}
	if len(old) > 0 {
		c.Unfollow(ctx, actor, old)
	}
	return t, found
}

// leaderIncarnations names each shard's leader as node ID and start
// count, so that a restarted leader (which forgets its last stamp) counts
// as a different one.
func (h *Harness) leaderIncarnations(ctx context.Context, c *client.Client) map[int]string {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.OpTimeout)
	defer cancel()
	m, err := c.ShardMap(ctx)
	out := map[int]string{}
	if err != nil {
		return out
	}
	for _, l := range m.Leaders {
		for _, n := range h.nodes {
			if n.ID == l.LeaderID && l.LeaderID != "" {
				out[l.Shard] = fmt.Sprintf("%s#%d", n.ID, n.Starts())
			}
		}
	}
	return out
}

// analyseProbe compares each shard's consecutive samples: a followTime
// earlier than the previous one is a violation when the same leader
// stamped both, and a finding (Back) when the leader changed.
func analyseProbe(samples map[int][]probeSample) *ClockResult {
	r := &ClockResult{}
	for s, ss := range samples {
		r.Samples += len(ss)
		for i := 1; i < len(ss); i++ {
			prev, cur := ss[i-1], ss[i]
			step := time.Duration(cur.time-prev.time) * time.Millisecond
			switch {
			case step > 0:
				r.MaxForward = max(r.MaxForward, step)
			case step == 0:
				r.Frozen++
			case prev.leader != "" && prev.leader == cur.leader:
				r.Violations = append(r.Violations, fmt.Sprintf("followTime went back %v on shard %d under the same leader %s (at %v)",
					-step, s, cur.leader, cur.at.Round(time.Millisecond)))
			default:
				r.Back++
				r.MaxBack = max(r.MaxBack, -step)
			}
		}
	}
	return r
}
