package cluster

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// FuzzReadBeat: any bytes on the beat stream give a well-formed beat or an
// error, never a panic, and a beat that is accepted survives a round trip.
func FuzzReadBeat(f *testing.F) {
	for _, m := range []beatMsg{
		{From: "n1", Addr: "127.0.0.1:7001", Shards: []uint32{0, 5}, Terms: []uint64{3, 9}},
		{From: "n2", Addr: "a"},
		{From: "n3", Shards: []uint32{1}},
	} {
		b, err := msgpack.Marshal(&m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	// A huge array header under a known key: msgpack's own decoding
	// allocated the whole array before reading it.
	f.Add([]byte("\x84\xa1s\xdd\xdd\xdd\xa1t\x92000"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if a, err := readBeatAck(msgpack.NewDecoder(bytes.NewReader(data))); err == nil && len(a.Shards) > maxBeatShards {
			t.Fatalf("accepted an ack of %d shards", len(a.Shards))
		}
		m, err := readBeat(msgpack.NewDecoder(bytes.NewReader(data)))
		if err != nil {
			return
		}
		if m.From == "" || len(m.Shards) != len(m.Terms) || len(m.Shards) > maxBeatShards {
			t.Fatalf("accepted a malformed beat: %+v", m)
		}
		b, err := msgpack.Marshal(&m)
		if err != nil {
			t.Fatal(err)
		}
		again, err := readBeat(msgpack.NewDecoder(bytes.NewReader(b)))
		if err != nil || !reflect.DeepEqual(normal(again), normal(m)) {
			t.Fatalf("round trip: %+v %v, want %+v", again, err, m)
		}
	})
}

// normal makes empty and nil lists equal.
func normal(m beatMsg) beatMsg {
	if len(m.Shards) == 0 {
		m.Shards, m.Terms = nil, nil
	}
	return m
}
