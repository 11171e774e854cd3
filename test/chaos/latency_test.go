package chaos

import (
	"testing"
	"time"
)

func TestLatencySlices(t *testing.T) {
	ms := int64(time.Millisecond)
	var ops []Op
	for i := range 100 {
		// First half: 1 ms each; second half: 3 ms; failures are 2 s and
		// must not count.
		d := ms
		if i >= 50 {
			d = 3 * ms
		}
		ops = append(ops, Op{Call: int64(i) * 10 * ms, Return: int64(i)*10*ms + d, Outcome: OK})
		ops = append(ops, Op{Call: int64(i) * 10 * ms, Return: int64(i)*10*ms + 2000*ms, Outcome: Failed})
	}
	s := LatencySlices(ops, 2)
	if len(s) != 2 || s[0].Ops != 50 || s[1].Ops != 50 || s[0].Median != time.Millisecond || s[1].Median != 3*time.Millisecond || s[1].P99 != 3*time.Millisecond {
		t.Fatalf("slices: %+v", s)
	}
	if LatencySlices(nil, 3) != nil {
		t.Fatal("no operations: want no slices")
	}
}
