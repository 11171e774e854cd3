package fsm

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/followgraph/followgraph/shard"

	"github.com/vmihailenco/msgpack/v5"
)

// Log entries.
//
// Every raft log entry a shard writes is a msgpack array
//
//	[version, type, body]
//
// with version = 3 and, today, a single type:
//
//	TypeBatch  [time, commands, deliveries, acks, hooks]
//	  time        Unix ms: the followTime the leader chose when it proposed
//	              the entry
//	  commands    [[op, actor, [target...]]...]   group-committed client writes;
//	              an import is [3, actor, [target...], [followTime...]],
//	              each edge with its own time
//	  deliveries  [[src, [[seq, add, followee, follower, time, created]...]]...]
//	              reverse edges relayed from other shards' outboxes
//	  acks        [[dst, upTo]...]   shard dst has applied this shard's
//	              records up to upTo
//	  hooks       [[hook, offset]...]   webhook hook has delivered this
//	              shard's feed up to offset
//
// Client writes, deliveries and acknowledgements share entries, so one
// fsync commits all of them (group commit across the three streams).
// Everything time-dependent is in the entry, so Apply is deterministic. A
// version or type this build does not know is never skipped: see
// ErrUnknownEntry and FSM.Apply.

// EntryVersion is the log entry format version this build writes and reads.
const EntryVersion = 3

// Type is a log entry type.
type Type uint8

// Entry types. The numbers are part of the log format.
const (
	TypeBatch Type = 1
)

// Op is a client write operation.
type Op uint8

// Write operations. The numbers are part of the log format.
const (
	OpFollow   Op = 1
	OpUnfollow Op = 2
	// OpImport follows with given followTimes (bulk import): Times[i]
	// is the time of the edge to Targets[i].
	OpImport Op = 3
	// OpRemoveUser starts removing the graph of user Actor (no targets);
	// OpRemoveStep removes up to Times[0] more of its edges (see
	// remove.go).
	OpRemoveUser Op = 4
	OpRemoveStep Op = 5
)

// MaxRemoveStep bounds the edges one OpRemoveStep removes.
const MaxRemoveStep = 1 << 20

// stepSize is the edges an OpRemoveStep command asks for.
func stepSize(c Command) int {
	if len(c.Times) != 1 || c.Times[0] < 1 {
		return 1
	}
	return int(min(c.Times[0], MaxRemoveStep))
}

// hasTimes reports whether commands of op carry times.
func hasTimes(op Op) bool { return op == OpImport || op == OpRemoveStep }

// Command is one client write inside a batch entry.
type Command struct {
	Op      Op
	Actor   string
	Targets []string
	Times   []int64 // OpImport only, one per target
}

// Record is one message in a shard's outbox, numbered Seq in the stream
// from its source shard to its destination shard; Kind says what it asks
// the destination to do. Most are the reverse side of an edge: "Follower
// follows (RecordAdd) or no longer follows (RecordRemove) Followee, since
// Time", sent to the followee's shard. Created is the time of the entry
// that made it, for measuring relay lag.
type Record struct {
	Seq      uint64
	Kind     uint8
	Followee string
	Follower string
	Time     int64
	Created  int64
}

// Record kinds. The numbers are part of the log and snapshot formats.
const (
	// RecordRemove: Follower no longer follows Followee (an edge of
	// followTime Time): drop it from Followee's followers.
	RecordRemove = 0
	// RecordAdd: Follower follows Followee since Time: add it to
	// Followee's followers.
	RecordAdd = 1
	// RecordDrop goes the other way, to the follower's shard: Followee's
	// graph is being removed, so the edge Follower -> Followee (of
	// followTime Time) goes from Follower's following list too.
	RecordDrop = 2
	// RecordBlock and RecordUnblock go to every other shard when the
	// removal of user Followee starts and ends: while it runs, writes
	// that involve the user are refused there (codes.UserRemoving).
	RecordBlock   = 3
	RecordUnblock = 4
	// RecordBlocked answers a RecordBlock, to the removed user's shard:
	// every follow of the user the sending shard accepted before the
	// block came earlier in the same stream, so it has been seen.
	RecordBlocked  = 5
	numRecordKinds = 6
)

// Limits on decoded entries, so a corrupt entry cannot make Apply allocate
// without bound. They are far above what the proposers write.
const (
	maxCommands = 1 << 16
	maxTargets  = shard.MaxImportTargets
	maxRecords  = 1 << 20
	maxHooks    = 1 << 10
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

// Delivery is a batch of records from shard Src, in sequence order.
type Delivery struct {
	Src     int
	Records []Record
}

// Batch is the content of a TypeBatch entry.
type Batch struct {
	Time       int64
	Commands   []Command
	Deliveries []Delivery
	Acks       []Watermark
	Hooks      []HookPosition
}

// HookPosition is how far a webhook (named by its ID) has delivered a
// shard's change feed: every event up to Offset.
type HookPosition struct {
	Hook   string
	Offset uint64
}

// EncodeBatch encodes a batch entry into buf and returns its bytes (valid
// until buf is reused). Errors can only come from the buffer, which never
// fails.
func EncodeBatch(buf *bytes.Buffer, b Batch) []byte {
	buf.Reset()
	e := newEncoder(buf)
	header(e, TypeBatch)
	e.EncodeArrayLen(5)
	e.EncodeInt(b.Time)
	e.EncodeArrayLen(len(b.Commands))
	for _, c := range b.Commands {
		if hasTimes(c.Op) {
			e.EncodeArrayLen(4)
		} else {
			e.EncodeArrayLen(3)
		}
		e.EncodeUint8(uint8(c.Op))
		e.EncodeString(c.Actor)
		e.EncodeArrayLen(len(c.Targets))
		for _, t := range c.Targets {
			e.EncodeString(t)
		}
		if hasTimes(c.Op) {
			e.EncodeArrayLen(len(c.Times))
			for _, t := range c.Times {
				e.EncodeInt(t)
			}
		}
	}
	e.EncodeArrayLen(len(b.Deliveries))
	for _, d := range b.Deliveries {
		e.EncodeArrayLen(2)
		e.EncodeUint(uint64(d.Src))
		e.EncodeArrayLen(len(d.Records))
		for _, r := range d.Records {
			e.EncodeArrayLen(6)
			e.EncodeUint(r.Seq)
			e.EncodeUint8(r.Kind)
			e.EncodeString(r.Followee)
			e.EncodeString(r.Follower)
			e.EncodeInt(r.Time)
			e.EncodeInt(r.Created)
		}
	}
	e.EncodeArrayLen(len(b.Acks))
	for _, a := range b.Acks {
		e.EncodeArrayLen(2)
		e.EncodeUint(uint64(a.Shard))
		e.EncodeUint(a.Seq)
	}
	e.EncodeArrayLen(len(b.Hooks))
	for _, h := range b.Hooks {
		e.EncodeArrayLen(2)
		e.EncodeString(h.Hook)
		e.EncodeUint(h.Offset)
	}
	return buf.Bytes()
}

// EncodeCommands encodes a batch of client writes.
func EncodeCommands(buf *bytes.Buffer, time int64, cmds []Command) []byte {
	return EncodeBatch(buf, Batch{Time: time, Commands: cmds})
}

// EncodeDeliver encodes a batch holding one delivery from shard src.
func EncodeDeliver(buf *bytes.Buffer, src int, recs []Record) []byte {
	return EncodeBatch(buf, Batch{Deliveries: []Delivery{{src, recs}}})
}

// EncodeAck encodes a batch holding acknowledgements.
func EncodeAck(buf *bytes.Buffer, acks []Watermark) []byte {
	return EncodeBatch(buf, Batch{Acks: acks})
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

func (d *decoder) recordKind() uint8 {
	k := d.uint()
	if d.err == nil && k >= numRecordKinds {
		d.fail(fmt.Errorf("record kind %d", k))
	}
	return uint8(k)
}

func (d *decoder) string() string {
	if d.err != nil {
		return ""
	}
	v, err := d.d.DecodeString()
	d.fail(err)
	return v
}

// command parses one command: [op, actor, targets] or, for an import,
// [op, actor, targets, times] with one time per target.
func (d *decoder) command() Command {
	fields := d.arrayLen(-1, 4)
	var c Command
	c.Op = Op(d.uint())
	if d.err == nil && fields != 3 && !(fields == 4 && hasTimes(c.Op)) {
		d.fail(fmt.Errorf("command of op %d with %d fields", c.Op, fields))
	}
	c.Actor = d.string()
	k := d.arrayLen(-1, maxTargets)
	c.Targets = make([]string, 0, min(k, 32))
	for range k {
		c.Targets = append(c.Targets, d.string())
	}
	if fields == 4 && c.Op == OpRemoveStep {
		d.arrayLen(1, 1)
		c.Times = []int64{d.int()}
	} else if fields == 4 {
		d.arrayLen(len(c.Targets), maxTargets)
		c.Times = make([]int64, 0, len(c.Targets))
		for range c.Targets {
			c.Times = append(c.Times, d.int())
		}
	}
	return c
}

// decode parses one log entry.
func (d *decoder) decode(data []byte) (Batch, error) {
	d.r.Reset(data)
	d.d.Reset(d.r)
	d.err = nil
	var b Batch
	d.arrayLen(3, 3)
	version := d.uint()
	typ := Type(d.uint())
	if d.err != nil {
		return b, d.err
	}
	if version != EntryVersion {
		return b, fmt.Errorf("%w: version %d (this build reads %d)", ErrUnknownEntry, version, EntryVersion)
	}
	if typ != TypeBatch {
		return b, fmt.Errorf("%w: type %d", ErrUnknownEntry, typ)
	}
	d.arrayLen(5, 5)
	b.Time = d.int()
	// Capacities grow with what is actually read, not with what the entry
	// claims.
	n := d.arrayLen(-1, maxCommands)
	b.Commands = make([]Command, 0, min(n, 64))
	for range n {
		c := d.command()
		if d.err != nil {
			break
		}
		b.Commands = append(b.Commands, c)
	}
	n = d.arrayLen(-1, maxCommands)
	for range n {
		d.arrayLen(2, 2)
		dl := Delivery{Src: int(d.uint())}
		k := d.arrayLen(-1, maxRecords)
		dl.Records = make([]Record, 0, min(k, 64))
		for range k {
			d.arrayLen(6, 6)
			r := Record{Seq: d.uint(), Kind: d.recordKind(), Followee: d.string(), Follower: d.string(), Time: d.int(), Created: d.int()}
			if d.err != nil {
				break
			}
			dl.Records = append(dl.Records, r)
		}
		if d.err != nil {
			break
		}
		b.Deliveries = append(b.Deliveries, dl)
	}
	n = d.arrayLen(-1, maxRecords)
	for range n {
		d.arrayLen(2, 2)
		w := Watermark{Shard: int(d.uint()), Seq: d.uint()}
		if d.err != nil {
			break
		}
		b.Acks = append(b.Acks, w)
	}
	n = d.arrayLen(-1, maxHooks)
	for range n {
		d.arrayLen(2, 2)
		h := HookPosition{Hook: d.string(), Offset: d.uint()}
		if d.err != nil {
			break
		}
		b.Hooks = append(b.Hooks, h)
	}
	if d.err == nil && d.r.Len() != 0 {
		d.fail(fmt.Errorf("%d trailing bytes", d.r.Len()))
	}
	return b, d.err
}
