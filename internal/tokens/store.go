package tokens

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"
)

// Entry is a token in force. Connections that authenticated with it keep
// it; Revoked tells them when a reload removed or changed it.
type Entry struct {
	Token
	// lim is shared by every connection of the token (nil: unlimited).
	lim     *rate.Limiter
	revoked atomic.Bool
}

// Allow reports whether one more request fits the token's rate limit, and
// takes it from the budget if so.
func (e *Entry) Allow() bool { return e.lim == nil || e.lim.Allow() }

// Revoked reports whether a reload removed the token or changed its
// secret, role or limits since it was handed out.
func (e *Entry) Revoked() bool { return e.revoked.Load() }

// Store is the set of tokens in force, replaced whole on reload. It is
// safe for concurrent use.
type Store struct {
	mu  sync.Mutex // serialises Replace
	cur atomic.Pointer[map[string]*Entry]
	// dummy is compared against when a name is unknown, so that the time
	// an authentication takes does not tell which names exist.
	dummy Token
}

// NewStore returns a store holding toks (see Replace).
func NewStore(toks []Token) (*Store, error) {
	s := &Store{dummy: New("", RoleNone, "\x00no such token")}
	if err := s.Replace(toks); err != nil {
		return nil, err
	}
	return s, nil
}

// Replace puts toks in force. A token that is the same as before (name,
// secret, role, rate and burst) keeps its entry, so its connections and
// its rate budget carry on; the entries of the others are revoked. On an
// error (a duplicate or invalid name) nothing changes.
func (s *Store) Replace(toks []Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var old map[string]*Entry
	if p := s.cur.Load(); p != nil {
		old = *p
	}
	next := make(map[string]*Entry, len(toks))
	for _, t := range toks {
		if err := CheckName(t.Name); err != nil {
			return err
		}
		if t.Role < RoleRead || t.Role > RoleAdmin {
			return fmt.Errorf("token %q: no role", t.Name)
		}
		if _, dup := next[t.Name]; dup {
			return fmt.Errorf("token %q is named twice", t.Name)
		}
		if e, ok := old[t.Name]; ok && e.Token == t {
			next[t.Name] = e
			continue
		}
		e := &Entry{Token: t}
		if t.Rate > 0 {
			e.lim = rate.NewLimiter(rate.Limit(t.Rate), max(t.Burst, 1))
		}
		next[t.Name] = e
	}
	s.cur.Store(&next)
	for name, e := range old {
		if next[name] != e {
			e.revoked.Store(true)
		}
	}
	return nil
}

// Authenticate returns the entry of the token named name ("" means
// DefaultName) if secret is its secret. The caller must not say which of
// the two was wrong.
func (s *Store) Authenticate(name, secret string) (*Entry, bool) {
	if name == "" {
		name = DefaultName
	}
	e, ok := (*s.cur.Load())[name]
	if !ok {
		s.dummy.Matches(secret) // the same work as a known name
		return nil, false
	}
	if !e.Matches(secret) {
		return nil, false
	}
	return e, true
}

// Entries returns the tokens in force, by name.
func (s *Store) Entries() []*Entry {
	m := *s.cur.Load()
	es := make([]*Entry, 0, len(m))
	for _, e := range m {
		es = append(es, e)
	}
	sort.Slice(es, func(i, j int) bool { return es[i].Name < es[j].Name })
	return es
}

// Len returns how many tokens are in force.
func (s *Store) Len() int { return len(*s.cur.Load()) }
