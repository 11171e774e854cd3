package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/followgraph/followgraph/client"
)

// Drain.

// drainPoll is how often drain --wait reads the cluster's status.
const drainPoll = 250 * time.Millisecond

func drainFlags(fs *flag.FlagSet, o *options) {
	fs.BoolVar(&o.off, "off", false, "stop draining NODE: make it an active node again")
	fs.DurationVar(&o.wait, "wait", 0, "then wait up to `DURATION` until NODE hosts no replica and leads no shard (0: do not wait)")
}

func drainCheck(o *options) error {
	switch {
	case o.wait < 0:
		return usageErrorf("--wait must not be negative")
	case o.off && o.wait > 0:
		return usageErrorf("--wait waits for a drain to finish: it does not go with --off")
	}
	return nil
}

// drainBudget: the request, then the wait.
func drainBudget(o *options) time.Duration { return o.timeout + o.wait }

type drainOutput struct {
	Node     string `json:"node"`
	Draining bool   `json:"draining"`
	// With --wait: whether NODE hosts no replica and leads no shard, and
	// the last counts seen (from gossip, as the node asked reports them).
	Drained *bool `json:"drained,omitempty"`
	Hosts   *int  `json:"hosts,omitempty"`
	Leads   *int  `json:"leads,omitempty"`

	waited  time.Duration
	lastErr error // the last failed status request, if the wait failed
}

func drainCmd(ctx context.Context, c *client.Client, o *options, args []string) (output, error) {
	node := args[0]
	rctx, cancel := requestCtx(ctx, o)
	err := c.Drain(rctx, node, !o.off)
	cancel()
	if err != nil {
		return nil, err
	}
	out := drainOutput{Node: node, Draining: !o.off}
	if o.wait == 0 {
		return out, nil
	}
	start := time.Now()
	deadline := start.Add(o.wait)
	drained, hosts, leads := false, -1, -1
	var addrs []string // where to ask: --addr first, then the members it knows
	for {
		st, err := statusFrom(ctx, c, o, addrs)
		if err == nil {
			addrs = addrs[:0]
			for _, m := range st.Members {
				if m.Alive && m.ClientAddr != "" && m.ClientAddr != o.addr {
					addrs = append(addrs, m.ClientAddr)
				}
			}
			found := false
			for _, m := range st.Members {
				if m.NodeID != node {
					continue
				}
				found = true
				if m.Hosts != hosts || m.Leads != leads {
					fmt.Fprintf(o.stderr, "drain: %s hosts %d replicas and leads %d shards (%s)\n", node, m.Hosts, m.Leads, time.Since(start).Round(100*time.Millisecond))
				}
				hosts, leads = m.Hosts, m.Leads
				drained = hosts == 0 && leads == 0
			}
			if !found {
				err = fmt.Errorf("%s is not among the members %s knows", node, st.NodeID)
			}
		}
		out.lastErr = err
		if drained || !time.Now().Add(drainPoll).Before(deadline) {
			break
		}
		select {
		case <-time.After(drainPoll):
		case <-ctx.Done():
		}
	}
	out.waited = time.Since(start)
	out.Drained, out.Hosts, out.Leads = &drained, &hosts, &leads
	return out, nil
}

// statusFrom returns the status of the --addr node, or if it does not
// answer, of the first of addrs that does.
func statusFrom(ctx context.Context, c *client.Client, o *options, addrs []string) (client.Status, error) {
	var firstErr error
	for _, a := range append([]string{""}, addrs...) {
		rctx, cancel := requestCtx(ctx, o)
		st, err := c.Status(rctx, a)
		cancel()
		if err == nil {
			return st, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return client.Status{}, firstErr
}

func (out drainOutput) failure() error {
	if out.Drained == nil || *out.Drained {
		return nil
	}
	if *out.Hosts < 0 {
		return fmt.Errorf("drain: could not read %s's state within --wait: %v", out.Node, out.lastErr)
	}
	return fmt.Errorf("drain: %s still hosts %d replicas and leads %d shards after %s", out.Node, *out.Hosts, *out.Leads, out.waited.Round(100*time.Millisecond))
}

func (out drainOutput) text(w io.Writer) {
	if out.Draining {
		fmt.Fprintf(w, "draining %s\n", out.Node)
	} else {
		fmt.Fprintf(w, "stopped draining %s: it is an active node again\n", out.Node)
	}
	switch {
	case out.Drained == nil:
	case *out.Drained:
		fmt.Fprintf(w, "%s drained in %s: it hosts no replica and leads no shard\n", out.Node, out.waited.Round(100*time.Millisecond))
	case *out.Hosts < 0:
		fmt.Fprintf(w, "%s: state unknown after %s\n", out.Node, out.waited.Round(100*time.Millisecond))
	default:
		fmt.Fprintf(w, "%s not drained after %s: it still hosts %d replicas and leads %d shards\n", out.Node,
			out.waited.Round(100*time.Millisecond), *out.Hosts, *out.Leads)
	}
}
