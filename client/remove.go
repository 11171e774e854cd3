package client

import (
	"context"

	"github.com/followgraph/followgraph/wire"
)

// RemovalProgress is how far the removal of a user's graph is (see
// Client.RemoveUser).
type RemovalProgress = wire.RemovalProgress

// RemoveUser removes user's whole graph: every edge the user follows and
// every edge that follows the user, both sides, with the mutual relations
// they made. The removal runs in the background on the user's shard, in
// bounded steps that survive leader changes and restarts; RemoveUser
// returns at once with its progress, and calling it again is harmless
// and reports the progress (Running false: done, nothing of the user is
// left, and the ID is a fresh user; RemovalOf polls without asking
// again). While it runs, writes involving the
// user fail with ErrUserRemoving.
func (c *Client) RemoveUser(ctx context.Context, user string) (RemovalProgress, error) {
	return c.removeUser(ctx, wire.RemoveUserRequest{User: user})
}

// RemovalOf reports how far the removal of user's graph is, and starts
// nothing: Running is false when none is running (done, or never asked).
func (c *Client) RemovalOf(ctx context.Context, user string) (RemovalProgress, error) {
	return c.removeUser(ctx, wire.RemoveUserRequest{User: user, Query: true})
}

func (c *Client) removeUser(ctx context.Context, q wire.RemoveUserRequest) (RemovalProgress, error) {
	body, err := c.do(ctx, c.ShardOf(q.User), wire.OpRemoveUser, func(b []byte) []byte { return wire.AppendRemoveUserRequest(b, q) })
	if err != nil {
		return RemovalProgress{}, err
	}
	return wire.ParseRemovalProgress(body)
}
