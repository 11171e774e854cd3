package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/followgraph/followgraph/httpapi"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// Real requests and responses, successes and errors alike, against the
// OpenAPI document the API serves: the document is valid OpenAPI 3, every
// request the test sends matches it, and so does every response.
func TestResponsesMatchOpenAPI(t *testing.T) {
	st := tokenStore(t)
	s := startAPI(t, func(c *httpapi.Config) { c.Tokens, c.MaxBody = st, 4096 }, nil)
	served := s.do("GET", "/v1/openapi.json", "")
	if served.status != 200 || !bytes.Equal(served.raw, httpapi.OpenAPI()) {
		t.Fatalf("GET /v1/openapi.json: %d", served.status)
	}
	ctx := context.Background()
	router := openAPIRouter(t, served.raw, s.url)
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}
	checkIsLive(t, router, s.url, opts)
	for _, c := range openAPICases() {
		t.Run(c.name, func(t *testing.T) {
			resp := s.do(c.method, c.path, c.body, c.hdr...)
			if resp.status != c.status {
				t.Fatalf("status %d, want %d: %s", resp.status, c.status, resp.raw)
			}
			var any map[string]any
			if err := json.Unmarshal(resp.raw, &any); err != nil {
				t.Fatalf("body is not a JSON object: %q", resp.raw)
			}
			req, _ := http.NewRequest(c.method, s.url+c.path, strings.NewReader(c.body))
			req.Header.Set("Content-Type", "application/json")
			if c.method == "GET" {
				req, _ = http.NewRequest(c.method, s.url+c.path, nil)
			}
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatalf("no route in the document: %v", err)
			}
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
			if err := openapi3filter.ValidateRequest(ctx, in); (err == nil) != c.validRequest {
				t.Fatalf("request validation: %v (want valid: %v)", err, c.validRequest)
			}
			in.Request, _ = http.NewRequest(c.method, s.url+c.path, nil)
			out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.status, Header: resp.header, Options: opts}
			out.Body = io.NopCloser(bytes.NewReader(resp.raw))
			if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
				t.Fatalf("response %d %s does not match the document: %v", resp.status, resp.raw, err)
			}
		})
	}
}

// openAPIRouter loads and validates the document and routes its paths
// on the test server at url.
func openAPIRouter(t *testing.T, raw []byte, url string) routers.Router {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the document is not valid OpenAPI: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: url}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return router
}

// checkIsLive makes sure the validation can fail: a response of the wrong
// shape does.
func checkIsLive(t *testing.T, router routers.Router, url string, opts *openapi3filter.Options) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/v1/check", nil)
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Fatal(err)
	}
	wrong := &openapi3filter.ResponseValidationInput{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Options: opts,
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}}
	wrong.SetBodyBytes([]byte(`{"results":[{"userId":"a","code":0}]}`))
	if openapi3filter.ValidateResponse(context.Background(), wrong) == nil {
		t.Fatal("a check result without followType passed the validation")
	}
}

// openAPICase is one request of TestResponsesMatchOpenAPI.
type openAPICase struct {
	name, method, path, body string
	hdr                      []string
	status                   int
	validRequest             bool // the request itself matches the document
}

// openAPICases are requests in order (they build on each other), for a
// server with tokenStore's tokens and a body limit of 4 KiB.
func openAPICases() []openAPICase {
	admin := []string{"Authorization", "Bearer admin-secret"}
	reader := []string{"Authorization", "Bearer r-secret", httpapi.TokenNameHeader, "reader"}
	slow := []string{"Authorization", "Bearer slow-secret", httpapi.TokenNameHeader, "slow"}
	return []openAPICase{
		{"follow", "POST", "/v1/follow", `{"actor":"alice","targets":["bob","alice",""],"sync":true}`, admin, 200, true},
		{"follow back", "POST", "/v1/follow", `{"actor":"bob","targets":["alice"],"sync":true}`, admin, 200, true},
		{"unfollow", "POST", "/v1/unfollow", `{"actor":"alice","targets":["zed"]}`, admin, 200, true},
		{"followers", "GET", "/v1/users/alice/followers?limit=1", "", admin, 200, true},
		{"following", "GET", "/v1/users/alice/following?consistency=any", "", admin, 200, true},
		{"mutual", "GET", "/v1/users/bob/mutual?limit=0&consistency=linearizable", "", reader, 200, true},
		{"info", "POST", "/v1/info", `{"users":["alice","","nobody"],"consistency":"leader"}`, reader, 200, true},
		{"check", "POST", "/v1/check", `{"actor":"alice","targets":["bob","x"]}`, reader, 200, true},
		{"known followers", "GET", "/v1/users/alice/known-followers?viewer=bob&limit=5", "", reader, 200, true},
		{"common following", "GET", "/v1/users/alice/common-following?other=bob&consistency=any", "", reader, 200, true},
		{"relationships", "POST", "/v1/relationships", `{"pairs":[{"from":"alice","to":"bob"},{"from":"","to":"bob"}]}`, reader, 200, true},
		{"relationships malformed", "POST", "/v1/relationships", `{"pairs":[{"from":"alice"}]}`, reader, 400, false},
		{"set query without other", "GET", "/v1/users/alice/common-following", "", reader, 400, false},
		{"status", "GET", "/v1/status", "", reader, 200, true},
		{"shardmap", "GET", "/v1/shardmap", "", reader, 200, true},
		{"no token", "POST", "/v1/check", `{"actor":"alice","targets":["bob"]}`, nil, 401, true},
		{"role", "POST", "/v1/follow", `{"actor":"alice","targets":["bob"]}`, reader, 403, true},
		{"rate 1", "GET", "/v1/users/alice/followers", "", slow, 200, true},
		{"rate 2", "GET", "/v1/users/alice/followers", "", slow, 429, true},
		{"too many targets", "POST", "/v1/follow", `{"actor":"a","targets":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17","18","19","20","21"]}`, admin, 400, true},
		{"malformed", "POST", "/v1/check", `{"actor":`, admin, 400, false},
		{"unknown field", "POST", "/v1/info", `{"users":["a"],"x":1}`, admin, 400, false},
		{"limit", "GET", "/v1/users/a/followers?limit=900", "", admin, 400, false},
		{"too large", "POST", "/v1/check", `{"actor":"a","targets":["` + strings.Repeat("x", 5000) + `"]}`, admin, 413, true},
	}
}
