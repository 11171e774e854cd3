package wire

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/internal/gossipkey"
)

// GossipKeys answers with the request echoed in the response: the key's
// fingerprint, primary when the action was use.
func (f *fakeBackend) GossipKeys(ctx context.Context, req GossipKeysRequest) (GossipKeyring, error) {
	k := GossipKeyring{Node: "n"}
	if len(req.Key) > 0 {
		k.Keys = append(k.Keys, GossipKey{Fingerprint: gossipkey.Fingerprint(req.Key), Primary: req.Action == GossipKeysUse})
	}
	return k, nil
}

func TestGossipKeysRoundTrip(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	for _, q := range []GossipKeysRequest{{Action: GossipKeysList}, {Action: GossipKeysInstall, Key: key}, {Action: GossipKeysUse, Key: key[:16]}, {Action: GossipKeysRemove, Key: key[:24]}} {
		got, err := ParseGossipKeysRequest(AppendGossipKeysRequest(nil, q))
		if err != nil || !reflect.DeepEqual(got, q) {
			t.Fatalf("%v: %+v %v", q.Action, got, err)
		}
	}
	k := GossipKeyring{Node: "n1", Keys: []GossipKey{{"00112233aabbccdd", true}, {"ffeeddccbbaa9988", false}}}
	if got, err := ParseGossipKeyring(AppendGossipKeyring(nil, k)); err != nil || !reflect.DeepEqual(got, k) {
		t.Fatalf("%+v %v", got, err)
	}
	if got, err := ParseGossipKeyring(AppendGossipKeyring(nil, GossipKeyring{Node: "n2"})); err != nil || got.Node != "n2" || len(got.Keys) != 0 {
		t.Fatalf("%+v %v", got, err)
	}
}

// Every malformed request is a 30001 that says what is wrong.
func TestGossipKeysRequestRefusals(t *testing.T) {
	req := func(action uint64, key string) []byte { return appendStr(appendUint(appendArray(nil, 2), action), key) }
	good := gossipkey.Encode(bytes.Repeat([]byte{1}, 16))
	for _, c := range []struct {
		name string
		body []byte
		want string
	}{
		{"unknown action", req(4, good), "malformed"},
		{"list with a key", req(0, good), "takes no key"},
		{"install without a key", req(1, ""), "standard base64"},
		{"short key", req(2, gossipkey.Encode(make([]byte, 8))), "standard base64"},
		{"not base64", req(3, "not base64 at all!!"), "standard base64"},
		{"unpadded", req(1, strings.TrimRight(gossipkey.Encode(make([]byte, 16)), "=")), "standard base64"},
		{"padded with spaces", req(1, " "+good), "standard base64"},
		{"key too long", req(1, strings.Repeat("A", 45)), "at most 44"},
		{"three elements", append(appendStr(appendUint(appendArray(nil, 3), 1), good), 0xc0), "malformed"},
		{"trailing byte", append(req(0, ""), 0), "malformed"},
	} {
		_, err := ParseGossipKeysRequest(c.body)
		if !errors.Is(err, codes.ErrInvalidParam) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want 30001 with %q", c.name, err, c.want)
		}
	}
}

// The op reaches the cluster handler through a real server, and a server
// without one refuses it with 40007 (as every cluster operation).
func TestGossipKeysOverTheServer(t *testing.T) {
	s := startServer(t, nil, &fakeBackend{})
	rc := dialRaw(t, s)
	rc.hello("")
	key := bytes.Repeat([]byte{9}, 32)
	rc.send(1, OpGossipKeys, AppendGossipKeysRequest(nil, GossipKeysRequest{Action: GossipKeysUse, Key: key}))
	_, body, err := rc.recv()
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseGossipKeyring(body)
	if err != nil || k.Node != "n" || len(k.Keys) != 1 || k.Keys[0].Fingerprint != gossipkey.Fingerprint(key) || !k.Keys[0].Primary {
		t.Fatalf("%+v %v", k, err)
	}
	if OpGossipKeys.String() != "gossip-keys" || GossipKeysRemove.String() != "remove" || GossipKeyAction(9).String() != "action9" {
		t.Fatal("names")
	}
	s2 := startServer(t, nil, handlerOnly{&fakeBackend{}})
	rc2 := dialRaw(t, s2)
	rc2.hello("")
	rc2.send(2, OpGossipKeys, AppendGossipKeysRequest(nil, GossipKeysRequest{Action: GossipKeysList}))
	if _, _, err := rc2.recv(); codes.Of(err) != codes.UnknownOp {
		t.Fatalf("without a cluster handler: %v", err)
	}
}

// handlerOnly hides the fake's ClusterHandler methods.
type handlerOnly struct{ Handler }

// FuzzGossipKeys: the gossip-keys decoders never panic, accept only keys
// of a valid size, and what decodes re-encodes to the same bytes.
func FuzzGossipKeys(f *testing.F) {
	key := bytes.Repeat([]byte{3}, 24)
	f.Add(AppendGossipKeysRequest(nil, GossipKeysRequest{Action: GossipKeysList}))
	f.Add(AppendGossipKeysRequest(nil, GossipKeysRequest{Action: GossipKeysInstall, Key: key}))
	f.Add(AppendGossipKeysRequest(nil, GossipKeysRequest{Action: GossipKeysRemove, Key: bytes.Repeat([]byte{4}, 32)}))
	f.Add(AppendGossipKeyring(nil, GossipKeyring{Node: "n1", Keys: []GossipKey{{"0011223344556677", true}, {"8899aabbccddeeff", false}}}))
	f.Add([]byte{0x92, 0x05, 0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if q, err := ParseGossipKeysRequest(b); err == nil {
			if n := len(q.Key); q.Action > GossipKeysRemove || (q.Action == GossipKeysList) != (n == 0) || (n != 0 && n != 16 && n != 24 && n != 32) {
				t.Fatalf("accepted %+v", q)
			}
			if re := AppendGossipKeysRequest(nil, q); !bytes.Equal(re, b) {
				// Only integer encodings may differ (a canonical key).
				if q2, err := ParseGossipKeysRequest(re); err != nil || !reflect.DeepEqual(q2, q) {
					t.Fatalf("gossip-keys request does not round-trip: %+v", q)
				}
			}
		} else if codes.Of(err) != codes.InvalidParam {
			t.Fatalf("refused with %v", err)
		}
		if k, err := ParseGossipKeyring(b); err == nil {
			if k2, err := ParseGossipKeyring(AppendGossipKeyring(nil, k)); err != nil || !reflect.DeepEqual(k2, k) {
				t.Fatalf("gossip-keys response does not round-trip: %+v", k)
			}
		}
	})
}
