package cluster

import (
	"context"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/fsm"
	"github.com/followgraph/followgraph/shard"
	"github.com/followgraph/followgraph/wire"
	"github.com/hashicorp/raft"
)

// Service serves the wire protocol from a Node: it is the wire.Backend of
// followd.
type Service struct {
	n       *Node
	addr    string // this node's client address, for status and shard maps
	version string
	started time.Time
}

// NewService returns the wire backend of n. addr is the client address
// other parties should use to reach this node.
func NewService(n *Node, addr, version string) *Service {
	return &Service{n: n, addr: addr, version: version, started: time.Now()}
}

// Welcome is the handshake response of this node.
func (s *Service) Welcome() wire.Welcome {
	return wire.Welcome{Server: s.version, NodeID: s.n.cfg.NodeID, Shards: s.n.Shards(), ClusterID: s.n.meta.ClusterID}
}

func (s *Service) Write(ctx context.Context, op wire.Op, req wire.WriteRequest) ([]wire.Result, error) {
	fop := fsm.OpFollow
	if op == wire.OpUnfollow {
		fop = fsm.OpUnfollow
	}
	if err := shard.ValidateUserID(req.Actor); err != nil {
		return nil, err
	}
	res, err := s.n.shards[s.n.ShardOf(req.Actor)].Write(ctx, fop, req.Actor, req.Targets, WriteOptions{Sync: req.Sync})
	if err != nil {
		return nil, err
	}
	out := make([]wire.Result, len(res))
	for i, r := range res {
		out[i] = wire.Result{UserID: r.UserID, Code: r.Code, Info: r.Info}
	}
	return out, nil
}

var listKinds = map[wire.Op]shard.Kind{wire.OpFollowers: shard.Followers, wire.OpFollowing: shard.Following, wire.OpMutual: shard.Mutual}

func (s *Service) List(ctx context.Context, op wire.Op, req wire.ListRequest, fn func(id []byte, t int64)) (string, error) {
	k, ok := listKinds[op]
	if !ok {
		return "", codes.New(codes.UnknownOp, "not a list operation: %v", op)
	}
	if err := shard.ValidateUserID(req.User); err != nil {
		return "", err
	}
	var next string
	err := s.n.Read(req.User, func(st *shard.Store) error {
		var err error
		next, err = st.Scan(k, req.User, req.Cursor, req.Limit, fn)
		return err
	})
	return next, err
}

func (s *Service) Info(ctx context.Context, users []string) ([]wire.Info, error) {
	is, err := s.n.Info(users)
	if err != nil {
		return nil, err
	}
	out := make([]wire.Info, len(is))
	for i, r := range is {
		// The user ID may share the request frame: copy it.
		out[i] = wire.Info{UserID: users[i], Code: r.Code, Following: uint64(r.Following), Followers: uint64(r.Followers), Mutual: uint64(r.Mutual)}
	}
	return out, nil
}

func (s *Service) Check(ctx context.Context, req wire.CheckRequest) ([]wire.Check, error) {
	if err := shard.ValidateUserID(req.Actor); err != nil {
		return nil, err
	}
	var out []wire.Check
	err := s.n.Read(req.Actor, func(st *shard.Store) error {
		cs, err := st.Check(req.Actor, req.Targets)
		if err != nil {
			return err
		}
		out = make([]wire.Check, len(cs))
		for i, c := range cs {
			out[i] = wire.Check{UserID: req.Targets[i], Code: c.Code, FollowType: uint8(c.Type)}
		}
		return nil
	})
	return out, err
}

func (s *Service) Status(ctx context.Context) (wire.Status, error) {
	st := wire.Status{NodeID: s.n.cfg.NodeID, Server: s.version, ClusterID: s.n.meta.ClusterID,
		UptimeSec: uint64(time.Since(s.started).Seconds()), Addr: s.addr}
	for _, sh := range s.n.shards {
		st.Shards = append(st.Shards, s.shardStatus(sh))
	}
	return st, nil
}

func (s *Service) shardStatus(sh *Shard) wire.ShardStatus {
	ss := wire.ShardStatus{Shard: sh.id, Ready: sh.Ready(), Leader: sh.raft.State() == raft.Leader, AppliedIndex: sh.fsm.Index()}
	_, id := sh.raft.LeaderWithID()
	ss.LeaderID = string(id)
	if ss.Leader {
		ss.LeaderAddr = s.addr
	}
	if err := sh.fsm.Failed(); err != nil {
		ss.Halted = err.Error()
	}
	sh.fsm.ReadAny(func(st *shard.Store) {
		stats := st.Stats()
		ss.Users, ss.Following, ss.Followers, ss.Mutual = uint64(stats.Users), uint64(stats.Following), uint64(stats.Followers), uint64(stats.Mutual)
	})
	lag := sh.Lag()
	ss.LagRecords, ss.LagOldestMs = uint64(lag.Records), uint64(lag.Oldest.Milliseconds())
	return ss
}

func (s *Service) ShardMap(ctx context.Context) (wire.ShardMap, error) {
	m := wire.ShardMap{Version: 1, Shards: s.n.Shards()}
	for _, sh := range s.n.shards {
		l := wire.ShardLeader{Shard: sh.id}
		if sh.Ready() {
			l.LeaderID, l.Addr = s.n.cfg.NodeID, s.addr
		}
		m.Leaders = append(m.Leaders, l)
	}
	return m, nil
}
