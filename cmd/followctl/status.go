package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/wire"
)

// Status.

// maxLagMs is the age of the oldest undelivered reverse edge beyond which
// a shard is flagged, on a single node as in a cluster: some backlog is
// normal under load, and delivered records wait up to a second for an
// entry to acknowledge them.
const maxLagMs = 5000

// maxHookLag is the webhook backlog, in events, that status flags: an
// endpoint that keeps up has a few at most.
const maxHookLag = 1000

// statusOutput is the status of the --addr node and, in a cluster, of the
// cluster as its members report it.
type statusOutput struct {
	NodeID    string        `json:"nodeID"`
	Version   string        `json:"version"`
	ClusterID string        `json:"clusterID"`
	UptimeSec uint64        `json:"uptimeSec"`
	Addr      string        `json:"addr"`
	Nodes     []nodeOutput  `json:"nodes"`  // the cluster's members; [] on a single node
	Shards    []shardOutput `json:"shards"` // a cluster's: one per shard, from its leader
	Healthy   bool          `json:"healthy"`
	Unhealthy []string      `json:"unhealthy"` // the problems; [] when healthy
}

// nodeOutput is one member of the cluster, as the --addr node's gossip
// sees it.
type nodeOutput struct {
	NodeID     string `json:"nodeID"`
	ClientAddr string `json:"clientAddr"`
	RaftAddr   string `json:"raftAddr"`
	State      string `json:"state"` // alive, dead or draining
	Leads      int    `json:"leads"` // shards it leads
	Hosts      int    `json:"hosts"` // replicas it holds
	Version    string `json:"version"`
	Error      string `json:"error"` // why a live node's status could not be read
}

type shardOutput struct {
	Shard        int      `json:"shard"`
	Leader       bool     `json:"leader"` // the --addr node leads the shard
	LeaderID     string   `json:"leaderID"`
	LeaderAddr   string   `json:"leaderAddr"`
	Ready        bool     `json:"ready"`
	AppliedIndex uint64   `json:"appliedIndex"`
	Users        uint64   `json:"users"`
	Following    uint64   `json:"following"`
	Followers    uint64   `json:"followers"`
	Mutual       uint64   `json:"mutual"`
	LagRecords   uint64   `json:"lagRecords"`
	LagOldestMs  uint64   `json:"lagOldestMs"`
	Halted       string   `json:"halted"`
	Recovered    string   `json:"recovered"` // an unsafe recovery, as the replica it was made from reports it
	Voters       []string `json:"voters"`
	Nonvoters    []string `json:"nonvoters"`
	WebhookLag   uint64   `json:"webhookLag"` // feed events a webhook has yet to deliver (leader)
	// Removals are the removals of users' graphs running on the shard.
	Removals []removalOutput `json:"removals"`
}

type removalOutput struct {
	User      string `json:"user"`
	Removed   uint64 `json:"removed"`   // edges removed so far
	Remaining uint64 `json:"remaining"` // entries left in the user's lists
}

func statusCmd(ctx context.Context, c *client.Client, _ *options, _ []string) (output, error) {
	s, err := c.Status(ctx, "")
	if err != nil {
		return nil, err
	}
	out := statusOutput{NodeID: s.NodeID, Version: s.Server, ClusterID: s.ClusterID, UptimeSec: s.UptimeSec, Addr: s.Addr,
		Nodes: []nodeOutput{}}
	if len(s.Members) == 0 {
		out.Unhealthy = problems(s)
		out.Shards = make([]shardOutput, 0, len(s.Shards))
		for _, sh := range s.Shards {
			out.Shards = append(out.Shards, newShardOutput(sh))
		}
	} else {
		members := fetchMembers(ctx, c, s)
		out.Nodes, out.Shards, out.Unhealthy = clusterView(s, members, c.Welcome().Shards)
	}
	out.Healthy = len(out.Unhealthy) == 0
	return out, nil
}

func newShardOutput(sh wire.ShardStatus) shardOutput {
	so := shardOutput{Shard: sh.Shard, Leader: sh.Leader, LeaderID: sh.LeaderID, LeaderAddr: sh.LeaderAddr,
		Ready: sh.Ready, AppliedIndex: sh.AppliedIndex, Users: sh.Users, Following: sh.Following, Followers: sh.Followers,
		Mutual: sh.Mutual, LagRecords: sh.LagRecords, LagOldestMs: sh.LagOldestMs, Halted: sh.Halted, Recovered: sh.Recovered,
		Voters: sorted(sh.Voters), Nonvoters: sorted(sh.Nonvoters), WebhookLag: sh.HookLag, Removals: []removalOutput{}}
	for _, rm := range sh.Removals {
		so.Removals = append(so.Removals, removalOutput{User: rm.User, Removed: rm.Removed, Remaining: rm.Remaining})
	}
	return so
}

// removalsText lists the removals running, one per line.
func (out statusOutput) removalsText(w io.Writer) {
	for _, sh := range out.Shards {
		for _, rm := range sh.Removals {
			fmt.Fprintf(w, "REMOVING: shard %d: user %q, %d edges removed, %d left\n", sh.Shard, rm.User, rm.Removed, rm.Remaining)
		}
	}
}

// sorted returns a sorted copy of ids, never nil (JSON shows []).
func sorted(ids []string) []string {
	out := append([]string{}, ids...)
	slices.Sort(out)
	return out
}

// problems lists what is wrong with a single node: shards that are not
// ready (this node does not lead them or has not caught up), halted, or
// have reverse edges undelivered or unacknowledged for over maxLagMs.
// Never nil, so JSON shows [].
func problems(s client.Status) []string {
	out := []string{}
	if len(s.Shards) == 0 {
		out = append(out, "no shards reported")
	}
	for _, sh := range s.Shards {
		if !sh.Ready {
			out = append(out, fmt.Sprintf("shard %d not ready", sh.Shard))
		}
		if sh.Halted != "" {
			out = append(out, fmt.Sprintf("shard %d halted: %s", sh.Shard, sh.Halted))
		}
		if sh.LagOldestMs > maxLagMs {
			out = append(out, fmt.Sprintf("shard %d relay lag %d records (oldest %d ms)", sh.Shard, sh.LagRecords, sh.LagOldestMs))
		}
		if sh.HookLag > maxHookLag {
			out = append(out, webhookProblem(sh.Shard, sh.HookLag))
		}
	}
	return out
}

// memberStatus is one member and what its status request returned.
type memberStatus struct {
	wire.MemberStatus
	status *client.Status // nil if dead or silent
	err    error
}

// fetchMembers asks every live member of self's cluster (but self, whose
// status is at hand) for its status, in parallel. The result is sorted by
// node ID.
func fetchMembers(ctx context.Context, c *client.Client, self client.Status) []memberStatus {
	ms := self.Members
	if !slices.ContainsFunc(ms, func(m wire.MemberStatus) bool { return m.NodeID == self.NodeID }) {
		ms = append(slices.Clip(ms), wire.MemberStatus{NodeID: self.NodeID, ClientAddr: self.Addr, Alive: true})
	}
	out := make([]memberStatus, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		out[i].MemberStatus = m
		switch {
		case m.NodeID == self.NodeID:
			out[i].status = &self
		case !m.Alive:
		case m.ClientAddr == "":
			out[i].err = fmt.Errorf("no client address in gossip")
		default:
			wg.Go(func() {
				s, err := c.Status(ctx, m.ClientAddr)
				switch {
				case err != nil:
					out[i].err = err
				case s.NodeID != m.NodeID:
					out[i].err = fmt.Errorf("%s answers as node %q", m.ClientAddr, s.NodeID)
				default:
					out[i].status = &s
				}
			})
		}
	}
	wg.Wait()
	slices.SortFunc(out, func(a, b memberStatus) int { return cmp.Compare(a.NodeID, b.NodeID) })
	return out
}

// replicaView is one node's view of one of its replicas.
type replicaView struct {
	node, addr string
	wire.ShardStatus
}

// clusterView builds the NODES and SHARDS tables from self's gossip and
// every member's status, and lists the problems (never nil): the nodes'
// first, then the shards', in table order. shards is the cluster's shard
// count.
func clusterView(self client.Status, members []memberStatus, shards int) ([]nodeOutput, []shardOutput, []string) {
	nodes, bad, byShard, shards := nodeRows(members, shards)
	want := wantVoters(byShard, len(members))
	states := map[string]string{}
	for _, n := range nodes {
		states[n.NodeID] = n.State
		if n.Error != "" {
			states[n.NodeID] = "silent"
		}
	}
	rows := make([]shardOutput, 0, shards)
	var shardBad []string
	for i := range shards {
		row, problems := shardRow(i, byShard[i], self.NodeID, want)
		row.Recovered = recoveredNote(byShard[i])
		problems = explain(i, row, problems, states)
		rows = append(rows, row)
		shardBad = append(shardBad, problems...)
	}
	return nodes, rows, append(bad, shardBad...)
}

// nodeRows makes the NODES table, a row per member, with the problems the
// members show (dead, draining, not answering), and gathers the replicas
// the members report by shard. The shard count grows to cover every shard
// a member reports.
func nodeRows(members []memberStatus, shards int) ([]nodeOutput, []string, map[int][]replicaView, int) {
	bad := []string{}
	nodes := make([]nodeOutput, 0, len(members))
	byShard := map[int][]replicaView{}
	for _, m := range members {
		n := nodeOutput{NodeID: m.NodeID, ClientAddr: m.ClientAddr, RaftAddr: m.RaftAddr, State: "alive", Leads: m.Leads, Hosts: m.Hosts}
		switch {
		case !m.Alive:
			n.State = "dead"
			bad = append(bad, fmt.Sprintf("node %s dead", m.NodeID))
		case m.Draining:
			n.State = "draining"
			bad = append(bad, fmt.Sprintf("node %s draining", m.NodeID))
		}
		if m.err != nil {
			n.Error = errorMessage(m.err)
			bad = append(bad, fmt.Sprintf("node %s did not answer: %s", m.NodeID, n.Error))
		}
		if m.status != nil {
			n.Version = m.status.Server
			for _, sh := range m.status.Shards {
				byShard[sh.Shard] = append(byShard[sh.Shard], replicaView{node: m.NodeID, addr: m.status.Addr, ShardStatus: sh})
				shards = max(shards, sh.Shard+1)
			}
		}
		nodes = append(nodes, n)
	}
	return nodes, bad, byShard, shards
}

// wantVoters is the voter count every shard should have: the most common
// one among the shards' leaders (the larger on a tie), and at least 3 (the
// replication factor) once there are 3 nodes.
func wantVoters(byShard map[int][]replicaView, nodes int) int {
	counts := map[int]int{}
	for _, vs := range byShard {
		for _, v := range vs {
			if v.Leader {
				counts[len(v.Voters)]++
				break
			}
		}
	}
	want, seen := 0, 0
	for n, k := range counts {
		if k > seen || (k == seen && n > want) {
			want, seen = n, k
		}
	}
	if nodes >= 3 {
		want = max(want, 3)
	}
	return want
}

// shardRow makes shard i's row of the SHARDS table from the report of the
// replica that stands for it (see pickReplica), and lists its problems.
// Only a leader's report is current: without one the row shows no leader
// and not ready.
func shardRow(i int, vs []replicaView, self string, want int) (shardOutput, []string) {
	row, leaders, bad := pickReplica(i, vs)
	if row == nil {
		bad = append(bad, fmt.Sprintf("shard %d has no leader (no replica answered)", i))
		return shardOutput{Shard: i, Voters: []string{}, Nonvoters: []string{}}, bad
	}
	so := newShardOutput(row.ShardStatus)
	so.Leader = row.Leader && row.node == self
	so.LeaderID, so.LeaderAddr = "", ""
	if !row.Leader {
		so.Ready = false
		return so, append(bad, fmt.Sprintf("shard %d has no leader", i))
	}
	so.LeaderID, so.LeaderAddr = row.node, row.addr
	if len(leaders) > 1 {
		bad = append(bad, fmt.Sprintf("shard %d reported led by %s (an election in progress, or a stale leader)", i, strings.Join(leaders, " and ")))
	}
	if !row.Ready {
		bad = append(bad, fmt.Sprintf("shard %d leader %s not ready (catching up)", i, row.node))
	}
	if len(row.Voters) < want {
		bad = append(bad, fmt.Sprintf("shard %d has %d voters, want %d", i, len(row.Voters), want))
	}
	if row.LagOldestMs > maxLagMs {
		bad = append(bad, fmt.Sprintf("shard %d relay lag %d records (oldest %d ms)", i, row.LagRecords, row.LagOldestMs))
	}
	if row.HookLag > maxHookLag {
		bad = append(bad, webhookProblem(i, row.HookLag))
	}
	return so, bad
}

func webhookProblem(shard int, lag uint64) string {
	return fmt.Sprintf("shard %d webhook backlog %d events (an endpoint failing or slow; see followgraph_webhook_* metrics)", shard, lag)
}

// recoveredNote is the unsafe recovery one of vs reports, naming the node
// (the replica it was made from keeps the record).
func recoveredNote(vs []replicaView) string {
	for _, v := range vs {
		if v.Recovered != "" {
			return v.Recovered
		}
	}
	return ""
}

// explain adds to a shard's problems why it has them, from the states of
// its voters' nodes (alive, dead, draining, silent; missing from gossip):
// a shard without a leader either waits for an election (a majority of
// voters is up) or lost its quorum (then only an unsafe recovery, or the
// voters' return, brings it back); one short of voters either waits for a
// replica to catch up or has no node to put one on.
func explain(i int, row shardOutput, problems []string, states map[string]string) []string {
	var down, upIDs []string
	for _, v := range row.Voters {
		if st := states[v]; st != "alive" && st != "draining" {
			down = append(down, v+" "+cmp.Or(st, "unknown"))
		} else {
			upIDs = append(upIDs, v)
		}
	}
	up := len(upIDs)
	from := "NODE"
	if len(upIDs) == 1 {
		from = upIDs[0]
	}
	for k, p := range problems {
		switch {
		case p == fmt.Sprintf("shard %d has no leader", i) && len(row.Voters) > 0 && up > len(row.Voters)/2:
			problems[k] = fmt.Sprintf("%s: election pending, %d of %d voters up", p, up, len(row.Voters))
		case p == fmt.Sprintf("shard %d has no leader", i) && len(row.Voters) > 0:
			problems[k] = fmt.Sprintf("%s: quorum lost, %d of %d voters up (%s); bring them back, or if their data is gone: followctl recover %d --from %s --accept-data-loss",
				p, up, len(row.Voters), strings.Join(down, ", "), i, from)
		case strings.HasPrefix(p, fmt.Sprintf("shard %d has %d voters, want", i, len(row.Voters))):
			problems[k] = p + ": " + shortOfVoters(row, states)
		}
	}
	return problems
}

// shortOfVoters says why a shard has fewer voters than it should.
func shortOfVoters(row shardOutput, states map[string]string) string {
	if len(row.Nonvoters) > 0 {
		return "replica catching up on " + strings.Join(row.Nonvoters, ",")
	}
	free := 0
	for id, st := range states {
		if st == "alive" && !slices.Contains(row.Voters, id) {
			free++
		}
	}
	if free == 0 {
		return "no other live, active node to hold a replica"
	}
	return "the leader is adding a replica"
}

// pickReplica chooses, among shard i's replicas vs, the one whose report
// stands for the shard: a leader (the most advanced, if more than one
// claims to lead), else the most advanced replica, else nil. It also
// returns the nodes claiming to lead and the problems of halted replicas.
func pickReplica(i int, vs []replicaView) (row *replicaView, leaders, bad []string) {
	for j := range vs {
		v := &vs[j]
		if v.Leader {
			leaders = append(leaders, v.node)
			if row == nil || !row.Leader || v.AppliedIndex > row.AppliedIndex {
				row = v
			}
		} else if row == nil || (!row.Leader && v.AppliedIndex > row.AppliedIndex) {
			row = v
		}
		if v.Halted != "" {
			bad = append(bad, fmt.Sprintf("shard %d halted on %s: %s", i, v.node, v.Halted))
		}
	}
	return row, leaders, bad
}

func (out statusOutput) text(w io.Writer) {
	tw := newTable(w)
	fmt.Fprintf(tw, "node:\t%s (%s)\n", out.NodeID, out.Addr)
	fmt.Fprintf(tw, "version:\t%s\n", out.Version)
	fmt.Fprintf(tw, "cluster:\t%s\n", out.ClusterID)
	fmt.Fprintf(tw, "uptime:\t%s\n", time.Duration(out.UptimeSec)*time.Second)
	tw.Flush()
	fmt.Fprintln(w)
	if len(out.Nodes) > 0 {
		out.clusterText(w)
		return
	}
	tw = newTable(w)
	fmt.Fprintln(tw, "SHARD\tLEADER\tREADY\tAPPLIED INDEX\tUSERS\tEDGES\tFOLLOWERS\tMUTUAL\tLAG RECORDS\tOLDEST LAG MS\tHALTED")
	for _, sh := range out.Shards {
		leader := "unknown"
		switch {
		case sh.Leader:
			leader = "self"
		case sh.LeaderID != "" && sh.LeaderAddr != "":
			leader = sh.LeaderID + " (" + sh.LeaderAddr + ")"
		case sh.LeaderID != "":
			leader = sh.LeaderID
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", sh.Shard, leader, yesNo(sh.Ready), sh.AppliedIndex,
			sh.Users, sh.Following, sh.Followers, sh.Mutual, sh.LagRecords, sh.LagOldestMs, dash(sh.Halted))
	}
	tw.Flush()
	fmt.Fprintln(w)
	out.removalsText(w)
	if out.Healthy {
		fmt.Fprintf(w, "healthy: %d shards ready, none halted, no relay lag over %ds\n", len(out.Shards), maxLagMs/1000)
	} else {
		out.unhealthyText(w)
	}
}

func (out statusOutput) clusterText(w io.Writer) {
	tw := newTable(w)
	fmt.Fprintln(tw, "NODE\tCLIENT ADDR\tRAFT ADDR\tSTATE\tLEADS\tHOSTS\tVERSION")
	alive := 0
	for _, n := range out.Nodes {
		if n.State != "dead" {
			alive++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", n.NodeID, dash(n.ClientAddr), dash(n.RaftAddr), n.State, n.Leads, n.Hosts, dash(n.Version))
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = newTable(w)
	fmt.Fprintln(tw, "SHARD\tLEADER\tVOTERS\tNONVOTERS\tAPPLIED INDEX\tUSERS\tEDGES\tFOLLOWERS\tMUTUAL\tLAG RECORDS\tOLDEST LAG MS\tHALTED")
	for _, sh := range out.Shards {
		leader := "none"
		if sh.LeaderID != "" {
			leader = sh.LeaderID
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", sh.Shard, leader, dash(strings.Join(sh.Voters, ",")),
			dash(strings.Join(sh.Nonvoters, ",")), sh.AppliedIndex, sh.Users, sh.Following, sh.Followers, sh.Mutual,
			sh.LagRecords, sh.LagOldestMs, dash(sh.Halted))
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, sh := range out.Shards {
		if sh.Recovered != "" {
			fmt.Fprintf(w, "RECOVERED: shard %d: %s\n", sh.Shard, sh.Recovered)
		}
	}
	out.removalsText(w)
	if out.Healthy {
		fmt.Fprintf(w, "healthy: %d nodes alive, %d shards led, none halted, no relay lag over %ds\n", alive, len(out.Shards), maxLagMs/1000)
	} else {
		out.unhealthyText(w)
	}
}

// unhealthyText lists the problems, one per line.
func (out statusOutput) unhealthyText(w io.Writer) {
	fmt.Fprintf(w, "UNHEALTHY: %d problem(s)\n", len(out.Unhealthy))
	for _, p := range out.Unhealthy {
		fmt.Fprintf(w, "  - %s\n", p)
	}
}

// dash is s, or "-" when empty, for table cells.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
