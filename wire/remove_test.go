package wire

import (
	"context"
	"reflect"
	"testing"
)

func (f *fakeBackend) RemoveUser(ctx context.Context, req RemoveUserRequest) (RemovalProgress, error) {
	return RemovalProgress{Running: !req.Query, Removed: uint64(len(req.User)), Following: 1, Followers: 2}, nil
}

func TestRemoveUserRoundTrip(t *testing.T) {
	if q, err := ParseRemoveUserRequest(AppendRemoveUserRequest(nil, RemoveUserRequest{User: "celeb", Query: true})); err != nil || q.User != "celeb" || !q.Query {
		t.Fatalf("%+v %v", q, err)
	}
	p := RemovalProgress{Running: true, Removed: 1 << 40, Following: 3, Followers: 1 << 20}
	if got, err := ParseRemovalProgress(AppendRemovalProgress(nil, p)); err != nil || got != p {
		t.Fatalf("%+v %v", got, err)
	}
	st := Status{NodeID: "n", Shards: []ShardStatus{{Shard: 2, Removals: []Removal{{User: "celeb", Removed: 5, Remaining: 9}}}}}
	if got, err := ParseStatus(AppendStatus(nil, st)); err != nil || !reflect.DeepEqual(got.Shards[0].Removals, st.Shards[0].Removals) {
		t.Fatalf("%+v %v", got, err)
	}
}

// FuzzRemoveUser: the remove-user decoders never panic, and what decodes
// re-encodes to the same value.
func FuzzRemoveUser(f *testing.F) {
	f.Add(AppendRemoveUserRequest(nil, RemoveUserRequest{User: "u"}))
	f.Add(AppendRemovalProgress(nil, RemovalProgress{Running: true, Removed: 3}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if q, err := ParseRemoveUserRequest(b); err == nil {
			if q2, err := ParseRemoveUserRequest(AppendRemoveUserRequest(nil, q)); err != nil || q2 != q {
				t.Fatalf("remove-user request does not round-trip: %+v", q)
			}
		}
		if p, err := ParseRemovalProgress(b); err == nil {
			if p2, err := ParseRemovalProgress(AppendRemovalProgress(nil, p)); err != nil || p2 != p {
				t.Fatalf("remove-user response does not round-trip: %+v", p)
			}
		}
	})
}
