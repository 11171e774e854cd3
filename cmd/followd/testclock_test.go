package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/followgraph/followgraph/internal/clock"
	"github.com/hashicorp/go-hclog"
)

func TestReadOffset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "offset")
	if d, err := readOffset(path); d != 0 || err != nil {
		t.Fatalf("missing file: %v, %v", d, err)
	}
	for in, want := range map[string]time.Duration{"+1h\n": time.Hour, "-90s": -90 * time.Second, " \n": 0, "0s": 0} {
		os.WriteFile(path, []byte(in), 0o644)
		if d, err := readOffset(path); d != want || err != nil {
			t.Errorf("%q: %v, %v; want %v", in, d, err, want)
		}
	}
	os.WriteFile(path, []byte("soon"), 0o644)
	if _, err := readOffset(path); err == nil {
		t.Error("a bad offset was accepted")
	}
}

// The poller applies a changed file within a few polls and stops.
func TestTestClockFollowsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "offset")
	os.WriteFile(path, []byte("+1h"), 0o644)
	t.Setenv(testClockEnv, path)
	defer clock.SetOffset(0)
	stop := startTestClock(hclog.NewNullLogger())
	defer stop()
	if clock.Offset() != time.Hour {
		t.Fatalf("offset %v at start, want 1h", clock.Offset())
	}
	os.WriteFile(path, []byte("-2m"), 0o644)
	deadline := time.Now().Add(5 * time.Second)
	for clock.Offset() != -2*time.Minute && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if clock.Offset() != -2*time.Minute {
		t.Fatalf("offset %v, want -2m", clock.Offset())
	}
	stop()
}
