package tencent_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/followgraph/followgraph/cluster/clustertest"
	"github.com/followgraph/followgraph/httpapi/tencent"
	"github.com/followgraph/followgraph/wire"
)

type getResponse struct {
	FollowItem []struct {
		ToAccount   string `json:"To_Account"`
		FollowTime  int64
		ProfileItem []any
	}
	NextCursor   string
	ActionStatus string
	ErrorCode    int
	ErrorInfo    string
	ErrorDisplay string
}

func decodeGet(t *testing.T, s string) getResponse {
	t.Helper()
	var r getResponse
	d := json.NewDecoder(strings.NewReader(s))
	d.DisallowUnknownFields()
	if err := d.Decode(&r); err != nil {
		t.Fatalf("%v: %.300s", err, s)
	}
	if r.ActionStatus != "OK" || r.ErrorCode != 0 {
		t.Fatalf("follow_get failed: %.300s", s)
	}
	return r
}

type entry struct {
	id   string
	secs int64
}

// Paging a list of 1,234 fans with StartCursor / NextCursor to the end,
// at several page sizes (WantNum over the binary protocol's 500 takes
// two of its pages): every fan once, newest first, equal times by ID,
// full pages until the last, and NextCursor "" exactly on the last.
func TestGetPaging(t *testing.T) {
	a := newAPI(t, clustertest.Options{}, tencent.DefaultConfig())
	const fans, base = 1234, int64(1_700_000_000_000)
	var want []entry
	req := wire.ImportRequest{Sync: true}
	for i := range fans {
		id := fmt.Sprintf("fan%04d", (i*7919)%fans) // not in time order
		ms := base + int64(i%300)*1000 + int64(i%3) // ties in seconds and in ms
		req.Commands = append(req.Commands, wire.ImportCommand{Actor: id, Targets: []string{"star"}, Times: []int64{ms}})
		want = append(want, entry{id, ms})
	}
	if _, err := a.node.Router.Import(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(want, func(x, y entry) int {
		return cmp.Or(cmp.Compare(y.secs, x.secs), strings.Compare(x.id, y.id))
	})
	for i := range want {
		want[i].secs /= 1000
	}
	for _, wantNum := range []int{1000, 500, 501, 7, 0} {
		var got []entry
		cursor, pages := "", 0
		for {
			body := fmt.Sprintf(`{"From_Account":"star","FollowType":1,"StartCursor":%q,"WantNum":%d}`, cursor, wantNum)
			r := decodeGet(t, a.post(tencent.PathGet, body))
			pages++
			size := cmp.Or(wantNum, 100)
			if left := fans - len(got); len(r.FollowItem) != min(size, left) || (r.NextCursor == "") != (left <= size) {
				t.Fatalf("WantNum %d, page %d: %d items and NextCursor %q with %d left", wantNum, pages, len(r.FollowItem), r.NextCursor, left)
			}
			for _, it := range r.FollowItem {
				if it.ProfileItem == nil || len(it.ProfileItem) != 0 {
					t.Fatalf("ProfileItem %v: want []", it.ProfileItem)
				}
				got = append(got, entry{it.ToAccount, it.FollowTime})
			}
			if cursor = r.NextCursor; cursor == "" {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("WantNum %d: the pages differ from the list (%d entries, want %d)", wantNum, len(got), len(want))
		}
	}
	// The answer is valid JSON as encoding/json reads it, and the same
	// bytes when compacted the way the samples are spaced.
	s := a.post(tencent.PathGet, `{"From_Account":"star","FollowType":1,"WantNum":3}`)
	if !json.Valid([]byte(s)) || bytes.Contains([]byte(s), []byte("\n")) {
		t.Fatalf("not one line of JSON: %s", s)
	}
}
