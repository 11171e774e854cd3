// Command followd is the followgraph daemon.
//
// With no flags it starts a single node with data in ./followd-data, the
// client protocol on 127.0.0.1:7700 and HTTP (metrics, health) on
// 127.0.0.1:7780. Every flag can also be set by an environment variable:
// FOLLOWD_ and the flag's name in capitals with - as _ (FOLLOWD_DATA_DIR).
// Flags win over the environment. See docs/OPERATIONS.md.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/followgraph/followgraph/cluster"
	"github.com/followgraph/followgraph/fsm"
	"github.com/followgraph/followgraph/httpapi"
	"github.com/followgraph/followgraph/internal/h1"
	"github.com/followgraph/followgraph/internal/tokens"
	"github.com/followgraph/followgraph/router"
	"github.com/followgraph/followgraph/wire"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stderr, nil)
	var ue usageError
	switch {
	case errors.Is(err, errVersion):
		fmt.Println("followd", version)
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "followd:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "followd:", err)
		os.Exit(1)
	}
}

// usageError is a command line followd cannot run (exit status 2); the flag
// package has already printed the usage.
type usageError struct{ error }

// errVersion ends a run that printed the version (--version).
var errVersion = errors.New("version printed")

// options are followd's flags.
type options struct {
	dataDir         string
	listen          string
	httpAddr        string
	httpPprof       bool
	advertise       string
	raftAddr        string
	gossipAddr      string
	join            string
	bootstrapExpect int
	replicas        int
	deadTimeout     time.Duration
	reapAfter       time.Duration
	raftHeartbeat   time.Duration
	raftQuietAfter  time.Duration
	nodeID          string
	shards          int
	token           string
	tokenFile       string
	logLevel        string
	logJSON         bool
	gogc            int
	memoryLimit     string
	maxConns        int
	maxFrame        int
	shutdownTimeout time.Duration
	noSync          bool
	feedRetention   int
	feedMaxAge      time.Duration
	webhooks        webhookOptions
	tls             tlsOptions
	gossip          gossipOptions
	peers           peerOptions
}

func parseFlags(args []string, out io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("followd", flag.ContinueOnError)
	fs.SetOutput(out)
	var showVersion bool
	fs.BoolVar(&showVersion, "version", false, "print the version and exit")
	fs.StringVar(&o.dataDir, "data-dir", "followd-data", "directory for the node's data (created if missing)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:7700", "address of the client protocol")
	fs.StringVar(&o.httpAddr, "http", "127.0.0.1:7780", "address of the HTTP endpoints /metrics, /healthz, /readyz and the JSON API /v1/ (empty: off)")
	fs.BoolVar(&o.httpPprof, "http-pprof", false, "also serve the Go profiler's /debug/pprof/ on the HTTP port (off: the port may be reachable by the API's clients)")
	fs.StringVar(&o.advertise, "advertise", "", "host (or IP) other nodes and clients should use to reach this node, when listening on 0.0.0.0 (default: the listen host)")
	fs.StringVar(&o.raftAddr, "raft-addr", "", "cluster: raft address, one port for every shard (default: the listen host, port 7701, when --join or --bootstrap-expect is set)")
	fs.StringVar(&o.gossipAddr, "gossip-addr", "", "cluster: gossip address, UDP and TCP (default: the listen host, port 7702, when --join or --bootstrap-expect is set)")
	fs.StringVar(&o.join, "join", "", "cluster: gossip addresses of other nodes, comma-separated; may include this node's own; retried until one answers")
	fs.IntVar(&o.bootstrapExpect, "bootstrap-expect", 0, "cluster: create a new cluster once this many nodes see each other (give every initial node the same value and --join list)")
	fs.IntVar(&o.replicas, "replicas", 3, "cluster: voters per shard")
	fs.DurationVar(&o.deadTimeout, "dead-timeout", 30*time.Second, "cluster: how long a node must be gone before its replicas are re-created elsewhere")
	fs.DurationVar(&o.reapAfter, "reap-after", 72*time.Hour, "cluster: how long a node may be dead before the others forget it (status, gossip); 0 never, else at least --dead-timeout")
	fs.DurationVar(&o.raftHeartbeat, "raft-heartbeat", cluster.DefaultRaftConfig().HeartbeatTimeout, "cluster: raft heartbeat and election timeout of every shard; a longer one fails over more slowly")
	fs.DurationVar(&o.raftQuietAfter, "raft-quiet-after", cluster.DefaultRaftConfig().QuietAfter, "cluster: a shard with no writes or lease renewals for this long goes quiet (its followers hear from the leader through one coalesced beat per node pair); 0 keeps every shard's heartbeats on the wire")
	fs.StringVar(&o.nodeID, "node-id", "node1", "this node's ID")
	fs.IntVar(&o.shards, "shards", 0, "shard count of a new data directory (default 16; an existing directory keeps its own, and a different value is refused)")
	fs.StringVar(&o.token, "token", "", "admin token named \"default\" that clients may present (empty: none; nodes of a cluster reach each other over the raft port and need no token)")
	fs.StringVar(&o.tokenFile, "token-file", "", "file of named tokens with roles and rate limits (lines: name role secret [rate=N] [burst=M]), re-read on SIGHUP (empty: none)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: trace, debug, info, warn, error")
	fs.BoolVar(&o.logJSON, "log-json", false, "log JSON lines instead of text")
	fs.IntVar(&o.gogc, "gogc", 10, "garbage collector target percentage (GOGC); the graph is pointer-free, so a low value costs little CPU and saves memory")
	fs.StringVar(&o.memoryLimit, "memory-limit", "", "soft memory limit for the Go runtime, e.g. 8GiB (GOMEMLIMIT; empty: none)")
	fs.IntVar(&o.maxConns, "max-conns", 10000, "most client connections at once")
	fs.IntVar(&o.maxFrame, "max-frame", wire.DefaultMaxFrame, "largest protocol frame, in bytes")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 10*time.Second, "time given to requests in flight on shutdown")
	fs.IntVar(&o.feedRetention, "feed-retention", fsm.DefaultFeedConfig().Retention, "change feed: events each shard keeps for watchers (0: no feed)")
	fs.DurationVar(&o.feedMaxAge, "feed-max-age", 0, "change feed: also drop events older than this (0: keep up to --feed-retention)")
	o.webhooks.register(fs)
	o.tls.register(fs)
	o.gossip.register(fs)
	o.peers.register(fs)
	fs.BoolVar(&o.noSync, "unsafe-no-fsync", false, "do not fsync the raft log (benchmarks only: acknowledged writes can be lost on a power failure)")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: followd [flags]\n\nStarts a followgraph node. Each flag may also be set as FOLLOWD_<NAME> (e.g. FOLLOWD_DATA_DIR).\n\n")
		fs.PrintDefaults()
	}
	// The environment supplies defaults; flags override.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "FOLLOWD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if err := f.Value.Set(v); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s=%q: %v", name, v, err)
			}
		}
	})
	if envErr != nil {
		return nil, usageError{envErr}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err}
	}
	if showVersion {
		return nil, errVersion
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Errorf("unexpected arguments: %q", fs.Args())}
	}
	if err := o.gossip.check(o.inCluster()); err != nil {
		return nil, usageError{err}
	}
	if err := o.tls.validate(); err != nil {
		return nil, usageError{err}
	}
	if err := o.peers.validate(o.inCluster()); err != nil {
		return nil, usageError{err}
	}
	return o, nil
}

// withHost puts host (given as HOST or HOST:PORT) in front of addr's port.
func withHost(host, addr string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	_, port, _ := net.SplitHostPort(addr)
	return net.JoinHostPort(host, port)
}

// parseBytes reads sizes like 512MiB, 8GiB, 1000000.
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("bad size %q", s)
			}
			return int64(n * float64(u.mult)), nil
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n, nil
}

// daemon is a running followd.
type daemon struct {
	log     hclog.Logger
	node    *cluster.Node
	peers   *router.Peers // nil on a single node
	server  *wire.Server
	router  *router.Router
	ln      net.Listener
	httpSrv *h1.Server
	httpLn  net.Listener
	served  chan error // the client and peer listeners' ends
	// tls and httpTLS are the client and HTTP ports' TLS (nil: plaintext).
	tls, httpTLS *tls.Config
	opts         *options
	// tokens are the client tokens in force (nil: no authentication).
	tokens *tokens.Store
	// stopClock ends the test clock's poller (startTestClock).
	stopClock func()
}

// start brings a node up and serves it: the client listener first (its
// address is the node's advertised one), then the node, the router and
// the wire server over it, then HTTP.
func start(ctx context.Context, o *options, logOut io.Writer) (*daemon, error) {
	log, err := newLogger(o, logOut)
	if err != nil {
		return nil, err
	}
	if err := setMemoryPolicy(o); err != nil {
		return nil, err
	}
	// The certificates first: a node with bad TLS files must not start.
	clientTLS, httpTLS, err := o.tls.configs(log)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", o.listen, err)
	}
	d := &daemon{log: log, ln: ln, opts: o, served: make(chan error, 2), stopClock: startTestClock(log), tls: clientTLS, httpTLS: httpTLS}
	advertise := ln.Addr().String()
	if o.advertise != "" {
		advertise = withHost(o.advertise, ln.Addr().String())
	}
	m := newMetrics(version)
	if err := d.openTokens(m); err != nil {
		ln.Close()
		d.stopClock()
		return nil, err
	}
	if err := d.openNode(ctx, m, advertise); err != nil {
		ln.Close()
		d.stopClock()
		return nil, err
	}
	if err := d.serve(m, advertise); err != nil {
		d.stop(context.Background())
		return nil, err
	}
	if err := d.serveHTTP(m); err != nil {
		d.stop(context.Background())
		return nil, err
	}
	httpAddr := ""
	if d.httpLn != nil {
		httpAddr = d.httpLn.Addr().String()
	}
	log.Info("followd ready", "version", version, "listen", ln.Addr().String(), "http", httpAddr,
		"data", o.dataDir, "shards", d.node.Shards(), "node", o.nodeID, "cluster", d.node.ClusterID(), "auth", d.tokens != nil,
		"tls", o.tls.mode(), "http_tls", d.httpTLS != nil, "raft", o.raftAddr, "gossip", o.gossipAddr, "join", o.join)
	return d, nil
}

func newLogger(o *options, out io.Writer) (hclog.Logger, error) {
	level := hclog.LevelFromString(o.logLevel)
	if level == hclog.NoLevel {
		return nil, fmt.Errorf("unknown log level %q", o.logLevel)
	}
	return hclog.New(&hclog.LoggerOptions{Name: "followd", Level: level, Output: out, JSONFormat: o.logJSON}), nil
}

// setMemoryPolicy sets the garbage collector's target and limit. The graph
// lives in pointer-free chunks, so a GC cycle marks little and can run
// often; a low GOGC keeps RSS near the live heap. An explicit GOGC in the
// environment wins.
func setMemoryPolicy(o *options) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(o.gogc)
	}
	if o.memoryLimit != "" {
		n, err := parseBytes(o.memoryLimit)
		if err != nil {
			return fmt.Errorf("--memory-limit: %w", err)
		}
		debug.SetMemoryLimit(n)
	}
	return nil
}

// inCluster reports whether the flags make this node a cluster member.
func (o *options) inCluster() bool { return o.raftAddr != "" || o.join != "" || o.bootstrapExpect > 0 }

// nodeConfig is the node's configuration from the flags; advertise is the
// client address others use.
func (o *options) nodeConfig(log hclog.Logger, advertise string) cluster.Config {
	cfg := cluster.DefaultConfig()
	cfg.NodeID = o.nodeID
	cfg.DataDir = o.dataDir
	cfg.Shards = o.shards
	cfg.Logger = log.Named("node")
	cfg.RaftLog.NoSync = o.noSync
	cfg.Feed = fsm.FeedConfig{Retention: o.feedRetention, MaxAge: o.feedMaxAge}
	if !o.inCluster() {
		return cfg
	}
	host, _, _ := net.SplitHostPort(o.listen)
	if o.raftAddr == "" {
		o.raftAddr = net.JoinHostPort(host, "7701")
	}
	if o.gossipAddr == "" {
		o.gossipAddr = net.JoinHostPort(host, "7702")
	}
	mc := &cfg.Membership
	mc.RaftAddr, mc.GossipAddr, mc.ClientAddr = o.raftAddr, o.gossipAddr, advertise
	if o.advertise != "" {
		mc.RaftAdvertise = withHost(o.advertise, o.raftAddr)
		mc.GossipAdvertise = withHost(o.advertise, o.gossipAddr)
	}
	for _, j := range strings.Split(o.join, ",") {
		if j = strings.TrimSpace(j); j != "" {
			mc.Join = append(mc.Join, j)
		}
	}
	mc.BootstrapExpect = o.bootstrapExpect
	mc.Replicas = o.replicas
	mc.DeadTimeout = o.deadTimeout
	mc.ReapAfter = o.reapAfter
	mc.GossipKey = o.gossip.decoded
	cfg.Raft.HeartbeatTimeout = o.raftHeartbeat
	cfg.Raft.ElectionTimeout = o.raftHeartbeat
	cfg.Raft.QuietAfter = o.raftQuietAfter
	// Replicas on other machines: a leader keeps its lease as long as the
	// heartbeat timeout, so that a busy machine does not make it step
	// down.
	cfg.Raft.LeaderLeaseTimeout = cfg.Raft.HeartbeatTimeout
	return cfg
}

// openNode opens the node (and, in a cluster, its peer connections).
func (d *daemon) openNode(ctx context.Context, m *metrics, advertise string) error {
	o := d.opts
	cfg := o.nodeConfig(d.log, advertise)
	cfg.OnCommit = m.onCommit
	cfg.RaftLog.OnSync = m.onSync
	hooks, err := o.webhooks.hooks(d.log)
	if err != nil {
		return err
	}
	cfg.Hooks = asClusterHooks(hooks)
	if o.inCluster() {
		if err := o.setPeerAuth(&cfg, d.log, m); err != nil {
			return err
		}
		cfg.PeerDialer = new(cluster.PeerDialer)
		if d.peers, err = router.NewPeers(cfg.PeerDialer.Dial); err != nil {
			return err
		}
		cfg.Peers = d.peers
	}
	if o.noSync {
		d.log.Warn("raft log fsync is OFF (--unsafe-no-fsync): acknowledged writes can be lost on power failure")
	}
	n, err := cluster.Open(ctx, cfg)
	if err != nil {
		if d.peers != nil {
			d.peers.Close()
		}
		return err
	}
	d.node = n
	m.reg.MustRegister(newNodeCollector(n))
	if o.inCluster() {
		registerGossipMetrics(m.reg, n)
	}
	if len(hooks) > 0 {
		m.reg.MustRegister(newHookCollector(n, hooks))
	}
	return nil
}

// serve starts the client protocol server over the node's router.
func (d *daemon) serve(m *metrics, advertise string) error {
	o := d.opts
	rcfg := router.DefaultConfig()
	rcfg.Addr, rcfg.Version = advertise, version
	rt, err := router.New(d.node, d.peers, rcfg)
	if err != nil {
		return err
	}
	scfg := wire.DefaultServerConfig()
	scfg.Tokens = d.tokens
	scfg.MaxConns = o.maxConns
	scfg.MaxFrame = o.maxFrame
	scfg.WelcomeFunc = rt.Welcome
	scfg.Logger = d.log.Named("wire")
	scfg.Observer = m
	scfg.Forwards = o.inCluster()
	scfg.TLS = d.tls
	d.router = rt
	if d.server, err = wire.NewServer(scfg, rt, rt); err != nil {
		return err
	}
	go func() { d.served <- d.server.Serve(d.ln) }()
	if pl := d.node.PeerListener(); pl != nil {
		go func() { d.served <- d.server.ServePeers(pl) }()
	}
	return nil
}

// serveHTTP serves metrics, health, the JSON API and (with --http-pprof)
// profiles, if an HTTP address is set.
func (d *daemon) serveHTTP(m *metrics) error {
	if d.opts.httpAddr == "" {
		return nil
	}
	acfg := httpapi.DefaultConfig()
	acfg.Tokens, acfg.MaxBody, acfg.Logger, acfg.Observer = d.tokens, d.opts.maxFrame, d.log.Named("http"), m
	acfg.Forwards = d.opts.inCluster()
	api, err := httpapi.New(acfg, d.router)
	if err != nil {
		return err
	}
	if d.httpLn, err = net.Listen("tcp", d.opts.httpAddr); err != nil {
		return fmt.Errorf("listen %s: %w", d.opts.httpAddr, err)
	}
	mux := http.NewServeMux()
	d.mountTencent(mux, m)
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.Handle(httpapi.Prefix, api)
	if d.opts.httpPprof {
		// Profiles for performance work, only on purpose: the port also
		// serves the API, whose clients have no business here.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if bad := d.node.Healthy(); len(bad) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: shards %v have no leader, have not caught up, or halted\n", bad)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	// Keep-alive connections idle up to the binary port's idle timeout;
	// bodies must arrive within its read timeout. Writes may take a
	// profile's length (pprof refuses profiles longer than this). h1
	// answers pipelined requests in batches and costs far less per
	// request than net/http's server (package doc).
	hcfg := h1.DefaultConfig()
	hcfg.TLS, hcfg.ErrorBody = d.httpTLS, httpapi.ProtocolErrorBody
	hlog := d.log.Named("http")
	hcfg.TLSFailed = func(remote net.Addr, err error) {
		reason := wire.ClassifyTLSError(err)
		m.tlsFailures.WithLabelValues("http", reason).Inc()
		hlog.Debug("TLS handshake failed", "remote", remote, "reason", reason, "error", err)
	}
	hcfg.OnPanic = func(r *http.Request, p any, stack []byte) {
		hlog.Error("panic while serving an HTTP request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(stack))
	}
	if d.httpSrv, err = h1.NewServer(hcfg, mux); err != nil {
		return err
	}
	go d.httpSrv.Serve(d.httpLn)
	return nil
}

// stop shuts down in order: stop taking requests and finish those in
// flight, then stop the shards (which finish queued writes), then HTTP.
func (d *daemon) stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, d.opts.shutdownTimeout)
	defer cancel()
	var errs []error
	if d.node.Members() != nil {
		// In a cluster, hand leaderships over first: clients move to the
		// new leaders without waiting for an election timeout.
		moved := d.node.HandOffLeaderships(ctx)
		d.log.Info("handed leaderships over", "shards", moved)
	}
	if d.server != nil {
		if err := d.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("wire: %w", err))
		}
	} else {
		d.ln.Close()
	}
	if err := d.node.Close(); err != nil {
		errs = append(errs, fmt.Errorf("node: %w", err))
	}
	if d.peers != nil {
		d.peers.Close()
	}
	if d.httpSrv != nil {
		d.httpSrv.Shutdown(ctx)
	}
	d.stopClock()
	d.log.Info("followd stopped")
	return errors.Join(errs...)
}

// run is main without the process: it parses args, starts, and serves until
// ctx ends. If ready is not nil, it receives the daemon once it serves.
func run(ctx context.Context, args []string, logOut io.Writer, ready chan<- *daemon) error {
	o, err := parseFlags(args, logOut)
	if err != nil {
		return err
	}
	d, err := start(ctx, o, logOut)
	if err != nil {
		return err
	}
	if ready != nil {
		ready <- d
	}
	// SIGHUP re-reads the token file. It is caught even without one (and
	// logged), so that a stray SIGHUP does not kill the node.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			d.log.Info("shutting down", "reason", context.Cause(ctx))
			return d.stop(context.Background())
		case err := <-d.served:
			d.log.Error("client or peer listener failed", "error", err)
			return d.stop(context.Background())
		case <-hup:
			if err := d.reloadTokens(); errors.Is(err, errNoTokenFile) {
				d.log.Warn("SIGHUP ignored: no --token-file to reload")
			}
		}
	}
}
