package main

import (
	"os"
	"strings"
	"sync"
	"time"

	"github.com/followgraph/followgraph/internal/clock"
	"github.com/hashicorp/go-hclog"
)

// testClockEnv names a file holding a wall-clock offset (a Go duration
// such as +1h or -90s; empty or missing means 0). It is for fault
// injection only: the chaos suite jumps one node's wall clock by writing
// the file, which a Go process cannot otherwise be made to see.
const testClockEnv = "FOLLOWD_TEST_CLOCK_FILE"

// startTestClock applies the offset in $FOLLOWD_TEST_CLOCK_FILE now and
// then every 100 ms until the returned stop is called (stop may be
// called more than once). Without the variable it does nothing.
func startTestClock(log hclog.Logger) (stop func()) {
	path := os.Getenv(testClockEnv)
	if path == "" {
		return func() {}
	}
	log.Warn("test clock enabled: the wall clock follows the offset in a file", "file", path)
	last := time.Duration(0)
	apply := func() {
		d, err := readOffset(path)
		if err != nil {
			log.Error("test clock: bad offset", "file", path, "error", err)
			return
		}
		if d != last {
			log.Warn("test clock: wall clock offset changed", "from", last, "to", d)
			clock.SetOffset(d)
			last = d
		}
	}
	apply()
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				apply()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		<-exited
	}
}

// readOffset reads the offset file; a missing or empty file is no offset.
func readOffset(path string) (time.Duration, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return 0, nil
	}
	return time.ParseDuration(strings.TrimPrefix(s, "+"))
}
