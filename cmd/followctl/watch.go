package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/wire"
)

// watchCommand streams the change feed: unlike the other commands it
// prints as it goes, one line per event (one JSON object per line with
// --json), until Ctrl-C, SIGTERM or --count events.
var watchCommand = &command{
	name: "watch", args: "", minArgs: 0, maxArgs: 0,
	summary: "stream the change feed: every follow change, one line (or JSON object) per event",
	about: "Streams the change feed of every shard: following_added / following_removed\n" +
		"(on the actor's side), follower_added / follower_removed (on the target's\n" +
		"side) and mutual_formed / mutual_broken (each side whose mutual list changed).\n" +
		"Each event names its shard and offset; events of one shard come in offset\n" +
		"order. --from says where to start: now (the default), oldest (all the feed\n" +
		"retains), or positions SHARD:OFFSET,... as printed when a watch stops, to\n" +
		"resume exactly after the last event seen. --user keeps the events of the\n" +
		"given users (either side; repeatable), --kind those of the given kinds\n" +
		"(comma-separated). With --json each event is one JSON object on its own line\n" +
		"(an exception to the one-object rule), for a shell pipeline.\n\n" +
		"Ctrl-C (or SIGTERM, or --count events) stops it cleanly: the positions to\n" +
		"resume from go to stderr, and the exit status is 0. A position older than\n" +
		"the feed retains fails with 40009: resync and watch from now.",
	example: "followctl watch --user alice --json | jq .kind\n  followctl watch --from 0:1099511627776,1:77 --kind follower_added",
	flags:   watchFlags, check: watchCheck, budget: func(*options) time.Duration { return 0 },
	run: watchCmd,
}

func init() { commands = append(commands, watchCommand) }

// stringsFlag is a repeatable flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

func watchFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.watchFrom, "from", "now", "where to start: `now`, oldest, or SHARD:OFFSET,... to resume")
	fs.Var((*stringsFlag)(&o.watchUsers), "user", "keep only events of this `USER` (either side; repeatable)")
	fs.StringVar(&o.watchKinds, "kind", "", "keep only these `KINDS`, comma-separated (following_added, following_removed, follower_added, follower_removed, mutual_formed, mutual_broken)")
	fs.IntVar(&o.count, "count", 0, "stop after `N` events (0: run until interrupted)")
}

func watchCheck(o *options) error {
	if _, err := watchOptions(o); err != nil {
		return usageError{err.Error()}
	}
	if o.count < 0 {
		return usageErrorf("--count must not be negative")
	}
	return nil
}

// watchOptions turns the flags into the client's options.
func watchOptions(o *options) (client.WatchOptions, error) {
	w := client.WatchOptions{Users: o.watchUsers}
	switch o.watchFrom {
	case "now":
		w.Start = wire.WatchNow
	case "oldest":
		w.Start = wire.WatchOldest
	default:
		p, err := client.ParsePositions(o.watchFrom)
		if err != nil || len(p) == 0 {
			return w, fmt.Errorf("--from: want now, oldest or SHARD:OFFSET,... (%v)", err)
		}
		w.From = p
	}
	for k := range strings.SplitSeq(o.watchKinds, ",") {
		if k = strings.TrimSpace(k); k == "" {
			continue
		}
		kind, ok := wire.ParseEventKind(k)
		if !ok {
			return w, fmt.Errorf("--kind: unknown kind %q", k)
		}
		w.Kinds = append(w.Kinds, kind)
	}
	return w, nil
}

// eventLine is an event as watch --json prints it.
type eventLine struct {
	Shard      int    `json:"shard"`
	Offset     uint64 `json:"offset"`
	Kind       string `json:"kind"`
	User       string `json:"user"`
	Other      string `json:"other"`
	Time       int64  `json:"time"`
	FollowTime int64  `json:"followTime"`
}

func watchCmd(ctx context.Context, c *client.Client, o *options, _ []string) (output, error) {
	opts, err := watchOptions(o)
	if err != nil {
		return nil, err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	w, err := c.Watch(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	if !o.json {
		fmt.Fprintf(o.stdout, "%-8s %-22s %-18s %-20s %-20s %s\n", "SHARD", "OFFSET", "KIND", "USER", "OTHER", "FOLLOW TIME")
	}
	for n := 0; o.count == 0 || n < o.count; n++ {
		e, err := w.Next(ctx)
		if err != nil {
			if ctx.Err() != nil && !errors.Is(err, context.DeadlineExceeded) {
				break // interrupted: a clean stop
			}
			return nil, err
		}
		printEvent(o.stdout, o.json, e)
	}
	fmt.Fprintf(o.stderr, "followctl: watch stopped; resume with --from %s\n", w.Positions())
	return streamed{}, nil
}

func printEvent(w io.Writer, asJSON bool, e client.Event) {
	if asJSON {
		writeJSON(w, eventLine{Shard: e.Shard, Offset: e.Offset, Kind: e.Kind.String(), User: e.User, Other: e.Other, Time: e.Time, FollowTime: e.FollowTime})
		return
	}
	ft := time.UnixMilli(e.FollowTime).UTC().Format("2006-01-02T15:04:05.000Z")
	fmt.Fprintf(w, "%-8d %-22d %-18s %-20s %-20s %s\n", e.Shard, e.Offset, e.Kind, e.User, e.Other, ft)
}

// streamed is the output of a command that printed as it went.
type streamed struct{}

func (streamed) text(io.Writer) {}
