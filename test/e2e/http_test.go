package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/codes"
)

// httpCall sends one request to followd's JSON API with Go's client and
// returns the status and the decoded JSON body.
func httpCall(t *testing.T, hc *http.Client, method, url, body string, hdr ...string) (int, http.Header, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object", method, url, raw)
	}
	return resp.StatusCode, resp.Header, v
}

// curlArgs runs curl with args and returns its output (with -i, the status
// line and headers too).
func curlArgs(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("curl", append([]string{"-sS", "--max-time", "10"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %q: %v\n%s", args, err, out)
	}
	return string(out)
}

// The JSON API on the followd binary: tokens, roles and rates as on the
// binary port, writes that the binary protocol sees (and the reverse),
// keep-alive, and pprof off by default; with Go's client and with curl.
func TestHTTPAPI(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is not installed (.ci/deps.sh installs it)")
	}
	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte("reader read r-secret\nwriter write w-secret\nslow read s-secret rate=0.2 burst=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, t.TempDir(), "--token-file", file, "--token", "admin-secret")
	goClientChecks(t, p)
	curlChecks(t, "http://"+p.http)
}

// goClientChecks: Go's client, next to the binary protocol.
func goClientChecks(t *testing.T, p *proc) {
	base := "http://" + p.http
	hc := &http.Client{}
	writer := []string{"Authorization", "Bearer w-secret", "X-Followgraph-Token-Name", "writer"}
	reader := []string{"Authorization", "Bearer r-secret", "X-Followgraph-Token-Name", "reader"}

	// Go's client: a follow, then the binary protocol sees it.
	status, _, v := httpCall(t, hc, "POST", base+"/v1/follow", `{"actor":"alice","targets":["bob","alice"],"sync":true}`, writer...)
	if res := v["results"].([]any); status != 200 || res[0].(map[string]any)["code"].(float64) != 0 || res[1].(map[string]any)["code"].(float64) != float64(codes.InvalidParam) {
		t.Fatalf("follow: %d %v", status, v)
	}
	c := newClient(t, p.addr, "admin-secret")
	if ct, err := c.Check(context.Background(), "bob", "alice"); err != nil || ct[0].FollowType != 1 {
		t.Fatalf("binary check of an HTTP follow: %+v %v", ct, err)
	}
	// ... and the reverse: a binary follow read over HTTP.
	if _, err := c.Follow(context.Background(), "bob", []string{"alice"}, client.Sync()); err != nil {
		t.Fatal(err)
	}
	// bob's own side of his follow is visible at once, alice's follow of
	// him was sync: bob's mutual list has alice.
	status, _, v = httpCall(t, hc, "GET", base+"/v1/users/bob/mutual", "", reader...)
	if items := v["items"].([]any); status != 200 || len(items) != 1 || items[0].(map[string]any)["userId"] != "alice" {
		t.Fatalf("mutual over HTTP: %d %v", status, v)
	}
	// Roles and authentication.
	if status, _, v = httpCall(t, hc, "POST", base+"/v1/follow", `{"actor":"alice","targets":["carol"]}`, reader...); status != 403 || v["code"].(float64) != float64(codes.NotAllowed) {
		t.Fatalf("reader follows: %d %v", status, v)
	}
	if status, _, v = httpCall(t, hc, "POST", base+"/v1/check", `{"actor":"alice","targets":["bob"]}`); status != 401 || v["code"].(float64) != float64(codes.AuthFailed) {
		t.Fatalf("no token: %d %v", status, v)
	}
	// Keep-alive: the second request reuses the first one's connection.
	reused := false
	trace := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
	req, _ := http.NewRequestWithContext(trace, "GET", base+"/v1/users/alice/followers", nil)
	req.Header.Set("Authorization", "Bearer r-secret")
	req.Header.Set("X-Followgraph-Token-Name", "reader")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if !reused || resp.StatusCode != 200 {
		t.Fatalf("keep-alive: reused %v, status %d", reused, resp.StatusCode)
	}
}

// curlChecks: curl, as a user would.
func curlChecks(t *testing.T, base string) {
	// Basic credentials, a page, errors.
	out := curlArgs(t, "-u", "writer:w-secret", "-H", "Content-Type: application/json", "-d", `{"actor":"carol","targets":["alice"],"sync":true}`, base+"/v1/follow")
	if !strings.Contains(out, `{"results":[{"userId":"alice","code":0,"info":""}]}`) {
		t.Fatalf("curl follow: %s", out)
	}
	out = curlArgs(t, "-u", "reader:r-secret", base+"/v1/users/alice/followers?limit=1")
	var page struct {
		Items      []struct{ UserID string }
		NextCursor string
	}
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Items) != 1 || page.NextCursor == "" {
		t.Fatalf("curl followers: %s", out)
	}
	out = curlArgs(t, "-u", "reader:r-secret", base+"/v1/users/alice/followers?limit=1&cursor="+page.NextCursor)
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Items) != 1 || page.NextCursor != "" {
		t.Fatalf("curl second page: %s", out)
	}
	out = curlArgs(t, "-i", "-u", "reader:r-secret", "-d", `{"actor":"alice","targets":"bob"}`, base+"/v1/check")
	if !strings.HasPrefix(out, "HTTP/1.1 400") || !strings.Contains(out, `"code":30001`) {
		t.Fatalf("curl malformed check: %s", out)
	}
	out = curlArgs(t, "-i", "-X", "DELETE", base+"/v1/follow")
	if !strings.HasPrefix(out, "HTTP/1.1 405") || !regexp.MustCompile(`(?i)allow: POST`).MatchString(out) || !strings.Contains(out, `"code":40007`) {
		t.Fatalf("curl wrong method: %s", out)
	}
	// A user ID with a slash travels escaped in the path.
	curlArgs(t, "-u", "writer:w-secret", "-d", `{"actor":"a/b","targets":["alice"]}`, base+"/v1/follow")
	out = curlArgs(t, "-u", "reader:r-secret", base+"/v1/users/a%2Fb/following")
	if !strings.Contains(out, `"items":[{"userId":"alice"`) {
		t.Fatalf("curl following of a/b: %s", out)
	}
	// The slow token: one request, then 429 with a Retry-After of 5 s.
	curlArgs(t, "-H", "Authorization: Bearer s-secret", "-H", "X-Followgraph-Token-Name: slow", base+"/v1/shardmap")
	out = curlArgs(t, "-i", "-H", "Authorization: Bearer s-secret", "-H", "X-Followgraph-Token-Name: slow", base+"/v1/shardmap")
	if !strings.HasPrefix(out, "HTTP/1.1 429") || !regexp.MustCompile(`(?i)retry-after: 5\r\n`).MatchString(out) || !strings.Contains(out, `"code":40011`) {
		t.Fatalf("curl over the rate: %s", out)
	}
	// pprof is off by default; the OpenAPI document is public.
	if out = curlArgs(t, "-o", "/dev/null", "-w", "%{http_code}", base+"/debug/pprof/"); out != "404" {
		t.Fatalf("pprof without --http-pprof: %s", out)
	}
	if out = curlArgs(t, "-o", "/dev/null", "-w", "%{http_code}", base+"/v1/openapi.json"); out != "200" {
		t.Fatalf("openapi.json: %s", out)
	}
	// The HTTP requests are counted in the token metrics.
	if out = curlArgs(t, base+"/metrics"); !regexp.MustCompile(`followgraph_token_requests_total\{[^}]*token="reader"[^}]*\} [1-9]`).MatchString(out) {
		t.Fatalf("no token metrics for the reader:\n%s", grepLines(out, "token"))
	}
}

// With --http-pprof the profiles are served.
func TestHTTPPprofFlag(t *testing.T) {
	p := start(t, t.TempDir(), "--http-pprof")
	if out := curlArgs(t, "-o", "/dev/null", "-w", "%{http_code}", "http://"+p.http+"/debug/pprof/"); out != "200" {
		t.Fatalf("pprof with --http-pprof: %s", out)
	}
	// Open without tokens, as the binary port.
	out := curlArgs(t, "-d", `{"users":["nobody"]}`, "http://"+p.http+"/v1/info")
	if out != `{"results":[{"userId":"nobody","code":0,"following":0,"followers":0,"mutual":0}]}` {
		t.Fatalf("info without tokens: %s", out)
	}
}

// followbench's smoke preset through the JSON API: it loads, runs every
// operation and verifies the graph with no errors.
func TestFollowbenchOverHTTP(t *testing.T) {
	p := start(t, t.TempDir())
	out, err := exec.Command(followbench, "run", "--preset", "smoke", "--target", "http://"+p.http).CombinedOutput()
	text := string(out)
	if err != nil || !strings.Contains(text, "0 violations") || !strings.Contains(text, "target followd-http") {
		t.Fatalf("followbench over HTTP: %v\n%s", err, text)
	}
	if m := regexp.MustCompile(`(?m)^\s+all\s.*\s(\S+)$`).FindStringSubmatch(text); m == nil || m[1] != "0" {
		t.Fatalf("errors in the run:\n%s", text)
	}
}
