package shard

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"sync/atomic"
)

// Views and snapshots.
//
// View captures a point-in-time, read-only view of the Store in time
// proportional to the number of chunks (not entries): it copies the
// top-level chunk slices and starts a new generation. From then on every
// write copies a block, page index or table chunk from an older generation
// before changing it, and memory freed meanwhile is held back until the View
// is released. The View can therefore be streamed from another goroutine
// while writes continue, with no lock and no pause.
//
// Stream format, version 1 (all integers little-endian or uvarint):
//
//	magic "fgstore\x00" | version u32
//	frames: payloadLen u32 (1..1 MiB) | crc32c(payload) u32 | payload
//
// The concatenated payloads hold three records:
//
//	'S' count, then count × (shared u8, suffix len u8, suffix)
//	    every user ID the Store knows, in ascending byte order, each
//	    sharing a prefix with the one before; a user is then named by
//	    its rank in this order
//	'L' count, then count × (rank delta, 3 × list)           users with lists
//	    list = n, then n × (peer rank, time), in list order; time is
//	    absolute for the first entry, then the (non-negative) difference
//	    to the previous one
//	'E' users, entries of each kind                          end and totals
//
// Nothing in the stream depends on how uids happened to be allocated, so any
// two Stores holding the same graph write identical bytes, whatever their
// histories (the FSM determinism tests rely on this).

// Snapshot errors. Errors from ReadFrom wrap one of these.
var (
	ErrSnapshotCorrupt   = errors.New("shard: snapshot is corrupt")
	ErrSnapshotTruncated = errors.New("shard: snapshot is truncated")
	ErrSnapshotVersion   = errors.New("shard: unsupported snapshot version")
)

const (
	snapMagic    = "fgstore\x00"
	snapVersion  = 1
	maxFrame     = 1 << 20
	targetFrame  = 256 << 10
	maxSnapUID   = 1<<31 - 1
	recStrings   = 'S'
	recLists     = 'L'
	recEnd       = 'E'
	snapHdrBytes = len(snapMagic) + 4
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// View is a frozen, read-only copy of a Store's state. It must be released.
type View struct {
	st       state
	nusers   int
	counts   [numKinds]int64
	live     *atomic.Int32
	released atomic.Bool
}

// View captures the Store's current state. It is a write: call it with the
// same exclusion as Follow. The View may then be used from any goroutine.
func (s *Store) View() *View {
	s.beginWrite()
	s.frozen = s.gen
	s.gen++
	s.liveViews.Add(1)
	s.viewsLive = true
	s.users.viewTaken()
	v := &View{live: &s.liveViews, nusers: s.nusers, counts: s.counts}
	v.st.recs = s.st.recs.clone()
	v.st.nrecs = s.st.nrecs
	v.st.names = s.st.names
	v.st.large = s.st.large.clone()
	for c := range s.st.blocks {
		v.st.blocks[c].uids = append([][]uint32(nil), s.st.blocks[c].uids...)
		v.st.blocks[c].times = append([][]byte(nil), s.st.blocks[c].times...)
	}
	return v
}

// Release lets the Store reuse the memory the View holds. It is safe to call
// from any goroutine, more than once.
func (v *View) Release() {
	if v.released.CompareAndSwap(false, true) {
		v.live.Add(-1)
		v.st.names.viewReleased()
	}
}

// Edges returns the number of following entries in the View.
func (v *View) Edges() int64 { return v.counts[kFollowing] }

type frameWriter struct {
	w   io.Writer
	buf []byte
	n   int64
	err error
}

func (f *frameWriter) flush() {
	if f.err != nil || len(f.buf) == 0 {
		return
	}
	var hdr [8]byte
	binary.LittleEndian.PutUint32(hdr[0:], uint32(len(f.buf)))
	binary.LittleEndian.PutUint32(hdr[4:], crc32.Checksum(f.buf, crcTable))
	if _, f.err = f.w.Write(hdr[:]); f.err == nil {
		_, f.err = f.w.Write(f.buf)
	}
	f.n += int64(len(f.buf)) + 8
	f.buf = f.buf[:0]
}

func (f *frameWriter) maybeFlush() {
	if len(f.buf) >= targetFrame {
		f.flush()
	}
}

// WriteTo streams the View in the snapshot format.
func (v *View) WriteTo(w io.Writer) (int64, error) {
	var hdr [snapHdrBytes]byte
	copy(hdr[:], snapMagic)
	binary.LittleEndian.PutUint32(hdr[len(snapMagic):], snapVersion)
	if _, err := w.Write(hdr[:]); err != nil {
		return 0, err
	}
	f := &frameWriter{w: w, buf: make([]byte, 0, 4096), n: int64(len(hdr))}
	st := &v.st

	// Users are written in ID order and named by their rank in it, so the
	// bytes depend only on the graph, not on the node's uid numbering:
	// any two Stores with the same lists write the same bytes.
	order, recs, rank := v.users()
	f.buf = append(f.buf, recStrings)
	f.buf = binary.AppendUvarint(f.buf, uint64(len(order)))
	var prevID []byte
	for _, uid := range order {
		id := st.idBytes(uid)
		shared := 0
		for shared < len(id) && shared < len(prevID) && id[shared] == prevID[shared] {
			shared++
		}
		f.buf = append(f.buf, byte(shared), byte(len(id)-shared))
		f.buf = append(f.buf, id[shared:]...)
		prevID = id
		f.maybeFlush()
	}

	f.buf = append(f.buf, recLists)
	f.buf = binary.AppendUvarint(f.buf, uint64(len(recs)))
	prev := int64(-1)
	for _, u := range recs {
		if f.err != nil {
			break
		}
		i := int64(rank[u.uid])
		f.buf = binary.AppendUvarint(f.buf, uint64(i-prev))
		prev = i
		for k := range numKinds {
			r := u.sets[k]
			f.buf = binary.AppendUvarint(f.buf, uint64(r.n))
			first, last := true, int64(0)
			st.each(r, func(peer uint32, t int64) {
				f.buf = binary.AppendUvarint(f.buf, uint64(rank[peer]))
				if first {
					f.buf = binary.AppendUvarint(f.buf, uint64(t))
					first = false
				} else {
					f.buf = binary.AppendUvarint(f.buf, uint64(last-t))
				}
				last = t
				f.maybeFlush()
			})
		}
	}

	f.buf = append(f.buf, recEnd)
	f.buf = binary.AppendUvarint(f.buf, uint64(len(order)))
	for k := range numKinds {
		f.buf = binary.AppendUvarint(f.buf, uint64(v.counts[k]))
	}
	f.flush()
	return f.n, f.err
}

// users returns the uids the View names (its users and their peers) in ID
// order, its records in the same order, and each named uid's rank in it
// (indexed by uid).
func (v *View) users() (order []uint32, recs []*userRec, rank []uint32) {
	st := &v.st
	// Every uid the View names is below the table's current size; a dense
	// array marks them in 4 bytes per node user, far less than a map.
	rank = make([]uint32, st.names.size())
	mark := func(uid uint32) {
		if rank[uid] == 0 {
			rank[uid] = 1
			order = append(order, uid)
		}
	}
	for rn := range st.nrecs {
		u := st.recs.get(rn)
		if u.empty() {
			continue
		}
		recs = append(recs, u)
		mark(u.uid)
		for k := range numKinds {
			st.each(u.sets[k], func(peer uint32, _ int64) { mark(peer) })
		}
	}
	sortByID(st, order)
	for i, uid := range order {
		rank[uid] = uint32(i)
	}
	slices.SortFunc(recs, func(a, b *userRec) int { return cmp.Compare(rank[a.uid], rank[b.uid]) })
	return order, recs, rank
}

// sortByID sorts uids by their IDs' bytes. Each is keyed by its first 8
// bytes as a big-endian number, so that most comparisons are one integer
// comparison instead of two lookups in the user table and a byte compare:
// a shard's snapshot sorts about every user of the node. Zero padding keeps
// the order, since an ID holds no zero byte.
func sortByID(st *state, uids []uint32) {
	type key struct {
		prefix uint64
		uid    uint32
	}
	keys := make([]key, len(uids))
	for i, uid := range uids {
		var p [8]byte
		copy(p[:], st.idBytes(uid))
		keys[i] = key{binary.BigEndian.Uint64(p[:]), uid}
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := cmp.Compare(a.prefix, b.prefix); c != 0 {
			return c
		}
		return bytes.Compare(st.idBytes(a.uid), st.idBytes(b.uid))
	})
	for i, k := range keys {
		uids[i] = k.uid
	}
}

// frameReader reads verified frame payloads. It never reads past the end of
// the last frame it needs, so a snapshot can be followed by other data.
type frameReader struct {
	r   io.Reader
	buf []byte
	pos int
}

func (f *frameReader) next() error {
	var hdr [8]byte
	if _, err := io.ReadFull(f.r, hdr[:]); err != nil {
		return truncated(err)
	}
	n := binary.LittleEndian.Uint32(hdr[0:])
	if n == 0 || n > maxFrame {
		return fmt.Errorf("%w: frame length %d", ErrSnapshotCorrupt, n)
	}
	if cap(f.buf) < int(n) {
		f.buf = make([]byte, n)
	}
	f.buf = f.buf[:n]
	if _, err := io.ReadFull(f.r, f.buf); err != nil {
		return truncated(err)
	}
	if crc32.Checksum(f.buf, crcTable) != binary.LittleEndian.Uint32(hdr[4:]) {
		return fmt.Errorf("%w: frame checksum mismatch", ErrSnapshotCorrupt)
	}
	f.pos = 0
	return nil
}

func truncated(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: %v", ErrSnapshotTruncated, err)
	}
	return err
}

func (f *frameReader) ReadByte() (byte, error) {
	if f.pos == len(f.buf) {
		if err := f.next(); err != nil {
			return 0, err
		}
	}
	c := f.buf[f.pos]
	f.pos++
	return c, nil
}

func (f *frameReader) uvarint() (uint64, error) {
	if len(f.buf)-f.pos >= binary.MaxVarintLen64 {
		x, n := binary.Uvarint(f.buf[f.pos:])
		if n <= 0 {
			return 0, fmt.Errorf("%w: bad varint", ErrSnapshotCorrupt)
		}
		f.pos += n
		return x, nil
	}
	x, err := binary.ReadUvarint(f)
	if err != nil && !errors.Is(err, ErrSnapshotTruncated) && !errors.Is(err, ErrSnapshotCorrupt) {
		return 0, fmt.Errorf("%w: %v", ErrSnapshotCorrupt, err)
	}
	return x, err
}

// bytes reads n bytes into dst.
func (f *frameReader) bytes(dst []byte) error {
	for len(dst) > 0 {
		if f.pos == len(f.buf) {
			if err := f.next(); err != nil {
				return err
			}
		}
		k := copy(dst, f.buf[f.pos:])
		f.pos += k
		dst = dst[k:]
	}
	return nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrSnapshotCorrupt}, args...)...)
}

// ReadFrom builds a Store from a snapshot written by View.WriteTo, naming
// its users through cfg.Users (see Config). The result holds the same
// lists and counts as the Store the View was taken from.
func ReadFrom(r io.Reader, cfg Config) (*Store, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	var hdr [snapHdrBytes]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, truncated(err)
	}
	if string(hdr[:len(snapMagic)]) != snapMagic {
		return nil, corrupt("bad magic")
	}
	if v := binary.LittleEndian.Uint32(hdr[len(snapMagic):]); v != snapVersion {
		return nil, fmt.Errorf("%w: %d (this build reads %d)", ErrSnapshotVersion, v, snapVersion)
	}
	d := &loader{s: s, f: &frameReader{r: r}}
	err = d.load()
	// The loader held one reference on every user it read and counted the
	// entries naming each; it hands the counts to the table now, in one
	// step per user rather than one per entry, then drops its own.
	d.read.each(func(_ int, u *loadedUser) {
		if u.refs > 0 {
			s.users.refN(u.uid, u.refs)
		}
		s.users.unref(u.uid)
	})
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

type loader struct {
	s      *Store
	f      *frameReader
	read   rankTable // the users of the 'S' record
	serial uint32
	buf    []entry
	ranks  []uint32 // rank of each entry of buf
}

// rankTable holds a snapshot's users by rank, in chunks, so that it grows
// without copying or touching fresh memory twice: a shard's snapshot names
// about every user of the node.
type rankTable struct {
	chunks [][]loadedUser
	n      int
}

const rankChunkBits = 16

func (t *rankTable) add(u loadedUser) {
	if t.n&(1<<rankChunkBits-1) == 0 {
		t.chunks = append(t.chunks, make([]loadedUser, 0, 1<<rankChunkBits))
	}
	c := &t.chunks[len(t.chunks)-1]
	*c = append(*c, u)
	t.n++
}

func (t *rankTable) at(rank uint64) *loadedUser {
	return &t.chunks[rank>>rankChunkBits][rank&(1<<rankChunkBits-1)]
}

func (t *rankTable) each(fn func(rank int, u *loadedUser)) {
	for i, c := range t.chunks {
		for j := range c {
			fn(i<<rankChunkBits|j, &c[j])
		}
	}
}

// loadedUser is what the loader knows of the user of one rank; one struct
// so that an entry costs one cache miss, not three.
type loadedUser struct {
	uid  uint32
	mark uint32 // serial of the last list it appeared in
	refs uint32 // entries built that name it
}

// record reads the start of a record, its tag (which must be want) and
// the count that follows every tag.
func (d *loader) record(want byte) (uint64, error) {
	if err := d.tag(want); err != nil {
		return 0, err
	}
	return d.f.uvarint()
}

func (d *loader) tag(want byte) error {
	c, err := d.f.ReadByte()
	if err != nil {
		return err
	}
	if c != want {
		return corrupt("record %q where %q expected", c, want)
	}
	return nil
}

// load reads the three records in order and checks the result as a
// whole: what a record cannot check alone (reference counts, the trailer's
// totals) is checked once everything is read.
func (d *loader) load() error {
	if err := d.userIDs(); err != nil {
		return err
	}
	if err := d.lists(); err != nil {
		return err
	}
	if err := d.trailer(); err != nil {
		return err
	}
	return d.checkRefs()
}

// userIDs reads the 'S' record: every user ID in ascending byte order, each
// sharing a prefix with the one before, and looks each up in the user
// table, rank i becoming d.read[i]. IDs must be valid and strictly
// ascending, so that no two snapshots of the same graph differ and no ID
// is listed twice.
func (d *loader) userIDs() error {
	f := d.f
	count, err := d.record(recStrings)
	if err != nil {
		return err
	}
	if count > maxSnapUID {
		return corrupt("%d users", count)
	}
	var prevID string
	var idbuf [maxIDLen]byte
	prevLen := 0
	for i := range count {
		shared, err := f.ReadByte()
		if err != nil {
			return err
		}
		suffix, err := f.ReadByte()
		if err != nil {
			return err
		}
		n := int(shared) + int(suffix)
		if int(shared) > prevLen || n == 0 || n > maxIDLen || (i > 0 && suffix == 0) {
			return corrupt("bad ID lengths %d+%d", shared, suffix)
		}
		if err := f.bytes(idbuf[shared:n]); err != nil {
			return err
		}
		id := string(idbuf[:n])
		if !ValidUserID(id) {
			return corrupt("invalid user ID %q", id)
		}
		if i > 0 && id <= prevID {
			return corrupt("user IDs out of order at %q", id)
		}
		prevID, prevLen = id, n
		d.read.add(loadedUser{uid: d.s.users.acquire(id)})
	}
	return nil
}

// lists reads the 'L' record: the users with lists, by ascending rank,
// each with its three lists. A user listed must have an entry, and its
// mutual list must agree with the other two.
func (d *loader) lists() error {
	s, f := d.s, d.f
	count, err := d.record(recLists)
	if err != nil {
		return err
	}
	n := int64(d.read.n)
	if count > uint64(n) {
		return corrupt("%d users with lists, %d users", count, n)
	}
	rank := int64(-1)
	for range count {
		delta, err := f.uvarint()
		if err != nil {
			return err
		}
		if delta == 0 || delta > uint64(n) || rank+int64(delta) >= n {
			return corrupt("bad rank delta %d", delta)
		}
		rank += int64(delta)
		for k := range numKinds {
			if err := d.list(uint32(rank), k); err != nil {
				return err
			}
		}
		uid := d.read.at(uint64(rank)).uid
		if s.rec(uid).empty() {
			return corrupt("user %d listed with no entries", rank)
		}
		if err := s.checkMutual(uid); err != nil {
			return corrupt("%v", err)
		}
	}
	return nil
}

// trailer reads the 'E' record and checks its totals against what was
// read, a last check of the whole that frame checksums cannot give.
// Nothing may follow it in its frame.
func (d *loader) trailer() error {
	s, f := d.s, d.f
	users, err := d.record(recEnd)
	if err != nil {
		return err
	}
	if users != uint64(d.read.n) {
		return corrupt("trailer says %d users, read %d", users, d.read.n)
	}
	for k := range numKinds {
		c, err := f.uvarint()
		if err != nil {
			return err
		}
		if c != uint64(s.counts[k]) {
			return corrupt("trailer says %d entries of kind %d, read %d", c, k, s.counts[k])
		}
	}
	if f.pos != len(f.buf) {
		return corrupt("%d bytes after the end record", len(f.buf)-f.pos)
	}
	return nil
}

// checkRefs rejects a user that is neither named by an entry nor has
// lists: no Store writes one, so a snapshot that holds one is corrupt.
func (d *loader) checkRefs() error {
	var err error
	d.read.each(func(rank int, u *loadedUser) {
		if err == nil && u.refs == 0 && d.s.rec(u.uid).empty() {
			err = corrupt("user %d is neither referenced nor has lists", rank)
		}
	})
	return err
}

// list reads one list of the user of rank owner and builds it.
func (d *loader) list(owner uint32, k setKind) error {
	s, f := d.s, d.f
	n, err := f.uvarint()
	if err != nil {
		return err
	}
	if n > uint64(d.read.n) {
		return corrupt("list of %d entries, %d users", n, d.read.n)
	}
	if n == 0 {
		return nil
	}
	d.serial++
	d.buf, d.ranks = d.buf[:0], d.ranks[:0]
	var last int64
	prev := uint32(0)
	for i := range n {
		p, err := f.uvarint()
		if err != nil {
			return err
		}
		tv, err := f.uvarint()
		if err != nil {
			return err
		}
		if p >= uint64(d.read.n) || uint32(p) == owner {
			return corrupt("user %d: bad entry %d", owner, p)
		}
		var t int64
		if i == 0 {
			if tv > maxTime {
				return corrupt("time %d out of range", tv)
			}
			t = int64(tv)
		} else {
			if tv > uint64(last) {
				return corrupt("time goes below zero")
			}
			t = last - int64(tv)
			// Ranks are in ID order, so ties compare by rank.
			if t == last && prev >= uint32(p) {
				return corrupt("user %d: list out of order", owner)
			}
		}
		u := d.read.at(p)
		if u.mark == d.serial {
			return corrupt("user %d: entry %d appears twice", owner, p)
		}
		u.mark = d.serial
		last, prev = t, uint32(p)
		d.buf = append(d.buf, entry{u.uid, t})
		d.ranks = append(d.ranks, uint32(p))
	}
	d.build(&s.recMut(d.read.at(uint64(owner)).uid).sets[k], d.buf)
	for _, p := range d.ranks {
		d.read.at(uint64(p)).refs++
	}
	s.counts[k] += int64(n)
	return nil
}

// build bulk-loads entries, given in list order, into an empty list.
func (d *loader) build(r *setRef, es []entry) {
	s := d.s
	r.n = uint32(len(es))
	fill := func(es []entry) uint32 {
		h := s.allocBlock(len(es))
		b := s.block(h)
		for i, e := range es {
			b.set(i, e.uid, e.t)
		}
		return h
	}
	if len(es) <= maxBlock {
		r.h = fill(es)
		return
	}
	idx := s.allocLarge()
	ls := s.st.large.get(idx)
	ls.tp = make([]tpage, 0, (len(es)+maxBlock-1)/maxBlock)
	for rest := es; len(rest) > 0; {
		k := min(len(rest), maxBlock)
		ls.tp = append(ls.tp, tpage{t: rest[0].t, u: rest[0].uid, h: fill(rest[:k]), n: uint32(k)})
		rest = rest[k:]
	}
	byUID := append([]entry(nil), es...)
	slices.SortFunc(byUID, func(a, b entry) int { return cmp.Compare(a.uid, b.uid) })
	ls.up = s.buildUpages(make([]upage, 0, len(es)/(maxBlock*3/4)+1), byUID)
	r.h = largeBit | idx
}
