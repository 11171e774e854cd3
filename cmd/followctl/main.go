// Command followctl is the command-line client of followgraph: it follows
// and unfollows, reads followers, following and mutual lists, counts and
// relations, and shows a node's status.
//
//	followctl follow alice bob carol --sync
//	followctl followers bob --all --json
//	followctl --addr 10.0.0.5:7700 status
//
// Flags may stand before or after the positional arguments; the global
// flags (--addr, --token, --timeout, --json) also before the command.
// --addr and --token default to $FOLLOWCTL_ADDR and $FOLLOWCTL_TOKEN.
// With --json, stdout carries exactly one JSON object: the result, or
// {"error":{"code":...,"message":...}}. Exit status: 0 success (per-item
// codes included), 1 request error, 2 usage error. "followctl help" lists
// the commands.
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
	addr    string
	token   string
	timeout time.Duration
	json    bool

	sync   bool
	cursor string
	limit  int
	all    bool
}

// globalFlags are the flags of every command, in the order help lists them.
var globalFlags = []string{"addr", "token", "timeout", "json"}

// command is one subcommand.
type command struct {
	name    string
	args    string // synopsis of the positional arguments
	summary string
	about   string // the longer description of "help COMMAND"
	example string
	minArgs int
	maxArgs int // negative: no limit
	flags   func(fs *flag.FlagSet, o *options)
	run     func(ctx context.Context, c *client.Client, o *options, args []string) (output, error)
}

// output is a command's result: it marshals to the --json object and
// prints itself as text otherwise, so both forms come from one value.
type output interface {
	text(w io.Writer)
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
		summary: "show the following, followers and mutual counts of each USER (1 to 100)",
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
		summary: "show the --addr node's status and its shards, flagging problems",
		about: "Shows the status of the node at --addr: its ID, version, cluster and uptime,\n" +
			"and per shard whether this node leads it and is ready, its applied raft\n" +
			"index, its users and edges, and the relay's backlog of reverse edges to\n" +
			"other shards. A line starting UNHEALTHY lists shards that are not ready,\n" +
			"halted or lagging; the exit status stays 0 (only a failed request is 1).",
		example: "followctl status --addr 10.0.0.5:7700",
		run:     statusCmd,
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
	name, rest := splitCommand(args)
	cmd := findCommand(name)
	o := &options{}
	pos, help, err := parseArgs(newFlagSet(o, cmd), rest)

	// fail reports err and returns its exit status. Usage errors come with
	// the usage (of the command, when there is one).
	fail := func(err error) int {
		status, code := exitFailed, codes.Of(err)
		var ue usageError
		if errors.As(err, &ue) {
			status, code = exitUsage, codes.InvalidParam
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
		if o.json {
			var e errorOutput
			e.Error.Code, e.Error.Message = uint32(code), errorMessage(err)
			writeJSON(stdout, e)
		}
		return status
	}

	switch {
	case name == "help" && err == nil && len(pos) == 0:
		mainUsage(stdout)
		return exitOK
	case name == "help" && err == nil && len(pos) == 1 && findCommand(pos[0]) != nil:
		commandUsage(stdout, findCommand(pos[0]))
		return exitOK
	case name == "help" && err == nil:
		return fail(usageErrorf("help: want at most one known command, got %q", pos))
	case name == "help":
		return fail(err)
	case name == "" && help:
		mainUsage(stdout)
		return exitOK
	case name == "":
		return fail(usageErrorf("missing command"))
	case cmd == nil:
		return fail(usageErrorf("unknown command %q", name))
	case help:
		commandUsage(stdout, cmd)
		return exitOK
	case err != nil:
		return fail(err)
	case len(pos) < cmd.minArgs || (cmd.maxArgs >= 0 && len(pos) > cmd.maxArgs):
		return fail(usageErrorf("%s: wrong number of arguments (%d): want %s", cmd.name, len(pos), cmd.synopsis()))
	case o.timeout <= 0:
		return fail(usageErrorf("--timeout must be positive"))
	case o.limit < 0 || o.limit > maxPage:
		return fail(usageErrorf("--limit must be between 0 and %d", maxPage))
	}

	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	c, err := client.New(ctx, client.Config{Addrs: []string{o.addr}, Token: o.token, Retries: 2})
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	out, err := cmd.run(ctx, c, o, pos)
	if err != nil {
		return fail(err)
	}
	if o.json {
		writeJSON(stdout, out)
	} else {
		out.text(stdout)
	}
	return exitOK
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
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s %s\t%s\n", c.name, c.args, c.summary)
	}
	fmt.Fprintf(tw, "  help [COMMAND]\tshow this help, or a command's\n")
	tw.Flush()
	fmt.Fprint(w, "\nGlobal flags (before or after the command and its arguments):\n")
	fs := newFlagSet(&options{}, nil)
	printFlags(w, fs, globalFlags)
	fmt.Fprint(w, "\nWith --json, stdout carries exactly one JSON object: the result, or\n"+
		"{\"error\":{\"code\":...,\"message\":...}}. Exit status: 0 success (per-item result\n"+
		"codes included), 1 request error, 2 usage error.\n\n"+
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
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, n := range names {
		f := fs.Lookup(n)
		arg, usage := flag.UnquoteUsage(f)
		if arg != "" && !isBool(f) {
			arg = " " + arg
		} else {
			arg = ""
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
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
		out := writeOutput{Results: make([]writeResult, 0, len(rs))}
		for _, r := range rs {
			out.Results = append(out.Results, writeResult{UserID: r.UserID, Code: uint32(r.Code), Info: r.Info})
		}
		return out, nil
	}
}

func (out writeOutput) text(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
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
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
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
	out := infoOutput{Results: make([]infoResult, 0, len(is))}
	for _, i := range is {
		out.Results = append(out.Results, infoResult{UserID: i.UserID, Code: uint32(i.Code),
			FollowingCount: i.Following, FollowersCount: i.Followers, MutualCount: i.Mutual})
	}
	return out, nil
}

func (out infoOutput) text(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
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
	out := checkOutput{Results: make([]checkResult, 0, len(cs))}
	for _, r := range cs {
		out.Results = append(out.Results, checkResult{UserID: r.UserID, Code: uint32(r.Code), FollowType: r.FollowType})
	}
	return out, nil
}

func (out checkOutput) text(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
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

// Status.

type statusOutput struct {
	NodeID    string        `json:"nodeID"`
	Version   string        `json:"version"`
	ClusterID string        `json:"clusterID"`
	UptimeSec uint64        `json:"uptimeSec"`
	Addr      string        `json:"addr"`
	Shards    []shardOutput `json:"shards"`
	Healthy   bool          `json:"healthy"`
	Unhealthy []string      `json:"unhealthy"` // the problems; [] when healthy
}

type shardOutput struct {
	Shard        int    `json:"shard"`
	Leader       bool   `json:"leader"` // this node leads the shard
	LeaderID     string `json:"leaderID"`
	LeaderAddr   string `json:"leaderAddr"`
	Ready        bool   `json:"ready"`
	AppliedIndex uint64 `json:"appliedIndex"`
	Users        uint64 `json:"users"`
	Following    uint64 `json:"following"`
	Followers    uint64 `json:"followers"`
	Mutual       uint64 `json:"mutual"`
	LagRecords   uint64 `json:"lagRecords"`
	LagOldestMs  uint64 `json:"lagOldestMs"`
	Halted       string `json:"halted"`
}

func statusCmd(ctx context.Context, c *client.Client, _ *options, _ []string) (output, error) {
	s, err := c.Status(ctx, "")
	if err != nil {
		return nil, err
	}
	out := statusOutput{NodeID: s.NodeID, Version: s.Server, ClusterID: s.ClusterID, UptimeSec: s.UptimeSec, Addr: s.Addr,
		Shards: make([]shardOutput, 0, len(s.Shards)), Unhealthy: problems(s)}
	out.Healthy = len(out.Unhealthy) == 0
	for _, sh := range s.Shards {
		out.Shards = append(out.Shards, shardOutput{Shard: sh.Shard, Leader: sh.Leader, LeaderID: sh.LeaderID, LeaderAddr: sh.LeaderAddr,
			Ready: sh.Ready, AppliedIndex: sh.AppliedIndex, Users: sh.Users, Following: sh.Following, Followers: sh.Followers,
			Mutual: sh.Mutual, LagRecords: sh.LagRecords, LagOldestMs: sh.LagOldestMs, Halted: sh.Halted})
	}
	return out, nil
}

// problems lists what is wrong with a node: shards that are not ready (this
// node does not lead them or has not caught up), halted, or have reverse
// edges not yet delivered and acknowledged. Never nil, so JSON shows [].
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
		if sh.LagRecords > 0 {
			out = append(out, fmt.Sprintf("shard %d relay lag %d records (oldest %d ms)", sh.Shard, sh.LagRecords, sh.LagOldestMs))
		}
	}
	return out
}

func (out statusOutput) text(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "node:\t%s (%s)\n", out.NodeID, out.Addr)
	fmt.Fprintf(tw, "version:\t%s\n", out.Version)
	fmt.Fprintf(tw, "cluster:\t%s\n", out.ClusterID)
	fmt.Fprintf(tw, "uptime:\t%s\n", time.Duration(out.UptimeSec)*time.Second)
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
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
		halted := "-"
		if sh.Halted != "" {
			halted = sh.Halted
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", sh.Shard, leader, yesNo(sh.Ready), sh.AppliedIndex,
			sh.Users, sh.Following, sh.Followers, sh.Mutual, sh.LagRecords, sh.LagOldestMs, halted)
	}
	tw.Flush()
	fmt.Fprintln(w)
	if out.Healthy {
		fmt.Fprintf(w, "healthy: %d shards ready, none halted, no relay lag\n", len(out.Shards))
	} else {
		fmt.Fprintf(w, "UNHEALTHY: %s\n", strings.Join(out.Unhealthy, "; "))
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
