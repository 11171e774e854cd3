package cluster

import (
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/shard"
)

// Export sessions.
//
// An export reads a shard page by page from one point-in-time View of the
// shard leader's Store, taken by the first request. The node keeps the View
// in a session, named by a random ID, until the export reads its last page,
// (and a few seconds more, for a retry of that page), until it goes unread
// for ExportConfig.IdleTimeout (a View holds back the
// memory that writes copy while it is live, so an abandoned export must not
// keep it forever), or until the node closes. A session is bound to the
// node, not to the leadership: the View already holds every write
// acknowledged before it was taken, so it stays a consistent export after
// a leader change. A session the node does not hold (expired, or the node
// restarted) is codes.ExportExpired.

// ExportConfig bounds a node's export sessions.
type ExportConfig struct {
	// IdleTimeout releases a session not read for this long.
	IdleTimeout time.Duration
	// MaxSessions bounds the sessions open at once on the node; a new
	// export beyond it gets codes.Overloaded (finished sessions, kept a
	// moment for a retry of their last page, make room instead).
	MaxSessions int
}

// DefaultExportConfig returns the defaults: 30 s, 16 sessions.
func DefaultExportConfig() ExportConfig {
	return ExportConfig{IdleTimeout: 30 * time.Second, MaxSessions: 16}
}

// Validate reports the first invalid field.
func (c *ExportConfig) Validate() error {
	if c.IdleTimeout < 10*time.Millisecond || c.MaxSessions < 1 {
		return errors.New("cluster: Export.IdleTimeout must be at least 10ms and Export.MaxSessions positive")
	}
	return nil
}

// ExportSession is one export's View of one shard. Get it from StartExport
// or ResumeExport and hand it back with EndExport.
type ExportSession struct {
	id    uint64
	shard int
	view  *shard.View

	// Under exports.mu.
	users    int       // requests reading the View now
	last     time.Time // when the last of them ended
	finished bool      // its last page was read
	gone     bool      // out of the table: the last user releases the View
}

// ID names the session in later requests.
func (s *ExportSession) ID() uint64 { return s.id }

// View is the session's point-in-time View; valid until EndExport.
func (s *ExportSession) View() *shard.View { return s.view }

// exports is a node's table of export sessions. A timer, armed while
// sessions exist, reaps idle ones; close stops it and releases them all.
type exports struct {
	cfg      ExportConfig
	mu       sync.Mutex
	sessions map[uint64]*ExportSession
	reaper   *time.Timer
	closed   bool
}

func newExports(cfg ExportConfig) *exports {
	return &exports{cfg: cfg, sessions: map[uint64]*ExportSession{}}
}

// StartExport takes a View of shard i on this node's replica, which must
// lead the shard and hold a read lease (the View then holds every
// acknowledged write), and opens a session on it, in use by the caller.
func (n *Node) StartExport(i int) (*ExportSession, error) {
	e := n.exports
	e.mu.Lock()
	full, closed := !e.makeRoom(), e.closed
	e.mu.Unlock()
	switch {
	case closed:
		return nil, codes.New(codes.ShuttingDown, "node is shutting down")
	case full:
		return nil, e.overloaded()
	}
	r := n.Replica(i)
	if r == nil {
		return nil, n.NotLeaderError(i)
	}
	v, err := r.View()
	if err != nil {
		return nil, err
	}
	s := &ExportSession{shard: i, view: v, users: 1}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.closed:
		v.Release()
		return nil, codes.New(codes.ShuttingDown, "node is shutting down")
	case !e.makeRoom():
		v.Release()
		return nil, e.overloaded()
	}
	for s.id == 0 || e.sessions[s.id] != nil {
		s.id = rand.Uint64()
	}
	e.sessions[s.id] = s
	if e.reaper == nil {
		e.reaper = time.AfterFunc(e.tick(), e.reap)
	}
	return s, nil
}

// makeRoom reports whether a session may be added (under mu). Finished
// sessions, kept only for a retry of their last page, give way to new
// ones, the oldest first: back-to-back exports must not find the node
// full of finished ones.
func (e *exports) makeRoom() bool {
	for len(e.sessions) >= e.cfg.MaxSessions {
		var oldest *ExportSession
		for _, s := range e.sessions {
			if s.finished && s.users == 0 && (oldest == nil || s.last.Before(oldest.last)) {
				oldest = s
			}
		}
		if oldest == nil {
			return false
		}
		e.drop(oldest)
		oldest.view.Release()
	}
	return true
}

func (e *exports) overloaded() error {
	return codes.New(codes.Overloaded, "%d export sessions open on this node, the most it allows: retry when one ends", e.cfg.MaxSessions)
}

func (e *exports) tick() time.Duration { return e.cfg.IdleTimeout / 4 }

// ResumeExport returns session id of shard i, in use by the caller.
func (n *Node) ResumeExport(i int, id uint64) (*ExportSession, error) {
	e := n.exports
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.sessions[id]
	if s == nil || s.shard != i {
		return nil, codes.New(codes.ExportExpired, "no export session %d of shard %d on this node (idle for over %v, finished, or the node restarted): export the shard again", id, i, e.cfg.IdleTimeout)
	}
	s.users++
	return s, nil
}

// EndExport hands s back after a request read it. done says that the
// request read the last page: the session then ends after a short grace
// (finishedGrace) instead of the idle timeout, so that a client whose
// last response was lost can still ask for it again.
func (n *Node) EndExport(s *ExportSession, done bool) {
	e := n.exports
	e.mu.Lock()
	defer e.mu.Unlock()
	s.users--
	s.last = time.Now()
	s.finished = s.finished || done
	if s.gone && s.users == 0 {
		s.view.Release()
	}
}

// finishedGrace is how long a finished session stays: a retry of the
// last page comes within the client's attempt timeout and backoff.
func (e *exports) finishedGrace() time.Duration { return min(e.cfg.IdleTimeout, 5*time.Second) }

// ExportSessions returns the number of open export sessions.
func (n *Node) ExportSessions() int {
	n.exports.mu.Lock()
	defer n.exports.mu.Unlock()
	return len(n.exports.sessions)
}

// drop takes s out of the table (under mu).
func (e *exports) drop(s *ExportSession) {
	delete(e.sessions, s.id)
	s.gone = true
}

// reap releases the sessions idle for longer than IdleTimeout, and runs
// again while sessions remain.
func (e *exports) reap() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	now := time.Now()
	for _, s := range e.sessions {
		limit := e.cfg.IdleTimeout
		if s.finished {
			limit = e.finishedGrace()
		}
		if s.users == 0 && now.Sub(s.last) >= limit {
			e.drop(s)
			s.view.Release()
		}
	}
	if len(e.sessions) > 0 {
		e.reaper.Reset(e.tick())
	} else {
		e.reaper = nil
	}
}

// close releases every session (those being read, once their request
// ends) and stops the reaper; later exports are refused.
func (e *exports) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	if e.reaper != nil {
		e.reaper.Stop()
		e.reaper = nil
	}
	for _, s := range e.sessions {
		e.drop(s)
		if s.users == 0 {
			s.view.Release()
		}
	}
}
