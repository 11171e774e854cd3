package stdlog

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestLevelsAndRelevel(t *testing.T) {
	var buf bytes.Buffer
	l := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Debug})
	std := New(l, ClosedAtShutdown)
	std.Printf("[WARN] memberlist: something odd")
	std.Printf("[ERR] memberlist: Failed to send: write udp: use of closed network connection")
	std.Printf("[DEBUG] yamux: detail")
	std.Printf("no prefix at all")
	out := buf.String()
	for _, want := range []string{"[WARN]  memberlist: something odd", "[DEBUG] memberlist: Failed to send", "[DEBUG] yamux: detail", "[INFO]  no prefix at all"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "[ERROR]") {
		t.Errorf("a closed-connection error was not demoted:\n%s", out)
	}
}
