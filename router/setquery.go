package router

import (
	"context"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/wire"
)

// KnownFollowers implements wire.Handler.
func (r *Router) KnownFollowers(ctx context.Context, req wire.KnownFollowersRequest) (wire.SetPage, error) {
	return wire.SetPage{}, codes.New(codes.UnknownOp, "known-followers: not implemented yet")
}

// CommonFollowing implements wire.Handler.
func (r *Router) CommonFollowing(ctx context.Context, req wire.CommonFollowingRequest) (wire.SetPage, error) {
	return wire.SetPage{}, codes.New(codes.UnknownOp, "common-following: not implemented yet")
}

// Relationships implements wire.Handler.
func (r *Router) Relationships(ctx context.Context, req wire.RelationshipsRequest) ([]wire.Relationship, error) {
	return nil, codes.New(codes.UnknownOp, "relationships: not implemented yet")
}

// Probe implements wire.ClusterHandler.
func (r *Router) Probe(ctx context.Context, req wire.ProbeRequest) ([]int64, error) {
	return nil, codes.New(codes.UnknownOp, "probe: not implemented yet")
}
