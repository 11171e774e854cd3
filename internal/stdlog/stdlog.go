// Package stdlog carries the log lines of libraries that log through the
// standard library's *log.Logger with "[LEVEL]" prefixes (memberlist,
// yamux) into an hclog.Logger, at their level, with a hook to re-level
// lines the node knows to be expected (a socket closed at shutdown, a
// restarted node refuting its own death).
package stdlog

import (
	"log"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// Relevel returns the level a line (without its prefix) should be logged
// at, given the level its prefix says.
type Relevel func(level hclog.Level, line string) hclog.Level

// New returns a *log.Logger whose lines go to l. relevel may be nil.
func New(l hclog.Logger, relevel Relevel) *log.Logger {
	return log.New(writer{l, relevel}, "", 0)
}

// ClosedAtShutdown demotes errors and warnings about a closed network
// connection to debug: a library whose connections the node closes on
// shutdown logs one per connection, and nothing is wrong.
func ClosedAtShutdown(level hclog.Level, line string) hclog.Level {
	if level >= hclog.Warn && strings.Contains(line, "use of closed network connection") {
		return hclog.Debug
	}
	return level
}

var prefixes = []struct {
	prefix string
	level  hclog.Level
}{{"[TRACE]", hclog.Trace}, {"[DEBUG]", hclog.Debug}, {"[INFO]", hclog.Info}, {"[WARN]", hclog.Warn}, {"[ERR]", hclog.Error}, {"[ERROR]", hclog.Error}}

type writer struct {
	l       hclog.Logger
	relevel Relevel
}

func (w writer) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := hclog.Info
	for _, pf := range prefixes {
		if rest, ok := strings.CutPrefix(line, pf.prefix); ok {
			line, level = strings.TrimSpace(rest), pf.level
			break
		}
	}
	if w.relevel != nil {
		level = w.relevel(level, line)
	}
	w.l.Log(level, line)
	return len(p), nil
}
