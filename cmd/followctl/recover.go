package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/wire"
)

// Recover.

// recoverTimeout is the least time a recovery is given: closing a replica
// whose quorum is gone waits out its entries in flight (seconds) before
// its raft restarts alone.
const recoverTimeout = time.Minute

func recoverFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.from, "from", "", "the node (ID) whose replica the shard serves from")
	fs.BoolVar(&o.acceptLoss, "accept-data-loss", false, "required: what only the lost replicas held is gone for good")
}

func recoverCheck(o *options) error {
	switch {
	case o.from == "":
		return usageErrorf("--from NODE is required: the node whose replica survives")
	case !o.acceptLoss:
		return usageErrorf("unsafe recovery loses the writes only the lost replicas held; say --accept-data-loss to go ahead")
	}
	return nil
}

func recoverBudget(o *options) time.Duration { return max(o.timeout, recoverTimeout) }

type recoverOutput struct {
	Node      string            `json:"node"`
	Recovered []recoveredOutput `json:"recovered"`
}

type recoveredOutput struct {
	Shard int      `json:"shard"`
	Index uint64   `json:"index"` // the last entry kept
	Term  uint64   `json:"term"`
	Lost  []string `json:"lost"` // the voters whose data is gone
}

func recoverCmd(ctx context.Context, c *client.Client, o *options, args []string) (output, error) {
	shard := -1
	if args[0] != "all" {
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 0 {
			return nil, usageErrorf("SHARD must be a shard number or \"all\", not %q", args[0])
		}
		shard = n
	}
	rs, err := c.Recover(ctx, o.from, shard, o.acceptLoss)
	if err != nil {
		return nil, err
	}
	out := recoverOutput{Node: o.from, Recovered: []recoveredOutput{}}
	for _, r := range rs {
		out.Recovered = append(out.Recovered, recoveredOf(r))
	}
	return out, nil
}

func recoveredOf(r wire.Recovered) recoveredOutput {
	return recoveredOutput{Shard: r.Shard, Index: r.Index, Term: r.Term, Lost: sorted(r.Lost)}
}

func (out recoverOutput) text(w io.Writer) {
	tw := newTable(w)
	fmt.Fprintln(tw, "SHARD\tKEPT UP TO INDEX\tTERM\tLOST VOTERS")
	for _, r := range out.Recovered {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\n", r.Shard, r.Index, r.Term, dash(strings.Join(r.Lost, ",")))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nrecovered %d shard(s) from %s: each serves from that replica alone; new replicas are added as nodes are available.\n"+
		"Run followctl verify once the relay is caught up: reverse edges only the lost replicas held may be missing.\n", len(out.Recovered), out.Node)
}
