package raftmux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

const (
	// helloMagic starts every session so that a stray client (a port
	// scanner, an HTTP probe, an old binary) is recognised and dropped
	// before yamux tries to parse its bytes as frames.
	helloMagic = "FGMUX1"

	// maxAddrLen bounds the advertised address in a hello. Real addresses
	// are host:port strings far below this; the bound keeps a garbage
	// length field from making the acceptor allocate or wait for 64 KiB.
	maxAddrLen = 1024

	// helloAccepted is the acceptor's one-byte answer to a valid hello.
	helloAccepted byte = 0x00

	// shardHeaderLen is the size of the shard id that starts every stream.
	shardHeaderLen = 4
)

var errBadHello = errors.New("raftmux: bad session hello")

// encodeHello returns the bytes a dialer sends before starting yamux.
func encodeHello(advertise string) ([]byte, error) {
	if len(advertise) == 0 || len(advertise) > maxAddrLen {
		return nil, fmt.Errorf("raftmux: advertised address length %d not in [1,%d]", len(advertise), maxAddrLen)
	}
	b := make([]byte, 0, len(helloMagic)+2+len(advertise))
	b = append(b, helloMagic...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(advertise)))
	b = append(b, advertise...)
	return b, nil
}

// readHello reads a hello and returns the peer's advertised address.
func readHello(r io.Reader) (string, error) {
	var hdr [len(helloMagic) + 2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return "", err
	}
	if string(hdr[:len(helloMagic)]) != helloMagic {
		return "", fmt.Errorf("%w: magic %q", errBadHello, hdr[:len(helloMagic)])
	}
	n := int(binary.BigEndian.Uint16(hdr[len(helloMagic):]))
	if n == 0 || n > maxAddrLen {
		return "", fmt.Errorf("%w: address length %d", errBadHello, n)
	}
	addr := make([]byte, n)
	if _, err := io.ReadFull(r, addr); err != nil {
		return "", err
	}
	return string(addr), nil
}

func encodeShard(shard uint32) []byte {
	return binary.BigEndian.AppendUint32(make([]byte, 0, shardHeaderLen), shard)
}
