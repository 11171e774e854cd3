package cluster

import (
	"bytes"
	"testing"
)

// FuzzDecodeNodeMeta: gossip metadata comes from the network. Decoding
// must never panic, and what decodes must encode back to the same bytes.
func FuzzDecodeNodeMeta(f *testing.F) {
	m := NodeMeta{ID: "n1", ClusterID: "c", Nonce: "x", ClientAddr: "10.0.0.1:7700", RaftAddr: "10.0.0.1:7701", Shards: 12, Leads: NewBitmap(12), Hosts: NewBitmap(12)}
	m.Hosts.Set(3, true)
	b, err := m.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{metaVersion, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeNodeMeta(b)
		if err != nil {
			return
		}
		b2, err := m.Encode()
		if err != nil {
			t.Fatalf("decoded %+v but cannot encode it: %v", m, err)
		}
		if !bytes.Equal(b, b2) {
			t.Fatalf("does not round-trip:\n%x\n%x", b, b2)
		}
	})
}
