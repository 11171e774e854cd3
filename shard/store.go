package shard

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/followgraph/followgraph/codes"
)

// Store holds one shard's part of the follow graph: for every user whose
// home is this shard, the user's following, followers and mutual lists with
// their followTimes, and the counts.
//
// Concurrency: a Store is a deterministic state machine with no goroutines,
// I/O or clock. Write methods (Follow, Unfollow, AddFollower,
// RemoveFollower, View) need exclusive access. Read methods (List, Scan,
// Info, Check, Counts, Stats, and the set queries' CopyFollowing, Probe,
// ProbeMembers and Relation) change nothing and may run concurrently with
// each other, but not with a write: guard a Store with a sync.RWMutex.
// A View, once taken, may be read from any goroutine while writes continue.
type Store struct {
	cfg   Config
	st    state
	users *Users

	balloc  blockAlloc
	owners  internTable // uid -> record number, for users with lists
	recFree []uint32    // free record numbers below st.nrecs

	nlarge       uint32
	nlargeLive   int
	largeFree    []uint32
	largePending []uint32

	// Generations for copy-on-write: see View.
	gen       uint32
	frozen    uint32
	viewsLive bool         // cached liveViews > 0 for the current write
	liveViews atomic.Int32 // Views not yet released

	counts [numKinds]int64 // entries per kind
	nusers int             // records in use
	closed bool
}

// New returns an empty Store. It names users through cfg.Users, the node's
// shared table, or through a table of its own when that is nil.
func New(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, owners: newInternTable(), gen: 1, users: cfg.Users}
	if s.users == nil {
		s.users = NewUsers()
		s.cfg.Users = nil
	}
	s.cfg.CursorKey = append([]byte(nil), cfg.CursorKey...)
	s.balloc.mem = &s.st.blocks
	s.st.names = s.users
	return s, nil
}

// Config returns the Store's configuration.
func (s *Store) Config() Config { return s.cfg }

// Users returns the user table the Store names users through.
func (s *Store) Users() *Users { return s.users }

// beginWrite prepares a write: it notices released Views and reuses the
// memory they held.
func (s *Store) beginWrite() {
	if s.closed {
		panic("shard: write to a closed Store")
	}
	live := s.liveViews.Load() > 0
	if !live && s.viewsLive {
		s.reclaim()
	}
	s.viewsLive = live
}

func (s *Store) reclaim() {
	s.balloc.reclaim()
	s.largeFree = append(s.largeFree, s.largePending...)
	s.largePending = s.largePending[:0]
}

// uidOf returns the uid of id if the node knows it. Whether this Store
// holds anything for it is up to its records and lists.
func (s *Store) uidOf(id string) (uint32, bool) { return s.users.lookup(id) }

func ownerHash(uid uint32) uint64 { return uint64(uid) * 0x9e3779b97f4a7c15 }

func (s *Store) recNum(uid uint32) (uint32, bool) {
	return s.owners.lookup(ownerHash(uid), func(rn uint32) bool { return s.st.recs.get(rn).uid == uid })
}

// rec returns uid's record, or noRec if uid has no lists here. Read only.
func (s *Store) rec(uid uint32) *userRec {
	if rn, ok := s.recNum(uid); ok {
		return s.st.recs.get(rn)
	}
	return &noRec
}

// recMut returns uid's record for writing, creating it (and taking a
// reference on uid for it) if uid had no lists here.
func (s *Store) recMut(uid uint32) *userRec {
	if rn, ok := s.recNum(uid); ok {
		return s.st.recs.mut(rn, s.gen, s.frozen, s.viewsLive)
	}
	var rn uint32
	if n := len(s.recFree); n > 0 {
		rn = s.recFree[n-1]
		s.recFree = s.recFree[:n-1]
	} else {
		rn = s.st.nrecs
		s.st.nrecs++
		s.st.recs.ensure(rn, s.gen)
	}
	r := s.st.recs.mut(rn, s.gen, s.frozen, s.viewsLive)
	*r = userRec{uid: uid}
	s.owners.insert(ownerHash(uid), rn)
	s.users.ref(uid)
	s.nusers++
	return r
}

// settle drops uid's record once its lists are empty.
func (s *Store) settle(uid uint32) {
	rn, ok := s.recNum(uid)
	if !ok || !s.st.recs.get(rn).empty() {
		return
	}
	s.owners.remove(ownerHash(uid), rn)
	*s.st.recs.mut(rn, s.gen, s.frozen, s.viewsLive) = userRec{}
	s.recFree = append(s.recFree, rn)
	s.nusers--
	s.users.unref(uid)
}

// insert adds (peer, t) to owner's list k and counts the reference.
func (s *Store) insert(owner uint32, k setKind, peer uint32, t int64) {
	key := s.st.idBytes(peer)
	s.setInsert(&s.recMut(owner).sets[k], peer, t, key)
	s.users.ref(peer)
	s.counts[k]++
}

// remove deletes peer, whose entry has time t, from owner's list k. The
// caller settles owner's record afterwards.
func (s *Store) remove(owner uint32, k setKind, peer uint32, t int64) {
	key := s.st.idBytes(peer)
	s.setRemove(&s.recMut(owner).sets[k], peer, t, key)
	s.users.unref(peer)
	s.counts[k]--
}

func (s *Store) lookup(owner uint32, k setKind, peer uint32) (int64, bool) {
	return s.st.lookup(s.rec(owner).sets[k], peer)
}

// Close gives back every reference the Store holds in its user table, so
// that users only it named are reclaimed. Call it when the Store is
// discarded (a snapshot restored in its place); Views taken earlier stay
// readable until released. The Store must not be used afterwards.
func (s *Store) Close() {
	if s.closed {
		return
	}
	s.closed = true
	for rn := range s.st.nrecs {
		r := s.st.recs.get(rn)
		if r.empty() {
			continue
		}
		for k := range numKinds {
			s.st.each(r.sets[k], func(peer uint32, _ int64) { s.users.unref(peer) })
		}
		s.users.unref(r.uid)
	}
}

// Result is the outcome of one target of Follow or Unfollow.
type Result struct {
	UserID string
	Code   codes.Code
	// Info explains a non-zero Code.
	Info string
	// Changed reports that the edge was created (Follow) or removed
	// (Unfollow) by this call; the replication layer delivers exactly
	// these to the target's shard.
	Changed bool
	// Mutual reports that the change formed (Follow) or broke (Unfollow)
	// a mutual relation: the target follows the actor.
	Mutual bool
	// Time is the edge's followTime: the new one for a created edge, the
	// existing one for an edge already there, the removed one for a
	// removed edge.
	Time int64
}

const (
	infoInvalidID = "invalid user ID"
	infoSelf      = "cannot follow or unfollow yourself"
	infoLimit     = "following limit reached"
)

func (s *Store) checkBatch(actor string, n, limit int) error {
	if err := ValidateUserID(actor); err != nil {
		return err
	}
	if n < 1 || n > limit {
		return codes.New(codes.InvalidParam, "%d targets: want 1 to %d", n, limit)
	}
	return nil
}

// rejectTarget gives r its code when target can never be followed or
// unfollowed by actor (an invalid user ID, or actor itself) and reports
// whether it did. Such a target fails alone: the rest of the batch goes on.
func rejectTarget(r *Result, actor, target string) bool {
	switch {
	case len(target) > MaxUserIDLen:
		r.Code, r.Info = codes.InvalidParam, fmt.Sprintf("%s: %d bytes, at most %d", infoInvalidID, len(target), MaxUserIDLen)
		return true
	case !ValidUserID(target):
		r.Code, r.Info = codes.InvalidParam, infoInvalidID
		return true
	case target == actor:
		r.Code, r.Info = codes.InvalidParam, infoSelf
		return true
	}
	return false
}

// Follow makes actor follow each target, at time now (Unix milliseconds,
// chosen by the caller so that replicas agree). It returns one Result per
// target, in order. Following someone already followed succeeds and keeps
// the original time. A request over the limits fails as a whole.
//
// Follow changes the actor's side only: following(actor) and, when the
// target already follows the actor, mutual(actor). The caller delivers
// AddFollower(target, actor, Time) for each Changed result to the target's
// Store.
func (s *Store) Follow(actor string, targets []string, now int64) ([]Result, error) {
	if err := s.checkBatch(actor, len(targets), s.cfg.MaxTargets); err != nil {
		return nil, err
	}
	if now < 0 || now > maxTime {
		return nil, codes.New(codes.InvalidParam, "followTime %d out of range", now)
	}
	s.beginWrite()
	res := make([]Result, len(targets))
	a := s.users.acquire(actor)
	for i, target := range targets {
		r := &res[i]
		r.UserID = target
		if rejectTarget(r, actor, target) {
			continue
		}
		b := s.users.acquire(target)
		s.follow(r, a, b, now)
		s.users.unref(b)
	}
	s.settle(a)
	s.users.unref(a)
	return res, nil
}

func (s *Store) follow(r *Result, a, b uint32, now int64) {
	if t, ok := s.lookup(a, kFollowing, b); ok {
		r.Time = t
		return
	}
	if int(s.rec(a).sets[kFollowing].n) >= s.cfg.MaxFollowing {
		r.Code, r.Info = codes.FollowingLimit, infoLimit
		return
	}
	s.insert(a, kFollowing, b, now)
	if tb, ok := s.lookup(a, kFollowers, b); ok {
		s.insert(a, kMutual, b, max(now, tb))
		r.Mutual = true
	}
	r.Changed, r.Time = true, now
}

// Import makes actor follow each target since times[i] (Unix ms): a bulk
// import of an existing graph, which keeps its original followTimes and
// therefore its list order. At most MaxImportTargets targets. An edge already
// there keeps its time (so importing the same edges again changes
// nothing); a target that is invalid, actor itself, or has a time out of
// range fails alone, and so does one past the following cap. The caller
// delivers the reverse side of each Changed result, as for Follow.
func (s *Store) Import(actor string, targets []string, times []int64) ([]Result, error) {
	if err := s.checkBatch(actor, len(targets), MaxImportTargets); err != nil {
		return nil, err
	}
	if len(times) != len(targets) {
		return nil, codes.New(codes.InvalidParam, "%d followTimes for %d targets", len(times), len(targets))
	}
	s.beginWrite()
	res := make([]Result, len(targets))
	a := s.users.acquire(actor)
	for i, target := range targets {
		r := &res[i]
		r.UserID = target
		if rejectTarget(r, actor, target) {
			continue
		}
		if t := times[i]; t < 0 || t > maxTime {
			r.Code, r.Info = codes.InvalidParam, fmt.Sprintf("followTime %d out of range", t)
			continue
		}
		b := s.users.acquire(target)
		s.follow(r, a, b, times[i])
		s.users.unref(b)
	}
	s.settle(a)
	s.users.unref(a)
	return res, nil
}

// MaxImportTargets is the most targets of one Import: above any
// following cap a deployment would set, so that the edges past the cap
// fail one by one (codes.FollowingLimit) rather than the whole command.
const MaxImportTargets = 8192

// Unfollow makes actor stop following each target. Unfollowing someone not
// followed succeeds. The caller delivers RemoveFollower(target, actor, Time)
// for each Changed result to the target's Store.
func (s *Store) Unfollow(actor string, targets []string) ([]Result, error) {
	if err := s.checkBatch(actor, len(targets), s.cfg.MaxTargets); err != nil {
		return nil, err
	}
	s.beginWrite()
	res := make([]Result, len(targets))
	// Targets are looked up without a reference: one this Store follows is
	// held by the following entry until the entry goes, and the last use
	// of the target's uid is that removal.
	a, known := s.users.acquireKnown(actor)
	for i, target := range targets {
		r := &res[i]
		r.UserID = target
		if rejectTarget(r, actor, target) || !known {
			continue
		}
		b, ok := s.uidOf(target)
		if !ok {
			continue
		}
		t, ok := s.lookup(a, kFollowing, b)
		if !ok {
			continue
		}
		if tm, ok := s.lookup(a, kMutual, b); ok {
			s.remove(a, kMutual, b, tm)
			r.Mutual = true
		}
		s.remove(a, kFollowing, b, t)
		r.Changed, r.Time = true, t
	}
	if known {
		s.settle(a)
		s.users.unref(a)
	}
	return res, nil
}

// AddFollower records, on followee's home Store, that follower follows
// followee since t. It is idempotent: delivering the same edge again
// changes nothing. If follower is already recorded with another time, the
// new delivery wins (deliveries arrive in the follower shard's commit
// order). It reports whether anything changed. With MaxFollowers set, a new
// follower over the cap is refused with codes.ErrFollowersLimit.
func (s *Store) AddFollower(followee, follower string, t int64) (bool, error) {
	c, err := s.AddFollowerChange(followee, follower, t)
	return c.Changed, err
}

// EdgeChange says what a reverse edge did to the followee's lists.
type EdgeChange struct {
	// Changed: anything changed (a follower added or removed, or an
	// existing follower's followTime replaced).
	Changed bool
	// Edge: the follower was added or removed (not only re-timed).
	Edge bool
	// Mutual: the mutual relation with the follower formed or broke.
	Mutual bool
}

// AddFollowerChange is AddFollower, reporting what changed (for the
// change feed).
func (s *Store) AddFollowerChange(followee, follower string, t int64) (EdgeChange, error) {
	if err := s.checkEdge(followee, follower, t); err != nil {
		return EdgeChange{}, err
	}
	s.beginWrite()
	b := s.users.acquire(followee)
	a := s.users.acquire(follower)
	c, err := s.addFollower(b, a, t)
	s.settle(b)
	s.users.unref(a)
	s.users.unref(b)
	return c, err
}

func (s *Store) addFollower(b, a uint32, t int64) (EdgeChange, error) {
	retimed := false
	if old, ok := s.lookup(b, kFollowers, a); ok {
		if old == t {
			return EdgeChange{}, nil
		}
		s.dropFollower(b, a, old)
		retimed = true
	} else if s.cfg.MaxFollowers > 0 && int(s.rec(b).sets[kFollowers].n) >= s.cfg.MaxFollowers {
		return EdgeChange{}, codes.New(codes.FollowersLimit, "followers limit (%d) reached", s.cfg.MaxFollowers)
	}
	s.insert(b, kFollowers, a, t)
	mutual := false
	if tf, ok := s.lookup(b, kFollowing, a); ok {
		s.insert(b, kMutual, a, max(t, tf))
		mutual = true
	}
	// A re-timed follower was there before, and so was its mutual.
	return EdgeChange{Changed: true, Edge: !retimed, Mutual: mutual && !retimed}, nil
}

// dropFollower removes follower a from b's lists and reports whether a
// mutual relation went with it.
func (s *Store) dropFollower(b, a uint32, t int64) bool {
	tm, mutual := s.lookup(b, kMutual, a)
	if mutual {
		s.remove(b, kMutual, a, tm)
	}
	s.remove(b, kFollowers, a, t)
	return mutual
}

// RemoveFollower records, on followee's home Store, that follower no
// longer follows followee; t is the followTime of the edge being removed.
// It is idempotent, and a removal whose time does not match the recorded
// edge (a stale delivery) changes nothing. It reports whether anything
// changed.
func (s *Store) RemoveFollower(followee, follower string, t int64) (bool, error) {
	c, err := s.RemoveFollowerChange(followee, follower, t)
	return c.Changed, err
}

// RemoveFollowerChange is RemoveFollower, reporting what changed (for the
// change feed).
func (s *Store) RemoveFollowerChange(followee, follower string, t int64) (EdgeChange, error) {
	if err := s.checkEdge(followee, follower, t); err != nil {
		return EdgeChange{}, err
	}
	s.beginWrite()
	// No references taken: if the edge is here, b's record and a's
	// followers entry hold both uids until the removal, their last use.
	b, ok1 := s.uidOf(followee)
	a, ok2 := s.uidOf(follower)
	if !ok1 || !ok2 {
		return EdgeChange{}, nil
	}
	old, ok := s.lookup(b, kFollowers, a)
	if !ok || old != t {
		return EdgeChange{}, nil
	}
	mutual := s.dropFollower(b, a, t)
	s.settle(b)
	return EdgeChange{Changed: true, Edge: true, Mutual: mutual}, nil
}

func (s *Store) checkEdge(followee, follower string, t int64) error {
	if err := ValidateUserID(followee); err != nil {
		return err
	}
	if err := ValidateUserID(follower); err != nil {
		return err
	}
	if followee == follower {
		return codes.New(codes.InvalidParam, "%s", infoSelf)
	}
	if t < 0 || t > maxTime {
		return codes.New(codes.InvalidParam, "followTime %d out of range", t)
	}
	return nil
}

// Item is one entry of a list page.
type Item struct {
	UserID     string
	FollowTime int64
}

// List returns a page of user's list k: up to limit entries (0 means
// Config.DefaultPage) after cursor ("" for the first page), newest first,
// and the cursor of the next page ("" at the end).
func (s *Store) List(k Kind, user, cursor string, limit int) ([]Item, string, error) {
	var items []Item
	next, err := s.Scan(k, user, cursor, limit, func(id []byte, t int64) {
		items = append(items, Item{UserID: string(id), FollowTime: t})
	})
	return items, next, err
}

// Scan is List with a visitor instead of a slice: fn sees each entry's ID
// (valid only during the call) and followTime, in list order. It is the
// allocation-free path for encoders.
func (s *Store) Scan(k Kind, user, cursor string, limit int, fn func(id []byte, t int64)) (string, error) {
	if !k.valid() {
		return "", codes.New(codes.InvalidParam, "unknown list kind %d", k)
	}
	if err := ValidateUserID(user); err != nil {
		return "", err
	}
	if limit == 0 {
		limit = s.cfg.DefaultPage
	}
	if limit < 0 || limit > s.cfg.MaxPage {
		return "", codes.New(codes.InvalidParam, "limit %d: want 1 to %d", limit, s.cfg.MaxPage)
	}
	var pos cursorPos
	after := cursor != ""
	if after {
		var err error
		if pos, err = decodeCursor(s.cfg.CursorKey, user, k, cursor); err != nil {
			return "", err
		}
	}
	uid, ok := s.uidOf(user)
	if !ok {
		return "", nil
	}
	var lastT int64
	var lastU uint32
	more := s.st.scan(s.rec(uid).sets[k.set()], after, pos.t, pos.id, limit, func(peer uint32, t int64) {
		fn(s.st.idBytes(peer), t)
		lastT, lastU = t, peer
	})
	if !more {
		return "", nil
	}
	return encodeCursor(s.cfg.CursorKey, user, k, lastT, s.st.idBytes(lastU)), nil
}

// Info is the counts of one user.
type Info struct {
	UserID    string
	Code      codes.Code
	Following uint32
	Followers uint32
	Mutual    uint32
}

// Info returns the counts of each user. An invalid ID gets code 30001 in
// its item; more than MaxInfo users fail the request.
func (s *Store) Info(users []string) ([]Info, error) {
	if len(users) < 1 || len(users) > s.cfg.MaxInfo {
		return nil, codes.New(codes.InvalidParam, "%d users: want 1 to %d", len(users), s.cfg.MaxInfo)
	}
	res := make([]Info, len(users))
	for i, id := range users {
		res[i] = s.info(id)
	}
	return res, nil
}

func (s *Store) info(id string) Info {
	r := Info{UserID: id}
	if !ValidUserID(id) {
		r.Code = codes.InvalidParam
		return r
	}
	if uid, ok := s.uidOf(id); ok {
		u := s.rec(uid)
		r.Following, r.Followers, r.Mutual = u.sets[kFollowing].n, u.sets[kFollowers].n, u.sets[kMutual].n
	}
	return r
}

// Counts returns one user's counts.
func (s *Store) Counts(user string) (following, followers, mutual int, err error) {
	if err := ValidateUserID(user); err != nil {
		return 0, 0, 0, err
	}
	r := s.info(user)
	return int(r.Following), int(r.Followers), int(r.Mutual), nil
}

// FollowType is the relation between an actor and a target, numbered as in
// the REST API: bit 1 means the target follows the actor, bit 2 the actor
// follows the target.
type FollowType uint8

// Follow types.
const (
	NoRelation   FollowType = 0
	FollowsActor FollowType = 1 // the target is the actor's follower
	FollowedBy   FollowType = 2 // the actor follows the target
	BothWays     FollowType = 3
)

// CheckResult is the relation of the actor with one target.
type CheckResult struct {
	UserID string
	Code   codes.Code
	Type   FollowType
}

// Check returns the relation between actor and each target, read from the
// actor's home Store. An invalid target ID gets code 30001 in its item;
// checking oneself gives NoRelation.
func (s *Store) Check(actor string, targets []string) ([]CheckResult, error) {
	if err := ValidateUserID(actor); err != nil {
		return nil, err
	}
	if len(targets) < 1 || len(targets) > s.cfg.MaxCheck {
		return nil, codes.New(codes.InvalidParam, "%d targets: want 1 to %d", len(targets), s.cfg.MaxCheck)
	}
	res := make([]CheckResult, len(targets))
	a, known := s.uidOf(actor)
	u := &noRec
	if known {
		u = s.rec(a)
	}
	for i, target := range targets {
		r := &res[i]
		r.UserID = target
		if !ValidUserID(target) {
			r.Code = codes.InvalidParam
			continue
		}
		if !known || target == actor {
			continue
		}
		b, ok := s.uidOf(target)
		if !ok {
			continue
		}
		if _, ok := s.st.lookup(u.sets[kFollowers], b); ok {
			r.Type |= FollowsActor
		}
		if _, ok := s.st.lookup(u.sets[kFollowing], b); ok {
			r.Type |= FollowedBy
		}
	}
	return res, nil
}

// Stats describes a Store's size.
type Stats struct {
	// Users is the number of users with lists in this Store.
	Users int
	// Following, Followers and Mutual count list entries of each kind.
	// Following is the number of follow edges whose follower lives here.
	Following, Followers, Mutual int64
	// LargeLists is the number of lists kept in the paged form.
	LargeLists int
	// BlockBytes is the memory held by entry blocks; IndexBytes that of
	// the user records and their index. The ID strings live in the user
	// table (Users.Stats), shared with the node's other Stores.
	BlockBytes, IndexBytes int64
}

// Stats returns the Store's size.
func (s *Store) Stats() Stats {
	return Stats{
		Users:      s.nusers,
		Following:  s.counts[kFollowing],
		Followers:  s.counts[kFollowers],
		Mutual:     s.counts[kMutual],
		LargeLists: s.nlargeLive,
		BlockBytes: s.balloc.bytes(),
		IndexBytes: s.owners.bytes() + int64(len(s.st.recs.chunks))*int64(unsafe.Sizeof(tableChunk[userRec]{})),
	}
}

// HasUser reports whether id is in the Store's user table: for a Store
// with a table of its own, whether it has lists or is named in one.
func (s *Store) HasUser(id string) bool {
	_, ok := s.uidOf(id)
	return ok
}

// eachRec calls fn with every record in use until fn returns false.
func (s *Store) eachRec(fn func(r *userRec) bool) {
	for rn := range s.st.nrecs {
		if r := s.st.recs.get(rn); !r.empty() && !fn(r) {
			return
		}
	}
}

// EachUser calls fn with the ID of every user that has a non-empty list in
// this Store (the shard's own users), in no particular order, until fn
// returns false. It is a read.
func (s *Store) EachUser(fn func(id string) bool) {
	s.eachRec(func(r *userRec) bool { return fn(string(s.st.idBytes(r.uid))) })
}

// ScanUsers calls fn with the IDs of up to limit users that have lists in
// this Store, in record order starting at record from, and returns the
// record to continue from (0 when done). Records are this Store's own
// numbering, so a scan is only meaningful against one replica at a
// quiescent moment (what followctl verify needs).
func (s *Store) ScanUsers(from uint32, limit int, fn func(id string)) uint32 {
	for rn := from; rn < s.st.nrecs; rn++ {
		r := s.st.recs.get(rn)
		if r.empty() {
			continue
		}
		if limit == 0 {
			return rn
		}
		fn(string(s.st.idBytes(r.uid)))
		limit--
	}
	return 0
}
