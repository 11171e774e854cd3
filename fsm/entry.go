package fsm

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Log entries.
//
// Every raft log entry a shard writes is a msgpack array
//
//	[version, type, body]
//
// with version = 1. The body depends on the type:
//
//	TypeBatch    [time, [[op, actor, [target...]]...]]
//	             group-committed client writes; time (Unix ms) is the
//	             followTime the leader chose when it proposed the entry
//	TypeDeliver  [src, [[seq, add, followee, follower, time, created]...]]
//	             reverse edges from shard src's outbox
//	TypeAck      [[dst, upTo]...]
//	             shard dst has applied this shard's records up to upTo
//
// Everything time-dependent is in the entry, so Apply is deterministic.
// A version or type this build does not know is never skipped: see
// ErrUnknownEntry and FSM.Apply.

// EntryVersion is the log entry format version this build writes and reads.
const EntryVersion = 1

// Type is a log entry type.
type Type uint8

// Entry types. The numbers are part of the log format.
const (
	TypeBatch   Type = 1
	TypeDeliver Type = 2
	TypeAck     Type = 3
)

// Op is a client write operation.
type Op uint8

// Write operations. The numbers are part of the log format.
const (
	OpFollow   Op = 1
	OpUnfollow Op = 2
)

// Command is one client write inside a batch entry.
type Command struct {
	Op      Op
	Actor   string
	Targets []string
}

// Record is one reverse edge in a shard's outbox: "Follower follows (Add)
// or no longer follows Followee, since Time", numbered Seq in the stream
// from its source shard to the followee's shard. Created is the followTime
// of the entry that made it, for measuring relay lag.
type Record struct {
	Seq      uint64
	Add      bool
	Followee string
	Follower string
	Time     int64
	Created  int64
}

// Limits on decoded entries, so a corrupt entry cannot make Apply allocate
// without bound. They are far above what the proposers write.
const (
	maxCommands = 1 << 16
	maxTargets  = 1 << 10
	maxRecords  = 1 << 20
)

// ErrUnknownEntry reports a log entry of a version or type this build does
// not understand. It is not recoverable by this binary: see FSM.Apply.
var ErrUnknownEntry = errors.New("fsm: unknown log entry version or type")

// ErrBadEntry reports a log entry that does not decode.
var ErrBadEntry = errors.New("fsm: malformed log entry")

func header(e *msgpack.Encoder, t Type) {
	e.EncodeArrayLen(3)
	e.EncodeUint8(EntryVersion)
	e.EncodeUint8(uint8(t))
}

func newEncoder(buf *bytes.Buffer) *msgpack.Encoder {
	e := msgpack.NewEncoder(buf)
	e.UseCompactInts(true)
	return e
}

// EncodeBatch encodes a batch entry. Errors can only come from the buffer,
// which never fails.
func EncodeBatch(buf *bytes.Buffer, time int64, cmds []Command) []byte {
	buf.Reset()
	e := newEncoder(buf)
	header(e, TypeBatch)
	e.EncodeArrayLen(2)
	e.EncodeInt(time)
	e.EncodeArrayLen(len(cmds))
	for _, c := range cmds {
		e.EncodeArrayLen(3)
		e.EncodeUint8(uint8(c.Op))
		e.EncodeString(c.Actor)
		e.EncodeArrayLen(len(c.Targets))
		for _, t := range c.Targets {
			e.EncodeString(t)
		}
	}
	return buf.Bytes()
}

// EncodeDeliver encodes a delivery of records from shard src.
func EncodeDeliver(buf *bytes.Buffer, src int, recs []Record) []byte {
	buf.Reset()
	e := newEncoder(buf)
	header(e, TypeDeliver)
	e.EncodeArrayLen(2)
	e.EncodeUint(uint64(src))
	e.EncodeArrayLen(len(recs))
	for _, r := range recs {
		e.EncodeArrayLen(6)
		e.EncodeUint(r.Seq)
		e.EncodeBool(r.Add)
		e.EncodeString(r.Followee)
		e.EncodeString(r.Follower)
		e.EncodeInt(r.Time)
		e.EncodeInt(r.Created)
	}
	return buf.Bytes()
}

// EncodeAck encodes acknowledgements: each Watermark says that its shard
// has applied this shard's records up to Seq.
func EncodeAck(buf *bytes.Buffer, acks []Watermark) []byte {
	buf.Reset()
	e := newEncoder(buf)
	header(e, TypeAck)
	e.EncodeArrayLen(len(acks))
	for _, a := range acks {
		e.EncodeArrayLen(2)
		e.EncodeUint(uint64(a.Shard))
		e.EncodeUint(a.Seq)
	}
	return buf.Bytes()
}

// entry is a decoded log entry.
type entry struct {
	typ  Type
	time int64
	cmds []Command
	src  int // deliver: source shard
	recs []Record
	acks []Watermark
}

type decoder struct {
	d   *msgpack.Decoder
	r   *bytes.Reader
	err error
}

func newDecoder() *decoder {
	r := bytes.NewReader(nil)
	return &decoder{d: msgpack.NewDecoder(r), r: r}
}

func (d *decoder) fail(err error) {
	if d.err == nil && err != nil {
		d.err = fmt.Errorf("%w: %v", ErrBadEntry, err)
	}
}

func (d *decoder) arrayLen(want, max int) int {
	if d.err != nil {
		return 0
	}
	n, err := d.d.DecodeArrayLen()
	d.fail(err)
	if d.err == nil && (n < 0 || n > max || (want >= 0 && n != want)) {
		d.fail(fmt.Errorf("array of %d where %d (at most %d) expected", n, want, max))
	}
	if d.err != nil {
		return 0
	}
	return n
}

func (d *decoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, err := d.d.DecodeUint64()
	d.fail(err)
	return v
}

func (d *decoder) int() int64 {
	if d.err != nil {
		return 0
	}
	v, err := d.d.DecodeInt64()
	d.fail(err)
	return v
}

func (d *decoder) bool() bool {
	if d.err != nil {
		return false
	}
	v, err := d.d.DecodeBool()
	d.fail(err)
	return v
}

func (d *decoder) string() string {
	if d.err != nil {
		return ""
	}
	v, err := d.d.DecodeString()
	d.fail(err)
	return v
}

// decode parses one log entry.
func (d *decoder) decode(data []byte) (entry, error) {
	d.r.Reset(data)
	d.d.Reset(d.r)
	d.err = nil
	var e entry
	d.arrayLen(3, 3)
	version := d.uint()
	e.typ = Type(d.uint())
	if d.err != nil {
		return e, d.err
	}
	if version != EntryVersion {
		return e, fmt.Errorf("%w: version %d (this build reads %d)", ErrUnknownEntry, version, EntryVersion)
	}
	switch e.typ {
	case TypeBatch:
		d.arrayLen(2, 2)
		e.time = d.int()
		// Capacities grow with what is actually read, not with what the
		// entry claims.
		n := d.arrayLen(-1, maxCommands)
		e.cmds = make([]Command, 0, min(n, 64))
		for range n {
			d.arrayLen(3, 3)
			var c Command
			c.Op = Op(d.uint())
			c.Actor = d.string()
			k := d.arrayLen(-1, maxTargets)
			c.Targets = make([]string, 0, min(k, 32))
			for range k {
				c.Targets = append(c.Targets, d.string())
			}
			if d.err != nil {
				break
			}
			e.cmds = append(e.cmds, c)
		}
	case TypeDeliver:
		d.arrayLen(2, 2)
		e.src = int(d.uint())
		n := d.arrayLen(-1, maxRecords)
		e.recs = make([]Record, 0, min(n, 64))
		for range n {
			d.arrayLen(6, 6)
			r := Record{Seq: d.uint(), Add: d.bool(), Followee: d.string(), Follower: d.string(), Time: d.int(), Created: d.int()}
			if d.err != nil {
				break
			}
			e.recs = append(e.recs, r)
		}
	case TypeAck:
		n := d.arrayLen(-1, maxRecords)
		e.acks = make([]Watermark, 0, min(n, 64))
		for range n {
			d.arrayLen(2, 2)
			w := Watermark{Shard: int(d.uint()), Seq: d.uint()}
			if d.err != nil {
				break
			}
			e.acks = append(e.acks, w)
		}
	default:
		return e, fmt.Errorf("%w: type %d", ErrUnknownEntry, e.typ)
	}
	if d.err == nil && d.r.Len() != 0 {
		d.fail(fmt.Errorf("%d trailing bytes", d.r.Len()))
	}
	return e, d.err
}
