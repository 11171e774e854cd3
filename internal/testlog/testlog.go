// Package testlog sends the logs of servers that tests start to the test's
// own log, so they show only when a test fails.
package testlog

import (
	"io"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// Writer returns a writer into t's log that goes quiet once t's cleanups
// run: memberlist and raft goroutines may log a line after a node closed,
// and t.Log after the test completed panics.
func Writer(t testing.TB) io.Writer {
	w := &writer{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}

type writer struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Helper()
		w.t.Log(string(p))
	}
	return len(p), nil
}

// Logger returns a logger named name at level (trace, debug, info, warn,
// error) into t's log.
func Logger(t testing.TB, name, level string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.LevelFromString(level), Output: Writer(t)})
}
