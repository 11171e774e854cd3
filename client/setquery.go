package client

import (
	"context"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/wire"
)

// Set query types, shared with the protocol.
type (
	// SetPage is a page of a set query, the cursor of the next page and
	// the size of the whole set.
	SetPage = wire.SetPage
	// Pair names two users for Relationships.
	Pair = wire.Pair
	// Relationship is the relation of one pair: Follows (From follows
	// To) and FollowedBy (To follows From); FollowType numbers it as
	// Check does, with From as the actor.
	Relationship = wire.Relationship
)

// listOptions applies list options to an empty request.
func listOptions(opts []ListOption) (wire.ListRequest, error) {
	var l wire.ListRequest
	for _, o := range opts {
		o(&l)
	}
	if l.Limit < 0 {
		return l, codes.New(codes.InvalidParam, "limit %d: want 1 to 500, or 0 for the server's default", l.Limit)
	}
	return l, nil
}

// setShard is the shard a set query of users bound's following list goes
// to: its leader serves it (any node at consistency Any).
func (c *Client) setShard(bound string, cons wire.Consistency) int {
	if cons == wire.Any {
		return -1
	}
	return c.ShardOf(bound)
}

// KnownFollowers returns a page of user's followers whom viewer follows,
// in the order of user's followers list (newest first), with the number
// of them all (SetPage.Total). Cursor, Limit and ReadConsistency apply as
// for Followers.
func (c *Client) KnownFollowers(ctx context.Context, viewer, user string, opts ...ListOption) (SetPage, error) {
	l, err := listOptions(opts)
	if err != nil {
		return SetPage{}, err
	}
	req := wire.KnownFollowersRequest{Viewer: viewer, User: user, Cursor: l.Cursor, Limit: l.Limit, Consistency: l.Consistency}
	body, err := c.do(ctx, c.setShard(viewer, l.Consistency), wire.OpKnownFollowers, func(b []byte) []byte { return wire.AppendKnownFollowersRequest(b, req) })
	if err != nil {
		return SetPage{}, err
	}
	return wire.ParseSetPage(body)
}

// CommonFollowing returns a page of the users both a and b follow, in
// the order of a's following list (newest first), with the number of
// them all. Cursor, Limit and ReadConsistency apply as for Following.
func (c *Client) CommonFollowing(ctx context.Context, a, b string, opts ...ListOption) (SetPage, error) {
	l, err := listOptions(opts)
	if err != nil {
		return SetPage{}, err
	}
	req := wire.CommonFollowingRequest{A: a, B: b, Cursor: l.Cursor, Limit: l.Limit, Consistency: l.Consistency}
	body, err := c.do(ctx, c.setShard(a, l.Consistency), wire.OpCommonFollowing, func(b []byte) []byte { return wire.AppendCommonFollowingRequest(b, req) })
	if err != nil {
		return SetPage{}, err
	}
	return wire.ParseSetPage(body)
}

// MaxRelationships is the most pairs of one Relationships call (the
// server's default limit).
const MaxRelationships = 100

// Relationships returns the relation of each pair (1 to 100), in order.
// A pair with an invalid ID gets code 30001 in its item.
func (c *Client) Relationships(ctx context.Context, pairs ...Pair) ([]Relationship, error) {
	return c.RelationshipsAt(ctx, Leader, pairs...)
}

// RelationshipsAt is Relationships at a chosen read consistency.
func (c *Client) RelationshipsAt(ctx context.Context, cons wire.Consistency, pairs ...Pair) ([]Relationship, error) {
	if len(pairs) == 0 {
		return nil, codes.New(codes.InvalidParam, "no pairs")
	}
	req := wire.RelationshipsRequest{Pairs: pairs, Consistency: cons}
	// The node leading the first pair's shard serves it; it asks the
	// others' leaders itself.
	body, err := c.do(ctx, c.setShard(pairs[0].From, cons), wire.OpRelationships, func(b []byte) []byte { return wire.AppendRelationshipsRequest(b, req) })
	if err != nil {
		return nil, err
	}
	rs, err := wire.ParseRelationships(body)
	if err == nil && len(rs) != len(pairs) {
		err = codes.New(codes.Internal, "relationships: %d results for %d pairs", len(rs), len(pairs))
	}
	return rs, err
}
