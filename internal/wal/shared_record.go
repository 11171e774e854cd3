package wal

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/hashicorp/raft"
)

// Shared-log record layout (little-endian). The header is the single-stream
// log's; the body starts with the record's kind and stream:
//
//	offset size field
//	0      4    length   bytes that follow the 8-byte header (the body)
//	4      4    crc32c   Castagnoli CRC of the body
//	8      1    kind
//	9      4    stream
//	13     ...  payload, by kind:
//
//	kindEntry, kindCopy  index u64 | term u64 | type u8 | appendedAt i64 |
//	                     extLen u32 | extensions | data   (as in record.go)
//	kindTruncate         newLast u64   the entries after newLast are deleted
//	kindCompact          newFirst u64  the entries before newFirst are deleted
//	kindReplace          first u64 | last u64
//
// As in the single-stream log, a zero length cannot start a record, so 8
// zero bytes are an end marker. What each kind does to its stream when the
// log is replayed is described at Stream.replay.
const (
	kindEntry    = 1
	kindTruncate = 2
	kindCompact  = 3
	kindCopy     = 4
	kindReplace  = 5

	sharedPrefix     = 1 + 4 // kind, stream
	sharedEntryFixed = sharedPrefix + recordFixedBody
	sharedEntryMin   = recordHeaderSize + sharedEntryFixed
)

// sharedEntrySize is the encoded size of l as a shared-log record.
func sharedEntrySize(l *raft.Log) int64 {
	return sharedEntryMin + int64(len(l.Extensions)) + int64(len(l.Data))
}

// appendSharedEntry encodes l as a kindEntry or kindCopy record of stream at
// the end of buf. The caller has checked that the record fits the u32 length
// field.
func appendSharedEntry(buf []byte, kind byte, stream uint32, l *raft.Log) []byte {
	start := len(buf)
	le := binary.LittleEndian
	buf = le.AppendUint32(buf, uint32(sharedEntryFixed+len(l.Extensions)+len(l.Data)))
	buf = le.AppendUint32(buf, 0) // crc, filled in below
	buf = append(buf, kind)
	buf = le.AppendUint32(buf, stream)
	buf = appendEntryBody(buf, l)
	le.PutUint32(buf[start+4:], crc32.Checksum(buf[start+recordHeaderSize:], castagnoli))
	return buf
}

// appendSharedMarker encodes a kindTruncate, kindCompact (one value) or
// kindReplace (two values) record.
func appendSharedMarker(buf []byte, kind byte, stream uint32, vals ...uint64) []byte {
	start := len(buf)
	le := binary.LittleEndian
	buf = le.AppendUint32(buf, uint32(sharedPrefix+8*len(vals)))
	buf = le.AppendUint32(buf, 0)
	buf = append(buf, kind)
	buf = le.AppendUint32(buf, stream)
	for _, v := range vals {
		buf = le.AppendUint64(buf, v)
	}
	le.PutUint32(buf[start+4:], crc32.Checksum(buf[start+recordHeaderSize:], castagnoli))
	return buf
}

// decodeSharedEntry checks one whole record (header included) read back for
// entry idx of stream and decodes it into out, aliasing rec (see
// decodeRecord).
func decodeSharedEntry(rec []byte, stream uint32, idx uint64, out *raft.Log) error {
	if len(rec) < sharedEntryMin {
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
	if err := decodeEntryBody(body[sharedPrefix:], out); err != nil {
		return err
	}
	if out.Index != idx {
		return fmt.Errorf("%w: index %d found where %d belongs", errCorrupt, out.Index, idx)
	}
	return nil
}

// sharedRec is what replay needs of one record: no payload bytes.
type sharedRec struct {
	kind   byte
	stream uint32
	off    int64  // offset of the record in its segment (or, in a request, in the request's buffer)
	size   uint32 // header included
	a, b   uint64 // entry, copy: index and term; truncate: newLast; compact: newFirst; replace: first and last
}

// parseSharedBody checks the kind-specific structure of a body whose crc
// matched, and returns what replay needs, or the reason it is invalid.
func parseSharedBody(body []byte) (sharedRec, string) {
	le := binary.LittleEndian
	r := sharedRec{kind: body[0], stream: le.Uint32(body[1:5]), size: uint32(recordHeaderSize + len(body))}
	p := body[sharedPrefix:]
	switch r.kind {
	case kindEntry, kindCopy:
		if len(p) < recordFixedBody || int64(le.Uint32(p[25:29])) > int64(len(p)-recordFixedBody) {
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

// scanShared reads the records of a shared-log segment from offset 0 and
// calls fn for each valid one, stopping at the first that is not valid: an
// end marker, a length too small or running past the file, a checksum
// mismatch or a malformed payload. It returns the offset after the last
// valid record, why it stopped, and whether that is a clean end (an end
// marker) rather than a torn or garbled record or a file cut short. Only I/O errors are errors.
func scanShared(f io.ReaderAt, size int64, fn func(sharedRec)) (tail int64, stop string, clean bool, err error) {
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, size), int(min(size, scanBufferSize)))
	le := binary.LittleEndian
	var hdr [recordHeaderSize]byte
	var body []byte
	off := int64(0)
	for {
		if off+recordHeaderSize > size {
			// Every write leaves room for its end marker: a file that
			// ends without one was cut short.
			return off, "end of file without an end marker", false, nil
		}
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return off, "", false, err
		}
		length := int64(le.Uint32(hdr[0:4]))
		if length == 0 {
			return off, "end marker", true, nil
		}
		if length < sharedPrefix+8 || off+recordHeaderSize+length > size {
			return off, fmt.Sprintf("invalid record length %d at offset %d", length, off), false, nil
		}
		if int64(cap(body)) < length {
			body = make([]byte, length)
		}
		body = body[:length]
		if _, err := io.ReadFull(r, body); err != nil {
			return off, "", false, err
		}
		if crc32.Checksum(body, castagnoli) != le.Uint32(hdr[4:8]) {
			return off, fmt.Sprintf("checksum mismatch at offset %d", off), false, nil
		}
		rec, reason := parseSharedBody(body)
		if reason != "" {
			return off, fmt.Sprintf("%s at offset %d", reason, off), false, nil
		}
		rec.off = off
		fn(rec)
		off += recordHeaderSize + length
	}
}
