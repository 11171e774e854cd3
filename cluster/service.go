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
// followd. A request for a shard this node leads is served here; in a
// cluster, any other request is forwarded to the shard's leader (once: a
// request that arrives from another node is not forwarded again), so a
// simple client may talk to any node.
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
	s.n.mu.RLock()
	defer s.n.mu.RUnlock()
	return wire.Welcome{Server: s.version, NodeID: s.n.cfg.NodeID, Shards: s.n.Shards(), ClusterID: s.n.meta.ClusterID}
}

// route returns the shard that serves user here, or the address of the
// node to forward to, or an error. With consistency Any, any local
// replica serves.
func (s *Service) route(ctx context.Context, user string, c ...wire.Consistency) (*Shard, string, error) {
	i := s.n.ShardOf(user)
	sh := s.n.Shard(i)
	if sh != nil && sh.Ready() {
		return sh, "", nil
	}
	if sh != nil && len(c) > 0 && c[0] == wire.Any {
		return sh, "", nil
	}
	if sh != nil && !s.n.cfg.clusterMode() {
		return sh, "", nil // single node: the shard says why it is not ready
	}
	if addr, ok := s.n.leaderAddr(i); ok && !wire.FromPeer(ctx) {
		return nil, addr, nil
	}
	return nil, "", s.n.elsewhere(i)
}

func (s *Service) Write(ctx context.Context, op wire.Op, req wire.WriteRequest) ([]wire.Result, error) {
	fop := fsm.OpFollow
	if op == wire.OpUnfollow {
		fop = fsm.OpUnfollow
	}
	if err := shard.ValidateUserID(req.Actor); err != nil {
		return nil, err
	}
	sh, addr, err := s.route(ctx, req.Actor)
	if err != nil {
		return nil, err
	}
	if addr != "" {
		body, err := s.n.peers.Call(ctx, addr, op, func(b []byte) []byte { return wire.AppendWriteRequest(b, req) })
		if err != nil {
			return nil, err
		}
		return wire.ParseResults(body)
	}
	res, err := sh.Write(ctx, fop, req.Actor, req.Targets, WriteOptions{Sync: req.Sync})
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
	sh, addr, err := s.route(ctx, req.User, req.Consistency)
	if err != nil {
		return "", err
	}
	if addr != "" {
		body, err := s.n.peers.Call(ctx, addr, op, func(b []byte) []byte { return wire.AppendListRequest(b, req) })
		if err != nil {
			return "", err
		}
		p, err := wire.ParsePage(body)
		if err != nil {
			return "", err
		}
		for _, it := range p.Items {
			fn([]byte(it.UserID), it.FollowTime)
		}
		return p.NextCursor, nil
	}
	var next string
	err = read(sh, req.Consistency, func(st *shard.Store) error {
		var err error
		next, err = st.Scan(k, req.User, req.Cursor, req.Limit, fn)
		return err
	})
	return next, err
}

// read reads a local replica at the requested consistency.
func read(sh *Shard, c wire.Consistency, fn func(*shard.Store) error) error {
	switch {
	case c == wire.Linearizable:
		return sh.ReadLinearizable(fn)
	case c == wire.Any && !sh.Ready():
		return sh.ReadLocal(fn)
	}
	return sh.Read(fn)
}

func (s *Service) Info(ctx context.Context, req wire.UsersRequest) ([]wire.Info, error) {
	users := req.Users
	if len(users) < 1 || len(users) > s.n.cfg.Store.MaxInfo {
		return nil, codes.New(codes.InvalidParam, "%d users: want 1 to %d", len(users), s.n.cfg.Store.MaxInfo)
	}
	out := make([]wire.Info, len(users))
	// Users whose shard another node leads go there in one request per
	// node, all nodes at once; the rest are read here.
	remote := map[string][]int{}
	for i, u := range users {
		// The user ID may share the request frame: the result keeps its
		// own copy.
		out[i] = wire.Info{UserID: string([]byte(u))}
		if !shard.ValidUserID(u) {
			out[i].Code = codes.InvalidParam
			continue
		}
		sh, addr, err := s.route(ctx, u, req.Consistency)
		if err != nil {
			return nil, err
		}
		if addr != "" {
			remote[addr] = append(remote[addr], i)
			continue
		}
		err = read(sh, req.Consistency, func(st *shard.Store) error {
			r, err := st.Info([]string{u})
			if err == nil {
				out[i].Code, out[i].Following, out[i].Followers, out[i].Mutual = r[0].Code, uint64(r[0].Following), uint64(r[0].Followers), uint64(r[0].Mutual)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	if len(remote) == 0 {
		return out, nil
	}
	errs := make(chan error, len(remote))
	for addr, idx := range remote {
		go func() {
			errs <- s.forwardInfo(ctx, addr, req.Consistency, out, idx)
		}()
	}
	var first error
	for range remote {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return nil, first
	}
	return out, nil
}

// forwardInfo asks the node at addr for the counts of out[i] for each i in
// idx, and fills them in.
func (s *Service) forwardInfo(ctx context.Context, addr string, c wire.Consistency, out []wire.Info, idx []int) error {
	users := make([]string, len(idx))
	for k, i := range idx {
		users[k] = out[i].UserID
	}
	body, err := s.n.peers.Call(ctx, addr, wire.OpInfo, func(b []byte) []byte {
		return wire.AppendInfoRequest(b, wire.UsersRequest{Users: users, Consistency: c})
	})
	if err != nil {
		return err
	}
	is, err := wire.ParseInfos(body)
	if err != nil || len(is) != len(idx) {
		return codes.New(codes.Internal, "forwarded info: %d results for %d users: %v", len(is), len(idx), err)
	}
	for k, i := range idx {
		out[i] = is[k]
	}
	return nil
}

func (s *Service) Check(ctx context.Context, req wire.CheckRequest) ([]wire.Check, error) {
	if err := shard.ValidateUserID(req.Actor); err != nil {
		return nil, err
	}
	sh, addr, err := s.route(ctx, req.Actor, req.Consistency)
	if err != nil {
		return nil, err
	}
	if addr != "" {
		body, err := s.n.peers.Call(ctx, addr, wire.OpCheck, func(b []byte) []byte { return wire.AppendCheckRequest(b, req) })
		if err != nil {
			return nil, err
		}
		return wire.ParseChecks(body)
	}
	var out []wire.Check
	err = read(sh, req.Consistency, func(st *shard.Store) error {
		cs, err := st.Check(req.Actor, req.Targets)
		if err != nil {
			return err
		}
		out = make([]wire.Check, len(cs))
		for i, c := range cs {
			out[i] = wire.Check{UserID: string([]byte(req.Targets[i])), Code: c.Code, FollowType: uint8(c.Type)}
		}
		return nil
	})
	return out, err
}

// Deliver applies relayed records to a shard this node leads.
func (s *Service) Deliver(ctx context.Context, req wire.DeliverRequest) (uint64, error) {
	sh := s.n.Shard(req.Dst)
	if sh == nil || !sh.Ready() {
		return 0, s.n.elsewhere(req.Dst)
	}
	recs := make([]fsm.Record, len(req.Records))
	for i, r := range req.Records {
		recs[i] = fsm.Record(r)
	}
	return sh.Deliver(ctx, req.Src, recs)
}

func (s *Service) Status(ctx context.Context) (wire.Status, error) {
	st := wire.Status{NodeID: s.n.cfg.NodeID, Server: s.version, ClusterID: s.Welcome().ClusterID,
		UptimeSec: uint64(time.Since(s.started).Seconds()), Addr: s.addr}
	for _, sh := range s.n.localShards() {
		st.Shards = append(st.Shards, s.shardStatus(sh))
	}
	for _, m := range s.n.Members() {
		st.Members = append(st.Members, wire.MemberStatus{NodeID: m.Meta.ID, ClientAddr: m.Meta.ClientAddr, RaftAddr: m.Meta.RaftAddr,
			Alive: m.Alive, Draining: m.Meta.State == NodeDraining, Leads: m.Meta.Leads.Count(), Hosts: m.Meta.Hosts.Count()})
	}
	return st, nil
}

func (s *Service) shardStatus(sh *Shard) wire.ShardStatus {
	ss := wire.ShardStatus{Shard: sh.id, Ready: sh.Ready(), Leader: sh.raft.State() == raft.Leader, AppliedIndex: sh.fsm.Index()}
	_, id := sh.raft.LeaderWithID()
	ss.LeaderID = string(id)
	if ss.Leader {
		ss.LeaderAddr = s.addr
	} else if m, ok := s.n.leaderOf(sh.id); ok {
		ss.LeaderAddr = m.Meta.ClientAddr
	}
	if err := sh.fsm.Failed(); err != nil {
		ss.Halted = err.Error()
	}
	if f := sh.raft.GetConfiguration(); f.Error() == nil {
		for _, sv := range f.Configuration().Servers {
			if sv.Suffrage == raft.Voter {
				ss.Voters = append(ss.Voters, string(sv.ID))
			} else {
				ss.Nonvoters = append(ss.Nonvoters, string(sv.ID))
			}
		}
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
	m := wire.ShardMap{Shards: s.n.Shards()}
	for i := range s.n.Shards() {
		l := wire.ShardLeader{Shard: i}
		if sh := s.n.Shard(i); sh != nil && sh.Ready() {
			l.LeaderID, l.Addr = s.n.cfg.NodeID, s.addr
		} else if mb, ok := s.n.leaderOf(i); ok {
			l.LeaderID, l.Addr = mb.Meta.ID, mb.Meta.ClientAddr
		}
		m.Leaders = append(m.Leaders, l)
	}
	m.Version = s.n.mapVersion(m)
	return m, nil
}

// Drain marks req.Node as draining (forwarding to it if it is another
// node).
func (s *Service) Drain(ctx context.Context, req wire.DrainRequest) error {
	if req.Node == s.n.cfg.NodeID {
		return s.n.SetDraining(req.On)
	}
	if wire.FromPeer(ctx) {
		return codes.New(codes.InvalidParam, "node %q is not this node", req.Node)
	}
	for _, m := range s.n.Members() {
		if m.Meta.ID == req.Node {
			_, err := s.n.peers.Call(ctx, m.Meta.ClientAddr, wire.OpDrain, func(b []byte) []byte { return wire.AppendDrainRequest(b, req) })
			return err
		}
	}
	return codes.New(codes.InvalidParam, "no node %q in the cluster", req.Node)
}

// ScanUsers lists users of a shard this node leads.
func (s *Service) ScanUsers(ctx context.Context, req wire.ScanRequest) (wire.UserPage, error) {
	if req.Shard < 0 || req.Shard >= s.n.Shards() {
		return wire.UserPage{}, codes.New(codes.InvalidParam, "no shard %d", req.Shard)
	}
	sh := s.n.Shard(req.Shard)
	if sh == nil || !sh.Ready() {
		return wire.UserPage{}, s.n.elsewhere(req.Shard)
	}
	limit := req.Limit
	if limit <= 0 {
		limit = 1000
	}
	var p wire.UserPage
	err := sh.Read(func(st *shard.Store) error {
		p.Next = uint64(st.ScanUsers(uint32(req.From), limit, func(id string) { p.Users = append(p.Users, id) }))
		return nil
	})
	return p, err
}
