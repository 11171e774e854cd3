package wire

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/followgraph/followgraph/codes"
)

// Import on the fake backend adds every edge, except targets named
// "bad...", which fail.
func (f *fakeBackend) Import(ctx context.Context, req ImportRequest) (ImportResult, error) {
	var res ImportResult
	i := 0
	for _, c := range req.Commands {
		for _, t := range c.Targets {
			if strings.HasPrefix(t, "bad") {
				res.Failures = append(res.Failures, ImportFailure{Index: i, Code: codes.InvalidParam, Info: "bad " + c.Actor})
			} else {
				res.Added++
			}
			i++
		}
	}
	return res, nil
}

func TestImportRoundTrip(t *testing.T) {
	q := ImportRequest{Sync: true, Commands: []ImportCommand{
		{Actor: "alice", Targets: []string{"bob", "carol"}, Times: []int64{1, 1 << 40}},
		{Actor: "dave", Targets: []string{"erin"}, Times: []int64{-5}},
	}}
	got, err := ParseImportRequest(AppendImportRequest(nil, q))
	if err != nil || !reflect.DeepEqual(got, q) || got.Edges() != 3 {
		t.Fatalf("%+v, %v", got, err)
	}
	res := ImportResult{Added: 2, Existing: 7, Failures: []ImportFailure{{Index: 4, Code: codes.FollowingLimit, Info: "limit"}}}
	if got, err := ParseImportResult(AppendImportResult(nil, res)); err != nil || !reflect.DeepEqual(got, res) {
		t.Fatalf("%+v, %v", got, err)
	}
}

func TestImportRequestLimits(t *testing.T) {
	big := ImportCommand{Actor: "a"}
	for i := range MaxImportEdges + 1 {
		big.Targets = append(big.Targets, "t")
		big.Times = append(big.Times, int64(i))
	}
	for name, q := range map[string]ImportRequest{
		"too many edges":       {Commands: []ImportCommand{big}},
		"times do not match":   {Commands: []ImportCommand{{Actor: "a", Targets: []string{"b", "c"}, Times: []int64{1}}}},
		"user ID too long":     {Commands: []ImportCommand{{Actor: strings.Repeat("x", 4*maxIDLen+1), Targets: []string{"b"}, Times: []int64{1}}}},
		"edges over commands:": {Commands: []ImportCommand{{Actor: "a", Targets: big.Targets[:6000], Times: big.Times[:6000]}, {Actor: "b", Targets: big.Targets[:6000], Times: big.Times[:6000]}}},
	} {
		if _, err := ParseImportRequest(AppendImportRequest(nil, q)); codes.Of(err) != codes.InvalidParam {
			t.Errorf("%s: %v, want InvalidParam", name, err)
		}
	}
}

// FuzzImport: the import decoders never panic, and what decodes
// re-encodes to the same value, within the limits.
func FuzzImport(f *testing.F) {
	f.Add(AppendImportRequest(nil, ImportRequest{Commands: []ImportCommand{{Actor: "a", Targets: []string{"b"}, Times: []int64{7}}}}))
	f.Add(AppendImportResult(nil, ImportResult{Added: 1, Failures: []ImportFailure{{Index: 0, Code: 1, Info: "x"}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if q, err := ParseImportRequest(b); err == nil {
			q2, err := ParseImportRequest(AppendImportRequest(nil, q))
			if err != nil || !reflect.DeepEqual(q2, q) || q.Edges() > MaxImportEdges {
				t.Fatalf("import request does not round-trip or is over the limit: %v", err)
			}
		}
		if res, err := ParseImportResult(b); err == nil {
			if res2, err := ParseImportResult(AppendImportResult(nil, res)); err != nil || !reflect.DeepEqual(res2, res) {
				t.Fatalf("import result does not round-trip: %+v", res)
			}
		}
	})
}
