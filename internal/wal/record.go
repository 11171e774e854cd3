package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/hashicorp/raft"
)

// Record layout (little-endian). Every record is a header and a body:
//
//	offset size field
//	0      4    length   bytes that follow the 8-byte header (the body)
//	4      4    crc32c   Castagnoli CRC of the body
//	8      1    kind
//	9      4    stream
//	13     ...  payload, by kind:
//
//	kindEntry, kindCopy  index u64 | term u64 | type u8 | appendedAt i64 |
//	                     extLen u32 | extensions | data
//	kindTruncate         newLast u64   the entries after newLast are deleted
//	kindCompact          newFirst u64  the entries before newFirst are deleted
//	kindReplace          first u64 | last u64
//
// appendedAt is in unix nanoseconds, 0 for the zero time.Time. A length of
// zero cannot belong to a record (a body is at least bodyPrefix+8 bytes),
// which is what makes 8 zero bytes an end marker. What each kind does to
// its stream when the log is replayed is described at Stream.replay.
const (
	recordHeaderSize = 8
	endMarkerSize    = 8

	kindEntry    = 1
	kindTruncate = 2
	kindCompact  = 3
	kindCopy     = 4
	kindReplace  = 5

	bodyPrefix     = 1 + 4             // kind, stream
	entryFixedBody = 8 + 8 + 1 + 8 + 4 // index through extLen
	entryFixed     = bodyPrefix + entryFixedBody
	entryMin       = recordHeaderSize + entryFixed
	replaceSize    = recordHeaderSize + bodyPrefix + 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errCorrupt = errors.New("wal: corrupt record")

// appendEntryBody appends the payload of an entry record (index through
// data), which follows the record's kind and stream.
func appendEntryBody(buf []byte, l *raft.Log) []byte {
	le := binary.LittleEndian
	buf = le.AppendUint64(buf, l.Index)
	buf = le.AppendUint64(buf, l.Term)
	buf = append(buf, byte(l.Type))
	buf = le.AppendUint64(buf, uint64(encodeTime(l.AppendedAt)))
	buf = le.AppendUint32(buf, uint32(len(l.Extensions)))
	buf = append(buf, l.Extensions...)
	buf = append(buf, l.Data...)
	return buf
}

// decodeEntryBody decodes the entry fields (index through data) of a checked
// body into out. out.Data and out.Extensions alias body rather than copy it:
// the caller hands over a buffer it no longer uses, which saves a copy per
// read.
func decodeEntryBody(body []byte, out *raft.Log) error {
	if len(body) < entryFixedBody {
		return fmt.Errorf("%w: entry body of %d bytes is too short", errCorrupt, len(body))
	}
	le := binary.LittleEndian
	extLen := int64(le.Uint32(body[25:29]))
	if extLen > int64(len(body)-entryFixedBody) {
		return fmt.Errorf("%w: extension length %d overflows the record", errCorrupt, extLen)
	}
	ext := body[entryFixedBody : entryFixedBody+extLen]
	data := body[entryFixedBody+extLen:]
	*out = raft.Log{
		Index:      le.Uint64(body[0:8]),
		Term:       le.Uint64(body[8:16]),
		Type:       raft.LogType(body[16]),
		AppendedAt: decodeTime(int64(le.Uint64(body[17:25]))),
	}
	// Full slice expressions so that an append by the caller can never
	// scribble over the neighbouring field.
	if len(ext) > 0 {
		out.Extensions = ext[:len(ext):len(ext)]
	}
	if len(data) > 0 {
		out.Data = data[:len(data):len(data)]
	}
	return nil
}

// encodeTime maps the zero time.Time to 0: UnixNano of the zero time is
// undefined, and raft leaves AppendedAt zero in entries it did not append
// itself (for example those written by BootstrapCluster). The price is that
// the instant 1970-01-01T00:00:00Z reads back as the zero time, and that
// times outside the years 1678..2262 cannot be represented; neither occurs
// for a field that holds time.Now() of the leader.
func encodeTime(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func decodeTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// entrySize is the encoded size of l as a record.
func entrySize(l *raft.Log) int64 {
	return entryMin + int64(len(l.Extensions)) + int64(len(l.Data))
}

// appendEntry encodes l as a kindEntry or kindCopy record of stream at
// the end of buf. The caller has checked that the record fits the u32 length
// field.
func appendEntry(buf []byte, kind byte, stream uint32, l *raft.Log) []byte {
	start := len(buf)
	le := binary.LittleEndian
	buf = le.AppendUint32(buf, uint32(entryFixed+len(l.Extensions)+len(l.Data)))
	buf = le.AppendUint32(buf, 0) // crc, filled in below
	buf = append(buf, kind)
	buf = le.AppendUint32(buf, stream)
	buf = appendEntryBody(buf, l)
	le.PutUint32(buf[start+4:], crc32.Checksum(buf[start+recordHeaderSize:], castagnoli))
	return buf
}

// appendMarker encodes a kindTruncate, kindCompact (one value) or
// kindReplace (two values) record.
func appendMarker(buf []byte, kind byte, stream uint32, vals ...uint64) []byte {
	start := len(buf)
	le := binary.LittleEndian
	buf = le.AppendUint32(buf, uint32(bodyPrefix+8*len(vals)))
	buf = le.AppendUint32(buf, 0)
	buf = append(buf, kind)
	buf = le.AppendUint32(buf, stream)
	for _, v := range vals {
		buf = le.AppendUint64(buf, v)
	}
	le.PutUint32(buf[start+4:], crc32.Checksum(buf[start+recordHeaderSize:], castagnoli))
	return buf
}

// decodeEntry checks one whole record (header included) read back for
// entry idx of stream and decodes it into out, aliasing rec as
// decodeEntryBody does.
func decodeEntry(rec []byte, stream uint32, idx uint64, out *raft.Log) error {
	if len(rec) < entryMin {
		return fmt.Errorf("%w: %d bytes is too short", errCorrupt, len(rec))
	}
	le := binary.LittleEndian
	body := rec[recordHeaderSize:]
	if n := le.Uint32(rec[0:4]); int64(n) != int64(len(body)) {
		return fmt.Errorf("%w: length field %d, expected %d", errCorrupt, n, len(body))
	}
	if crc := crc32.Checksum(body, castagnoli); crc != le.Uint32(rec[4:8]) {
		return fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	if k := body[0]; k != kindEntry && k != kindCopy {
		return fmt.Errorf("%w: record of kind %d where an entry belongs", errCorrupt, k)
	}
	if s := le.Uint32(body[1:5]); s != stream {
		return fmt.Errorf("%w: entry of stream %d where stream %d's belongs", errCorrupt, s, stream)
	}
	if err := decodeEntryBody(body[bodyPrefix:], out); err != nil {
		return err
	}
	if out.Index != idx {
		return fmt.Errorf("%w: index %d found where %d belongs", errCorrupt, out.Index, idx)
	}
	return nil
}

// recInfo is what replay needs of one record: no payload bytes.
type recInfo struct {
	kind   byte
	stream uint32
	off    int64  // offset of the record in its segment (or, in a request, in the request's buffer)
	size   uint32 // header included
	a, b   uint64 // entry, copy: index and term; truncate: newLast; compact: newFirst; replace: first and last
}

// parseBody checks the kind-specific structure of a body whose crc
// matched, and returns what replay needs, or the reason it is invalid.
func parseBody(body []byte) (recInfo, string) {
	le := binary.LittleEndian
	r := recInfo{kind: body[0], stream: le.Uint32(body[1:5]), size: uint32(recordHeaderSize + len(body))}
	p := body[bodyPrefix:]
	switch r.kind {
	case kindEntry, kindCopy:
		if len(p) < entryFixedBody || int64(le.Uint32(p[25:29])) > int64(len(p)-entryFixedBody) {
			return r, "invalid entry layout"
		}
		r.a, r.b = le.Uint64(p[0:8]), le.Uint64(p[8:16])
		if r.a == 0 {
			return r, "entry index 0"
		}
	case kindTruncate, kindCompact:
		if len(p) != 8 {
			return r, "invalid marker length"
		}
		r.a = le.Uint64(p)
	case kindReplace:
		if len(p) != 16 {
			return r, "invalid marker length"
		}
		r.a, r.b = le.Uint64(p[0:8]), le.Uint64(p[8:16])
		if r.a == 0 || r.a > r.b {
			return r, fmt.Sprintf("invalid replace range [%d, %d]", r.a, r.b)
		}
	default:
		return r, fmt.Sprintf("unknown record kind %d", r.kind)
	}
	return r, ""
}
