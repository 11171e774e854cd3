package fsm

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/followgraph/followgraph/shard"
	"github.com/followgraph/followgraph/wire"
	"github.com/hashicorp/raft"
	"github.com/vmihailenco/msgpack/v5"
)

// Snapshot format, version 3:
//
//	magic "fgfsm\0\0\0" | version u32 | shard u32 | shards u32
//	metaLen u32 | crc32c(meta) u32 | meta
//	the shard.Store stream (see shard/snapshot.go)
//
// meta is msgpack: [nextSeq[shards], applied[shards], outbox[shards],
// index, lastTime, feed, hooks, removals, blocked], outbox[d] = [[seq,
// kind, followee, follower, time, created]...]; index is the raft index of the last entry
// applied, lastTime the largest entry time applied (see FSM.LastTime),
// feed the change feed, [floor, [[offset, time, followTime, kind, user,
// other]...]], and hooks the webhooks' delivery positions, [[hook,
// offset]...] in hook order, removals the removals of users running here,
// [[user, started, removed, acks]...] in user order, and blocked the users of
// other shards being removed, [user...] in order. All of it
// is canonical, so two FSMs with the same state write the same bytes.

const (
	snapMagic   = "fgfsm\x00\x00\x00"
	snapVersion = 3
	maxMeta     = 1 << 30
)

// Snapshot errors; errors from Restore wrap one of these or one of the
// shard.ErrSnapshot* errors.
var (
	ErrSnapshotCorrupt = errors.New("fsm: snapshot is corrupt")
	ErrSnapshotVersion = errors.New("fsm: unsupported snapshot version")
	ErrSnapshotShard   = errors.New("fsm: snapshot is of another shard")
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// meta is the FSM state a snapshot's meta section holds: everything but
// the Store.
type meta struct {
	outbox    [][]Record
	nextSeq   []uint64
	applied   []uint64
	index     uint64
	lastTime  int64
	feedFloor uint64
	feed      []Event
	hooks     map[string]uint64
	removals  map[string]*Removal
	blocked   map[string]bool
}

type snapshot struct {
	meta
	cost          *snapshotCost
	atLog         int64 // cost.logBytes when captured
	shard, shards int
	view          *shard.View
}

// Persist streams the snapshot to sink. It runs concurrently with Apply.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	start := time.Now()
	cw := &countingWriter{w: sink}
	bw := bufio.NewWriterSize(cw, 256<<10)
	err := s.write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		sink.Cancel()
		return err
	}
	if err := sink.Close(); err != nil {
		return err
	}
	if s.cost != nil {
		s.cost.persisted(s.atLog, cw.n)
		s.cost.spent(time.Since(start), cw.n)
	}
	return nil
}

// Release frees the Store view.
func (s *snapshot) Release() { s.view.Release() }

func (s *snapshot) write(w io.Writer) error {
	var meta bytes.Buffer
	e := newEncoder(&meta)
	e.EncodeArrayLen(9)
	for _, seqs := range [][]uint64{s.nextSeq, s.applied} {
		e.EncodeArrayLen(len(seqs))
		for _, v := range seqs {
			e.EncodeUint(v)
		}
	}
	e.EncodeArrayLen(len(s.outbox))
	for _, q := range s.outbox {
		e.EncodeArrayLen(len(q))
		for _, r := range q {
			e.EncodeArrayLen(6)
			e.EncodeUint(r.Seq)
			e.EncodeUint8(r.Kind)
			e.EncodeString(r.Followee)
			e.EncodeString(r.Follower)
			e.EncodeInt(r.Time)
			e.EncodeInt(r.Created)
		}
	}
	e.EncodeUint(s.index)
	e.EncodeInt(s.lastTime)
	e.EncodeArrayLen(2)
	e.EncodeUint(s.feedFloor)
	e.EncodeArrayLen(len(s.feed))
	for _, ev := range s.feed {
		e.EncodeArrayLen(6)
		e.EncodeUint(ev.Offset)
		e.EncodeInt(ev.Time)
		e.EncodeInt(ev.FollowTime)
		e.EncodeUint(uint64(ev.Kind))
		e.EncodeString(ev.User)
		e.EncodeString(ev.Other)
	}
	e.EncodeArrayLen(len(s.hooks))
	for _, id := range slices.Sorted(maps.Keys(s.hooks)) {
		e.EncodeArrayLen(2)
		e.EncodeString(id)
		e.EncodeUint(s.hooks[id])
	}
	e.EncodeArrayLen(len(s.removals))
	for _, u := range slices.Sorted(maps.Keys(s.removals)) {
		r := s.removals[u]
		e.EncodeArrayLen(4)
		e.EncodeString(u)
		e.EncodeInt(r.Started)
		e.EncodeUint(r.Removed)
		e.EncodeUint(uint64(r.Acks))
	}
	e.EncodeArrayLen(len(s.blocked))
	for _, u := range slices.Sorted(maps.Keys(s.blocked)) {
		e.EncodeString(u)
	}
	hdr := make([]byte, 0, 28)
	hdr = append(hdr, snapMagic...)
	hdr = binary.LittleEndian.AppendUint32(hdr, snapVersion)
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(s.shard))
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(s.shards))
	hdr = binary.LittleEndian.AppendUint32(hdr, uint32(meta.Len()))
	hdr = binary.LittleEndian.AppendUint32(hdr, crc32.Checksum(meta.Bytes(), crcTable))
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	if _, err := w.Write(meta.Bytes()); err != nil {
		return err
	}
	_, err := s.view.WriteTo(w)
	return err
}

type restored struct {
	meta
	store *shard.Store
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrSnapshotCorrupt}, args...)...)
}

func readSnapshot(r io.Reader, cfg Config) (*restored, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	hdr := make([]byte, 28)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return nil, fmt.Errorf("%w: header: %v", shard.ErrSnapshotTruncated, err)
	}
	if string(hdr[:8]) != snapMagic {
		return nil, corrupt("bad magic")
	}
	le := binary.LittleEndian
	if v := le.Uint32(hdr[8:]); v != snapVersion {
		return nil, fmt.Errorf("%w: %d (this build reads %d)", ErrSnapshotVersion, v, snapVersion)
	}
	if sh, n := int(le.Uint32(hdr[12:])), int(le.Uint32(hdr[16:])); sh != cfg.Shard || n != cfg.Shards {
		return nil, fmt.Errorf("%w: shard %d of %d, this is shard %d of %d", ErrSnapshotShard, sh, n, cfg.Shard, cfg.Shards)
	}
	n := le.Uint32(hdr[20:])
	if n > maxMeta {
		return nil, corrupt("meta of %d bytes", n)
	}
	// Read what is there rather than allocate what the header claims.
	meta, err := io.ReadAll(io.LimitReader(br, int64(n)))
	if err != nil {
		return nil, err
	}
	if len(meta) != int(n) {
		return nil, fmt.Errorf("%w: meta", shard.ErrSnapshotTruncated)
	}
	if crc32.Checksum(meta, crcTable) != le.Uint32(hdr[24:]) {
		return nil, corrupt("meta checksum mismatch")
	}
	st := &restored{}
	if err := st.decodeMeta(meta, cfg.Shards); err != nil {
		return nil, err
	}
	if st.store, err = shard.ReadFrom(br, cfg.Store); err != nil {
		return nil, err
	}
	return st, nil
}

func (st *restored) decodeMeta(meta []byte, shards int) error {
	r := bytes.NewReader(meta)
	d := &decoder{d: msgpack.NewDecoder(r), r: r}
	d.arrayLen(9, 9)
	st.nextSeq = make([]uint64, d.arrayLen(shards, shards))
	for i := range st.nextSeq {
		st.nextSeq[i] = d.uint()
	}
	st.applied = make([]uint64, d.arrayLen(shards, shards))
	for i := range st.applied {
		st.applied[i] = d.uint()
	}
	st.outbox = make([][]Record, d.arrayLen(shards, shards))
	for i := range st.outbox {
		n := d.arrayLen(-1, maxRecords*64)
		for range n {
			d.arrayLen(6, 6)
			rec := Record{Seq: d.uint(), Kind: d.recordKind(), Followee: d.string(), Follower: d.string(), Time: d.int(), Created: d.int()}
			if d.err != nil {
				break
			}
			// Records are consecutive and below the next sequence.
			if want := st.nextSeq[i] - uint64(n) + uint64(len(st.outbox[i])); rec.Seq != want || rec.Seq == 0 {
				return corrupt("outbox %d: record %d where %d expected", i, rec.Seq, want)
			}
			st.outbox[i] = append(st.outbox[i], rec)
		}
	}
	st.index, st.lastTime = d.uint(), d.int()
	if err := st.decodeFeed(d); err != nil {
		return err
	}
	st.hooks = map[string]uint64{}
	for range d.arrayLen(-1, maxHooks) {
		d.arrayLen(2, 2)
		id, off := d.string(), d.uint()
		if d.err != nil {
			break
		}
		st.hooks[id] = off
	}
	st.decodeRemovals(d)
	if d.err != nil {
		return corrupt("meta: %v", d.err)
	}
	if r.Len() != 0 {
		return corrupt("meta: %d trailing bytes", r.Len())
	}
	for i, v := range st.nextSeq {
		if v == 0 {
			return corrupt("next sequence of shard %d is 0", i)
		}
	}
	return nil
}

// maxRemovals bounds the removals and blocked users of a snapshot.
const maxRemovals = 1 << 20

func (st *restored) decodeRemovals(d *decoder) {
	st.removals = map[string]*Removal{}
	for range d.arrayLen(-1, maxRemovals) {
		d.arrayLen(4, 4)
		r := &Removal{User: d.string(), Started: d.int(), Removed: d.uint(), Acks: int(min(d.uint(), 1<<16))}
		if d.err != nil {
			return
		}
		st.removals[r.User] = r
	}
	st.blocked = map[string]bool{}
	for range d.arrayLen(-1, maxRemovals) {
		u := d.string()
		if d.err != nil {
			return
		}
		st.blocked[u] = true
	}
}

// maxFeedEvents bounds a snapshot's feed (FeedConfig caps retention).
const maxFeedEvents = 1 << 26

func (st *restored) decodeFeed(d *decoder) error {
	d.arrayLen(2, 2)
	st.feedFloor = d.uint()
	n := d.arrayLen(-1, maxFeedEvents)
	st.feed = make([]Event, 0, min(n, 1<<16))
	for range n {
		d.arrayLen(6, 6)
		e := Event{Offset: d.uint(), Time: d.int(), FollowTime: d.int(), Kind: wire.EventKind(d.uint()), User: d.string(), Other: d.string()}
		if d.err != nil {
			return nil // reported by the caller
		}
		last := st.feedFloor
		if len(st.feed) > 0 {
			last = st.feed[len(st.feed)-1].Offset
		}
		if e.Offset <= last {
			return corrupt("feed: event offset %d after %d", e.Offset, last)
		}
		st.feed = append(st.feed, e)
	}
	return nil
}
