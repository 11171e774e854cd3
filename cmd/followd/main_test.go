package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/cluster"
)

func startDaemon(t *testing.T, args ...string) (*daemon, context.CancelFunc, chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *daemon, 1)
	done := make(chan error, 1)
	base := []string{"--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--shards", "4", "--log-level", "warn"}
	go func() { done <- run(ctx, append(base, args...), io.Discard, ready) }()
	select {
	case d := <-ready:
		return d, cancel, done
	case err := <-done:
		cancel()
		t.Fatalf("followd did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("followd did not start in time")
	}
	return nil, nil, nil
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestDaemonServesAndStops(t *testing.T) {
	d, cancel, done := startDaemon(t)
	addr := d.ln.Addr().String()
	httpAddr := "http://" + d.httpLn.Addr().String()
	ctx := context.Background()
	c, err := client.New(ctx, client.Config{Addrs: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Follow(ctx, "a", []string{"b", "c"}, client.Sync()); err != nil {
		t.Fatal(err)
	}
	if p, err := c.Followers(ctx, "b"); err != nil || len(p.Items) != 1 {
		t.Fatalf("followers: %+v %v", p, err)
	}
	if code, body := get(t, httpAddr+"/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("healthz: %d %q", code, body)
	}
	if code, body := get(t, httpAddr+"/readyz"); code != 200 {
		t.Fatalf("readyz: %d %q", code, body)
	}
	_, metrics := get(t, httpAddr+"/metrics")
	for _, want := range []string{
		`followgraph_requests_total{code="0",op="follow"} 1`,
		`followgraph_request_duration_seconds_bucket{op="followers"`,
		"followgraph_raft_commit_duration_seconds_count",
		"followgraph_raft_batch_commands_bucket",
		`followgraph_relay_pending_records{shard="0"}`,
		`followgraph_relay_oldest_seconds{shard="0"}`,
		`followgraph_shard_edges{shard=`,
		`followgraph_shard_users{shard=`,
		`followgraph_shard_leader{shard="3"} 1`,
		`followgraph_shard_raft_log_entries{shard="0"}`,
		`followgraph_shard_log_bytes_since_snapshot{shard="0"}`,
		`followgraph_shard_snapshot_bytes{shard="0"}`,
		`followgraph_shard_snapshots_total{shard="0"}`,
		`followgraph_shard_snapshot_seconds_total{shard="0"}`,
		"followgraph_raft_log_segments 1",
		"followgraph_raft_log_live_bytes",
		"followgraph_raft_log_syncs_total",
		"followgraph_raft_log_group_commits_total",
		"followgraph_raft_log_writes_total",
		"process_resident_memory_bytes",
		`followgraph_build_info{version="dev"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if !strings.Contains(metrics, "followgraph_connections ") || strings.Contains(metrics, "followgraph_connections 0") {
		t.Error("open connections are not counted")
	}
	// An error is counted by its code.
	c.Follow(ctx, "a", make([]string, 21))
	if _, m := get(t, httpAddr+"/metrics"); !strings.Contains(m, `followgraph_requests_total{code="30001",op="follow"} 1`) {
		t.Error("errors are not counted by code")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("graceful stop: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("followd did not stop")
	}
}

func TestFlagsFromEnvironment(t *testing.T) {
	t.Setenv("FOLLOWD_LISTEN", "127.0.0.1:9999")
	t.Setenv("FOLLOWD_SHARDS", "8")
	t.Setenv("FOLLOWD_TOKEN", "env-token")
	o, err := parseFlags([]string{"--shards", "32"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.listen != "127.0.0.1:9999" || o.token != "env-token" || o.shards != 32 {
		t.Fatalf("env then flags: %+v", o)
	}
	t.Setenv("FOLLOWD_SHARDS", "many")
	if _, err := parseFlags(nil, io.Discard); err == nil || !strings.Contains(err.Error(), "FOLLOWD_SHARDS") {
		t.Fatalf("bad env value: %v", err)
	}
	if _, err := parseFlags([]string{"extra"}, io.Discard); err == nil {
		t.Fatal("positional argument accepted")
	}
	for in, want := range map[string]int64{"8GiB": 8 << 30, "512MiB": 512 << 20, "1000": 1000, "1.5GB": 1.5e9} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v", in, got, err)
		}
	}
	if _, err := parseBytes("lots"); err == nil {
		t.Error("parseBytes accepted nonsense")
	}
}

func TestRefusesOtherShardCount(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--data-dir", dir, "--listen", "127.0.0.1:0", "--http", "", "--log-level", "error"}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *daemon, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, append(args, "--shards", "4"), io.Discard, ready) }()
	<-ready
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), append(args, "--shards", "8"), io.Discard, nil)
	if !errors.Is(err, cluster.ErrShardCount) || !strings.Contains(err.Error(), "4 shards") {
		t.Fatalf("other shard count: %v", err)
	}
}

func TestTokenRequired(t *testing.T) {
	d, cancel, done := startDaemon(t, "--token", "s3cret")
	defer func() { cancel(); <-done }()
	addr := d.ln.Addr().String()
	if _, err := client.New(context.Background(), client.Config{Addrs: []string{addr}}); !errors.Is(err, client.ErrAuthFailed) {
		t.Fatalf("without token: %v", err)
	}
	c, err := client.New(context.Background(), client.Config{Addrs: []string{addr}, Token: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
