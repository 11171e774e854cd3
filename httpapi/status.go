package httpapi

import "github.com/followgraph/followgraph/wire"

// The JSON shapes of GET /v1/status and GET /v1/shardmap: the binary
// protocol's status (op 8) and shard map (op 9), field for field, with
// the names docs/PROTOCOL.md gives them.

type statusBody struct {
	Node      string       `json:"node"`
	Server    string       `json:"server"`
	Cluster   string       `json:"cluster"`
	UptimeSec uint64       `json:"uptimeSec"`
	Addr      string       `json:"addr"`
	Shards    []shardBody  `json:"shards"`
	Members   []memberBody `json:"members"`
}

type shardBody struct {
	Shard       int           `json:"shard"`
	Leader      bool          `json:"leader"`
	LeaderID    string        `json:"leaderId"`
	LeaderAddr  string        `json:"leaderAddr"`
	Ready       bool          `json:"ready"`
	Applied     uint64        `json:"applied"`
	Users       uint64        `json:"users"`
	Following   uint64        `json:"following"`
	Followers   uint64        `json:"followers"`
	Mutual      uint64        `json:"mutual"`
	LagRecords  uint64        `json:"lagRecords"`
	LagOldestMs uint64        `json:"lagOldestMs"`
	Halted      string        `json:"halted"`
	Recovered   string        `json:"recovered"`
	Voters      []string      `json:"voters"`
	Nonvoters   []string      `json:"nonvoters"`
	HookLag     uint64        `json:"hookLag"`
	Removals    []removalBody `json:"removals"`
}

type removalBody struct {
	User      string `json:"user"`
	Removed   uint64 `json:"removed"`
	Remaining uint64 `json:"remaining"`
}

type memberBody struct {
	Node       string `json:"node"`
	ClientAddr string `json:"clientAddr"`
	RaftAddr   string `json:"raftAddr"`
	Alive      bool   `json:"alive"`
	Draining   bool   `json:"draining"`
	Leads      int    `json:"leads"`
	Hosts      int    `json:"hosts"`
}

// orEmpty makes a nil slice encode as [] (the schema has arrays, never
// null).
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func statusJSON(s wire.Status) statusBody {
	out := statusBody{Node: s.NodeID, Server: s.Server, Cluster: s.ClusterID, UptimeSec: s.UptimeSec, Addr: s.Addr,
		Shards: make([]shardBody, 0, len(s.Shards)), Members: make([]memberBody, 0, len(s.Members))}
	for _, sh := range s.Shards {
		b := shardBody{Shard: sh.Shard, Leader: sh.Leader, LeaderID: sh.LeaderID, LeaderAddr: sh.LeaderAddr, Ready: sh.Ready,
			Applied: sh.AppliedIndex, Users: sh.Users, Following: sh.Following, Followers: sh.Followers, Mutual: sh.Mutual,
			LagRecords: sh.LagRecords, LagOldestMs: sh.LagOldestMs, Halted: sh.Halted, Recovered: sh.Recovered,
			Voters: orEmpty(sh.Voters), Nonvoters: orEmpty(sh.Nonvoters), HookLag: sh.HookLag, Removals: []removalBody{}}
		for _, rm := range sh.Removals {
			b.Removals = append(b.Removals, removalBody{User: rm.User, Removed: rm.Removed, Remaining: rm.Remaining})
		}
		out.Shards = append(out.Shards, b)
	}
	for _, m := range s.Members {
		out.Members = append(out.Members, memberBody{Node: m.NodeID, ClientAddr: m.ClientAddr, RaftAddr: m.RaftAddr,
			Alive: m.Alive, Draining: m.Draining, Leads: m.Leads, Hosts: m.Hosts})
	}
	return out
}

type shardMapBody struct {
	Version uint64            `json:"version"`
	Shards  int               `json:"shards"`
	Leaders []shardLeaderBody `json:"leaders"`
}

type shardLeaderBody struct {
	Shard    int    `json:"shard"`
	LeaderID string `json:"leaderId"`
	Addr     string `json:"addr"`
}

func shardMapJSON(m wire.ShardMap) shardMapBody {
	out := shardMapBody{Version: m.Version, Shards: m.Shards, Leaders: make([]shardLeaderBody, 0, len(m.Leaders))}
	for _, l := range m.Leaders {
		out.Leaders = append(out.Leaders, shardLeaderBody{Shard: l.Shard, LeaderID: l.LeaderID, Addr: l.Addr})
	}
	return out
}
