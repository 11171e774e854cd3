// Package wire is followgraph's client protocol: length-prefixed frames
// carrying a msgpack header and a msgpack body, over TCP. It holds the
// frame and body codecs, shared by the server (Server, in this package) and
// the Go client (package client), and the server itself. docs/PROTOCOL.md
// specifies the protocol for other languages.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/followgraph/followgraph/codes"
)

// ProtocolVersion is the only protocol version this build speaks.
const ProtocolVersion = 1

// DefaultMaxFrame is the default largest frame, header and body, in bytes.
const DefaultMaxFrame = 1 << 20

// Op is an operation code.
type Op uint8

// Operation codes. The numbers are part of the protocol.
const (
	OpHello     Op = 0
	OpFollow    Op = 1
	OpUnfollow  Op = 2
	OpFollowers Op = 3
	OpFollowing Op = 4
	OpMutual    Op = 5
	OpInfo      Op = 6
	OpCheck     Op = 7
	OpStatus    Op = 8
	OpShardMap  Op = 9
	OpPing      Op = 10
	// OpDeliver carries reverse edges between the nodes of a cluster (the
	// relay); clients do not use it.
	OpDeliver Op = 11
	// OpDrain asks a node to move its replicas and leaderships away (or
	// to stop doing so): [node, on]; the response is empty.
	OpDrain Op = 12
	// OpScanUsers lists the users of a shard, for followctl verify:
	// [shard, from, limit] -> [[user...], next]; next is 0 at the end.
	OpScanUsers Op = 13
	// OpRecover makes shards that lost their quorum serve again from one
	// node's replica (unsafe: see docs/OPERATIONS.md):
	// [node, shard, acceptDataLoss] -> [[shard, index, term, [lost...]]...].
	OpRecover Op = 14
	// OpWatch reads a shard's change feed (see WatchRequest).
	OpWatch Op = 15
	// OpImport follows with given followTimes, in bulk (see
	// ImportRequest).
	OpImport Op = 16
	// OpExport reads a page of a shard's follow edges from a
	// point-in-time view of its leader (see ExportRequest).
	OpExport Op = 17
	// OpRemoveUser removes a user's whole graph, in the background (see
	// RemoveUserRequest).
	OpRemoveUser Op = 18
	// OpGossipKeys lists, installs, uses or removes a gossip encryption
	// key on the node that receives it (see GossipKeysRequest); followctl
	// sends it to every node. It is never forwarded.
	OpGossipKeys Op = 19
	// OpKnownFollowers pages a user's followers whom a viewer follows
	// (see KnownFollowersRequest).
	OpKnownFollowers Op = 20
	// OpCommonFollowing pages the users two users both follow (see
	// CommonFollowingRequest).
	OpCommonFollowing Op = 21
	// OpRelationships reads the relation of up to 100 (from, to) pairs
	// (see RelationshipsRequest).
	OpRelationships Op = 22
	// OpProbe asks a shard's leader which of a list of IDs are in one of
	// a user's lists (see ProbeRequest); nodes send it to each other to
	// answer ops 20 and 21. Clients do not use it.
	OpProbe Op = 23
)

var opNames = map[Op]string{
	OpHello: "hello", OpFollow: "follow", OpUnfollow: "unfollow",
	OpFollowers: "followers", OpFollowing: "following", OpMutual: "mutual",
	OpInfo: "info", OpCheck: "check", OpStatus: "status", OpShardMap: "shardmap", OpPing: "ping", OpDeliver: "deliver", OpDrain: "drain", OpScanUsers: "scan-users",
	OpRecover: "recover", OpWatch: "watch", OpImport: "import", OpExport: "export", OpRemoveUser: "remove-user",
	OpGossipKeys: "gossip-keys", OpKnownFollowers: "known-followers", OpCommonFollowing: "common-following",
	OpRelationships: "relationships", OpProbe: "probe",
}

// String names the operation.
func (o Op) String() string {
	if n, ok := opNames[o]; ok {
		return n
	}
	return fmt.Sprintf("op%d", uint8(o))
}

// Ops lists the operations, for metrics.
func Ops() []Op {
	return []Op{OpHello, OpFollow, OpUnfollow, OpFollowers, OpFollowing, OpMutual, OpInfo, OpCheck, OpStatus, OpShardMap, OpPing, OpDeliver, OpDrain, OpScanUsers, OpRecover, OpWatch, OpExport, OpKnownFollowers, OpCommonFollowing, OpRelationships, OpProbe}
}

// Limits the decoders enforce regardless of configuration.
const (
	maxIDLen     = 64
	maxCursorLen = 256
	maxTokenLen  = 1024
	// maxTokenNameLen bounds the hello's token name (names are at most
	// tokens.MaxNameLen; a longer one simply matches nothing).
	maxTokenNameLen = 256
	maxList         = 1 << 12
)

// Frame errors.
var (
	ErrFrameTooLarge = errors.New("wire: frame too large")
	ErrFrameEmpty    = errors.New("wire: empty frame")
)

// ReadFrame reads one frame from r into buf (grown as needed, never beyond
// max) and returns its payload. The length is checked before anything is
// allocated.
func ReadFrame(r io.Reader, buf []byte, max int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 {
		return nil, ErrFrameEmpty
	}
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, max)
	}
	buf, err := readPayload(r, buf, int(n))
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// readPayload reads n bytes into buf, growing it as the bytes arrive
// (doubling, from 4 KiB) rather than to n at once: a peer that declares a
// large frame and sends nothing must not make us allocate it (the abuse
// tests: MaxFrame per stalled connection after the handshake, 64 KiB per
// unauthenticated connection before it). A buffer already large enough is
// used as is.
func readPayload(r io.Reader, buf []byte, n int) ([]byte, error) {
	if cap(buf) >= n {
		buf = buf[:n]
		_, err := io.ReadFull(r, buf)
		return buf, err
	}
	buf = buf[:0]
	for len(buf) < n {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(n, max(2*cap(buf), 4<<10)))
			copy(nb, buf)
			buf = nb
		}
		k, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if err != nil {
			if err == io.EOF && len(buf) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return buf, err
		}
	}
	return buf, nil
}

// beginFrame appends a length placeholder; endFrame fills it in.
func beginFrame(b []byte) ([]byte, int) { return append(b, 0, 0, 0, 0), len(b) }

func endFrame(b []byte, start int) []byte {
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

// Request header: [id, op]. Response header: [id, code]; a non-zero code's
// body is the error message (str).

// AppendRequestHeader starts a request frame.
func AppendRequestHeader(b []byte, id uint32, op Op) ([]byte, int) {
	b, start := beginFrame(b)
	b = appendArray(b, 2)
	b = appendUint(b, uint64(id))
	return appendUint(b, uint64(op)), start
}

// EndFrame completes a frame started by Append*Header.
func EndFrame(b []byte, start int) []byte { return endFrame(b, start) }

// AppendResponseHeader starts a response frame.
func AppendResponseHeader(b []byte, id uint32, code codes.Code) ([]byte, int) {
	b, start := beginFrame(b)
	b = appendArray(b, 2)
	b = appendUint(b, uint64(id))
	return appendUint(b, uint64(code)), start
}

// AppendError appends a complete error response frame.
func AppendError(b []byte, id uint32, err error) []byte {
	code := codes.Of(err)
	b, start := AppendResponseHeader(b, id, code)
	var e *codes.Error
	msg := err.Error()
	if errors.As(err, &e) && e.Msg != "" {
		msg = e.Msg
	}
	return endFrame(appendStr(b, msg), start)
}

// ParseRequestHeader reads a request header and returns the body's reader.
func ParseRequestHeader(payload []byte) (id uint32, op Op, body []byte, err error) {
	r := reader{b: payload}
	r.arrayN(2)
	id64 := r.uint()
	op64 := r.uint()
	if r.err != nil || id64 > 0xffffffff || op64 > 0xff {
		return 0, 0, nil, fmt.Errorf("%w: request header", ErrMsgpack)
	}
	return uint32(id64), Op(op64), payload[r.off:], nil
}

// ParseResponseHeader reads a response header. For a non-zero code, the
// error carries the body's message.
func ParseResponseHeader(payload []byte) (id uint32, body []byte, err error) {
	r := reader{b: payload}
	r.arrayN(2)
	id64 := r.uint()
	code := r.uint()
	if r.err != nil || id64 > 0xffffffff || code > 0xffffffff {
		return 0, nil, fmt.Errorf("%w: response header", ErrMsgpack)
	}
	if code != 0 {
		br := reader{b: payload[r.off:]}
		msg := br.str(1 << 16)
		return uint32(id64), nil, &codes.Error{Code: codes.Code(code), Msg: msg}
	}
	return uint32(id64), payload[r.off:], nil
}
