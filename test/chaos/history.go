package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/codes"
	"github.com/followgraph/followgraph/wire"
)

// Kind is an operation of the workload.
type Kind uint8

// The recorded operations. Reads are linearizable reads from the actor's
// side, so the actor's following set is a register porcupine can check.
const (
	Follow Kind = iota
	Unfollow
	ReadFollowing // a page of the actor's following list
	CheckTargets  // checkFollowType: does the actor follow each target
)

var kindNames = [...]string{"follow", "unfollow", "following", "check"}

func (k Kind) String() string { return kindNames[k] }

// Outcome of an operation.
type Outcome uint8

// Outcomes: a failed operation certainly had no effect (reads that fail
// never do); an unknown write may have applied, at any time after its call.
const (
	OK Outcome = iota
	Failed
	Unknown
)

var outcomeNames = [...]string{"ok", "failed", "unknown"}

func (o Outcome) String() string { return outcomeNames[o] }

// Op is one recorded client operation. Users are indexes into the user
// pool; sets of users are bit masks (the pool has at most 64 users).
type Op struct {
	Client  int     `json:"client"`
	Kind    Kind    `json:"kind"`
	Actor   int     `json:"actor"`
	Targets uint64  `json:"targets"` // follow, unfollow, check
	Call    int64   `json:"call"`    // ns since the run started
	Return  int64   `json:"return"`
	Outcome Outcome `json:"outcome"`
	// Result is the set read (following) or the targets found followed
	// (check).
	Result uint64 `json:"result"`
	Err    string `json:"err,omitempty"`
	// Code is the error's code, 0 for none or a non-protocol error.
	Code codes.Code `json:"code,omitempty"`
}

// History collects operations from concurrent clients.
type History struct {
	start time.Time
	mu    sync.Mutex
	ops   []Op
}

// NewHistory starts the clock.
func NewHistory() *History { return &History{start: time.Now()} }

// Now is the time since the start, from the monotonic clock.
func (h *History) Now() int64 { return int64(time.Since(h.start)) }

func (h *History) add(op Op) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// Ops returns a copy of the operations, ordered by call time.
func (h *History) Ops() []Op {
	h.mu.Lock()
	ops := slices.Clone(h.ops)
	h.mu.Unlock()
	slices.SortFunc(ops, func(a, b Op) int { return int(a.Call - b.Call) })
	return ops
}

// Users is the user pool: user i's ID.
func userID(i int) string { return fmt.Sprintf("u%02d", i) }

// Worker issues random operations over the pool and records them.
type Worker struct {
	ID    int
	C     *client.Client
	H     *History
	Users int
	Rand  *rand.Rand
	// Timeout bounds one operation.
	Timeout time.Duration
	// Reads is the consistency of reads (Linearizable; the checker's
	// own test runs Any to see it flag stale reads).
	Reads wire.Consistency
}

// pick returns an actor and a non-empty set of 1 to max other users.
func (w *Worker) pick(max int) (int, uint64) {
	actor := w.Rand.IntN(w.Users)
	var set uint64
	for n := 1 + w.Rand.IntN(max); n > 0; n-- {
		t := w.Rand.IntN(w.Users)
		if t != actor {
			set |= 1 << t
		}
	}
	if set == 0 {
		set = 1 << ((actor + 1) % w.Users)
	}
	return actor, set
}

func ids(set uint64) []string {
	var out []string
	for i := range 64 {
		if set&(1<<i) != 0 {
			out = append(out, userID(i))
		}
	}
	return out
}

// Step runs one random operation: 30% follow, 20% unfollow, 25% list,
// 25% check.
func (w *Worker) Step(ctx context.Context) Op {
	var op Op
	switch r := w.Rand.IntN(100); {
	case r < 30:
		op.Kind = Follow
	case r < 50:
		op.Kind = Unfollow
	case r < 75:
		op.Kind = ReadFollowing
	default:
		op.Kind = CheckTargets
	}
	op.Client = w.ID
	op.Actor, op.Targets = w.pick(3)
	if op.Kind == ReadFollowing {
		op.Targets = 0
	}
	ctx, cancel := context.WithTimeout(ctx, w.Timeout)
	defer cancel()
	op.Call = w.H.Now()
	err := w.do(ctx, &op)
	op.Return = w.H.Now()
	if err != nil {
		op.Err = err.Error()
		op.Code = codes.Of(err)
		op.Outcome = Failed
		if (op.Kind == Follow || op.Kind == Unfollow) && !definiteFailure(err) {
			op.Outcome = Unknown
		}
	}
	w.H.add(op)
	return op
}

// definiteFailure: the write was refused before it could apply.
func definiteFailure(err error) bool { return client.Definite(err) }

func (w *Worker) do(ctx context.Context, op *Op) error {
	actor := userID(op.Actor)
	switch op.Kind {
	case Follow, Unfollow:
		f := w.C.Follow
		if op.Kind == Unfollow {
			f = w.C.Unfollow
		}
		rs, err := f(ctx, actor, ids(op.Targets))
		if err != nil {
			return err
		}
		for _, r := range rs {
			if r.Code != codes.OK {
				// A per-target failure would mean the model is wrong
				// (no limits are reached with this pool).
				return codes.New(r.Code, "target %s: %s", r.UserID, r.Info)
			}
		}
	case ReadFollowing:
		p, err := w.C.Following(ctx, actor, client.Limit(100), client.ReadConsistency(w.Reads))
		if err != nil {
			return err
		}
		for _, it := range p.Items {
			var i int
			if _, err := fmt.Sscanf(it.UserID, "u%d", &i); err != nil {
				return fmt.Errorf("unexpected user %q in a list", it.UserID)
			}
			op.Result |= 1 << i
		}
	case CheckTargets:
		cs, err := w.C.CheckAt(ctx, w.Reads, actor, ids(op.Targets)...)
		if err != nil {
			return err
		}
		for _, c := range cs {
			var i int
			if _, err := fmt.Sscanf(c.UserID, "u%d", &i); err != nil || c.Code != codes.OK {
				return fmt.Errorf("check answered %+v", c)
			}
			if c.FollowType&followingBit != 0 {
				op.Result |= 1 << i
			}
		}
	}
	return nil
}

// followingBit of checkFollowType: the actor follows the target.
const followingBit = 2
