package router

import (
	"context"

	"github.com/followgraph/followgraph/fsm"
	"github.com/followgraph/followgraph/shard"
	"github.com/followgraph/followgraph/wire"
)

// RemoveUser starts removing user's whole graph on the leader of the
// user's shard (here, or forwarded), or reports how far it is.
func (r *Router) RemoveUser(ctx context.Context, req wire.RemoveUserRequest) (wire.RemovalProgress, error) {
	user := req.User
	if err := shard.ValidateUserID(user); err != nil {
		return wire.RemovalProgress{}, err
	}
	var p wire.RemovalProgress
	err := r.retrying(ctx, func() error {
		rep, addr, err := r.route(ctx, user, wire.Leader)
		if err != nil {
			return err
		}
		if addr != "" {
			p, err = r.peers.forwardRemoveUser(ctx, addr, req)
			return err
		}
		var st fsm.RemovalStatus
		if req.Query {
			st, err = rep.RemovalStatus(user)
		} else {
			st, err = rep.RemoveUser(ctx, user)
		}
		p = wire.RemovalProgress{Running: st.Running, Removed: st.Removed, Following: uint64(st.Following), Followers: uint64(st.Followers)}
		return err
	})
	return p, err
}
