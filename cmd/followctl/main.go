// Command followctl is the command-line client of followgraph: it follows
// and unfollows, reads followers, following and mutual lists, counts and
// relations, known followers, common following and the relationships of
// pairs, shows the status of a node or a whole cluster, drains a node,
// verifies the graph's invariant, exports every edge and compares exports,
// and rotates the cluster's gossip encryption keys.
//
//	followctl follow alice bob carol --sync
//	followctl followers bob --all --json
//	followctl --addr 10.0.0.5:7700 status
//	followctl drain n2 --wait 10m
//	followctl verify --parallel 16
//	followctl export --out graph.jsonl && followctl diff graph.jsonl other.csv
//	followctl backup /backups/b1 && followctl --addr new:7700 restore /backups/b1
//	followctl gossip-key install --key-file new.key
//
// Flags may stand before or after the positional arguments; the global
// flags (--addr, --token, --token-name, --timeout, --json, --tls*) also
// before the command. --addr, --token and --token-name default to
// $FOLLOWCTL_ADDR, $FOLLOWCTL_TOKEN and $FOLLOWCTL_TOKEN_NAME, the --tls-*
// flags to $FOLLOWCTL_TLS_CA and so on.
//
//	followctl --tls-ca ca.crt --addr node1:7700 status
//	followctl --tls-ca ca.crt --tls-cert admin.crt --tls-key admin.key status  # mutual TLS
//
// With --json, stdout carries exactly one JSON object: the result,
// {"error":{"code":...,"message":...}} for a request that failed, or
// {"usage_error":{"message":...}} for a command line that cannot run.
// Exit status: 0 success (per-item codes included), 1 request error (or a
// check that failed: violations found by verify, a drain not done within
// --wait), 2 usage error.
// "followctl help" lists the commands.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/codes"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1 // the request failed
	exitUsage  = 2 // the command line is wrong
)

// maxPage is the server's largest page: --all uses it unless --limit is set,
// to need as few round trips as possible.
const maxPage = 500

// options holds the flags of one invocation. Every command takes the
// global ones; each registers only its own among the rest.
type options struct {
	addr  string
	token string
	// tokenName names the token in the server's token file.
	tokenName string
	timeout   time.Duration
	json      bool
	tls       tlsOptions

	sync   bool
	cursor string
	limit  int
	all    bool

	off      bool          // drain: stop draining
	wait     time.Duration // drain: how long to wait for the drain to finish
	parallel int           // verify: requests in flight
	sample   float64       // verify: fraction of the users to check

	from       string // recover: the node whose replica survives
	acceptLoss bool   // recover: --accept-data-loss

	watchFrom  string   // watch: now, oldest or positions
	watchUsers []string // watch: --user
	watchKinds string   // watch: --kind
	count      int      // watch: stop after this many events

	imp        importOptions // import
	export     exportOptions // export's flags
	backup     backupOptions // backup's and restore's flags
	removeWait bool          // remove-user --wait

	gossip gossipKeyOptions // gossip-key

	pairs []client.Pair // relationships: the parsed FROM:TO arguments

	stdout io.Writer // what streams as it goes (watch)
	stderr io.Writer // progress reports (drain --wait, verify)
}

// globalFlags are the flags of every command, in the order help lists them.
var globalFlags = append([]string{"addr", "token", "token-name", "timeout", "json"}, tlsFlags...)

// command is one subcommand.
type command struct {
	name    string
	args    string // synopsis of the positional arguments
	summary string
	about   string // the longer description of "help COMMAND"
	example string
	minArgs int
	maxArgs int  // negative: no limit
	offline bool // runs without a server: no client, no time limit
	flags   func(fs *flag.FlagSet, o *options)
	check   func(o *options) error // validates the command's own flags
	// checkArgs, if set, validates the positional arguments too (its
	// error is a usage error); it may keep what it parsed in o.
	checkArgs func(o *options, args []string) error
	// budget is the time limit of the whole command (default --timeout);
	// 0 means none, and then --timeout bounds each request instead.
	budget func(o *options) time.Duration
	run    func(ctx context.Context, c *client.Client, o *options, args []string) (output, error)
	// client, if set, adjusts the client's configuration.
	client func(o *options, cfg *client.Config)
}

// output is a command's result: it marshals to the --json object and
// prints itself as text otherwise, so both forms come from one value.
type output interface {
	text(w io.Writer)
}

// failing is an output that makes the command fail (exit status 1) after
// it is printed: verify's violations, a drain not done within --wait.
type failing interface {
	failure() error
}

var commands = []*command{
	{
		name: "follow", args: "ACTOR TARGET...", minArgs: 2, maxArgs: -1,
		summary: "make ACTOR follow each TARGET (1 to 20)",
		about: "Makes ACTOR follow each TARGET. Following someone already followed succeeds.\n" +
			"Each target gets its own result code; a non-zero one (say 30001 for a\n" +
			"self-follow) is reported in the table but is not a failure of the command.",
		example: "followctl follow alice bob carol --sync",
		flags:   syncFlag, run: writeCmd((*client.Client).Follow),
	},
	{
		name: "unfollow", args: "ACTOR TARGET...", minArgs: 2, maxArgs: -1,
		summary: "make ACTOR stop following each TARGET (1 to 20)",
		about: "Makes ACTOR stop following each TARGET. Unfollowing someone not followed\n" +
			"succeeds. Each target gets its own result code.",
		example: "followctl unfollow alice bob --sync",
		flags:   syncFlag, run: writeCmd((*client.Client).Unfollow),
	},
	{
		name: "followers", args: "USER", minArgs: 1, maxArgs: 1,
		summary: "list the users who follow USER, newest first",
		about:   "Lists the users who follow USER, newest first, one page at a time (or all\nof them with --all).",
		example: "followctl followers bob --limit 50\n  followctl followers bob --all --json",
		flags:   listFlags, run: listCmd((*client.Client).Followers),
	},
	{
		name: "following", args: "USER", minArgs: 1, maxArgs: 1,
		summary: "list the users USER follows, newest first",
		about:   "Lists the users USER follows, newest first, one page at a time (or all of\nthem with --all).",
		example: "followctl following alice --limit 20\n  followctl following alice --cursor CURSOR",
		flags:   listFlags, run: listCmd((*client.Client).Following),
	},
	{
		name: "mutual", args: "USER", minArgs: 1, maxArgs: 1,
		summary: "list USER's mutual follows, newest relation first",
		about: "Lists the users who follow USER and whom USER follows, by the time the\n" +
			"relation became mutual, newest first.",
		example: "followctl mutual alice --all",
		flags:   listFlags, run: listCmd((*client.Client).Mutual),
	},
	{
		name: "info", args: "USER...", minArgs: 1, maxArgs: -1,
		summary: "show the following, followers and mutual counts of each USER (any number: sent 100 per request)",
		about:   "Shows how many users each USER follows, is followed by, and has as mutual\nfollows. Each user gets its own result code.",
		example: "followctl info alice bob",
		run:     infoCmd,
	},
	{
		name: "check", args: "ACTOR TARGET...", minArgs: 2, maxArgs: -1,
		summary: "show the relation of ACTOR with each TARGET (1 to 100)",
		about: "Shows the relation of ACTOR with each TARGET: 0 none, 1 follower (the\n" +
			"target follows ACTOR), 2 following (ACTOR follows the target), 3 mutual.",
		example: "followctl check alice bob carol",
		run:     checkCmd,
	},
	{
		name: "status", args: "", minArgs: 0, maxArgs: 0,
		summary: "show the status of the --addr node, or of its whole cluster, flagging problems",
		about: "Shows the status of the node at --addr: its ID, version, cluster and uptime.\n\n" +
			"In a cluster it also asks every live member for its status and shows a NODES\n" +
			"table (client and raft addresses, state alive, dead or draining, the shards\n" +
			"each leads and the replicas each hosts, as gossip says) and a SHARDS table\n" +
			"built from each shard's leader: its voters and non-voters, applied raft index,\n" +
			"users (the user IDs the shard knows: its own users and those in their lists),\n" +
			"edges (following entries), followers and mutual entries, and the relay's\n" +
			"backlog of reverse edges to other shards. A line starting UNHEALTHY lists the\n" +
			"problems: " +
			"a shard with no leader, a leader not caught up, fewer voters than\n" +
			"the other shards (or than 3 with 3 nodes or more), a halted replica, a relay\n" +
			"backlog older than 5s, a dead, draining or silent node.\n\n" +
			"On a single node the SHARDS table is this node's, and any shard that is not\n" +
			"ready, halted or has a relay backlog is flagged.\n\n" +
			"The exit status stays 0 whatever the health (only a failed request is 1):\n" +
			"scripts read \"healthy\" and \"unhealthy\" from --json.",
		example: "followctl status --addr 10.0.0.5:7700\n  followctl status --json | jq .unhealthy",
		run:     statusCmd,
	},
	{
		name: "drain", args: "NODE", minArgs: 1, maxArgs: 1,
		summary: "move every replica and leadership off cluster node NODE (--off: stop)",
		about: "Marks cluster node NODE (its node ID) as draining: the shards' leaders move\n" +
			"its replicas to other nodes and it hands over its leaderships, so that it can\n" +
			"be stopped without reducing any shard's replication. --off makes it an active\n" +
			"node again (replicas may then move back to it). Any node forwards the request.\n\n" +
			"With --wait, followctl then polls the cluster's status until NODE hosts no\n" +
			"replica and leads no shard, printing progress on stderr, and fails (exit\n" +
			"status 1) if that takes longer than --wait. --timeout then bounds each\n" +
			"request rather than the whole command. A single node cannot be drained.",
		example: "followctl drain n2 --wait 10m\n  followctl drain n2 --off",
		flags:   drainFlags, check: drainCheck, budget: drainBudget, run: drainCmd,
	},
	{
		name: "recover", args: "SHARD|all", minArgs: 1, maxArgs: 1,
		summary: "UNSAFE: make a shard that lost its quorum serve again from one node's replica",
		about: "Makes SHARD (or every shard that lost its quorum, with \"all\") serve again\n" +
			"from the replica on node --from alone, after a majority of the shard's voters\n" +
			"is gone for good (their disks lost). The node rewrites the shard's raft\n" +
			"configuration to itself, keeps every entry its log holds, and leads; the\n" +
			"shard's leader then adds new replicas on the other nodes.\n\n" +
			"It is unsafe: writes acknowledged by the lost replicas but not received by\n" +
			"--from are gone, and entries --from held but never committed are kept. It\n" +
			"is refused without --accept-data-loss, on a single node, for a shard that has\n" +
			"a leader, and while a majority of the shard's voters is alive (an election\n" +
			"will succeed: wait). Nodes that held the lost replicas must come back with\n" +
			"empty data directories. The node logs the recovery at ERROR and status shows\n" +
			"it under RECOVERED, across restarts. Any node forwards the request.",
		example: "followctl recover 7 --from n1 --accept-data-loss\n  followctl recover all --from n1 --accept-data-loss",
		flags:   recoverFlags, check: recoverCheck, budget: recoverBudget, run: recoverCmd,
	},
	{
		name: "verify", args: "", minArgs: 0, maxArgs: 0,
		summary: "check the graph's invariant over every user of the cluster (or node)",
		about: "Checks the invariant at a quiescent moment (no writes running, the relay\n" +
			"caught up), for every user A of every shard:\n" +
			"  - each count of info(A) equals the length of its list;\n" +
			"  - the lists are newest first, and following(A) has no duplicate nor A;\n" +
			"  - mutual(A) is following(A) ∩ followers(A), at the later followTime;\n" +
			"  - B is in following(A) exactly when A is in followers(B): one check\n" +
			"    request per edge and side, --parallel of them in flight;\n" +
			"  - the edges of all following lists and of all followers lists are the\n" +
			"    same, followTimes included: compared through an order-independent\n" +
			"    fingerprint of (follower, followee, followTime), which says whether\n" +
			"    a time differs but not where (followbench --verify names such edges\n" +
			"    among the users it samples).\n\n" +
			"It streams: each shard's users are scanned from its leader 1000 at a time,\n" +
			"and each worker (--parallel) holds one user's following list at most. With\n" +
			"--sample F, only a random fraction F of the users is checked (the fingerprint\n" +
			"then covers the edges between checked users). A shard whose leader changes\n" +
			"during its scan fails the run. Progress goes to stderr every 2s. --timeout\n" +
			"bounds each request, not the whole command. The exit status is 1 if any\n" +
			"violation is found; the first 20 are listed.",
		example: "followctl verify --addr 10.0.0.5:7700 --parallel 16\n  followctl verify --sample 0.01 --json",
		flags:   verifyFlags, check: verifyCheck, budget: func(*options) time.Duration { return 0 },
		run: verifyCmd,
	},
	{
		name: "import", args: "FILE|-", minArgs: 1, maxArgs: 1,
		summary: "import an edge file (JSONL or CSV, with followTimes) into the graph",
		about: "Imports the edges of FILE (- for stdin), keeping their followTimes. JSONL:\n" +
			"  {\"actor\":\"alice\",\"target\":\"bob\",\"followTime\":1700000000000}\n" +
			"CSV: actor,target,followTime (an optional header line of those names).\n" +
			"followTime is Unix ms. Every line ends with a newline; a last line without one\n" +
			"is refused as truncated.\n\n" +
			"Edges go --batch at a time, grouped by actor, --parallel requests in flight,\n" +
			"each a sync write: when import ends, both sides of every edge are applied.\n" +
			"An edge already there keeps its followTime, so running an import again changes\n" +
			"nothing. A bad line (invalid ID, self-follow, bad time, wrong columns,\n" +
			"unparsable) or an edge the server refuses (a following over the cap) is\n" +
			"reported with its line number, and never half-applied; more than --max-errors\n" +
			"of them stop the import (0: the first). --checkpoint FILE records where to\n" +
			"resume (every line before it applied or reported) and resumes there. Progress\n" +
			"goes to stderr every second. --timeout bounds each request. The exit status\n" +
			"is 1 if any line failed.",
		example: "followctl import graph.jsonl --checkpoint graph.cp\n  followctl export | followctl --addr other:7700 import -",
		flags:   importFlags, check: importCheck, budget: func(*options) time.Duration { return 0 },
		run: importCmd, client: importClient,
	},
}

func findCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// newFlagSet returns the flags of cmd (the global ones only if cmd is nil)
// bound to o, with the environment's defaults applied.
func newFlagSet(o *options, cmd *command) *flag.FlagSet {
	name := "followctl"
	if cmd != nil {
		name += " " + cmd.name
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // run reports errors itself, with the usage
	fs.StringVar(&o.addr, "addr", "127.0.0.1:7700", "node to talk to, as `HOST:PORT` (env FOLLOWCTL_ADDR)")
	fs.StringVar(&o.token, "token", "", "`TOKEN` to present when the server requires one (env FOLLOWCTL_TOKEN)")
	fs.StringVar(&o.tokenName, "token-name", "", "`NAME` of the token in the server's token file (env FOLLOWCTL_TOKEN_NAME; empty: \"default\", the token of followd --token)")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "time limit (`DURATION`) of the whole command: connecting, retries and every page")
	fs.BoolVar(&o.json, "json", false, "print one JSON object on stdout instead of tables")
	// Set after registering, so that help shows the built-in defaults and
	// never the token; flags parsed later still win.
	if v := os.Getenv("FOLLOWCTL_ADDR"); v != "" {
		o.addr = v
	}
	if v := os.Getenv("FOLLOWCTL_TOKEN"); v != "" {
		o.token = v
	}
	if v := os.Getenv("FOLLOWCTL_TOKEN_NAME"); v != "" {
		o.tokenName = v
	}
	o.tls.register(fs)
	if cmd != nil && cmd.flags != nil {
		cmd.flags(fs, o)
	}
	return fs
}

func syncFlag(fs *flag.FlagSet, o *options) {
	fs.BoolVar(&o.sync, "sync", false, "return only once the reverse side (the targets' followers and mutual lists) is applied")
}

func listFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.cursor, "cursor", "", "`CURSOR` to start from: a previous page's next cursor")
	fs.IntVar(&o.limit, "limit", 0, "page size, `N` from 1 to 500 (0: the server's default, 100; with --all: 500)")
	fs.BoolVar(&o.all, "all", false, "follow the next cursors to the end of the list and print every item")
}

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
}

// run is main without the process, so that tests can call it: it parses
// args, runs the command, prints to stdout and stderr, and returns the
// exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "version" || args[0] == "--version" || args[0] == "-version") {
		fmt.Fprintln(stdout, "followctl", version)
		return exitOK
	}
	name, rest := splitCommand(args)
	cmd := findCommand(name)
	o := &options{}
	pos, help, err := parseArgs(newFlagSet(o, cmd), rest)
	fail := func(err error) int { return reportError(stdout, stderr, cmd, o.json, err) }
	helped, err := checkCommandLine(stdout, name, cmd, o, pos, help, err)
	switch {
	case err != nil:
		return fail(err)
	case helped:
		return exitOK
	}
	o.stdout, o.stderr = stdout, stderr
	out, err := execute(cmd, o, pos)
	if err != nil {
		return fail(err)
	}
	return printOutput(stdout, stderr, o.json, out)
}

// reportError prints err on stderr (with the usage after a usage error: of
// cmd, or of followctl when there is no command) and, with --json, as the
// error object on stdout. It returns the exit status err calls for.
func reportError(stdout, stderr io.Writer, cmd *command, asJSON bool, err error) int {
	status, code := exitFailed, codes.Of(err)
	var ue usageError
	if errors.As(err, &ue) {
		status = exitUsage
	}
	fmt.Fprintf(stderr, "followctl: %v\n", err)
	if status == exitUsage {
		fmt.Fprintln(stderr)
		if cmd != nil {
			commandUsage(stderr, cmd)
		} else {
			mainUsage(stderr)
		}
	}
	switch {
	case asJSON && status == exitUsage:
		// Not a server's answer: no code, a shape of its own.
		var e usageOutput
		e.UsageError.Message = err.Error()
		writeJSON(stdout, e)
	case asJSON:
		var e errorOutput
		e.Error.Code, e.Error.Message = uint32(code), errorMessage(err)
		writeJSON(stdout, e)
	}
	return status
}

// checkCommandLine settles the command lines that run no command: it
// prints the help asked for (and reports helped), or returns why the line
// cannot run (parseErr, an unknown command, the wrong number of arguments,
// a bad flag value). Otherwise cmd may run.
func checkCommandLine(stdout io.Writer, name string, cmd *command, o *options, pos []string, help bool, parseErr error) (helped bool, err error) {
	switch {
	case name == "help" && parseErr == nil && len(pos) == 0:
		mainUsage(stdout)
		return true, nil
	case name == "help" && parseErr == nil && len(pos) == 1 && findCommand(pos[0]) != nil:
		commandUsage(stdout, findCommand(pos[0]))
		return true, nil
	case name == "help" && parseErr == nil:
		return false, usageErrorf("help: want at most one known command, got %q", pos)
	case name == "help":
		return false, parseErr
	case name == "" && help:
		mainUsage(stdout)
		return true, nil
	case name == "":
		return false, usageErrorf("missing command")
	case cmd == nil:
		return false, usageErrorf("unknown command %q", name)
	case help:
		commandUsage(stdout, cmd)
		return true, nil
	case parseErr != nil:
		return false, parseErr
	case len(pos) < cmd.minArgs || (cmd.maxArgs >= 0 && len(pos) > cmd.maxArgs):
		return false, usageErrorf("%s: wrong number of arguments (%d): want %s", cmd.name, len(pos), cmd.synopsis())
	case o.timeout <= 0:
		return false, usageErrorf("--timeout must be positive")
	case o.limit < 0 || o.limit > maxPage:
		return false, usageErrorf("--limit must be between 0 and %d", maxPage)
	}
	if cmd.check != nil {
		if err := cmd.check(o); err != nil {
			return false, err
		}
	}
	if cmd.checkArgs != nil {
		return false, cmd.checkArgs(o, pos)
	}
	return false, nil
}

// execute runs cmd through a client of the --addr node, within the
// command's budget (by default --timeout for the whole command); --timeout
// also bounds connecting, and each request.
func execute(cmd *command, o *options, pos []string) (output, error) {
	if cmd.offline {
		return cmd.run(context.Background(), nil, o, pos)
	}
	budget := o.timeout
	if cmd.budget != nil {
		budget = cmd.budget(o)
	}
	var ctx context.Context
	var cancel context.CancelFunc
	if budget > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), budget)
	} else {
		ctx, cancel = context.WithCancel(context.Background())
	}
	defer cancel()
	tc, err := o.tls.config()
	if err != nil {
		return nil, err
	}
	dialCtx, dialCancel := context.WithTimeout(ctx, o.timeout)
	cfg := client.Config{Addrs: []string{o.addr}, Token: o.token, TokenName: o.tokenName, RequestTimeout: o.timeout, TLS: tc}
	if cmd.client != nil {
		cmd.client(o, &cfg)
	}
	c, err := client.New(dialCtx, cfg)
	dialCancel()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return cmd.run(ctx, c, o, pos)
}

// printOutput prints a command's result, as JSON or as text. A failing
// result (verify's violations, a drain not done within --wait) is printed
// in full and then makes the exit status 1.
func printOutput(stdout, stderr io.Writer, asJSON bool, out output) int {
	if _, ok := out.(streamed); ok {
		return exitOK // printed as it went
	}
	if asJSON {
		writeJSON(stdout, out)
	} else {
		out.text(stdout)
	}
	if f, ok := out.(failing); ok {
		if err := f.failure(); err != nil {
			fmt.Fprintf(stderr, "followctl: %v\n", err)
			return exitFailed
		}
	}
	return exitOK
}

// requestCtx bounds one request by --timeout, for the commands whose whole
// run is not (see command.budget).
func requestCtx(ctx context.Context, o *options) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, o.timeout)
}

// splitCommand finds the command: the first argument that is neither a
// global flag nor a global flag's value. It returns the other arguments,
// in order, for the command's own parsing, so that global flags may stand
// on either side of the command name.
func splitCommand(args []string) (name string, rest []string) {
	fs := newFlagSet(&options{}, nil)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !isFlag(a) {
			return a, append(args[:i:i], args[i+1:]...)
		}
		flagName, _, hasValue := cutFlag(a)
		if f := fs.Lookup(flagName); f != nil && !hasValue && !isBool(f) {
			i++ // skip the value
		}
	}
	return "", args
}

// parseArgs separates flags from positional arguments wherever they stand
// (the flag package alone stops at the first positional one), then parses
// the flags with fs. "--" ends the flags; -h and --help ask for help. Flags
// go to fs.Parse as --name=value so that a value starting with "-" is never
// taken for a flag. It keeps going after an unknown flag or a bad value,
// so that --json still shapes the error report, and returns the first
// error.
func parseArgs(fs *flag.FlagSet, args []string) (pos []string, help bool, err error) {
	var flags []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !isFlag(a) {
			pos = append(pos, a)
			continue
		}
		name, value, hasValue := cutFlag(a)
		if name == "h" || name == "help" {
			help = true
			continue
		}
		f := fs.Lookup(name)
		switch {
		case f == nil:
			if err == nil {
				err = usageErrorf("unknown flag %s", a)
			}
			continue
		case hasValue:
			flags = append(flags, "--"+name+"="+value)
		case isBool(f):
			flags = append(flags, "--"+name)
		case i+1 < len(args):
			i++
			flags = append(flags, "--"+name+"="+args[i])
		default:
			if err == nil {
				err = usageErrorf("flag %s needs a value", a)
			}
		}
	}
	// One at a time, because Parse stops at the first bad value.
	for _, f := range flags {
		if perr := fs.Parse([]string{f}); perr != nil && err == nil {
			err = usageError{perr.Error()}
		}
	}
	return pos, help, err
}

// isFlag reports whether a looks like a flag; a lone "-" is an argument.
func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' }

// cutFlag splits -name, --name, -name=value or --name=value.
func cutFlag(a string) (name, value string, hasValue bool) {
	return strings.Cut(strings.TrimPrefix(a[1:], "-"), "=")
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func (c *command) synopsis() string {
	if c.args == "" {
		return "no arguments"
	}
	return c.args
}

func mainUsage(w io.Writer) {
	fmt.Fprint(w, "followctl is the command-line client of followgraph.\n\n"+
		"Usage: followctl [global flags] COMMAND [arguments] [flags]\n\nCommands:\n")
	tw := newTable(w)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s %s\t%s\n", c.name, c.args, c.summary)
	}
	fmt.Fprintf(tw, "  help [COMMAND]\tshow this help, or a command's\n")
	fmt.Fprintf(tw, "  version\tprint followctl's version (also --version)\n")
	tw.Flush()
	fmt.Fprint(w, "\nGlobal flags (before or after the command and its arguments):\n")
	fs := newFlagSet(&options{}, nil)
	printFlags(w, fs, globalFlags)
	fmt.Fprint(w, "\nWith --json, stdout carries exactly one JSON object: the result,\n"+
		"{\"error\":{\"code\":...,\"message\":...}} for a failed request, or\n"+
		"{\"usage_error\":{\"message\":...}} for a command line that cannot run.\n"+
		"Exit status: 0 success (per-item result codes included), 1 request error (or\n"+
		"violations found by verify, or a drain not done within --wait), 2 usage error.\n\n"+
		"Run \"followctl help COMMAND\" (or \"followctl COMMAND --help\") for a command's\n"+
		"arguments and flags.\n\n"+
		"Example:\n  followctl --addr 127.0.0.1:7700 follow alice bob --sync\n  followctl followers bob --all --json\n")
}

func commandUsage(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage: followctl %s [flags]\n\n%s\n", strings.TrimSpace(c.name+" "+c.args), c.about)
	fs := newFlagSet(&options{}, c)
	var own []string
	fs.VisitAll(func(f *flag.Flag) {
		if !slices.Contains(globalFlags, f.Name) {
			own = append(own, f.Name)
		}
	})
	if len(own) > 0 {
		fmt.Fprint(w, "\nFlags:\n")
		printFlags(w, fs, own)
	}
	fmt.Fprint(w, "\nGlobal flags:\n")
	printFlags(w, fs, globalFlags)
	fmt.Fprintf(w, "\nFlags may stand before or after the arguments; \"--\" ends them.\n\nExample:\n  %s\n", c.example)
}

// printFlags lists flags GNU style (--name VALUE), which is how followctl
// takes them, rather than the flag package's -name.
func printFlags(w io.Writer, fs *flag.FlagSet, names []string) {
	tw := newTable(w)
	for _, n := range names {
		f := fs.Lookup(n)
		arg, usage := flag.UnquoteUsage(f)
		if arg != "" && !isBool(f) {
			arg = " " + arg
		} else {
			arg = ""
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			usage += " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(tw, "  --%s%s\t%s\n", f.Name, arg, usage)
	}
	tw.Flush()
}

// writeJSON prints v as one JSON object on a line.
func writeJSON(w io.Writer, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // user IDs are printed as they are
	if err := enc.Encode(v); err != nil {
		// Only reachable through a bug in the output types.
		panic(err)
	}
	w.Write(b.Bytes())
}

// usageOutput is the --json report of a command line followctl cannot
// run (exit status 2): nothing was sent.
type usageOutput struct {
	UsageError struct {
		Message string `json:"message"`
	} `json:"usage_error"`
}

type errorOutput struct {
	Error struct {
		Code    uint32 `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// errorMessage is the server's (or client's) own message when err carries
// a code, without the code's name and number, which the JSON has apart.
func errorMessage(err error) string {
	var ue usageError
	if errors.As(err, &ue) {
		return ue.msg
	}
	var ce *codes.Error
	if errors.As(err, &ce) && ce.Msg != "" {
		return ce.Msg
	}
	return err.Error()
}

// rows converts a response's per-item results to a command's output rows,
// in order. The result is never nil, so that JSON shows [] for none.
func rows[R, O any](rs []R, row func(R) O) []O {
	out := make([]O, 0, len(rs))
	for _, r := range rs {
		out = append(out, row(r))
	}
	return out
}

// newTable returns the writer of followctl's tables and key-value blocks:
// columns aligned, two spaces apart. Flush it when done.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// Follow and unfollow.

type writeOutput struct {
	Results []writeResult `json:"results"`
}

type writeResult struct {
	UserID string `json:"userID"`
	Code   uint32 `json:"code"`
	Info   string `json:"info"`
}

type writeFunc func(*client.Client, context.Context, string, []string, ...client.WriteOption) ([]client.Result, error)

func writeCmd(op writeFunc) func(context.Context, *client.Client, *options, []string) (output, error) {
	return func(ctx context.Context, c *client.Client, o *options, args []string) (output, error) {
		var opts []client.WriteOption
		if o.sync {
			opts = append(opts, client.Sync())
		}
		rs, err := op(c, ctx, args[0], args[1:], opts...)
		if err != nil {
			return nil, err
		}
		return writeOutput{Results: rows(rs, func(r client.Result) writeResult {
			return writeResult{UserID: r.UserID, Code: uint32(r.Code), Info: r.Info}
		})}, nil
	}
}

func (out writeOutput) text(w io.Writer) {
	tw := newTable(w)
	fmt.Fprintln(tw, "USER\tCODE\tINFO")
	for _, r := range out.Results {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", r.UserID, r.Code, describe(codes.Code(r.Code), r.Info))
	}
	tw.Flush()
}

// describe is a per-item result in words: "ok", or the code's name and the
// server's detail.
func describe(c codes.Code, info string) string {
	switch {
	case c == codes.OK && info == "":
		return "ok"
	case c == codes.OK:
		return info
	case info == "":
		return c.String()
	}
	return c.String() + ": " + info
}

// Lists.

type listOutput struct {
	Items      []listItem `json:"items"`
	NextCursor string     `json:"nextCursor"`
}

type listItem struct {
	UserID     string `json:"userID"`
	FollowTime int64  `json:"followTime"`
}

type listFunc func(*client.Client, context.Context, string, ...client.ListOption) (client.Page, error)

func listCmd(op listFunc) func(context.Context, *client.Client, *options, []string) (output, error) {
	return func(ctx context.Context, c *client.Client, o *options, args []string) (output, error) {
		limit := o.limit
		if o.all && limit == 0 {
			limit = maxPage
		}
		out := listOutput{Items: []listItem{}} // [] rather than null in JSON
		cursor := o.cursor
		for {
			p, err := op(c, ctx, args[0], client.Cursor(cursor), client.Limit(limit))
			if err != nil {
				return nil, err
			}
			for _, it := range p.Items {
				out.Items = append(out.Items, listItem{UserID: it.UserID, FollowTime: it.FollowTime})
			}
			out.NextCursor = p.NextCursor
			if !o.all || p.NextCursor == "" {
				return out, nil
			}
			if p.NextCursor == cursor {
				// A server bug would otherwise loop until the timeout.
				return nil, codes.New(codes.Internal, "the server returned the same cursor again: %q", cursor)
			}
			cursor = p.NextCursor
		}
	}
}

func (out listOutput) text(w io.Writer) {
	tw := newTable(w)
	fmt.Fprintln(tw, "USER\tFOLLOW TIME")
	for _, it := range out.Items {
		t := time.UnixMilli(it.FollowTime).UTC().Format("2006-01-02T15:04:05.000Z07:00")
		fmt.Fprintf(tw, "%s\t%s (%d)\n", it.UserID, t, it.FollowTime)
	}
	tw.Flush()
	if out.NextCursor != "" {
		fmt.Fprintf(w, "next cursor: %s\n", out.NextCursor)
	}
}

// Info.

type infoOutput struct {
	Results []infoResult `json:"results"`
}

type infoResult struct {
	UserID         string `json:"userID"`
	Code           uint32 `json:"code"`
	FollowingCount uint64 `json:"followingCount"`
	FollowersCount uint64 `json:"followersCount"`
	MutualCount    uint64 `json:"mutualCount"`
}

func infoCmd(ctx context.Context, c *client.Client, _ *options, args []string) (output, error) {
	is, err := c.Info(ctx, args...)
	if err != nil {
		return nil, err
	}
	return infoOutput{Results: rows(is, func(i client.Info) infoResult {
		return infoResult{UserID: i.UserID, Code: uint32(i.Code),
			FollowingCount: i.Following, FollowersCount: i.Followers, MutualCount: i.Mutual}
	})}, nil
}

func (out infoOutput) text(w io.Writer) {
	tw := newTable(w)
	fmt.Fprintln(tw, "USER\tCODE\tFOLLOWING\tFOLLOWERS\tMUTUAL")
	for _, r := range out.Results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", r.UserID, r.Code, r.FollowingCount, r.FollowersCount, r.MutualCount)
	}
	tw.Flush()
}

// Check.

type checkOutput struct {
	Results []checkResult `json:"results"`
}

type checkResult struct {
	UserID     string `json:"userID"`
	Code       uint32 `json:"code"`
	FollowType uint8  `json:"followType"`
}

// followTypes are the words for a Check's FollowType, seen from the actor.
var followTypes = [...]string{"none", "follower (they follow you)", "following (you follow them)", "mutual"}

func checkCmd(ctx context.Context, c *client.Client, _ *options, args []string) (output, error) {
	cs, err := c.Check(ctx, args[0], args[1:]...)
	if err != nil {
		return nil, err
	}
	return checkOutput{Results: rows(cs, func(r client.Check) checkResult {
		return checkResult{UserID: r.UserID, Code: uint32(r.Code), FollowType: r.FollowType}
	})}, nil
}

func (out checkOutput) text(w io.Writer) {
	tw := newTable(w)
	fmt.Fprintln(tw, "USER\tCODE\tFOLLOW TYPE")
	for _, r := range out.Results {
		word := "unknown"
		if int(r.FollowType) < len(followTypes) {
			word = followTypes[r.FollowType]
		}
		fmt.Fprintf(tw, "%s\t%d\t%d %s\n", r.UserID, r.Code, r.FollowType, word)
	}
	tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
