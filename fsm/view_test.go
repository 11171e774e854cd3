package fsm

import (
	"bytes"
	"io"
	"strconv"
	"testing"

	"github.com/followgraph/followgraph/shard"
)

// edgesOf exports every following entry of v as "actor>target@time".
func edgesOf(v *shard.View) []string {
	var out []string
	v.Following(shard.StartPosition, 1<<30, func(a, b []byte, t int64) bool {
		out = append(out, string(a)+">"+string(b)+"@"+strconv.FormatInt(t, 10))
		return true
	})
	return out
}

// TestViewIsPointInTime: a View shows the state when it was taken,
// whatever is applied or restored after it.
func TestViewIsPointInTime(t *testing.T) {
	logs := randomLog(11, 400)
	f := newFSM(t, 0, 3)
	for _, l := range logs[:200] {
		f.Apply(l)
	}
	v, err := f.View()
	if err != nil {
		t.Fatal(err)
	}
	defer v.Release()
	var edges int64
	f.Read(func(s *shard.Store) error {
		edges = s.Stats().Following
		return nil
	})
	want := edgesOf(v)
	if int64(len(want)) != edges || v.Edges() != edges {
		t.Fatalf("View has %d edges (Edges %d), store %d", len(want), v.Edges(), edges)
	}
	for _, l := range logs[200:] {
		f.Apply(l)
	}
	// Replace the Store under the View with another state.
	other := newFSM(t, 0, 3)
	for _, l := range logs[:50] {
		other.Apply(l)
	}
	if err := f.Restore(io.NopCloser(bytes.NewReader(snapshotOf(t, other)))); err != nil {
		t.Fatal(err)
	}
	got := edgesOf(v)
	if len(got) != len(want) {
		t.Fatalf("after writes and a restore, the View has %d edges, had %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("edge %d: %s, was %s", i, got[i], want[i])
		}
	}
}
