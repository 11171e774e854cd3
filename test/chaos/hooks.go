package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/followgraph/followgraph/webhook"
)

// The webhook check: every node posts its shards' changes (native
// format) to a receiver on the host, which applies each event once, in
// offset order per shard (an event at or below the last offset applied
// for its shard is a redelivery, dropped), and the following sets it
// rebuilds must equal the final reads, like the watcher's.

// hookReceiver is the webhook endpoint of a run.
type hookReceiver struct {
	users int
	srv   *http.Server
	url   string

	mu     sync.Mutex
	last   map[int]uint64 // shard -> last offset applied
	sets   map[int]uint64 // actor -> following set
	events int
	dups   int
	bad    string
}

// startHookReceiver listens on the host's address in the run's network.
func startHookReceiver(host string, users int) (*hookReceiver, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, err
	}
	rv := &hookReceiver{users: users, last: map[int]uint64{}, sets: map[int]uint64{}}
	rv.srv = &http.Server{Handler: rv, ReadHeaderTimeout: 5 * time.Second}
	rv.url = "http://" + ln.Addr().String() + "/hook"
	go rv.srv.Serve(ln)
	return rv, nil
}

func (rv *hookReceiver) close() { rv.srv.Close() }

func (rv *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var b webhook.NativeBody
	if err == nil {
		err = json.Unmarshal(body, &b)
	}
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if err != nil || b.Command != webhook.CommandNative {
		rv.bad = fmt.Sprintf("a call that is not a native batch: %v %.200q", err, body)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	for _, e := range b.Events {
		if e.Offset <= rv.last[e.Shard] {
			rv.dups++
			continue
		}
		rv.last[e.Shard] = e.Offset
		rv.events++
		a, t := userIndex(e.User, rv.users), userIndex(e.Other, rv.users)
		if a < 0 || t < 0 {
			continue
		}
		switch e.Kind {
		case "following_added":
			rv.sets[a] |= 1 << t
		case "following_removed":
			rv.sets[a] &^= 1 << t
		}
	}
	io.WriteString(w, `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}`)
}

// check waits (up to a minute) for the webhook's sets to reach final.
func (rv *hookReceiver) check(ctx context.Context, final map[int]uint64) *WatchResult {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		rv.mu.Lock()
		var diff []string
		for u, want := range final {
			if g := rv.sets[u]; g != want {
				diff = append(diff, fmt.Sprintf("%s: webhook events give %s, final read %s (%d differ)", userID(u), setString(g), setString(want), bits.OnesCount64(g^want)))
			}
		}
		r := &WatchResult{Events: rv.events, Duplicates: rv.dups, Mismatches: diff, Err: rv.bad}
		rv.mu.Unlock()
		if len(diff) == 0 || r.Err != "" || ctx.Err() != nil {
			return r
		}
		sleep(ctx, 250*time.Millisecond)
	}
}
