// Package clock is followd's wall clock: time.Now plus an offset that is
// zero in production. Tests set the offset to make one process's wall
// clock jump while its monotonic clock (timers, timeouts, durations) keeps
// running, which is exactly what a real wall-clock step (NTP, an operator
// running date -s) does to a Go process. A shared library shim cannot do
// this for Go, which reads the time without calling libc, and a time
// namespace cannot offset the real-time clock.
package clock

import (
	"sync/atomic"
	"time"
)

var offset atomic.Int64 // nanoseconds added to every wall-clock read

// Now returns the wall-clock time, shifted by the offset.
func Now() time.Time {
	if d := offset.Load(); d != 0 {
		// Round(0) drops the monotonic reading: a shifted time must not
		// compare or subtract by the unshifted monotonic clock.
		return time.Now().Add(time.Duration(d)).Round(0)
	}
	return time.Now()
}

// SetOffset makes Now run d ahead of (negative: behind) the real clock.
func SetOffset(d time.Duration) { offset.Store(int64(d)) }

// Offset returns the current offset.
func Offset() time.Duration { return time.Duration(offset.Load()) }
