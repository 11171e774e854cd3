package raftmux

import (
	"encoding/binary"
	"net"
)

// yamux frame header: version(1) type(1) flags(2) stream(4) length(4).
const (
	yamuxHeaderSize = 12
	yamuxTypeData   = 0
)

// headerJoiner is the connection under a yamux session. yamux's send loop
// writes a data frame as two Writes, the 12-byte header and then the
// body, so every raft RPC (a heartbeat, an empty AppendEntries) cost two
// write syscalls each way. headerJoiner holds back a data header that
// announces a body and sends it with that body in one Write. Frames
// without a body (window updates, pings, data with length 0) go out at
// once. yamux writes from one goroutine, so no lock is needed.
type headerJoiner struct {
	net.Conn
	hdr  [yamuxHeaderSize]byte
	held bool
	buf  []byte
}

func joinHeaders(c net.Conn) *headerJoiner { return &headerJoiner{Conn: c} }

func (j *headerJoiner) Write(p []byte) (int, error) {
	if !j.held && len(p) == yamuxHeaderSize && p[1] == yamuxTypeData && binary.BigEndian.Uint32(p[8:12]) > 0 {
		copy(j.hdr[:], p)
		j.held = true
		return len(p), nil
	}
	if !j.held {
		return j.Conn.Write(p)
	}
	j.held = false
	j.buf = append(append(j.buf[:0], j.hdr[:]...), p...)
	n, err := j.Conn.Write(j.buf)
	// The header was reported written already; report the body's share.
	n -= yamuxHeaderSize
	if n < 0 {
		n = 0
	}
	if cap(j.buf) > 1<<20 {
		j.buf = nil // don't keep a large body's buffer forever
	}
	return n, err
}
