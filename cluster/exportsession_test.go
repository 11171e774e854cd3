package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/shard"
)

func exportEdges(t *testing.T, s *ExportSession) int {
	t.Helper()
	n := 0
	s.View().Following(shard.StartPosition, 1<<30, func([]byte, []byte, int64) bool { n++; return true })
	return n
}

func TestExportSessions(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Export = ExportConfig{IdleTimeout: 200 * time.Millisecond, MaxSessions: 2}
	n := openNode(t, cfg)
	defer n.Close()
	ctx := context.Background()
	if _, err := n.Follow(ctx, "a", []string{"b", "c"}, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	i := n.ShardOf("a")
	views := func() int64 { return n.UserStats().Views }

	s, err := n.StartExport(i)
	if err != nil {
		t.Fatal(err)
	}
	// Writes after the View do not show in it.
	if _, err := n.Follow(ctx, "a", []string{"d"}, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := exportEdges(t, s); got != 2 {
		t.Fatalf("session has %d edges, want 2", got)
	}
	n.EndExport(s, false)
	s2, err := n.ResumeExport(i, s.ID())
	if err != nil || s2 != s {
		t.Fatalf("resume: %v", err)
	}
	n.EndExport(s2, false)
	if _, err := n.ResumeExport((i+1)%cfg.Shards, s.ID()); !errors.Is(err, codes.ErrExportExpired) {
		t.Fatalf("session of another shard: %v", err)
	}

	// The cap: a third session is refused while two are open.
	s3, err := n.StartExport(i)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.StartExport(i); !errors.Is(err, codes.ErrOverloaded) {
		t.Fatalf("third session: %v", err)
	}
	if views() != 2 {
		t.Fatalf("%d live views, want 2", views())
	}
	// A session being read is not reaped, however long the read takes;
	// an idle one is.
	time.Sleep(2 * cfg.Export.IdleTimeout)
	if _, err := n.ResumeExport(i, s.ID()); !errors.Is(err, codes.ErrExportExpired) {
		t.Fatalf("idle session: %v", err)
	}
	if n.ExportSessions() != 1 || views() != 1 {
		t.Fatalf("%d sessions, %d views after the idle one expired", n.ExportSessions(), views())
	}
	n.EndExport(s3, true) // its last page: it stays for a retry of it, briefly
	s4, err := n.ResumeExport(i, s3.ID())
	if err != nil {
		t.Fatalf("retry of the last page: %v", err)
	}
	n.EndExport(s4, true)
	// Finished sessions make room for new ones at the cap.
	s5, err := n.StartExport(i)
	if err != nil {
		t.Fatal(err)
	}
	s6, err := n.StartExport(i)
	if err != nil {
		t.Fatalf("a finished session did not make room: %v", err)
	}
	if _, err := n.ResumeExport(i, s3.ID()); !errors.Is(err, codes.ErrExportExpired) {
		t.Fatalf("finished session pushed out: %v", err)
	}
	n.EndExport(s5, true)
	n.EndExport(s6, true)
	waitFor(t, "the finished sessions to end", 2*time.Second, func() bool { return n.ExportSessions() == 0 })
	if views() != 0 {
		t.Fatalf("%d views after the last page", views())
	}
	// A shard this node does not hold.
	if _, err := n.StartExport(cfg.Shards + 3); err == nil {
		t.Fatal("export of a shard that does not exist")
	}
}

// TestExportSessionsReleasedAtClose: closing the node releases every
// session, also one being read (when its read ends), and refuses new ones.
func TestExportSessionsReleasedAtClose(t *testing.T) {
	n := openNode(t, testConfig(t, t.TempDir()))
	a, err := n.StartExport(0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.StartExport(1)
	if err != nil {
		t.Fatal(err)
	}
	n.EndExport(b, false)
	n.Close()
	if n.ExportSessions() != 0 || n.UserStats().Views != 1 {
		t.Fatalf("after close: %d sessions, %d views (the one being read stays until it ends)", n.ExportSessions(), n.UserStats().Views)
	}
	n.EndExport(a, false)
	if v := n.UserStats().Views; v != 0 {
		t.Fatalf("%d views live after the last read ended", v)
	}
	if _, err := n.StartExport(0); !errors.Is(err, codes.ErrShuttingDown) {
		t.Fatalf("export after close: %v", err)
	}
}
