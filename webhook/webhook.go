// Package webhook POSTs the change feed to HTTP endpoints: each Hook is a
// cluster.Hook, run by the leader of every shard, which hands it the
// shard's events in offset order. A Hook turns them into Tencent Cloud
// Chat's after-follow callbacks (Follow.CallbackAfterFollowAdd and
// Follow.CallbackAfterFollowDelete, with Tencent's query parameters and
// body fields) or, in the native format, into one JSON document carrying
// every event kind with its position, signs each body with HMAC-SHA256,
// and retries with backoff until the endpoint answers
// {"ActionStatus":"OK","ErrorCode":0}.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/followgraph/followgraph/fsm"
	"github.com/followgraph/followgraph/wire"
	"github.com/hashicorp/go-hclog"
)

// Formats of the bodies a Hook posts.
const (
	FormatTencent = "tencent"
	FormatNative  = "native"
)

// Headers a Hook sets on every POST.
const (
	// HeaderEventID names the call: "shard:offset" of its first event.
	// A call retried, or sent again by a new leader, has the same ID.
	HeaderEventID = "X-Followgraph-Event-Id"
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256 of the body
	// under the configured secret (absent without a secret).
	HeaderSignature = "X-Followgraph-Signature"
)

// Tencent's callback commands.
const (
	CommandFollowAdd    = "Follow.CallbackAfterFollowAdd"
	CommandFollowDelete = "Follow.CallbackAfterFollowDelete"
	// CommandNative is the CallbackCommand of native-format calls.
	CommandNative = "Followgraph.Events"
)

// Config configures the hooks. Start from DefaultConfig.
type Config struct {
	// URLs are the endpoints; each gets every event.
	URLs []string
	// Secret, if set, signs every body (HeaderSignature).
	Secret string
	// Format is FormatTencent or FormatNative.
	Format string
	// SDKAppID is the SdkAppid query parameter of Tencent's URLs.
	SDKAppID string
	// Timeout bounds each POST.
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between retries.
	MinBackoff, MaxBackoff time.Duration
	Logger                 hclog.Logger
}

// DefaultConfig returns the defaults, without URLs.
func DefaultConfig() Config {
	return Config{Format: FormatTencent, SDKAppID: "0", Timeout: 5 * time.Second,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: 30 * time.Second}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	for _, u := range c.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("webhook: URL %q: want http(s)://host/path", u)
		}
	}
	switch {
	case c.Format != FormatTencent && c.Format != FormatNative:
		return fmt.Errorf("webhook: format %q: want %s or %s", c.Format, FormatTencent, FormatNative)
	case c.Timeout <= 0 || c.MinBackoff <= 0 || c.MaxBackoff < c.MinBackoff:
		return errors.New("webhook: timeout and backoffs must be positive, MaxBackoff at least MinBackoff")
	}
	return nil
}

// Stats counts one hook's work since the process started.
type Stats struct {
	Calls     uint64 // calls the endpoint accepted
	Events    uint64 // events in them (Tencent: following events only)
	Failures  uint64 // attempts that failed (error, timeout, a refusal)
	Retries   uint64 // attempts after a failure
	Skipped   uint64 // events lost behind the feed's retention (an estimate: offsets are not dense)
	LastError string
}

// Hook posts the feed to one URL. It is safe for concurrent use by the
// delivery loops of several shards.
type Hook struct {
	cfg    Config
	url    string
	id     string
	client *http.Client
	log    hclog.Logger

	calls, events, failures, retries, skipped atomic.Uint64
	lastErr                                   atomic.Pointer[string]
}

// New returns one Hook per configured URL.
func New(cfg Config) ([]*Hook, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	var out []*Hook
	for _, u := range cfg.URLs {
		sum := sha256.Sum256([]byte(u))
		out = append(out, &Hook{cfg: cfg, url: u, id: "wh-" + hex.EncodeToString(sum[:6]),
			client: &http.Client{Timeout: cfg.Timeout}, log: cfg.Logger.Named("webhook").With("url", u)})
	}
	return out, nil
}

// ID names the hook by its URL: the delivery position in the log survives
// restarts, and another URL starts from scratch.
func (h *Hook) ID() string { return h.id }

// URL returns the endpoint.
func (h *Hook) URL() string { return h.url }

// Stats returns the hook's counters.
func (h *Hook) Stats() Stats {
	s := Stats{Calls: h.calls.Load(), Events: h.events.Load(), Failures: h.failures.Load(), Retries: h.retries.Load(), Skipped: h.skipped.Load()}
	if e := h.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	return s
}

// Skipped implements cluster.Hook.
func (h *Hook) Skipped(shard int, from, floor uint64) {
	// Offsets count entries in their high bits: a lower bound of one.
	h.skipped.Add(1)
	h.log.Error("events lost: the endpoint fell behind the change feed's retention", "shard", shard, "from", from, "floor", floor)
}

// Deliver implements cluster.Hook: one call per group of events, each
// retried until the endpoint accepts it or ctx ends.
func (h *Hook) Deliver(ctx context.Context, shard int, events []fsm.Event) error {
	for _, c := range h.callsOf(shard, events) {
		if err := h.post(ctx, c); err != nil {
			return err
		}
		h.calls.Add(1)
		h.events.Add(uint64(c.events))
	}
	return nil
}

// call is one POST.
type call struct {
	id      string // HeaderEventID
	command string
	body    []byte
	events  int
}

// callsOf groups events into calls: in Tencent's format, one callback per
// actor and write (the following events of one actor in one raft entry),
// other kinds left out; in the native format, one call for all.
func (h *Hook) callsOf(shard int, events []fsm.Event) []call {
	if h.cfg.Format == FormatNative {
		return []call{nativeCall(shard, events)}
	}
	var out []call
	for i := 0; i < len(events); {
		e := events[i]
		if e.Kind != wire.FollowingAdded && e.Kind != wire.FollowingRemoved {
			i++
			continue
		}
		j := i + 1
		for j < len(events) && events[j].Kind == e.Kind && events[j].User == e.User && events[j].Offset>>24 == e.Offset>>24 {
			j++
		}
		out = append(out, tencentCall(shard, events[i:j]))
		i = j
	}
	return out
}

func eventID(shard int, e fsm.Event) string { return fmt.Sprintf("%d:%d", shard, e.Offset) }

// tencentCall is the callback of one actor's follows (or unfollows) in
// one write, shaped as Tencent's: FollowList[{To_Account}] after a
// follow, To_Account[] after an unfollow, EventTime in ms.
func tencentCall(shard int, es []fsm.Event) call {
	type to struct {
		To string `json:"To_Account"`
	}
	c := call{id: eventID(shard, es[0]), events: len(es)}
	var body any
	if es[0].Kind == wire.FollowingAdded {
		c.command = CommandFollowAdd
		list := make([]to, len(es))
		for i, e := range es {
			list[i] = to{e.Other}
		}
		body = struct {
			Command    string `json:"CallbackCommand"`
			From       string `json:"From_Account"`
			FollowList []to   `json:"FollowList"`
			EventTime  int64  `json:"EventTime"`
		}{c.command, es[0].User, list, es[0].Time}
	} else {
		c.command = CommandFollowDelete
		list := make([]string, len(es))
		for i, e := range es {
			list[i] = e.Other
		}
		body = struct {
			Command   string   `json:"CallbackCommand"`
			From      string   `json:"From_Account"`
			To        []string `json:"To_Account"`
			EventTime int64    `json:"EventTime"`
		}{c.command, es[0].User, list, es[0].Time}
	}
	c.body, _ = json.Marshal(body) // plain structs of strings: cannot fail
	return c
}

// NativeEvent is one event of a native-format call.
type NativeEvent struct {
	Shard      int    `json:"shard"`
	Offset     uint64 `json:"offset"`
	ID         string `json:"id"` // shard:offset
	Kind       string `json:"kind"`
	User       string `json:"user"`
	Other      string `json:"other"`
	Time       int64  `json:"time"`
	FollowTime int64  `json:"followTime"`
}

// NativeBody is the body of a native-format call.
type NativeBody struct {
	Command string        `json:"CallbackCommand"`
	Events  []NativeEvent `json:"events"`
}

func nativeCall(shard int, es []fsm.Event) call {
	b := NativeBody{Command: CommandNative, Events: make([]NativeEvent, len(es))}
	for i, e := range es {
		b.Events[i] = NativeEvent{Shard: shard, Offset: e.Offset, ID: eventID(shard, e), Kind: e.Kind.String(), User: e.User, Other: e.Other, Time: e.Time, FollowTime: e.FollowTime}
	}
	body, _ := json.Marshal(b)
	return call{id: eventID(shard, es[0]), command: CommandNative, body: body, events: len(es)}
}

// post sends c until the endpoint accepts it, backing off between tries.
func (h *Hook) post(ctx context.Context, c call) error {
	backoff := h.cfg.MinBackoff
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			h.retries.Add(1)
		}
		err := h.try(ctx, c)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		h.failures.Add(1)
		msg := err.Error()
		h.lastErr.Store(&msg)
		if attempt == 0 || attempt%10 == 0 {
			h.log.Warn("webhook call failed, retrying", "event", c.id, "attempt", attempt+1, "error", err)
		}
		select {
		case <-time.After(backoff/2 + rand.N(backoff/2+1)):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(2*backoff, h.cfg.MaxBackoff)
	}
}

// ack is the answer an endpoint must give.
type ack struct {
	ActionStatus string
	ErrorCode    *int
}

func (h *Hook) try(ctx context.Context, c call) error {
	u, _ := url.Parse(h.url) // validated
	q := u.Query()
	q.Set("SdkAppid", h.cfg.SDKAppID)
	q.Set("CallbackCommand", c.command)
	q.Set("contenttype", "json")
	q.Set("ClientIP", "")
	q.Set("OptPlatform", "RESTAPI")
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(c.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderEventID, c.id)
	if h.cfg.Secret != "" {
		req.Header.Set(HeaderSignature, Sign(h.cfg.Secret, c.body))
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return err
	}
	var a ack
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if err := json.Unmarshal(body, &a); err != nil || a.ActionStatus != "OK" || a.ErrorCode == nil || *a.ErrorCode != 0 {
		return fmt.Errorf("endpoint did not answer ActionStatus OK, ErrorCode 0: %.200q", body)
	}
	return nil
}

// Sign returns the HeaderSignature value of body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
