package wal

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/hashicorp/raft"
)

// sealed wraps body in a record header with the right length and checksum,
// so that the fuzzer reaches the body decoders behind the checksum.
func sealed(body []byte) []byte {
	rec := binary.LittleEndian.AppendUint32(nil, uint32(len(body)))
	rec = binary.LittleEndian.AppendUint32(rec, crc32.Checksum(body, castagnoli))
	return append(rec, body...)
}

// FuzzRecordDecoders feeds checksummed garbage to every decoder of log
// records, one segment's worth at a time: data is cut into bodies (a length
// byte, then that many bytes), each sealed into a record; the records,
// optionally followed by an end marker, form a segment for scanSegment. No
// input may panic, and what the scan accepts must lie within the segment.
func FuzzRecordDecoders(f *testing.F) {
	entry := &raft.Log{Index: 3, Term: 2, Type: raft.LogCommand, Data: []byte("x"), Extensions: []byte("e")}
	f.Add(appendEntry(nil, kindEntry, 7, entry)[recordHeaderSize:], true)
	f.Add(appendMarker(nil, kindReplace, 1, 2, 9)[recordHeaderSize:], false)
	f.Add([]byte{5, kindTruncate, 0, 0, 0, 0}, true)
	f.Fuzz(func(t *testing.T, data []byte, endMarker bool) {
		var seg []byte
		for rest := data; len(rest) > 0; {
			n := min(int(rest[0]), len(rest)-1)
			body := rest[1 : 1+n]
			rest = rest[1+n:]
			rec := sealed(body)
			var l raft.Log
			_ = decodeEntry(rec, 7, 3, &l)
			if len(body) >= bodyPrefix {
				parseBody(body)
			}
			seg = append(seg, rec...)
		}
		if endMarker {
			seg = append(seg, make([]byte, recordHeaderSize)...)
		}
		tail, _, _, err := scanSegment(bytes.NewReader(seg), int64(len(seg)), func(r recInfo) {
			if r.off < 0 || r.off+int64(r.size) > int64(len(seg)) {
				t.Fatalf("record at %d of %d bytes outside a %d-byte segment", r.off, r.size, len(seg))
			}
		})
		if err != nil || tail < 0 || tail > int64(len(seg)) {
			t.Fatalf("scan: tail %d of %d, %v", tail, len(seg), err)
		}
	})
}
