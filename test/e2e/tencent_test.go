package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tencentOK is the tail of every successful Tencent-shaped answer.
const tencentOK = `"ActionStatus": "OK","ErrorCode": 0,"ErrorInfo": "","ErrorDisplay": ""}`

// curl posts body to url with curl, as a shell script calling Tencent's
// REST API would, and returns the answer.
func curl(t *testing.T, url, body string) string {
	t.Helper()
	out, err := exec.Command("curl", "-sS", "--max-time", "10", "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", body, url).Output()
	if err != nil {
		t.Fatalf("curl %s: %v", url, err)
	}
	return string(out)
}

// The Tencent-compatible endpoints on the real followd's HTTP port: the
// official samples with curl, a named token for identifier/usersig with
// its role, and Go's net/http for the status and content type.
func TestTencentEndpoints(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is not installed (make deps installs it)")
	}
	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte("admin admin s3cret\nreader read r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, t.TempDir(), "--token-file", file)
	url := func(api, id, sig string) string {
		return fmt.Sprintf("http://%s/v4/follow/%s?sdkappid=88888888&identifier=%s&usersig=%s&random=99999999&contenttype=json", p.http, api, id, sig)
	}
	admin := func(api string) string { return url(api, "admin", "s3cret") }

	if got, want := curl(t, admin("follow_add"), `{"From_Account":"UserID_001","FollowItem":[{"To_Account":"UserID_002"},{"To_Account":"UserID_003"}]}`),
		`{"ResultItem": [{"To_Account": "UserID_002","ResultCode": 0,"ResultInfo": ""},{"To_Account": "UserID_003","ResultCode": 0,"ResultInfo": ""}],`+tencentOK; got != want {
		t.Fatalf("follow_add:\n got %s\nwant %s", got, want)
	}
	wantInfo := `{"FollowInfo": [{"To_Account": "UserID_001","ResultCode": 0,"ResultInfo": "","FollowerCount": 0,"FollowingCount": 2,"MutualFollowingCount": 0},{"To_Account": "UserID_002","ResultCode": 0,"ResultInfo": "","FollowerCount": 1,"FollowingCount": 0,"MutualFollowingCount": 0},{"To_Account": "UserID_003","ResultCode": 0,"ResultInfo": "","FollowerCount": 1,"FollowingCount": 0,"MutualFollowingCount": 0}],` + tencentOK
	var got string
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		// The followers' side lands on their shards just after the answer.
		if got = curl(t, url("follow_get_info", "reader", "r"), `{"From_Account":"UserID_001","To_Account":["UserID_001", "UserID_002", "UserID_003"]}`); got == wantInfo {
			break
		}
	}
	if got != wantInfo {
		t.Fatalf("follow_get_info:\n got %s\nwant %s", got, wantInfo)
	}
	got = curl(t, url("follow_get", "reader", "r"), `{"From_Account":"UserID_001","FollowType":2,"StartCursor":"","WantNum":100,}`)
	if !strings.HasPrefix(got, `{"FollowItem": [{"To_Account": "UserID_002","FollowTime": 1`) || !strings.HasSuffix(got, `"ProfileItem": []}],"NextCursor": "",`+tencentOK) {
		t.Fatalf("follow_get: %s", got)
	}
	if got, want := curl(t, url("follow_delete", "reader", "r"), `{"From_Account":"UserID_001","To_Account":["UserID_002"]}`),
		`{"ActionStatus": "FAIL","ErrorCode": 30004,"ErrorInfo": "not allowed (40012): unfollow needs the write role; identifier \"reader\" has read","ErrorDisplay": ""}`; got != want {
		t.Fatalf("follow_delete with a read token:\n got %s\nwant %s", got, want)
	}
	if got := curl(t, url("follow_check", "admin", "wrong"), `{"From_Account":"UserID_001","To_Account":["UserID_002"]}`); !strings.Contains(got, `"ErrorCode": 40004,`) {
		t.Fatalf("a wrong usersig: %s", got)
	}

	// The token metrics count the HTTP requests too.
	resp, err := http.Get("http://" + p.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{`followgraph_token_requests_total{result="allowed",token="reader"}`, `followgraph_token_requests_total{result="not_allowed",token="reader"} 1`} {
		if !strings.Contains(string(metrics), m) {
			t.Errorf("/metrics has no %s", m)
		}
	}

	// Go's client: every answer is a 200 with JSON, errors included.
	for _, c := range []struct{ method, url, body, want string }{
		{http.MethodPost, admin("follow_check"), `{"From_Account":"UserID_001","To_Account":["UserID_002","UserID_004"]}`,
			`{"ResultItem": [{"To_Account": "UserID_002","ResultCode": 0,"ResultInfo": "","FollowType": 2},{"To_Account": "UserID_004","ResultCode": 0,"ResultInfo": "","FollowType": 0}],` + tencentOK},
		{http.MethodPost, admin("follow_check"), `{"From_Account":`, `"ErrorCode": 30001,`},
		{http.MethodGet, admin("follow_check"), ``, `"ErrorCode": 30001,`},
		{http.MethodPost, admin("nothing_here"), `{}`, `"ErrorCode": 40007,`},
	} {
		req, _ := http.NewRequest(c.method, c.url, strings.NewReader(c.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" || !strings.Contains(string(b), c.want) {
			t.Errorf("%s %s: %d %q %s; want 200, JSON, %s", c.method, c.url, resp.StatusCode, resp.Header.Get("Content-Type"), b, c.want)
		}
	}
}
