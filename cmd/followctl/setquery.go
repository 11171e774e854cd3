package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/codes"
)

// The set queries: known-followers, common-following, relationships.

var setQueryCommands = []*command{
	{
		name: "known-followers", args: "VIEWER USER", minArgs: 2, maxArgs: 2,
		summary: "list USER's followers whom VIEWER follows, newest first, with their total",
		about: "Lists the followers of USER whom VIEWER follows (\"followed by people you\n" +
			"follow\"), in the order of USER's followers list: by the time each followed\n" +
			"USER, newest first. The total counts them all, not the page. The cost of a\n" +
			"page is bounded by VIEWER's following list (at most 5,000), whatever the\n" +
			"size of USER's followers list.",
		example: "followctl known-followers alice celebrity --limit 3\n  followctl known-followers alice celebrity --all --json",
		flags:   listFlags, run: setQueryCmd((*client.Client).KnownFollowers),
	},
	{
		name: "common-following", args: "A B", minArgs: 2, maxArgs: 2,
		summary: "list the users both A and B follow, newest first (A's follow time), with their total",
		about: "Lists the users both A and B follow, in the order of A's following list:\n" +
			"by the time A followed each, newest first. The total counts them all.",
		example: "followctl common-following alice bob --all",
		flags:   listFlags, run: setQueryCmd((*client.Client).CommonFollowing),
	},
	{
		name: "relationships", args: "FROM:TO...", minArgs: 1, maxArgs: -1,
		summary: "show, for each pair (1 to 100), whether FROM follows TO and TO follows FROM",
		about: "Shows, for each FROM:TO pair, whether FROM follows TO and whether TO follows\n" +
			"FROM, with the follow type numbered as check's (FROM as the actor). Each pair\n" +
			"is split at its first colon, and gets its own result code (30001 for an\n" +
			"invalid ID).",
		example:   "followctl relationships alice:bob carol:alice",
		checkArgs: pairsCheck, run: relationshipsCmd,
	},
}

func init() { commands = append(commands, setQueryCommands...) }

type setQueryOutput struct {
	Items      []listItem `json:"items"`
	NextCursor string     `json:"nextCursor"`
	Total      uint64     `json:"total"`
}

type setQueryFunc func(*client.Client, context.Context, string, string, ...client.ListOption) (client.SetPage, error)

func setQueryCmd(op setQueryFunc) func(context.Context, *client.Client, *options, []string) (output, error) {
	return func(ctx context.Context, c *client.Client, o *options, args []string) (output, error) {
		limit := o.limit
		if o.all && limit == 0 {
			limit = maxPage
		}
		out := setQueryOutput{Items: []listItem{}}
		cursor := o.cursor
		for {
			p, err := op(c, ctx, args[0], args[1], client.Cursor(cursor), client.Limit(limit))
			if err != nil {
				return nil, err
			}
			for _, it := range p.Items {
				out.Items = append(out.Items, listItem{UserID: it.UserID, FollowTime: it.FollowTime})
			}
			out.NextCursor, out.Total = p.NextCursor, p.Total
			if !o.all || p.NextCursor == "" {
				return out, nil
			}
			if p.NextCursor == cursor {
				return nil, codes.New(codes.Internal, "the server returned the same cursor again: %q", cursor)
			}
			cursor = p.NextCursor
		}
	}
}

func (out setQueryOutput) text(w io.Writer) {
	tw := newTable(w)
	fmt.Fprintln(tw, "USER\tFOLLOW TIME")
	for _, it := range out.Items {
		t := time.UnixMilli(it.FollowTime).UTC().Format("2006-01-02T15:04:05.000Z07:00")
		fmt.Fprintf(tw, "%s\t%s (%d)\n", it.UserID, t, it.FollowTime)
	}
	tw.Flush()
	fmt.Fprintf(w, "total: %d\n", out.Total)
	if out.NextCursor != "" {
		fmt.Fprintf(w, "next cursor: %s\n", out.NextCursor)
	}
}

// pairsCheck parses FROM:TO arguments into o.pairs.
func pairsCheck(o *options, args []string) error {
	if len(args) > client.MaxRelationships {
		return usageErrorf("%d pairs: at most %d", len(args), client.MaxRelationships)
	}
	o.pairs = o.pairs[:0]
	for _, a := range args {
		from, to, ok := strings.Cut(a, ":")
		if !ok {
			return usageErrorf("%q is not a FROM:TO pair", a)
		}
		o.pairs = append(o.pairs, client.Pair{From: from, To: to})
	}
	return nil
}

type relationshipsOutput struct {
	Results []relationshipResult `json:"results"`
}

type relationshipResult struct {
	From       string `json:"from"`
	To         string `json:"to"`
	Code       uint32 `json:"code"`
	Follows    bool   `json:"follows"`    // FROM follows TO
	FollowedBy bool   `json:"followedBy"` // TO follows FROM
	FollowType uint8  `json:"followType"`
}

func relationshipsCmd(ctx context.Context, c *client.Client, o *options, _ []string) (output, error) {
	rs, err := c.Relationships(ctx, o.pairs...)
	if err != nil {
		return nil, err
	}
	return relationshipsOutput{Results: rows(rs, func(r client.Relationship) relationshipResult {
		return relationshipResult{From: r.From, To: r.To, Code: uint32(r.Code), Follows: r.Follows(), FollowedBy: r.FollowedBy(), FollowType: r.FollowType}
	})}, nil
}

func (out relationshipsOutput) text(w io.Writer) {
	tw := newTable(w)
	fmt.Fprintln(tw, "FROM\tTO\tCODE\tFROM FOLLOWS TO\tTO FOLLOWS FROM")
	for _, r := range out.Results {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", r.From, r.To, r.Code, yesNo(r.Follows), yesNo(r.FollowedBy))
	}
	tw.Flush()
}
