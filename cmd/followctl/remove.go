package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/followgraph/followgraph/client"
)

// remove-user starts the removal of a user's graph and, with --wait,
// follows it to the end with a progress bar.

var removeCommand = &command{
	name: "remove-user", args: "USER", minArgs: 1, maxArgs: 1,
	summary: "remove USER's whole graph: every edge it follows and every edge that follows it",
	about: "Removes every edge USER follows and every edge that follows USER, both sides,\n" +
		"with the mutual relations they made, and the change-feed events of each side.\n" +
		"The removal runs in the background on USER's shard, in bounded steps that\n" +
		"survive leader changes and restarts; status lists the removals running. While\n" +
		"it runs, writes involving USER fail with 32200 (user being removed); afterwards\n" +
		"USER is a fresh user. Asking again is harmless: it shows the progress.\n\n" +
		"With --wait, followctl polls until the removal ends, with a progress bar on\n" +
		"stderr; --timeout then bounds each request.",
	example: "followctl remove-user celebrity --wait",
	flags: func(fs *flag.FlagSet, o *options) {
		fs.BoolVar(&o.removeWait, "wait", false, "wait until the removal ends, showing its progress")
	},
	budget: func(o *options) time.Duration {
		if o.removeWait {
			return 0
		}
		return o.timeout
	},
	run: removeCmd,
}

func init() { commands = append(commands, removeCommand) }

// removeOutput is remove-user's result.
type removeOutput struct {
	User      string  `json:"user"`
	Running   bool    `json:"running"`
	Removed   uint64  `json:"removed"`
	Following uint64  `json:"following"` // entries left in the user's following list
	Followers uint64  `json:"followers"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"edgesPerSecond"`
}

func (out removeOutput) text(w io.Writer) {
	if out.Running {
		fmt.Fprintf(w, "removing %s: %d edges removed, %d following and %d followers left\n", out.User, out.Removed, out.Following, out.Followers)
		return
	}
	fmt.Fprintf(w, "removed %s: nothing of it is left (%d edges removed", out.User, out.Removed)
	if out.Seconds > 0 {
		fmt.Fprintf(w, " in %.1fs, %.0f edges/s", out.Seconds, out.PerSecond)
	}
	fmt.Fprintln(w, ")")
}

const removePoll = 250 * time.Millisecond

func removeCmd(ctx context.Context, c *client.Client, o *options, args []string) (output, error) {
	user := args[0]
	start := time.Now()
	call := func(remove func(context.Context, string) (client.RemovalProgress, error)) (client.RemovalProgress, error) {
		if !o.removeWait {
			return remove(ctx, user)
		}
		rctx, cancel := requestCtx(ctx, o)
		defer cancel()
		return remove(rctx, user)
	}
	p, err := call(c.RemoveUser)
	if err != nil {
		return nil, err
	}
	first, last := p.Removed, p
	tty := isTerminal(o.stderr)
	for o.removeWait && p.Running {
		last = p
		printRemoval(o.stderr, tty, user, p, first, time.Since(start))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(removePoll):
		}
		// Polled without asking again: a request for a user whose
		// removal ended would start another (a short one).
		if p, err = call(c.RemovalOf); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
	}
	if o.removeWait && tty {
		fmt.Fprintln(o.stderr)
	}
	out := removeOutput{User: user, Running: p.Running, Removed: p.Removed, Following: p.Following, Followers: p.Followers}
	if o.removeWait {
		// The removal's count goes with it when it ends: the last one
		// seen, plus the entries left then, which the last steps removed.
		out.Removed = last.Removed + last.Following + last.Followers
		out.Seconds = time.Since(start).Seconds()
		out.PerSecond = float64(out.Removed-first) / max(out.Seconds, 1e-9)
	}
	return out, nil
}

// printRemoval shows a removal's progress: a bar over the edges removed
// and left, overwritten in place on a terminal.
func printRemoval(w io.Writer, tty bool, user string, p client.RemovalProgress, first uint64, took time.Duration) {
	total := p.Removed + p.Following + p.Followers
	frac := 0.0
	if total > 0 {
		frac = float64(p.Removed) / float64(total)
	}
	k := int(frac * 30)
	line := fmt.Sprintf("remove-user %s: [%s%s] %5.1f%% %d of %d edges, %.0f edges/s", user, strings.Repeat("#", k), strings.Repeat(".", 30-k),
		100*frac, p.Removed, total, float64(p.Removed-first)/max(took.Seconds(), 1e-9))
	if tty {
		fmt.Fprintf(w, "\r%s", line)
	} else {
		fmt.Fprintln(w, line)
	}
}
