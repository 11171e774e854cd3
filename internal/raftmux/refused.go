package raftmux

import (
	"sync"
	"time"
)

// refusalLogEvery is the least time between two log lines of one refusal
// reason. A scanner or a misconfigured node retrying in a loop would
// otherwise flood the log; the counts stay exact in OnRefused (metrics).
const refusalLogEvery = 10 * time.Second

// refusalLimiter rate-limits the refusal log lines, per reason.
type refusalLimiter struct {
	mu   sync.Mutex
	last map[string]time.Time
	skip map[string]int // refusals not logged since the last line
}

// allow reports whether a refusal for reason may be logged now and, if so,
// how many were suppressed since the previous line of that reason.
func (l *refusalLimiter) allow(reason string, now time.Time) (suppressed int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last, l.skip = make(map[string]time.Time), make(map[string]int)
	}
	if t, seen := l.last[reason]; seen && now.Sub(t) < refusalLogEvery {
		l.skip[reason]++
		return 0, false
	}
	suppressed = l.skip[reason]
	l.last[reason], l.skip[reason] = now, 0
	return suppressed, true
}

// refused reports a refused peer: to OnRefused always, to the log at Warn
// at most once per reason per refusalLogEvery.
func (m *Mux) refused(reason, remote string, err error) {
	if m.cfg.OnRefused != nil {
		m.cfg.OnRefused(reason)
	}
	if n, ok := m.refusals.allow(reason, time.Now()); ok {
		m.log.Warn("refused a raft peer", "reason", reason, "remote", remote, "error", err, "suppressed_since_last", n)
	}
}
