package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestMonitoringMetricsExist checks the checked-in alert rules and Grafana
// dashboard against a live followd's /metrics: every followgraph_ and
// process_ metric they name is exported (histograms by their _bucket,
// _sum and _count series), and the dashboard is valid JSON with a query
// in every panel. promtool checks the rules' syntax (make check-monitoring).
func TestMonitoringMetricsExist(t *testing.T) {
	// A webhook, so that its metrics are exported too (the endpoint need
	// not exist: the metrics are there from the start).
	d, cancel, done := startDaemon(t, "--webhook-url", "http://127.0.0.1:1/hook")
	defer func() { cancel(); <-done }()
	_, metrics := get(t, "http://"+d.httpLn.Addr().String()+"/metrics")
	exported := map[string]bool{}
	for _, line := range strings.Split(metrics, "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			exported[f[2]] = true
			if f[3] == "histogram" {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					exported[f[2]+s] = true
				}
			}
		}
	}
	names := regexp.MustCompile(`\b(followgraph|process)_[a-z_]+\b`)
	for _, file := range []string{"../../monitoring/alerts.yml", "../../monitoring/dashboard.json"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		found := names.FindAllString(string(b), -1)
		if len(found) < 5 {
			t.Fatalf("%s names only %d metrics", file, len(found))
		}
		for _, n := range found {
			if !exported[n] {
				t.Errorf("%s uses %s, which followd does not export", file, n)
			}
		}
	}
	b, _ := os.ReadFile("../../monitoring/dashboard.json")
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil || len(dash.Panels) == 0 {
		t.Fatalf("dashboard: %d panels, %v", len(dash.Panels), err)
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 || p.Targets[0].Expr == "" {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
}
