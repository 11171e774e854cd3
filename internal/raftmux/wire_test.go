package raftmux

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestHelloRoundTrip(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:7000", "[::1]:7000", "node-17.followgraph.internal:7000", strings.Repeat("a", maxAddrLen)} {
		b, err := encodeHello(addr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("FGMUX1")) {
			t.Fatalf("hello %q lacks the magic", b)
		}
		got, err := readHello(bytes.NewReader(b))
		if err != nil || got != addr {
			t.Fatalf("readHello = %q, %v; want %q", got, err, addr)
		}
	}
	for _, addr := range []string{"", strings.Repeat("a", maxAddrLen+1)} {
		if _, err := encodeHello(addr); err == nil {
			t.Errorf("encodeHello accepted an address of length %d", len(addr))
		}
	}
}

func TestReadHelloRejects(t *testing.T) {
	for name, in := range map[string]string{
		"bad magic": "FGMUX2\x00\x01a",
		"zero len":  "FGMUX1\x00\x00",
		"too long":  "FGMUX1\x04\x01" + strings.Repeat("a", 1025),
	} {
		if _, err := readHello(strings.NewReader(in)); !errors.Is(err, errBadHello) {
			t.Errorf("%s: err %v, want errBadHello", name, err)
		}
	}
	if _, err := readHello(strings.NewReader("FGMUX1\x00\x05ab")); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated address: err %v, want io.ErrUnexpectedEOF", err)
	}
}

// FuzzReadHello checks that arbitrary bytes on the raft port never make the
// hello parser panic or return an address it would refuse to send, and that
// it never reads past the hello (yamux frames follow it on the same
// connection).
func FuzzReadHello(f *testing.F) {
	good, _ := encodeHello("127.0.0.1:7000")
	f.Add(good)
	f.Add(append(good, 0, 1, 2))
	f.Add([]byte("FGMUX1\xff\xff"))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		addr, err := readHello(r)
		if err != nil {
			return
		}
		enc, err := encodeHello(addr)
		if err != nil {
			t.Fatalf("accepted address %q cannot be encoded: %v", addr, err)
		}
		if consumed := len(in) - r.Len(); consumed != len(enc) || !bytes.Equal(in[:consumed], enc) {
			t.Fatalf("consumed %d bytes %q, hello is %q", consumed, in[:consumed], enc)
		}
	})
}
