package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"
)

// The lean reader agrees with encoding/json on every body both accept.
func FuzzDecodeResults(f *testing.F) {
	f.Add([]byte(`{"results":[{"userId":"a","code":0,"followType":3}]}`))
	f.Add([]byte(`{"results":[{"userId":"a\"b","code":40001,"info":"x","following":1,"followers":2,"mutual":3,"extra":[1,{"k":null}]}]}`))
	f.Add([]byte(` { "results" : [ ] } `))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeResults(b, nil)
		var want struct {
			Results []struct {
				UserID                                         string `json:"userId"`
				Info                                           string `json:"info"`
				Code, FollowType, Following, Followers, Mutual int64
			} `json:"results"`
		}
		if err != nil || json.Unmarshal(b, &want) != nil || !caseExact(b) {
			return
		}
		if len(got) != len(want.Results) {
			t.Fatalf("%d results, encoding/json %d", len(got), len(want.Results))
		}
		for i, w := range want.Results {
			if g := got[i]; g != (httpResult{w.UserID, w.Code, w.Info, w.FollowType, w.Following, w.Followers, w.Mutual}) {
				t.Fatalf("result %d: %+v, encoding/json %+v", i, g, w)
			}
		}
	})
}

func FuzzDecodePage(f *testing.F) {
	f.Add([]byte(`{"items":[{"userId":"u1","followTime":17},{"userId":"u\u00e9","followTime":-2}],"nextCursor":"c"}`))
	f.Add([]byte(`{"nextCursor":"","items":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodePage(b)
		var want struct {
			Items []struct {
				UserID     string `json:"userId"`
				FollowTime int64  `json:"followTime"`
			} `json:"items"`
			NextCursor string `json:"nextCursor"`
		}
		if err != nil || json.Unmarshal(b, &want) != nil || !caseExact(b) {
			return
		}
		if got.Next != want.NextCursor || len(got.Items) != len(want.Items) {
			t.Fatalf("page %+v, encoding/json %+v", got, want)
		}
		for i, w := range want.Items {
			if got.Items[i] != (Item{w.UserID, w.FollowTime}) {
				t.Fatalf("item %d: %+v, encoding/json %+v", i, got.Items[i], w)
			}
		}
	})
}

// caseExact leaves out bodies the two readers may read differently by
// design: keys encoding/json matches case-insensitively (the server writes
// exact ones), a repeated top-level list (encoding/json keeps the last),
// invalid UTF-8 (encoding/json replaces it).
func caseExact(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	lower := bytes.ToLower(b)
	for _, k := range []string{"results", "userId", "code", "info", "followType", "following", "followers", "mutual", "items", "followTime", "nextCursor"} {
		if bytes.Count(lower, bytes.ToLower([]byte(`"`+k+`"`))) != bytes.Count(b, []byte(`"`+k+`"`)) {
			return false
		}
	}
	return bytes.Count(b, []byte(`"results"`)) <= 1 && bytes.Count(b, []byte(`"items"`)) <= 1
}

// readResponse never panics and reads what it accepts within the input.
func FuzzReadResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"))
	f.Add([]byte("HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c := &httpConn{br: bufio.NewReader(bytes.NewReader(b))}
		status, body, err := c.readResponse(nil)
		if err == nil && (status < 0 || status > 999 || len(body) > len(b)) {
			t.Fatalf("status %d, %d-byte body from %d bytes", status, len(body), len(b))
		}
	})
}

// The response reader against a known pipelined stream.
func TestReadResponses(t *testing.T) {
	in := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 7\r\n\r\n{\"a\":1}" +
		"HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"c\r\n4\r\node\"\r\n1\r\n}\r\n0\r\n\r\n" +
		"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
	c := &httpConn{br: bufio.NewReader(bytes.NewReader([]byte(in)))}
	var got []string
	for range 3 {
		status, body, err := c.readResponse(nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(rune('0'+status/100))+":"+string(body))
	}
	if want := []string{`2:{"a":1}`, `4:{"code"}`, "2:"}; !reflect.DeepEqual(got, want) || !c.close {
		t.Fatalf("%q close=%v, want %q", got, c.close, want)
	}
	if _, _, err := c.readResponse(nil); err == nil {
		t.Fatal("read a response past the end")
	}
}
