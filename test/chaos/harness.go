package chaos

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/wire"
)

// ReadsMixed splits the workload's clients between leader and
// linearizable reads.
const ReadsMixed wire.Consistency = 255

// Config is one run of the harness.
type Config struct {
	Followd   string // path of the followd binary
	Followctl string // path of the followctl binary
	Dir       string // the run's directory: node data, logs, artifacts

	Seed     uint64
	Nodes    int           // 3 or 5
	Shards   int           // shards of the cluster
	Users    int           // size of the user pool (at most 64)
	Clients  int           // concurrent workload clients
	Duration time.Duration // of the faulty part; the schedule fits in it
	// Faults are the kinds the schedule draws from (default AllFaults,
	// less partitions without namespaces).
	Faults []FaultKind
	// Namespaces runs each node in its own network namespace (needed for
	// partitions).
	Namespaces  bool
	NetID       int           // tells concurrent runs' networks apart (1-250)
	DeadTimeout time.Duration // followd --dead-timeout
	OpTimeout   time.Duration // one client operation
	// CheckTimeout bounds the linearizability check.
	CheckTimeout time.Duration
	// Reads is the workload's read consistency: ReadsMixed (the
	// default: half the clients read at leader, the product's default,
	// half at linearizable), or one level for all. Any makes reads stale
	// on purpose, to show the checker catches it.
	Reads wire.Consistency
	// Sample, if set, is called every SampleEvery with resource figures
	// (the soak).
	Sample      func(Sample)
	SampleEvery time.Duration
	Log         io.Writer

	// Background, if set, is the scale mode (scale.go): that many users
	// of a power-law graph (BackgroundMean follows each on average) are
	// loaded before the faults, and BackgroundClients clients run
	// BackgroundRate operations a second each over them during the run.
	Background        int
	BackgroundMean    float64
	BackgroundClients int
	BackgroundRate    float64
	// ConvergeTimeout bounds the followctl verify retries at the end (a
	// full verify of a large graph takes minutes); VerifyParallel is its
	// --parallel.
	ConvergeTimeout time.Duration
	VerifyParallel  int
}

// DefaultConfig is a 3-node, 4-shard run of 60 s.
func DefaultConfig() Config {
	return Config{
		Seed: 1, Nodes: 3, Shards: 4, Users: 32, Clients: 8,
		Duration: 60 * time.Second, Namespaces: true, NetID: 1 + int(os.Getpid()%250),
		DeadTimeout: 10 * time.Second, OpTimeout: 2 * time.Second, CheckTimeout: 5 * time.Minute, Reads: ReadsMixed,
		SampleEvery: 10 * time.Second, Log: os.Stderr,
		BackgroundMean: 10, BackgroundClients: 4, BackgroundRate: 25,
		ConvergeTimeout: 2 * time.Minute, VerifyParallel: 8,
	}
}

// ScaleConfig turns cfg into a scale run: shards shards, users background
// users, and a verify budget that suits them.
func (c *Config) ScaleConfig(shards, users int) {
	c.Shards, c.Background = shards, users
	// verify checks every edge from both sides, one request each:
	// minutes for a million edges on a small machine.
	c.ConvergeTimeout = max(c.ConvergeTimeout, 15*time.Minute)
	c.VerifyParallel = max(c.VerifyParallel, 32)
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.Followd == "" || c.Followctl == "":
		return errors.New("chaos: Followd and Followctl are required")
	case c.Dir == "":
		return errors.New("chaos: Dir is required")
	case c.Nodes < 3:
		return errors.New("chaos: at least 3 nodes")
	case c.Users < 2 || c.Users > 64:
		return errors.New("chaos: Users must be 2 to 64")
	case c.Clients < 1 || c.Duration <= 0 || c.Shards < 1:
		return errors.New("chaos: Clients, Duration and Shards must be positive")
	case c.NetID < 1 || c.NetID > 250:
		return errors.New("chaos: NetID must be 1 to 250")
	case c.Background < 0 || c.Background == 1:
		return errors.New("chaos: Background must be 0 (off) or at least 2")
	case c.Background > 0 && (c.BackgroundMean <= 0 || c.BackgroundClients < 1 || c.BackgroundRate <= 0):
		return errors.New("chaos: BackgroundMean, BackgroundClients and BackgroundRate must be positive")
	}
	return nil
}

// Harness runs one cluster through one schedule.
type Harness struct {
	cfg   Config
	net   *Network
	nodes []*Node
	hist  *History
	admin *client.Client
	hook  *hookReceiver // the webhook endpoint every node posts to
	logf  func(format string, args ...any)
}

// Result is what a run found.
type Result struct {
	Seed     uint64  `json:"seed"`
	Schedule []Fault `json:"schedule"`
	Ops      int     `json:"ops"`
	OK       int     `json:"ok"`
	Failed   int     `json:"failed"`
	Unknown  int     `json:"unknown"`
	// Linearizable is porcupine's verdict: "Ok", "Illegal" or "Unknown"
	// (timed out).
	Linearizable string `json:"linearizable"`
	IllegalActor string `json:"illegalActor,omitempty"` // the first actor whose history is not
	Lost         []Lost `json:"lost"`
	EdgesDecided int    `json:"edgesDecided"` // edges whose final state was checked
	// Converged is whether followctl verify came back clean, and after how
	// long once the faults ended.
	Converged     bool          `json:"converged"`
	ConvergeAfter time.Duration `json:"convergeAfter"`
	VerifyOutput  string        `json:"verifyOutput,omitempty"`
	// ReplicatedAfter is when every shard had its voters on current
	// nodes again, after the faults ended.
	ReplicatedAfter time.Duration `json:"replicatedAfter"`
	Availability    []Availability
	Errors          []string `json:"errors,omitempty"` // harness problems (a node that would not start)
	// Scale is the scale mode's figures (nil without it).
	Scale *ScaleResult `json:"scale,omitempty"`
	// Clock is what the followTime probe saw (nil without clock faults).
	Clock *ClockResult `json:"clock,omitempty"`
	// Watch is what the change-feed check saw, Webhook what the webhook
	// receiver saw.
	Watch   *WatchResult `json:"watch,omitempty"`
	Webhook *WatchResult `json:"webhook,omitempty"`

	history []Op
	lin     Linearizability
}

// Violations lists what makes the run fail.
func (r *Result) Violations() []string {
	var v []string
	if r.Linearizable != "Ok" {
		v = append(v, "linearizability: "+r.Linearizable)
	}
	for _, l := range r.Lost {
		v = append(v, fmt.Sprintf("lost write: %s(%s, %s) acknowledged at %v, final %s", l.Write.Kind, userID(l.Write.Actor), userID(l.Target), time.Duration(l.Write.Return), setString(l.Final)))
	}
	if !r.Converged {
		v = append(v, "no convergence: "+r.VerifyOutput)
	}
	for _, c := range []struct {
		what string
		w    *WatchResult
	}{{"change feed", r.Watch}, {"webhook", r.Webhook}} {
		what, w := c.what, c.w
		if w == nil {
			continue
		}
		if w.Err != "" {
			v = append(v, what+": "+w.Err)
		}
		for _, m := range w.Mismatches {
			v = append(v, what+": "+m)
		}
	}
	if r.Clock != nil {
		v = append(v, r.Clock.Violations...)
	}
	return append(v, r.Errors...)
}

// New prepares the network and the nodes (nothing runs yet).
func New(cfg Config) (*Harness, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Faults == nil {
		for _, f := range AllFaults {
			if cfg.Namespaces || (f != FaultIsolate && f != FaultIsolateLead && f != FaultSplit) {
				cfg.Faults = append(cfg.Faults, f)
			}
		}
	}
	nw, err := NewNetwork(cfg.Nodes, cfg.NetID, cfg.Namespaces)
	if err != nil {
		return nil, err
	}
	h := &Harness{cfg: cfg, net: nw, hist: NewHistory()}
	if h.hook, err = startHookReceiver(nw.HostIP(), cfg.Users); err != nil {
		nw.Close()
		return nil, fmt.Errorf("chaos: webhook receiver: %w", err)
	}
	h.logf = func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, "%7.2fs  %s\n", time.Duration(h.hist.Now()).Seconds(), fmt.Sprintf(format, args...))
	}
	for i := range cfg.Nodes {
		ip := nw.IP(i)
		h.nodes = append(h.nodes, &Node{
			Index: i, ID: fmt.Sprintf("n%d", i+1), h: h,
			Addr: net.JoinHostPort(ip, clientPort), HTTP: net.JoinHostPort(ip, httpPort),
			dir: filepath.Join(cfg.Dir, fmt.Sprintf("node%d", i+1)),
		})
	}
	return h, nil
}

// Close stops every node and removes the network.
func (h *Harness) Close() {
	for _, n := range h.nodes {
		n.Kill()
		n.closeLog()
	}
	if h.admin != nil {
		h.admin.Close()
	}
	h.hook.close()
	h.net.Close()
}

func (h *Harness) addrs() []string {
	var a []string
	for _, n := range h.nodes {
		a = append(a, n.Addr)
	}
	return a
}

func (h *Harness) newClient(ctx context.Context, name string) (*client.Client, error) {
	return client.New(ctx, client.Config{
		Addrs: h.addrs(), Name: name, KnownOutcomeWrites: true,
		DialTimeout: time.Second, RequestTimeout: h.cfg.OpTimeout, RetryBackoff: 20 * time.Millisecond,
	})
}

// startCluster starts every node and waits for a leader of every shard.
func (h *Harness) startCluster(ctx context.Context) error {
	for _, n := range h.nodes {
		if err := n.Start(); err != nil {
			return err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for _, n := range h.nodes {
		if err := n.WaitReady(wctx); err != nil {
			return fmt.Errorf("%s: %v (log: %s)", n.ID, err, n.LogPath())
		}
	}
	c, err := h.newClient(wctx, "chaos-admin")
	if err != nil {
		return err
	}
	h.admin = c
	return h.waitLeaders(wctx)
}

// waitLeaders waits until the shard map names a leader for every shard.
func (h *Harness) waitLeaders(ctx context.Context) error {
	return poll(ctx, 200*time.Millisecond, func() error {
		m, err := h.admin.ShardMap(ctx)
		if err != nil {
			return err
		}
		for _, l := range m.Leaders {
			if l.Addr == "" {
				return fmt.Errorf("shard %d has no leader", l.Shard)
			}
		}
		if len(m.Leaders) != h.cfg.Shards {
			return fmt.Errorf("%d of %d shards have leaders", len(m.Leaders), h.cfg.Shards)
		}
		return nil
	})
}

// fullyReplicated waits until every shard's leader reports min(3, nodes)
// voters, all of them current nodes, and no non-voters, and every voter
// holds the shard within caughtUp entries of the leader: the data is back,
// not only the configuration (a node back empty under its old ID is listed
// as a voter before it holds anything).
func (h *Harness) fullyReplicated(ctx context.Context) error {
	const caughtUp = 64
	want := min(3, len(h.nodes))
	return poll(ctx, 500*time.Millisecond, func() error {
		status := map[string]map[int]uint64{} // node -> shard -> applied index
		for _, n := range h.nodes {
			st, err := h.admin.Status(ctx, n.Addr)
			if err != nil {
				return fmt.Errorf("status of %s: %v", n.ID, err)
			}
			status[n.ID] = map[int]uint64{}
			for _, sh := range st.Shards {
				status[n.ID][sh.Shard] = sh.AppliedIndex
			}
		}
		led := map[int]bool{}
		for _, n := range h.nodes {
			st, err := h.admin.Status(ctx, n.Addr)
			if err != nil {
				return fmt.Errorf("status of %s: %v", n.ID, err)
			}
			for _, sh := range st.Shards {
				if !sh.Leader {
					continue
				}
				led[sh.Shard] = true
				if len(sh.Voters) != want || len(sh.Nonvoters) != 0 {
					return fmt.Errorf("shard %d: voters %v, non-voters %v", sh.Shard, sh.Voters, sh.Nonvoters)
				}
				for _, v := range sh.Voters {
					applied, ok := status[v][sh.Shard]
					if !ok {
						return fmt.Errorf("shard %d: voter %s holds no replica", sh.Shard, v)
					}
					if applied+caughtUp < sh.AppliedIndex {
						return fmt.Errorf("shard %d: voter %s at index %d, leader at %d", sh.Shard, v, applied, sh.AppliedIndex)
					}
				}
			}
		}
		if len(led) != h.cfg.Shards {
			return fmt.Errorf("%d of %d shards have a leader", len(led), h.cfg.Shards)
		}
		return nil
	})
}

// Run starts the cluster, runs the workload through the schedule, heals
// everything and checks the history.
func (h *Harness) Run(ctx context.Context) (*Result, error) {
	res := &Result{Seed: h.cfg.Seed, Schedule: Schedule(h.cfg.Seed, h.cfg.Duration, h.cfg.Faults)}
	h.logf("seed %d: %d nodes, %d shards, %d users, %d clients, %v, namespaces %v; %d faults scheduled",
		h.cfg.Seed, h.cfg.Nodes, h.cfg.Shards, h.cfg.Users, h.cfg.Clients, h.cfg.Duration, h.cfg.Namespaces, len(res.Schedule))
	if err := h.startCluster(ctx); err != nil {
		return nil, err
	}
	h.logf("cluster up")
	stopBackground, err := h.startScale(ctx, res)
	if err != nil {
		return nil, err
	}
	h.hist = NewHistory() // the clock starts with the workload
	watch, err := h.startWatch(ctx)
	if err != nil {
		stopBackground()
		return nil, fmt.Errorf("chaos: starting the watcher: %w", err)
	}
	stopWork, err := h.startWorkload(ctx)
	if err != nil {
		stopBackground()
		watch.stop()
		return nil, err
	}
	stopProbe := h.startClockProbe(ctx, res)
	faultsEnd := h.runSchedule(ctx, res)
	h.healAll(ctx, res, faultsEnd)
	// The workload keeps going for a few seconds on the healed cluster.
	sleep(ctx, 3*time.Second)
	stopProbe()
	stopBackground()
	stopWork()
	h.logf("workload stopped")
	// A write the stop cancelled (outcome unknown) may still commit: the
	// node goes on with it after the client gives up. A final read taken
	// before it lands would disagree with the change feed, which does see
	// it (found with seed 1: an unfollow cancelled 9 ms before the final
	// read of its actor, applied just after). On the healed cluster such
	// a write lands within milliseconds, an election at most; wait twice
	// the client's operation timeout.
	sleep(ctx, 2*h.cfg.OpTimeout)
	h.checkHistory(ctx, res, faultsEnd, watch)
	return res, nil
}

// startWorkload starts the workload's clients, each recording into the
// history (with ReadsMixed, half read at leader and half linearizable),
// and the resource sampler if the run has one. stop ends them all and
// waits for them.
func (h *Harness) startWorkload(ctx context.Context) (stop func(), err error) {
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	stop = func() {
		cancel()
		wg.Wait()
	}
	for i := range h.cfg.Clients {
		c, err := h.newClient(ctx, fmt.Sprintf("chaos-%d", i))
		if err != nil {
			stop()
			return nil, err
		}
		reads := h.cfg.Reads
		if reads == ReadsMixed {
			reads = []wire.Consistency{wire.Leader, wire.Linearizable}[i%2]
		}
		w := &Worker{ID: i, C: c, H: h.hist, Users: h.cfg.Users, Timeout: h.cfg.OpTimeout, Reads: reads,
			Rand: rand.New(rand.NewPCG(h.cfg.Seed, uint64(i)))}
		wg.Go(func() { keepWorking(wctx, w) })
	}
	if h.cfg.Sample != nil {
		wg.Go(func() { h.sampleLoop(wctx) })
	}
	return stop, nil
}

// keepWorking steps w until ctx ends, then closes its client. After an
// operation that did not succeed it backs off a little, so that a cluster
// that is down is not spun on.
func keepWorking(ctx context.Context, w *Worker) {
	defer w.C.Close()
	for ctx.Err() == nil {
		if op := w.Step(ctx); op.Outcome != OK {
			sleep(ctx, 50*time.Millisecond)
		}
	}
}

// runSchedule injects the faults of res.Schedule at their times, one at a
// time, then waits out the rest of the run. It returns when the faults
// ended, on the history's clock.
func (h *Harness) runSchedule(ctx context.Context, res *Result) time.Duration {
	start := time.Now()
	for i := range res.Schedule {
		if d := res.Schedule[i].At - time.Since(start); d > 0 {
			sleep(ctx, d)
		}
		if ctx.Err() != nil || !h.applyFault(ctx, res, i) {
			break
		}
	}
	if d := h.cfg.Duration - time.Since(start); d > 0 {
		sleep(ctx, d)
	}
	return time.Duration(h.hist.Now())
}

// applyFault injects and heals fault i of the schedule, then waits until
// every shard has its voters back, recording in res what went wrong. It
// reports false when replication did not come back, which ends the
// schedule.
func (h *Harness) applyFault(ctx context.Context, res *Result, i int) bool {
	f := &res.Schedule[i]
	h.logf("inject %s (hold %v)", f.Kind, f.Hold)
	if err := h.inject(ctx, f); err != nil {
		f.Err = err.Error()
		res.Errors = append(res.Errors, fmt.Sprintf("fault %d (%s): %v", i, f.Kind, err))
		h.logf("fault %s: %v", f.Kind, err)
	}
	h.logf("healed %s %v", f.Kind, f.Nodes)
	// One fault at a time: three replicas tolerate one failure, so
	// the next fault waits until every shard has its voters back
	// (a second node losing its data while the first one's replicas
	// are still being rebuilt leaves shards without a quorum - by
	// design, see docs/RELIABILITY.md).
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err := h.fullyReplicated(rctx)
	cancel()
	f.Restored = time.Duration(h.hist.Now()) - f.Healed
	if err != nil {
		res.Errors = append(res.Errors, fmt.Sprintf("replication not restored after fault %d (%s): %v", i, f.Kind, err))
		return false
	}
	return true
}

// healAll ends whatever the faults left behind: links back, every node
// running, a leader for every shard, and every shard back to full
// strength, which it times from faultsEnd. It records in res what did not
// recover.
func (h *Harness) healAll(ctx context.Context, res *Result, faultsEnd time.Duration) {
	h.net.Heal()
	for _, n := range h.nodes {
		if !n.Running() {
			if err := n.Start(); err != nil {
				res.Errors = append(res.Errors, err.Error())
			}
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	if err := h.waitLeaders(rctx); err != nil {
		res.Errors = append(res.Errors, "after healing: "+err.Error())
	}
	cancel()
	// Every shard back to full strength: replicas of a wiped node (a
	// new ID) are moved after --dead-timeout, those of a node back empty
	// under its old ID are re-added as non-voters and promoted.
	rctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
	if err := h.fullyReplicated(rctx); err != nil {
		res.Errors = append(res.Errors, "replication not restored: "+err.Error())
	}
	cancel()
	res.ReplicatedAfter = time.Duration(h.hist.Now()) - faultsEnd
	h.logf("fully replicated %v after the faults", res.ReplicatedAfter.Round(time.Millisecond))
}

// checkHistory runs the final reads (recorded like any other read), waits
// for both sides of every edge to converge, and checks the history: no
// acknowledged write lost, linearizability, and unavailability per fault
// kind.
func (h *Harness) checkHistory(ctx context.Context, res *Result, faultsEnd time.Duration, watch *feedWatch) {
	final := h.finalReads(ctx)
	res.Watch = watch.check(ctx, final, h.cfg.Users)
	res.Webhook = h.hook.check(ctx, final)
	h.logf("webhook: %d events (%d redelivered), %d actors differ from the final reads", res.Webhook.Events, res.Webhook.Duplicates, len(res.Webhook.Mismatches))
	h.logf("change feed: %d events (%d duplicates), %d actors differ from the final reads", res.Watch.Events, res.Watch.Duplicates, len(res.Watch.Mismatches))
	res.Converged, res.VerifyOutput = h.converge(ctx)
	res.ConvergeAfter = time.Duration(h.hist.Now()) - faultsEnd
	h.logf("converged %v after %v", res.Converged, res.ConvergeAfter.Round(time.Millisecond))

	res.history = h.hist.Ops()
	res.Ops = len(res.history)
	res.countOutcomes()
	res.Lost, res.EdgesDecided = LostWrites(res.history, final)
	// The latency is logged before the long check, so a run whose check
	// fails to finish still tells it.
	for _, sl := range LatencySlices(res.history, 12) {
		h.logf("latency from %.0fs: %d ops ok, median %v, p99 %v", sl.From.Seconds(), sl.Ops, sl.Median, sl.P99)
	}
	h.logf("checking linearizability of %d operations", res.Ops)
	res.lin = CheckLinearizable(res.history, h.cfg.CheckTimeout)
	res.Linearizable = string(res.lin.Result)
	if res.lin.Actor >= 0 {
		res.IllegalActor = userID(res.lin.Actor)
	}
	res.Availability = Unavailability(res.history, res.Schedule, faultsEnd, h.cfg.Shards)
}

// countOutcomes counts the history's operations by outcome.
func (r *Result) countOutcomes() {
	for _, o := range r.history {
		switch o.Outcome {
		case OK:
			r.OK++
		case Failed:
			r.Failed++
		case Unknown:
			r.Unknown++
		}
	}
}

// finalReads reads every actor's following set at linearizable
// consistency (retrying until it succeeds) and records the reads.
func (h *Harness) finalReads(ctx context.Context) map[int]uint64 {
	c, err := h.newClient(ctx, "chaos-final")
	if err != nil {
		return nil
	}
	defer c.Close()
	w := &Worker{ID: h.cfg.Clients, C: c, H: h.hist, Users: h.cfg.Users, Timeout: h.cfg.OpTimeout, Reads: wire.Linearizable}
	final := map[int]uint64{}
	// A cluster that did not recover gets a minute in all, not minutes
	// per user.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for u := range h.cfg.Users {
		for try := 0; try < 20 && ctx.Err() == nil; try++ {
			op := Op{Client: w.ID, Kind: ReadFollowing, Actor: u, Call: h.hist.Now()}
			octx, cancel := context.WithTimeout(ctx, h.cfg.OpTimeout)
			err := w.do(octx, &op)
			cancel()
			op.Return = h.hist.Now()
			if err == nil {
				h.hist.add(op)
				final[u] = op.Result
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	return final
}

// converge runs followctl verify until it is clean (at most
// ConvergeTimeout, 2 minutes by default).
func (h *Harness) converge(ctx context.Context) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(h.cfg.ConvergeTimeout, 2*time.Minute))
	defer cancel()
	var out []byte
	for ctx.Err() == nil {
		cmd := exec.CommandContext(ctx, h.cfg.Followctl, h.verifyArgs()...)
		var err error
		out, err = cmd.CombinedOutput()
		if err == nil {
			return true, string(out)
		}
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
	}
	return false, string(out)
}

// verifyArgs is followctl verify's command line. --timeout bounds one
// request, not the run; the default --parallel is kept unless the scale
// mode asks for more.
func (h *Harness) verifyArgs() []string {
	a := []string{"verify", "--addr", h.nodes[0].Addr, "--timeout", "5s"}
	if p := h.cfg.VerifyParallel; p > 0 && p != 8 {
		a = append(a, "--parallel", fmt.Sprint(h.cfg.VerifyParallel))
	}
	return a
}

// SaveArtifacts writes the history, the schedule, the seed, the result
// and (for a linearizability failure) porcupine's visualisation into dir;
// the node logs are already there.
func (h *Harness) SaveArtifacts(res *Result) error {
	dir := h.cfg.Dir
	write := func(name string, v any) error {
		b, err := json.MarshalIndent(v, "", " ")
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name), b, 0o644)
	}
	if err := write("history.json", res.history); err != nil {
		return err
	}
	if err := write("result.json", res); err != nil {
		return err
	}
	replay := fmt.Sprintf("seed %d\nreplay: make chaos CHAOS_SEEDS=%d CHAOS_DURATION=%v CHAOS_NODES=%d\n", res.Seed, res.Seed, h.cfg.Duration, h.cfg.Nodes)
	if h.cfg.Background > 0 {
		replay = fmt.Sprintf("seed %d\nreplay: make chaos-scale CHAOS_SCALE_SEEDS=%d CHAOS_SCALE_DURATION=%v CHAOS_NODES=%d CHAOS_SCALE_SHARDS=%d CHAOS_SCALE_USERS=%d\n",
			res.Seed, res.Seed, h.cfg.Duration, h.cfg.Nodes, h.cfg.Shards, h.cfg.Background)
	}
	if err := os.WriteFile(filepath.Join(dir, "seed.txt"), []byte(replay), 0o644); err != nil {
		return err
	}
	return porcupineVisualize(res, filepath.Join(dir, "linearizability.html"))
}

// ReadyAddrs are the nodes' client addresses (for followctl in tests).
func (h *Harness) ReadyAddrs() []string { return h.addrs() }
