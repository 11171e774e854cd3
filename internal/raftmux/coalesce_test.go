package raftmux

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
)

// recordConn records each Write it gets.
type recordConn struct {
	net.Conn
	writes [][]byte
}

func (r *recordConn) Write(p []byte) (int, error) {
	r.writes = append(r.writes, append([]byte(nil), p...))
	return len(p), nil
}

func header(typ byte, length uint32) []byte {
	h := make([]byte, yamuxHeaderSize)
	h[0], h[1] = 0, typ
	binary.BigEndian.PutUint32(h[4:8], 7)
	binary.BigEndian.PutUint32(h[8:12], length)
	return h
}

func TestHeaderJoinerJoinsDataFrames(t *testing.T) {
	rc := &recordConn{}
	j := joinHeaders(rc)
	write := func(p []byte) {
		t.Helper()
		if n, err := j.Write(p); err != nil || n != len(p) {
			t.Fatalf("Write(%d bytes) = %d, %v", len(p), n, err)
		}
	}
	body := []byte("appendEntries")
	write(header(yamuxTypeData, uint32(len(body))))
	if len(rc.writes) != 0 {
		t.Fatalf("data header went out alone: %d writes", len(rc.writes))
	}
	write(body)
	// A window update (type 1) and an empty data frame have no body.
	write(header(1, 4096))
	write(header(yamuxTypeData, 0))
	want := [][]byte{
		append(header(yamuxTypeData, uint32(len(body))), body...),
		header(1, 4096),
		header(yamuxTypeData, 0),
	}
	if len(rc.writes) != len(want) {
		t.Fatalf("got %d writes, want %d", len(rc.writes), len(want))
	}
	for i := range want {
		if !bytes.Equal(rc.writes[i], want[i]) {
			t.Fatalf("write %d = %x, want %x", i, rc.writes[i], want[i])
		}
	}
}
