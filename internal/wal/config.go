package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
)

// ErrClosed is returned by every method of a Log and of its streams after
// Close.
var ErrClosed = errors.New("wal: log is closed")

// Config tunes a Log. The zero value means the defaults.
type Config struct {
	// SegmentSize is the preallocated size of a segment file. Default 8 MiB,
	// at least 64 KiB, at most 4 GiB - 1 (record offsets are 32-bit).
	// Creating a segment (zero-filled and synced) holds up every stream's
	// appends, so a small one keeps that pause short and reclaims space in
	// small steps.
	SegmentSize int64

	// NoSync skips every fsync and fdatasync. Only for tests and benchmarks:
	// a crash of the machine may then lose or garble acknowledged entries.
	NoSync bool

	// Logger gets recovery and reclamation messages. Nil means none.
	Logger hclog.Logger

	// SyncDepth is how many group commits may be in flight at once (see the
	// package documentation, Group commit). Default 1, at most 64: raft has
	// at most one append per stream in flight, so with one fdatasync in
	// flight the waiting appends gather into the largest groups. A disk that
	// completes concurrent fdatasyncs in parallel may do better with 2-4.
	SyncDepth int

	// OnSync, if set, is called after each fdatasync of segment data with
	// how long it took (for a latency histogram). It must not block.
	OnSync func(time.Duration)
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{SegmentSize: 8 << 20, SyncDepth: 1}
}

// Validate reports a setting out of range. Zero values are valid: they mean
// the defaults.
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.SegmentSize == 0 {
		c.SegmentSize = d.SegmentSize
	}
	if c.SegmentSize < minSegmentSize || c.SegmentSize > maxSegmentSize {
		return c, fmt.Errorf("wal: SegmentSize %d outside [%d, %d]", c.SegmentSize, minSegmentSize, int64(maxSegmentSize))
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.SyncDepth == 0 {
		c.SyncDepth = d.SyncDepth
	}
	if c.SyncDepth < 0 || c.SyncDepth > 64 {
		return c, fmt.Errorf("wal: SyncDepth %d outside [1, 64]", c.SyncDepth)
	}
	return c, nil
}

// mkdir creates dir and, if it did not exist, makes its entry durable.
func mkdir(dir string, noSync bool) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	if noSync {
		return nil
	}
	parent, err := os.Open(filepath.Dir(filepath.Clean(dir)))
	if err != nil {
		return fmt.Errorf("wal: %w", err)
	}
	defer parent.Close()
	return syncDir(parent)
}
