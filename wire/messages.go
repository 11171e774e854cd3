package wire

import (
	"errors"
	"fmt"
	"strings"

	"github.com/followgraph/followgraph/codes"
)

// Request and response bodies. Each is a msgpack array; docs/PROTOCOL.md
// lists them. Append* encode, Parse* decode; decoders check every length
// against the protocol's limits before using it.

// Hello is the handshake request, the first frame of every connection.
type Hello struct {
	Version int
	Token   string
	Client  string // free text, for logs
	// Name names the token (see package tokens); empty means the token
	// named "default", the one followd's --token gives.
	Name string
}

// AppendHello encodes a hello body: [version, token, client], with the
// token's name as a fourth element when it is set (servers from before
// token names accept only three).
func AppendHello(b []byte, h Hello) []byte {
	if h.Name == "" {
		b = appendArray(b, 3)
	} else {
		b = appendArray(b, 4)
	}
	b = appendUint(b, uint64(h.Version))
	b = appendStr(b, h.Token)
	b = appendStr(b, h.Client)
	if h.Name != "" {
		b = appendStr(b, h.Name)
	}
	return b
}

// ParseHello decodes a hello body of three or four elements.
func ParseHello(body []byte) (Hello, error) {
	r := reader{b: body}
	n := r.array(4)
	if n < 3 {
		r.fail()
	}
	v := r.uint()
	h := Hello{Token: r.str(maxTokenLen), Client: r.str(256)}
	if n == 4 {
		h.Name = r.str(maxTokenNameLen)
	}
	if v > 1<<16 {
		r.fail()
	}
	h.Version = int(v)
	return h, wrap(r.done(), "hello")
}

// Welcome is the handshake response.
type Welcome struct {
	Version   int
	Server    string // software version
	MaxFrame  int
	NodeID    string
	Shards    int
	ClusterID string
}

// AppendWelcome encodes [version, server, maxFrame, node, shards, cluster].
func AppendWelcome(b []byte, w Welcome) []byte {
	b = appendArray(b, 6)
	b = appendUint(b, uint64(w.Version))
	b = appendStr(b, w.Server)
	b = appendUint(b, uint64(w.MaxFrame))
	b = appendStr(b, w.NodeID)
	b = appendUint(b, uint64(w.Shards))
	return appendStr(b, w.ClusterID)
}

// ParseWelcome decodes a welcome body.
func ParseWelcome(body []byte) (Welcome, error) {
	r := reader{b: body}
	r.arrayN(6)
	w := Welcome{Version: r.upTo(1 << 16), Server: r.str(256), MaxFrame: r.upTo(1 << 31), NodeID: r.str(256), Shards: r.upTo(1 << 16), ClusterID: r.str(256)}
	if w.Shards < 1 || w.Shards > 1<<16 {
		r.fail()
	}
	return w, wrap(r.done(), "welcome")
}

func wrap(err error, what string) error {
	var tl tooLongError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tl) && strings.HasPrefix(tl.field, "user ID"):
		return codes.New(codes.InvalidParam, "%s is %d bytes long: a user ID has at most %d bytes", tl.field, tl.n, maxIDLen)
	case errors.As(err, &tl):
		return codes.New(codes.InvalidParam, "malformed %s body: %v", what, tl)
	}
	return codes.New(codes.InvalidParam, "malformed %s body", what)
}

// id reads a user ID (copied), naming it in a too-long error: "the
// actor's user ID", or "the user ID of target 3" (i counted from 1).
func (r *reader) id(role string, i int) string { return string(r.idView(role, i)) }

// idView reads a user ID that shares the frame (see strView).
func (r *reader) idView(role string, i int) string {
	if i > 0 {
		r.field = fmt.Sprintf("user ID of %s %d", role, i)
	} else {
		r.field = "user ID of the " + role
	}
	s := r.strView(maxIDLen * 4)
	r.field = ""
	return s
}

// WriteRequest is a Follow or Unfollow: [actor, [target...], flags]; flags
// bit 0 asks for a sync write.
type WriteRequest struct {
	Actor   string
	Targets []string
	Sync    bool
}

// AppendWriteRequest encodes a write request body.
func AppendWriteRequest(b []byte, w WriteRequest) []byte {
	b = appendArray(b, 3)
	b = appendStr(b, w.Actor)
	b = appendArray(b, len(w.Targets))
	for _, t := range w.Targets {
		b = appendStr(b, t)
	}
	var flags uint64
	if w.Sync {
		flags |= 1
	}
	return appendUint(b, flags)
}

// ParseWriteRequest decodes a write request body. Strings are copied: the
// request outlives the frame.
func ParseWriteRequest(body []byte) (WriteRequest, error) {
	r := reader{b: body}
	r.arrayN(3)
	w := WriteRequest{Actor: r.id("actor", 0)}
	n := r.array(maxList)
	w.Targets = make([]string, 0, min(n, 32))
	for i := range n {
		w.Targets = append(w.Targets, r.id("target", i+1))
	}
	flags := r.uint()
	w.Sync = flags&1 != 0
	return w, wrap(r.done(), "write request")
}

// Result is the outcome of one target of a write: [userID, code, info].
type Result struct {
	UserID string
	Code   codes.Code
	Info   string
}

// AppendResults encodes write results.
func AppendResults(b []byte, rs []Result) []byte {
	b = appendArray(b, len(rs))
	for _, r := range rs {
		b = appendArray(b, 3)
		b = appendStr(b, r.UserID)
		b = appendUint(b, uint64(r.Code))
		b = appendStr(b, r.Info)
	}
	return b
}

// ParseResults decodes write results.
func ParseResults(body []byte) ([]Result, error) {
	r := reader{b: body}
	n := r.array(maxList)
	rs := make([]Result, 0, min(n, 32))
	for range n {
		r.arrayN(3)
		rs = append(rs, Result{UserID: r.str(maxIDLen * 4), Code: codes.Code(r.upTo(1<<32 - 1)), Info: r.str(1 << 12)})
	}
	return rs, wrap(r.done(), "write results")
}

// Consistency is a read's consistency level, an optional last element of
// list, info and check requests (absent means Leader).
type Consistency uint8

// Read consistency levels.
const (
	// Leader reads the leader's state: it includes every write
	// acknowledged before the read was sent, except in the rare window
	// where a deposed leader has not yet noticed (bounded by the leader
	// lease).
	Leader Consistency = 0
	// Linearizable confirms leadership with a quorum round trip first.
	Linearizable Consistency = 1
	// Any reads whichever replica answers, possibly stale (follower
	// reads, for read scale-out).
	Any Consistency = 2
)

// appendConsistency adds the optional element.
func appendConsistency(b []byte, c Consistency) []byte {
	if c == Leader {
		return b
	}
	return appendUint(b, uint64(c))
}

// readConsistency reads the optional element if the array had it.
func (r *reader) readConsistency(present bool) Consistency {
	if !present {
		return Leader
	}
	return Consistency(r.upTo(int(Any)))
}

// ListRequest asks for a page: [user, cursor, limit(, consistency)].
type ListRequest struct {
	User        string
	Cursor      string
	Limit       int
	Consistency Consistency
}

// AppendListRequest encodes a list request body.
func AppendListRequest(b []byte, l ListRequest) []byte {
	n := 3
	if l.Consistency != Leader {
		n = 4
	}
	b = appendArray(b, n)
	b = appendStr(b, l.User)
	b = appendStr(b, l.Cursor)
	b = appendUint(b, uint64(max(l.Limit, 0)))
	return appendConsistency(b, l.Consistency)
}

// ParseListRequest decodes a list request body. Its strings share the
// frame's memory: use them before the frame is reused.
func ParseListRequest(body []byte) (ListRequest, error) {
	r := reader{b: body}
	n := r.array(4)
	if n < 3 {
		r.fail()
	}
	l := ListRequest{User: r.strView(maxIDLen * 4), Cursor: r.strView(maxCursorLen)}
	l.Limit = r.upTo(MaxListLimit)
	l.Consistency = r.readConsistency(n == 4)
	return l, wrap(r.done(), "list request")
}

// Item is one list entry: [userID, followTime].
type Item struct {
	UserID     string
	FollowTime int64
}

// Page is a list response: [[item...], nextCursor].
type Page struct {
	Items      []Item
	NextCursor string
}

// AppendPageStart begins a page of n items; append each with AppendItem,
// then finish with AppendPageEnd.
func AppendPageStart(b []byte, n int) []byte {
	b = appendArray(b, 2)
	return appendArray(b, n)
}

// AppendItem appends one list entry.
func AppendItem(b []byte, id []byte, t int64) []byte {
	b = appendArray(b, 2)
	b = appendStrBytes(b, id)
	return appendInt(b, t)
}

// AppendPageEnd appends the next cursor.
func AppendPageEnd(b []byte, next string) []byte { return appendStr(b, next) }

// ParsePage decodes a list response.
func ParsePage(body []byte) (Page, error) {
	r := reader{b: body}
	r.arrayN(2)
	n := r.array(1 << 16)
	p := Page{Items: make([]Item, 0, min(n, 512))}
	for range n {
		r.arrayN(2)
		p.Items = append(p.Items, Item{UserID: r.str(maxIDLen * 4), FollowTime: r.int()})
	}
	p.NextCursor = r.str(maxCursorLen)
	return p, wrap(r.done(), "page")
}

// UsersRequest is an Info request: [[user...](, consistency)].
type UsersRequest struct {
	Users       []string
	Consistency Consistency
}

// AppendUsersRequest encodes an info request body.
func AppendUsersRequest(b []byte, users []string) []byte {
	return AppendInfoRequest(b, UsersRequest{Users: users})
}

// AppendInfoRequest encodes an info request body.
func AppendInfoRequest(b []byte, u UsersRequest) []byte {
	n := 1
	if u.Consistency != Leader {
		n = 2
	}
	b = appendArray(b, n)
	b = appendArray(b, len(u.Users))
	for _, id := range u.Users {
		b = appendStr(b, id)
	}
	return appendConsistency(b, u.Consistency)
}

// ParseUsersRequest decodes an info request body (strings share the frame).
func ParseUsersRequest(body []byte) (UsersRequest, error) {
	r := reader{b: body}
	k := r.array(2)
	if k < 1 {
		r.fail()
	}
	n := r.array(maxList)
	u := UsersRequest{Users: make([]string, 0, min(n, 128))}
	for i := range n {
		u.Users = append(u.Users, r.idView("user", i+1))
	}
	u.Consistency = r.readConsistency(k == 2)
	return u, wrap(r.done(), "info request")
}

// Info is one user's counts: [userID, code, following, followers, mutual].
type Info struct {
	UserID    string
	Code      codes.Code
	Following uint64
	Followers uint64
	Mutual    uint64
}

// AppendInfos encodes info results.
func AppendInfos(b []byte, is []Info) []byte {
	b = appendArray(b, len(is))
	for _, i := range is {
		b = appendArray(b, 5)
		b = appendStr(b, i.UserID)
		b = appendUint(b, uint64(i.Code))
		b = appendUint(b, i.Following)
		b = appendUint(b, i.Followers)
		b = appendUint(b, i.Mutual)
	}
	return b
}

// ParseInfos decodes info results.
func ParseInfos(body []byte) ([]Info, error) {
	r := reader{b: body}
	n := r.array(maxList)
	is := make([]Info, 0, min(n, 128))
	for range n {
		r.arrayN(5)
		is = append(is, Info{UserID: r.str(maxIDLen * 4), Code: codes.Code(r.upTo(1<<32 - 1)), Following: r.uint(), Followers: r.uint(), Mutual: r.uint()})
	}
	return is, wrap(r.done(), "info results")
}

// CheckRequest is [actor, [target...](, consistency)].
type CheckRequest struct {
	Actor       string
	Targets     []string
	Consistency Consistency
}

// AppendCheckRequest encodes a check request body.
func AppendCheckRequest(b []byte, c CheckRequest) []byte {
	n := 2
	if c.Consistency != Leader {
		n = 3
	}
	b = appendArray(b, n)
	b = appendStr(b, c.Actor)
	b = appendArray(b, len(c.Targets))
	for _, t := range c.Targets {
		b = appendStr(b, t)
	}
	return appendConsistency(b, c.Consistency)
}

// ParseCheckRequest decodes a check request body (strings share the frame).
func ParseCheckRequest(body []byte) (CheckRequest, error) {
	r := reader{b: body}
	k := r.array(3)
	if k < 2 {
		r.fail()
	}
	c := CheckRequest{Actor: r.idView("actor", 0)}
	n := r.array(maxList)
	c.Targets = make([]string, 0, min(n, 128))
	for i := range n {
		c.Targets = append(c.Targets, r.idView("target", i+1))
	}
	c.Consistency = r.readConsistency(k == 3)
	return c, wrap(r.done(), "check request")
}

// Check is one relation: [userID, code, followType].
type Check struct {
	UserID     string
	Code       codes.Code
	FollowType uint8
}

// AppendChecks encodes check results.
func AppendChecks(b []byte, cs []Check) []byte {
	b = appendArray(b, len(cs))
	for _, c := range cs {
		b = appendArray(b, 3)
		b = appendStr(b, c.UserID)
		b = appendUint(b, uint64(c.Code))
		b = appendUint(b, uint64(c.FollowType))
	}
	return b
}

// ParseChecks decodes check results.
func ParseChecks(body []byte) ([]Check, error) {
	r := reader{b: body}
	n := r.array(maxList)
	cs := make([]Check, 0, min(n, 128))
	for range n {
		r.arrayN(3)
		c := Check{UserID: r.str(maxIDLen * 4), Code: codes.Code(r.upTo(1<<32 - 1))}
		c.FollowType = uint8(r.upTo(3))
		cs = append(cs, c)
	}
	return cs, wrap(r.done(), "check results")
}

// ParseEmpty decodes an empty request body (an empty array).
func ParseEmpty(body []byte) error {
	r := reader{b: body}
	r.arrayN(0)
	return wrap(r.done(), "empty")
}

// AppendEmpty appends an empty array.
func AppendEmpty(b []byte) []byte { return appendArray(b, 0) }

// ShardStatus describes one shard on one node.
type ShardStatus struct {
	Shard        int
	Leader       bool   // this node leads it
	LeaderID     string // the leader's node ID, if known
	LeaderAddr   string // the leader's client address, if known
	Ready        bool
	AppliedIndex uint64
	Users        uint64
	Following    uint64 // follow edges whose follower lives here
	Followers    uint64
	Mutual       uint64
	LagRecords   uint64
	LagOldestMs  uint64
	Halted       string // why the shard's state machine halted, if it did
	// Recovered describes the unsafe recovery made from this replica, if
	// one was.
	Recovered string
	// Voters and Nonvoters are the shard's raft configuration as this
	// node knows it (authoritative when Leader is true).
	Voters, Nonvoters []string
	// HookLag is, on the leader, the most change-feed events any webhook
	// has yet to deliver.
	HookLag uint64
	// Removals are the removals of users' graphs running on the shard.
	Removals []Removal
}

// Removal is a running removal of a user's graph, in a status:
// [user, removed, remaining].
type Removal struct {
	User      string
	Removed   uint64 // edges removed so far
	Remaining uint64 // entries still in the user's following and followers lists
}

// maxStatusRemovals bounds the removals a shard's status lists.
const maxStatusRemovals = 1 << 12

// Status is a node's status.
type Status struct {
	NodeID    string
	Server    string
	ClusterID string
	UptimeSec uint64
	Addr      string
	Shards    []ShardStatus
	// Members is the cluster as this node's gossip sees it (empty on a
	// single node).
	Members []MemberStatus
}

// MemberStatus is one node as gossip sees it.
type MemberStatus struct {
	NodeID     string
	ClientAddr string
	RaftAddr   string
	Alive      bool
	Draining   bool
	Leads      int // shards it leads
	Hosts      int // replicas it holds
}

// AppendStatus encodes a status body:
// [node, server, cluster, uptime, addr, [shard...], [member...]],
// member = [node, clientAddr, raftAddr, alive, draining, leads, hosts],
// shard = [shard,
// leader, leaderID, leaderAddr, ready, applied, users, following,
// followers, mutual, lagRecords, lagOldestMs, halted, recovered,
// [voter...], [nonvoter...]].
func AppendStatus(b []byte, s Status) []byte {
	b = appendArray(b, 7)
	b = appendStr(b, s.NodeID)
	b = appendStr(b, s.Server)
	b = appendStr(b, s.ClusterID)
	b = appendUint(b, s.UptimeSec)
	b = appendStr(b, s.Addr)
	b = appendArray(b, len(s.Shards))
	for _, sh := range s.Shards {
		b = appendArray(b, 18)
		b = appendUint(b, uint64(sh.Shard))
		b = appendBool(b, sh.Leader)
		b = appendStr(b, sh.LeaderID)
		b = appendStr(b, sh.LeaderAddr)
		b = appendBool(b, sh.Ready)
		b = appendUint(b, sh.AppliedIndex)
		b = appendUint(b, sh.Users)
		b = appendUint(b, sh.Following)
		b = appendUint(b, sh.Followers)
		b = appendUint(b, sh.Mutual)
		b = appendUint(b, sh.LagRecords)
		b = appendUint(b, sh.LagOldestMs)
		b = appendStr(b, sh.Halted)
		b = appendStr(b, sh.Recovered)
		for _, ids := range [][]string{sh.Voters, sh.Nonvoters} {
			b = appendArray(b, len(ids))
			for _, id := range ids {
				b = appendStr(b, id)
			}
		}
		b = appendUint(b, sh.HookLag)
		b = appendArray(b, len(sh.Removals))
		for _, rm := range sh.Removals {
			b = appendArray(b, 3)
			b = appendStr(b, rm.User)
			b = appendUint(b, rm.Removed)
			b = appendUint(b, rm.Remaining)
		}
	}
	b = appendArray(b, len(s.Members))
	for _, m := range s.Members {
		b = appendArray(b, 7)
		b = appendStr(b, m.NodeID)
		b = appendStr(b, m.ClientAddr)
		b = appendStr(b, m.RaftAddr)
		b = appendBool(b, m.Alive)
		b = appendBool(b, m.Draining)
		b = appendUint(b, uint64(m.Leads))
		b = appendUint(b, uint64(m.Hosts))
	}
	return b
}

// ParseStatus decodes a status body.
func ParseStatus(body []byte) (Status, error) {
	r := reader{b: body}
	r.arrayN(7)
	s := Status{NodeID: r.str(256), Server: r.str(256), ClusterID: r.str(256), UptimeSec: r.uint(), Addr: r.str(256)}
	n := r.array(1 << 16)
	for range n {
		r.arrayN(18)
		sh := ShardStatus{Shard: r.upTo(1 << 16), Leader: r.bool(), LeaderID: r.str(256), LeaderAddr: r.str(256), Ready: r.bool(),
			AppliedIndex: r.uint(), Users: r.uint(), Following: r.uint(), Followers: r.uint(), Mutual: r.uint(),
			LagRecords: r.uint(), LagOldestMs: r.uint(), Halted: r.str(1 << 12), Recovered: r.str(1 << 12)}
		for _, dst := range []*[]string{&sh.Voters, &sh.Nonvoters} {
			k := r.array(64)
			for range k {
				*dst = append(*dst, r.str(256))
			}
		}
		sh.HookLag = r.uint()
		for range r.array(maxStatusRemovals) {
			r.arrayN(3)
			rm := Removal{User: r.str(maxIDLen * 4), Removed: r.uint(), Remaining: r.uint()}
			if r.err != nil {
				break
			}
			sh.Removals = append(sh.Removals, rm)
		}
		if r.err != nil {
			break
		}
		s.Shards = append(s.Shards, sh)
	}
	n = r.array(1 << 12)
	for range n {
		r.arrayN(7)
		m := MemberStatus{NodeID: r.str(256), ClientAddr: r.str(256), RaftAddr: r.str(256), Alive: r.bool(), Draining: r.bool(), Leads: r.upTo(1 << 16), Hosts: r.upTo(1 << 16)}
		if r.err != nil {
			break
		}
		s.Members = append(s.Members, m)
	}
	return s, wrap(r.done(), "status")
}

// DrainRequest is [node, on].
type DrainRequest struct {
	Node string
	On   bool
}

// AppendDrainRequest encodes a drain request.
func AppendDrainRequest(b []byte, d DrainRequest) []byte {
	b = appendArray(b, 2)
	b = appendStr(b, d.Node)
	return appendBool(b, d.On)
}

// ParseDrainRequest decodes a drain request (strings are copied).
func ParseDrainRequest(body []byte) (DrainRequest, error) {
	r := reader{b: body}
	r.arrayN(2)
	d := DrainRequest{Node: r.str(256), On: r.bool()}
	return d, wrap(r.done(), "drain request")
}

// RecoverRequest is [node, shard, acceptDataLoss]: make shard (-1: every
// shard without a quorum) serve again from node's replica alone.
type RecoverRequest struct {
	Node           string
	Shard          int
	AcceptDataLoss bool
}

// AppendRecoverRequest encodes a recover request.
func AppendRecoverRequest(b []byte, q RecoverRequest) []byte {
	b = appendArray(b, 3)
	b = appendStr(b, q.Node)
	b = appendInt(b, int64(q.Shard))
	return appendBool(b, q.AcceptDataLoss)
}

// ParseRecoverRequest decodes a recover request (strings are copied).
func ParseRecoverRequest(body []byte) (RecoverRequest, error) {
	r := reader{b: body}
	r.arrayN(3)
	q := RecoverRequest{Node: r.str(256), Shard: int(r.int()), AcceptDataLoss: r.bool()}
	if r.err == nil && (q.Shard < -1 || q.Shard >= 1<<16) {
		r.err = fmt.Errorf("shard %d out of range", q.Shard)
	}
	return q, wrap(r.done(), "recover request")
}

// Recovered is one shard an unsafe recovery made serve again:
// [shard, index, term, [lost voter...]].
type Recovered struct {
	Shard       int
	Index, Term uint64
	Lost        []string
}

// AppendRecovered encodes a recover response: [[shard, index, term,
// [lost...]]...].
func AppendRecovered(b []byte, rs []Recovered) []byte {
	b = appendArray(b, len(rs))
	for _, x := range rs {
		b = appendArray(b, 4)
		b = appendUint(b, uint64(x.Shard))
		b = appendUint(b, x.Index)
		b = appendUint(b, x.Term)
		b = appendArray(b, len(x.Lost))
		for _, id := range x.Lost {
			b = appendStr(b, id)
		}
	}
	return b
}

// ParseRecovered decodes a recover response.
func ParseRecovered(body []byte) ([]Recovered, error) {
	r := reader{b: body}
	n := r.array(1 << 16)
	var out []Recovered
	for range n {
		r.arrayN(4)
		x := Recovered{Shard: r.upTo(1 << 16), Index: r.uint(), Term: r.uint()}
		k := r.array(64)
		for range k {
			x.Lost = append(x.Lost, r.str(256))
		}
		if r.err != nil {
			break
		}
		out = append(out, x)
	}
	return out, wrap(r.done(), "recover response")
}

// ScanRequest is [shard, from, limit].
type ScanRequest struct {
	Shard int
	From  uint64
	Limit int
}

// AppendScanRequest encodes a user scan request.
func AppendScanRequest(b []byte, s ScanRequest) []byte {
	b = appendArray(b, 3)
	b = appendUint(b, uint64(s.Shard))
	b = appendUint(b, s.From)
	return appendUint(b, uint64(s.Limit))
}

// ParseScanRequest decodes a user scan request.
func ParseScanRequest(body []byte) (ScanRequest, error) {
	r := reader{b: body}
	r.arrayN(3)
	s := ScanRequest{Shard: r.upTo(1 << 16), From: uint64(r.upTo(1<<32 - 1)), Limit: r.upTo(10000)}
	return s, wrap(r.done(), "scan request")
}

// UserPage is a scan response: [[user...], next].
type UserPage struct {
	Users []string
	Next  uint64
}

// AppendUserPage encodes a scan response.
func AppendUserPage(b []byte, p UserPage) []byte {
	b = appendArray(b, 2)
	b = appendArray(b, len(p.Users))
	for _, u := range p.Users {
		b = appendStr(b, u)
	}
	return appendUint(b, p.Next)
}

// ParseUserPage decodes a scan response.
func ParseUserPage(body []byte) (UserPage, error) {
	r := reader{b: body}
	r.arrayN(2)
	n := r.array(10000)
	p := UserPage{Users: make([]string, 0, min(n, 1000))}
	for range n {
		p.Users = append(p.Users, r.str(maxIDLen*4))
	}
	p.Next = r.uint()
	return p, wrap(r.done(), "user page")
}

// ShardMap says where each shard's leader is: [version, shards,
// [[shard, leaderID, leaderAddr]...]]. An empty address means unknown.
type ShardMap struct {
	Version uint64
	Shards  int
	Leaders []ShardLeader
}

// ShardLeader is one shard's leader.
type ShardLeader struct {
	Shard    int
	LeaderID string
	Addr     string
}

// AppendShardMap encodes a shard map.
func AppendShardMap(b []byte, m ShardMap) []byte {
	b = appendArray(b, 3)
	b = appendUint(b, m.Version)
	b = appendUint(b, uint64(m.Shards))
	b = appendArray(b, len(m.Leaders))
	for _, l := range m.Leaders {
		b = appendArray(b, 3)
		b = appendUint(b, uint64(l.Shard))
		b = appendStr(b, l.LeaderID)
		b = appendStr(b, l.Addr)
	}
	return b
}

// ParseShardMap decodes a shard map.
func ParseShardMap(body []byte) (ShardMap, error) {
	r := reader{b: body}
	r.arrayN(3)
	m := ShardMap{Version: r.uint(), Shards: r.upTo(1 << 16)}
	if m.Shards < 1 || m.Shards > 1<<16 {
		r.fail()
	}
	n := r.array(1 << 16)
	for range n {
		r.arrayN(3)
		l := ShardLeader{Shard: r.upTo(1 << 16), LeaderID: r.str(256), Addr: r.str(256)}
		if r.err != nil {
			break
		}
		if l.Shard >= m.Shards {
			r.fail()
			break
		}
		m.Leaders = append(m.Leaders, l)
	}
	return m, wrap(r.done(), "shard map")
}

// String is for logs.
func (m ShardMap) String() string {
	return fmt.Sprintf("shardmap v%d (%d shards)", m.Version, m.Shards)
}

// PeerName is the client name nodes give in the hello when they talk to
// each other, for logs only: it grants nothing. A server knows a peer by
// the listener its connection came through (Server.ServePeers) and does
// not forward such requests again: a forwarded request is served or
// refused where it lands.
const PeerName = "followd-peer"

// Record is one record relayed between shards (see fsm.Record; Kind is
// fsm's record kind).
type Record struct {
	Seq      uint64
	Kind     uint8
	Followee string
	Follower string
	Time     int64
	Created  int64
}

// maxRecordKind is the highest record kind fsm knows (fsm.RecordBlocked):
// a delivery with another would halt the shard that applies it.
const maxRecordKind = 5

// DeliverRequest is [dst, src, [[seq, kind, followee, follower, time,
// created]...]]; the response is [applied].
type DeliverRequest struct {
	Dst, Src int
	Records  []Record
}

// AppendDeliverRequest encodes a delivery.
func AppendDeliverRequest(b []byte, d DeliverRequest) []byte {
	b = appendArray(b, 3)
	b = appendUint(b, uint64(d.Dst))
	b = appendUint(b, uint64(d.Src))
	b = appendArray(b, len(d.Records))
	for _, r := range d.Records {
		b = appendArray(b, 6)
		b = appendUint(b, r.Seq)
		b = appendUint(b, uint64(r.Kind))
		b = appendStr(b, r.Followee)
		b = appendStr(b, r.Follower)
		b = appendInt(b, r.Time)
		b = appendInt(b, r.Created)
	}
	return b
}

// ParseDeliverRequest decodes a delivery (strings are copied).
func ParseDeliverRequest(body []byte) (DeliverRequest, error) {
	r := reader{b: body}
	r.arrayN(3)
	d := DeliverRequest{Dst: r.upTo(1 << 16), Src: r.upTo(1 << 16)}
	n := r.array(1 << 20)
	d.Records = make([]Record, 0, min(n, 256))
	for range n {
		r.arrayN(6)
		rec := Record{Seq: r.uint(), Kind: uint8(r.upTo(maxRecordKind)), Followee: r.str(maxIDLen * 4), Follower: r.str(maxIDLen * 4), Time: r.int(), Created: r.int()}
		if r.err != nil {
			break
		}
		d.Records = append(d.Records, rec)
	}
	return d, wrap(r.done(), "deliver request")
}

// AppendUint64 encodes [v] (the delivery response).
func AppendUint64(b []byte, v uint64) []byte { return appendUint(appendArray(b, 1), v) }

// ParseUint64 decodes [v].
func ParseUint64(body []byte) (uint64, error) {
	r := reader{b: body}
	r.arrayN(1)
	v := r.uint()
	return v, wrap(r.done(), "uint")
}
