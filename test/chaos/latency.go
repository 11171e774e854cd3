package chaos

import (
	"slices"
	"time"
)

// LatencySlice is the latency of the successful operations that started in
// one slice of a run.
type LatencySlice struct {
	From        time.Duration
	Ops         int
	Median, P99 time.Duration
}

// LatencySlices cuts the run into n equal slices by call time and gives
// each slice's median and 99th percentile latency of the operations that
// succeeded (failed ones end at a timeout and say nothing about speed).
func LatencySlices(ops []Op, n int) []LatencySlice {
	if len(ops) == 0 || n < 1 {
		return nil
	}
	var end int64
	for _, o := range ops {
		end = max(end, o.Call)
	}
	width := end/int64(n) + 1
	lat := make([][]time.Duration, n)
	for _, o := range ops {
		if o.Outcome == OK {
			k := int(o.Call / width)
			lat[k] = append(lat[k], time.Duration(o.Return-o.Call))
		}
	}
	out := make([]LatencySlice, n)
	for k, ls := range lat {
		out[k].From = time.Duration(int64(k) * width)
		out[k].Ops = len(ls)
		if len(ls) == 0 {
			continue
		}
		slices.Sort(ls)
		out[k].Median, out[k].P99 = ls[len(ls)/2], ls[len(ls)*99/100]
	}
	return out
}
