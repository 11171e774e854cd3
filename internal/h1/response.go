package h1

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// response is the connection's http.ResponseWriter: the status, the
// header and the body, held until the handler returns, then written with
// the body's length.
type response struct {
	c      *conn
	header http.Header
	status int // 0 until WriteHeader
	body   []byte
}

func (w *response) reset() {
	clear(w.header)
	w.status = 0
	if cap(w.body) > 1<<20 {
		w.body = nil // a huge response is not kept for the next
	}
	w.body = w.body[:0]
}

func (w *response) Header() http.Header { return w.header }

// WriteHeader sets the status once; 1xx statuses are not sent (this
// server sends only 100 Continue itself).
func (w *response) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.status == 0 && code >= 200 {
		w.status = code
	}
}

func (w *response) Write(p []byte) (int, error) {
	if !w.bodyStarts() {
		return 0, http.ErrBodyNotAllowed
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

func (w *response) WriteString(s string) (int, error) {
	if !w.bodyStarts() {
		return 0, http.ErrBodyNotAllowed
	}
	w.body = append(w.body, s...)
	return len(s), nil
}

// bodyStarts sets the status to 200 if none is set yet, as a write of
// the body does, and says whether the status allows a body.
func (w *response) bodyStarts() bool {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return bodyAllowed(w.status)
}

func bodyAllowed(status int) bool {
	return status != http.StatusNoContent && status != http.StatusNotModified
}

// writeResponse writes the response to the connection's buffer: the
// status line, the handler's header fields (Content-Length and
// Transfer-Encoding are the server's, Connection only says close), Date
// and Content-Type if the handler set none, and the body. closing adds
// Connection: close; so does a handler's Connection: close. It returns
// whether the connection must close after it.
func (c *conn) writeResponse(closing bool) bool {
	w, bw := &c.resp, c.bw
	if w.status == 0 {
		w.status = http.StatusOK
	}
	c.extendWrite()
	bw.WriteString(statusLine(w.status))
	for k, vs := range w.header {
		switch k {
		case "Content-Length", "Transfer-Encoding":
			continue
		case "Connection":
			closing = closing || hasClose(vs)
			continue
		}
		if !validToken(k) {
			continue
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(headerValue.Replace(v))
			bw.WriteString("\r\n")
		}
	}
	if _, ok := w.header["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.WriteString(httpDate())
		bw.WriteString("\r\n")
	}
	hasBody := bodyAllowed(w.status)
	if _, ok := w.header["Content-Type"]; !ok && hasBody && len(w.body) > 0 {
		bw.WriteString("Content-Type: ")
		bw.WriteString(http.DetectContentType(w.body))
		bw.WriteString("\r\n")
	}
	if hasBody {
		var n [20]byte
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(n[:0], int64(len(w.body)), 10))
		bw.WriteString("\r\n")
	}
	if closing {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	if hasBody && c.req.Method != http.MethodHead {
		bw.Write(w.body)
	}
	return closing
}

func hasClose(vs []string) bool {
	for _, v := range vs {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "close") {
				return true
			}
		}
	}
	return false
}

// headerValue keeps a handler's value from ending its header line.
var headerValue = strings.NewReplacer("\r", " ", "\n", " ")

// statusLines are the status lines of the statuses net/http names.
var statusLines = func() map[int]string {
	m := map[int]string{}
	for code := 100; code < 600; code++ {
		if t := http.StatusText(code); t != "" {
			m[code] = fmt.Sprintf("HTTP/1.1 %d %s\r\n", code, t)
		}
	}
	return m
}()

func statusLine(code int) string {
	if l, ok := statusLines[code]; ok {
		return l
	}
	return fmt.Sprintf("HTTP/1.1 %03d status code %d\r\n", code, code)
}

// date caches the Date header's value for the current second.
type date struct {
	sec int64
	val string
}

var cachedDate atomic.Pointer[date]

func httpDate() string {
	now := time.Now()
	if d := cachedDate.Load(); d != nil && d.sec == now.Unix() {
		return d.val
	}
	d := &date{sec: now.Unix(), val: now.UTC().Format(http.TimeFormat)}
	cachedDate.Store(d)
	return d.val
}

// textError is the default ErrorBody: one line of text.
func textError(h http.Header, status int, msg string) []byte {
	h.Set("Content-Type", "text/plain; charset=utf-8")
	return []byte(http.StatusText(status) + ": " + msg + "\n")
}
