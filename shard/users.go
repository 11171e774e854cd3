package shard

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// Users is a node's table of user IDs, shared by every Store the node
// hosts. It gives each distinct ID a 32-bit number (a uid) that list
// entries use instead of the string, stores the ID's bytes once per node
// whatever the number of shards that name it, and counts the references to
// each uid: one per list entry naming it and one per Store record of the
// user's own lists. A uid whose count falls to zero is reclaimed; its
// number and bytes are reused once no View that might still name it is
// live.
//
// The table is node-local, not replicated state: two replicas of a shard
// number their users differently, and nothing a Store returns or writes
// (results, cursors, snapshots) depends on uids, so apply stays
// deterministic.
//
// All methods are safe for concurrent use. Resolving a uid to its ID takes
// no lock (the chunks it reads never move); looking up an ID takes a read
// lock on one of 64 stripes; adding a new ID also takes the allocation
// lock.
type Users struct {
	seed    maphash.Seed
	stripes [usersStripes]usersStripe

	dir   atomic.Pointer[usersDir]
	views atomic.Int32 // live Views of Stores using this table
	live  atomic.Int64 // uids in use

	mu      sync.Mutex // guards what follows
	nuids   uint32
	free    []uint32 // reusable uids
	pending []uint32 // uids freed while a View was live
	strTail uint32
	strFree [maxIDLen + 1][]uint32 // freed string offsets by length
	strUsed int64
}

const (
	usersStripes   = 64
	nameChunkBits  = 12
	nameChunkSize  = 1 << nameChunkBits
	strChunkBits   = 16
	strChunkSize   = 1 << strChunkBits
	maxIDLen       = 64
	maxUsersPerMap = 1<<32 - 2 // uid+1 must fit in a table slot
)

type usersStripe struct {
	mu sync.RWMutex
	t  internTable
	_  [40]byte // keep stripes on separate cache lines
}

// nameRec is one uid: where its ID's bytes are, and its reference count.
type nameRec struct {
	refs atomic.Uint32
	str  uint32 // offset in the string arena
	slen uint8  // ID length; 0 while the uid is free
}

// usersDir is the read side: chunks of records and of string bytes. It is
// replaced (never changed) when it grows, so readers load it atomically
// and index it without a lock.
type usersDir struct {
	names []*[nameChunkSize]nameRec
	strs  [][]byte
}

// NewUsers returns an empty table.
func NewUsers() *Users {
	u := &Users{seed: maphash.MakeSeed()}
	for i := range u.stripes {
		u.stripes[i].t = newInternTable()
	}
	u.dir.Store(&usersDir{})
	return u
}

func (u *Users) hash(id string) uint64 { return maphash.String(u.seed, id) }

func (u *Users) stripe(h uint64) *usersStripe { return &u.stripes[h&(usersStripes-1)] }

func (u *Users) rec(uid uint32) *nameRec {
	return &u.dir.Load().names[uid>>nameChunkBits][uid&(nameChunkSize-1)]
}

// name returns uid's ID. The uid must be referenced by the caller (an
// entry of a list it holds locked, a record, or a live View).
func (u *Users) name(uid uint32) []byte {
	d := u.dir.Load()
	r := &d.names[uid>>nameChunkBits][uid&(nameChunkSize-1)]
	c := d.strs[r.str>>strChunkBits]
	o := r.str & (strChunkSize - 1)
	return c[o : o+uint32(r.slen) : o+uint32(r.slen)]
}

func (u *Users) eq(uid uint32, id string) bool { return string(u.name(uid)) == id }

// lookup returns id's uid if some Store names it. It takes no reference:
// the result is only meaningful while the caller holds a reference some
// other way, or to learn that a Store it holds locked does not know id.
func (u *Users) lookup(id string) (uint32, bool) {
	h := u.hash(id)
	st := u.stripe(h)
	st.mu.RLock()
	uid, ok := st.t.lookup(h, func(v uint32) bool { return u.eq(v, id) })
	st.mu.RUnlock()
	return uid, ok
}

// acquire returns id's uid with one more reference, adding id if it is new.
func (u *Users) acquire(id string) uint32 {
	uid, _ := u.take(id, true)
	return uid
}

// acquireKnown is acquire for an ID that may be unknown: it takes a
// reference only if id has a uid, and never adds one.
func (u *Users) acquireKnown(id string) (uint32, bool) { return u.take(id, false) }

func (u *Users) take(id string, add bool) (uint32, bool) {
	h := u.hash(id)
	st := u.stripe(h)
	st.mu.Lock()
	defer st.mu.Unlock()
	uid, ok := st.t.lookup(h, func(v uint32) bool { return u.eq(v, id) })
	switch {
	case ok:
		u.rec(uid).refs.Add(1)
	case add:
		uid, ok = u.add(id), true
		st.t.insert(h, uid)
	}
	return uid, ok
}

// ref adds a reference to a uid the caller already holds one on.
func (u *Users) ref(uid uint32) { u.rec(uid).refs.Add(1) }

// refN adds n references to a uid the caller already holds one on.
func (u *Users) refN(uid uint32, n uint32) { u.rec(uid).refs.Add(n) }

// unref drops a reference. The last one removes the ID from the index
// under its stripe's lock, so that no acquire can revive a uid being freed.
func (u *Users) unref(uid uint32) {
	r := u.rec(uid)
	for {
		v := r.refs.Load()
		if v == 0 {
			panic("shard: user reference count below zero")
		}
		if v == 1 {
			break
		}
		if r.refs.CompareAndSwap(v, v-1) {
			return
		}
	}
	id := string(u.name(uid))
	h := u.hash(id)
	st := u.stripe(h)
	st.mu.Lock()
	if r.refs.Add(^uint32(0)) == 0 {
		st.t.remove(h, uid)
		u.release(uid)
	}
	st.mu.Unlock()
}

// add gives id a new uid with one reference. The caller holds id's stripe.
func (u *Users) add(id string) uint32 {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.reclaimLocked()
	var uid uint32
	if n := len(u.free); n > 0 {
		uid = u.free[n-1]
		u.free = u.free[:n-1]
	} else {
		if u.nuids == maxUsersPerMap {
			panic("shard: user table full")
		}
		uid = u.nuids
		u.nuids++
		if uid&(nameChunkSize-1) == 0 {
			d := *u.dir.Load()
			d.names = append(d.names[:len(d.names):len(d.names)], new([nameChunkSize]nameRec))
			u.dir.Store(&d)
		}
	}
	r := u.rec(uid)
	r.str, r.slen = u.allocStr(id), uint8(len(id))
	r.refs.Store(1)
	u.live.Add(1)
	return uid
}

func (u *Users) allocStr(s string) uint32 {
	n := len(s)
	var off uint32
	if f := u.strFree[n]; len(f) > 0 {
		off = f[len(f)-1]
		u.strFree[n] = f[:len(f)-1]
	} else {
		d := u.dir.Load()
		if int(u.strTail>>strChunkBits) >= len(d.strs) || int(u.strTail&(strChunkSize-1))+n > strChunkSize {
			nd := *d
			nd.strs = append(nd.strs[:len(nd.strs):len(nd.strs)], make([]byte, strChunkSize))
			u.dir.Store(&nd)
			u.strTail = uint32(len(nd.strs)-1) << strChunkBits
		}
		off = u.strTail
		u.strTail += uint32(n)
	}
	d := u.dir.Load()
	copy(d.strs[off>>strChunkBits][off&(strChunkSize-1):], s)
	u.strUsed += int64(n)
	return off
}

// release frees uid once no View can name it.
func (u *Users) release(uid uint32) {
	u.live.Add(-1)
	u.mu.Lock()
	if u.views.Load() > 0 {
		u.pending = append(u.pending, uid)
	} else {
		u.freeLocked(uid)
	}
	u.mu.Unlock()
}

func (u *Users) freeLocked(uid uint32) {
	r := u.rec(uid)
	u.strFree[r.slen] = append(u.strFree[r.slen], r.str)
	u.strUsed -= int64(r.slen)
	r.slen = 0
	u.free = append(u.free, uid)
}

// reclaimLocked frees the uids held back for Views, once none is live.
func (u *Users) reclaimLocked() {
	if len(u.pending) == 0 || u.views.Load() > 0 {
		return
	}
	for _, uid := range u.pending {
		u.freeLocked(uid)
	}
	u.pending = u.pending[:0]
}

// size bounds the uids in use: every one is below it.
func (u *Users) size() uint32 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.nuids
}

func (u *Users) viewTaken()    { u.views.Add(1) }
func (u *Users) viewReleased() { u.views.Add(-1) }

// UsersStats describes a user table's size.
type UsersStats struct {
	// Users is the number of IDs in the table.
	Users int64
	// StringBytes is the bytes of ID strings in use; IndexBytes the memory
	// of the ID index and of the per-uid records.
	StringBytes, IndexBytes int64
	// Views is the number of Views of the table's Stores not yet released
	// (snapshots and exports being streamed): while any is live, writes
	// copy what they change and freed memory is held back.
	Views int64
}

// Stats returns the table's size.
func (u *Users) Stats() UsersStats {
	var index int64
	for i := range u.stripes {
		st := &u.stripes[i]
		st.mu.RLock()
		index += st.t.bytes()
		st.mu.RUnlock()
	}
	u.mu.Lock()
	strs := u.strUsed
	index += int64(len(u.dir.Load().names)) * nameChunkSize * 12
	u.mu.Unlock()
	return UsersStats{Users: u.live.Load(), StringBytes: strs, IndexBytes: index, Views: int64(u.views.Load())}
}
