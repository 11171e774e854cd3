package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/hashicorp/raft"
)

// Record layout (little-endian):
//
//	offset size field
//	0      4    length      bytes that follow the 8-byte header (the body)
//	4      4    crc32c      Castagnoli CRC of the body
//	8      8    index       \
//	16     8    term         |
//	24     1    type         | body
//	25     8    appendedAt   | (unix nanoseconds, 0 = zero time.Time)
//	33     4    extLen       |
//	37     ext  extensions   |
//	37+ext rest data        /
//
// A length of zero cannot belong to a record (the body is at least
// recordFixedBody bytes), which is what makes 8 zero bytes an end marker.
const (
	recordHeaderSize = 8
	recordFixedBody  = 8 + 8 + 1 + 8 + 4
	recordMinSize    = recordHeaderSize + recordFixedBody
	endMarkerSize    = 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errCorrupt = errors.New("wal: corrupt record")

// recordSize is the encoded size of l, header included.
func recordSize(l *raft.Log) int64 {
	return recordMinSize + int64(len(l.Extensions)) + int64(len(l.Data))
}

// appendRecord encodes l at the end of buf. The caller has checked that the
// record fits the u32 length field (recordSize <= maxSegmentSize).
func appendRecord(buf []byte, l *raft.Log) []byte {
	start := len(buf)
	body := recordFixedBody + len(l.Extensions) + len(l.Data)
	le := binary.LittleEndian
	buf = le.AppendUint32(buf, uint32(body))
	buf = le.AppendUint32(buf, 0) // crc, filled in below
	buf = appendEntryBody(buf, l)
	le.PutUint32(buf[start+4:], crc32.Checksum(buf[start+recordHeaderSize:], castagnoli))
	return buf
}

// appendEntryBody appends the body fields of an entry (index through data).
// The shared log's entry records carry the same fields after their kind and
// stream (see shared_record.go).
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

// decodeRecord checks and decodes one whole record (header included) into
// out. Data and Extensions alias rec: callers pass a buffer they own and
// never reuse, because raft keeps the slices of logs it reads.
func decodeRecord(rec []byte, out *raft.Log) error {
	if len(rec) < recordMinSize {
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
	return decodeEntryBody(body, out)
}

// decodeEntryBody decodes the entry fields (index through data) of a checked
// body into out, aliasing body as decodeRecord describes.
func decodeEntryBody(body []byte, out *raft.Log) error {
	if len(body) < recordFixedBody {
		return fmt.Errorf("%w: entry body of %d bytes is too short", errCorrupt, len(body))
	}
	le := binary.LittleEndian
	extLen := int64(le.Uint32(body[25:29]))
	if extLen > int64(len(body)-recordFixedBody) {
		return fmt.Errorf("%w: extension length %d overflows the record", errCorrupt, extLen)
	}
	ext := body[recordFixedBody : recordFixedBody+extLen]
	data := body[recordFixedBody+extLen:]
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
