package main

import (
	"strconv"
	"time"

	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are followd's Prometheus metrics. Request metrics come from the
// wire server (wire.Observer), commit latency from the shards'
// batchers; shard sizes, leadership and relay lag are read at scrape time.
type metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	conns       prometheus.Gauge
	rejected    prometheus.Counter
	tlsFailures *prometheus.CounterVec
	commit      prometheus.Histogram
	commitBatch prometheus.Histogram
	fsync       prometheus.Histogram
	opNames     [256]string
	okCount     [256]prometheus.Counter
	opLatency   [256]prometheus.Observer
	tokens      *tokenMetrics
	// peerRefusals is followgraph_peer_refused_total (peers.go).
	peerRefusals *prometheus.CounterVec
}

// latency buckets from 50µs to ~1.6s, doubling.
var buckets = prometheus.ExponentialBuckets(50e-6, 2, 16)

func newMetrics(version string) *metrics {
	m := &metrics{
		reg:          prometheus.NewRegistry(),
		tokens:       newTokenMetrics(),
		peerRefusals: newPeerRefused(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "followgraph_requests_total", Help: "Requests served, by operation and result code (0 is success).",
		}, []string{"op", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "followgraph_request_duration_seconds", Help: "Time from a request's arrival to its response being queued, by operation.", Buckets: buckets,
		}, []string{"op"}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "followgraph_connections", Help: "Open client connections.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "followgraph_connections_rejected_total", Help: "Connections refused over the connection limit.",
		}),
		tlsFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "followgraph_tls_handshake_failures_total", Help: "Failed TLS handshakes on the client and HTTP ports, by port and reason (not_tls, timeout, no_certificate, bad_certificate, closed, other).",
		}, []string{"port", "reason"}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "followgraph_raft_commit_duration_seconds", Help: "Time from proposing a batch log entry to its commit and apply.", Buckets: buckets,
		}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "followgraph_raft_log_sync_duration_seconds", Help: "Time of each fdatasync of the raft log's data (the disk's share of a write's latency).", Buckets: buckets,
		}),
		commitBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "followgraph_raft_batch_commands", Help: "Client writes per batch log entry (group commit).", Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
	}
	for i := range m.opNames {
		m.opNames[i] = "unknown"
	}
	for _, op := range wire.Ops() {
		m.opNames[op] = op.String()
	}
	for i := range m.opNames {
		m.okCount[i] = m.requests.WithLabelValues(m.opNames[i], "0")
		m.opLatency[i] = m.latency.WithLabelValues(m.opNames[i])
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "followgraph_build_info", Help: "Always 1; the version label names the build.", ConstLabels: prometheus.Labels{"version": version}})
	build.Set(1)
	for _, port := range []string{"client", "http"} {
		for _, r := range wire.TLSFailureReasons() {
			m.tlsFailures.WithLabelValues(port, r)
		}
	}
	m.reg.MustRegister(m.requests, m.tokens, m.peerRefusals, m.latency, m.conns, m.rejected, m.tlsFailures, m.commit, m.commitBatch, m.fsync, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// wire.Observer

func (m *metrics) Request(op wire.Op, code codes.Code, d time.Duration) {
	// Successes use pre-resolved children: label lookups hash strings,
	// which shows in profiles at 100k requests per second.
	if code == codes.OK {
		m.okCount[op].Inc()
	} else {
		m.requests.WithLabelValues(m.opNames[op], strconv.Itoa(int(code))).Inc()
	}
	m.opLatency[op].Observe(d.Seconds())
}
func (m *metrics) ConnOpened()   { m.conns.Inc() }
func (m *metrics) ConnClosed()   { m.conns.Dec() }
func (m *metrics) ConnRejected() { m.rejected.Inc() }

// TLSHandshakeFailed implements wire.TLSObserver.
func (m *metrics) TLSHandshakeFailed(reason string) {
	m.tlsFailures.WithLabelValues("client", reason).Inc()
}

func (m *metrics) onSync(d time.Duration) { m.fsync.Observe(d.Seconds()) }

func (m *metrics) onCommit(_ int, d time.Duration, cmds int) {
	m.commit.Observe(d.Seconds())
	m.commitBatch.Observe(float64(cmds))
}

// nodeCollector reads the node's status, and its raft log's, at scrape
// time.
type nodeCollector struct {
	n                                                  *cluster.Node
	users, following, followers, mutual, leader, index *prometheus.Desc
	lagRecords, lagAge, heapBlocks, halted             *prometheus.Desc
	tableUsers, tableBytes                             *prometheus.Desc
	logEntries                                         *prometheus.Desc
	quiet, quietAnswers                                *prometheus.Desc
	entries, redelivered                               *prometheus.Desc
	voters, replicasWanted                             *prometheus.Desc
	snapLogBytes, snapBytes, snaps, snapSeconds        *prometheus.Desc
	logSegments, logFileBytes, logLiveBytes            *prometheus.Desc
	logSyncs, logGroups, logWrites, logRelocated       *prometheus.Desc
}

func newNodeCollector(n *cluster.Node) *nodeCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, []string{"shard"}, nil)
	}
	node := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &nodeCollector{
		n:            n,
		users:        d("followgraph_shard_users", "Users with lists on the shard."),
		tableUsers:   node("followgraph_node_users", "User IDs in the node's user table (every user some replica of the node names)."),
		tableBytes:   node("followgraph_node_user_table_bytes", "Memory of the node's user table: ID strings, index and per-user records."),
		following:    d("followgraph_shard_edges", "Follow edges whose follower lives on the shard (following entries)."),
		followers:    d("followgraph_shard_follower_entries", "Followers entries on the shard."),
		mutual:       d("followgraph_shard_mutual_entries", "Mutual entries on the shard."),
		leader:       d("followgraph_shard_leader", "1 if this node leads the shard and serves it."),
		index:        d("followgraph_shard_applied_index", "Raft index of the last entry the shard applied."),
		lagRecords:   d("followgraph_relay_pending_records", "Reverse edges committed on the shard and not yet acknowledged by their destination shard."),
		lagAge:       d("followgraph_relay_oldest_seconds", "Age of the oldest undelivered reverse edge (0 if none)."),
		heapBlocks:   d("followgraph_shard_store_bytes", "Memory the shard's store holds in entry blocks and user records (ID strings are in the node's user table)."),
		halted:       d("followgraph_shard_halted", "1 if the shard's state machine halted on an entry it cannot apply."),
		quiet:        d("followgraph_shard_quiet", "1 if this node leads the shard and it is quiet: idle followers hear from it through the node's coalesced beats."),
		quietAnswers: d("followgraph_shard_quiet_answers_total", "Idle raft RPCs (heartbeats, empty AppendEntries) the shard's leader transport answered from followers' beat acknowledgements instead of sending."),
		entries: prometheus.NewDesc("followgraph_shard_entries_total",
			"Log entries the shard's leader wrote here, by what they carry first: client writes (kind=write), deliveries of other shards' reverse edges (delivery), or only acknowledgements of its own deliveries (ack).",
			[]string{"shard", "kind"}, nil),
		voters: d("followgraph_shard_voters", "Voting replicas in the shard's raft configuration, as this replica knows it."),
		replicasWanted: node("followgraph_replicas_configured",
			"Voting replicas each shard should have (the cluster's replication factor; 1 on a single node)."),
		redelivered: d("followgraph_relay_redelivered_total",
			"Reverse edges delivered to the shard that it had applied before and skipped (resent after a lost reply, a leader change or a crash before the source's acknowledgement)."),
		logEntries:   d("followgraph_shard_raft_log_entries", "Entries in the shard's raft log (those snapshots have not compacted yet)."),
		snapLogBytes: d("followgraph_shard_log_bytes_since_snapshot", "Bytes of log the shard applied since its newest snapshot (what a restart replays)."),
		snapBytes:    d("followgraph_shard_snapshot_bytes", "Size of the shard's newest snapshot."),
		snaps:        d("followgraph_shard_snapshots_total", "Snapshots the shard has written since the process started."),
		snapSeconds: d("followgraph_shard_snapshot_seconds_total",
			"Time spent writing the shard's snapshots (streaming is CPU-bound: compare with process_cpu_seconds_total)."),
		logSegments:  node("followgraph_raft_log_segments", "Segment files of the node's raft log, which holds every shard's."),
		logFileBytes: node("followgraph_raft_log_file_bytes", "Size of those segment files (preallocated)."),
		logLiveBytes: node("followgraph_raft_log_live_bytes",
			"Bytes of the entries the shards' raft logs hold (the rest of the files is deleted entries and free space)."),
		logSyncs:  node("followgraph_raft_log_syncs_total", "fdatasyncs of the raft log's data."),
		logGroups: node("followgraph_raft_log_group_commits_total", "Group commits of the raft log."),
		logWrites: node("followgraph_raft_log_writes_total",
			"Appends and deletions of all shards committed through the raft log (divide by group commits for the appends per fdatasync)."),
		logRelocated: node("followgraph_raft_log_relocated_bytes_total",
			"Bytes the raft log rewrote to move idle shards' entries out of old segments."),
	}
}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.users, c.following, c.followers, c.mutual, c.leader, c.index, c.lagRecords, c.lagAge, c.heapBlocks, c.halted, c.quiet, c.quietAnswers, c.entries, c.redelivered, c.voters, c.replicasWanted, c.tableUsers, c.tableBytes,
		c.logEntries, c.snapLogBytes, c.snapBytes, c.snaps, c.snapSeconds, c.logSegments, c.logFileBytes, c.logLiveBytes, c.logSyncs, c.logGroups, c.logWrites, c.logRelocated} {
		ch <- d
	}
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	g := func(d *prometheus.Desc, v float64, shard string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, shard)
	}
	flag := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	for _, rs := range c.n.Status().Replicas {
		label := strconv.Itoa(rs.Shard)
		g(c.logEntries, float64(rs.LogEntries), label)
		g(c.users, float64(rs.Store.Users), label)
		g(c.following, float64(rs.Store.Following), label)
		g(c.followers, float64(rs.Store.Followers), label)
		g(c.mutual, float64(rs.Store.Mutual), label)
		g(c.heapBlocks, float64(rs.Store.BlockBytes+rs.Store.IndexBytes), label)
		g(c.leader, flag(rs.Ready && rs.Leader), label)
		g(c.index, float64(rs.AppliedIndex), label)
		g(c.lagRecords, float64(rs.Lag.Records), label)
		g(c.lagAge, rs.Lag.Oldest.Seconds(), label)
		g(c.halted, flag(rs.Halted != ""), label)
		g(c.quiet, flag(rs.Quiet), label)
		ch <- prometheus.MustNewConstMetric(c.quietAnswers, prometheus.CounterValue, float64(rs.QuietAnswers), label)
		ch <- prometheus.MustNewConstMetric(c.redelivered, prometheus.CounterValue, float64(rs.Redelivered), label)
		g(c.voters, float64(len(rs.Voters)), label)
		for kind, v := range map[string]uint64{"write": rs.Entries.Writes, "delivery": rs.Entries.Deliveries, "ack": rs.Entries.Acks} {
			ch <- prometheus.MustNewConstMetric(c.entries, prometheus.CounterValue, float64(v), label, kind)
		}
		g(c.snapLogBytes, float64(rs.Snapshots.LogBytes), label)
		g(c.snapBytes, float64(rs.Snapshots.SnapshotBytes), label)
		ch <- prometheus.MustNewConstMetric(c.snaps, prometheus.CounterValue, float64(rs.Snapshots.Persists), label)
		ch <- prometheus.MustNewConstMetric(c.snapSeconds, prometheus.CounterValue, rs.Snapshots.PersistTime.Seconds(), label)
	}
	one := func(d *prometheus.Desc, t prometheus.ValueType, v float64) {
		ch <- prometheus.MustNewConstMetric(d, t, v)
	}
	one(c.replicasWanted, prometheus.GaugeValue, float64(c.n.ReplicationFactor()))
	us := c.n.UserStats()
	one(c.tableUsers, prometheus.GaugeValue, float64(us.Users))
	one(c.tableBytes, prometheus.GaugeValue, float64(us.StringBytes+us.IndexBytes))
	st := c.n.RaftLogStats()
	one(c.logSegments, prometheus.GaugeValue, float64(st.Segments))
	one(c.logFileBytes, prometheus.GaugeValue, float64(st.FileBytes))
	one(c.logLiveBytes, prometheus.GaugeValue, float64(st.LiveBytes))
	one(c.logSyncs, prometheus.CounterValue, float64(st.Syncs))
	one(c.logGroups, prometheus.CounterValue, float64(st.Groups))
	one(c.logWrites, prometheus.CounterValue, float64(st.Requests))
	one(c.logRelocated, prometheus.CounterValue, float64(st.RelocatedBytes))
}
