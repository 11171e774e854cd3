package chaos

import (
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// The model: each user's following set is a register of up to 64 bits,
// checked on its own (a follow or unfollow touches only the actor's set,
// in one raft entry of the actor's shard). Follow sets bits, unfollow
// clears them, a list read must return the set, a check must see the
// checked bits as they are. A write of unknown outcome may or may not
// have applied: the model is nondeterministic there, and porcupine's
// power-set construction follows both states.
var nondeterministicModel = porcupine.NondeterministicModel{
	Partition: partitionByActor,
	Init:      func() []any { return []any{uint64(0)} },
	Step: func(state, input, output any) []any {
		s, op := state.(uint64), input.(Op)
		var next uint64
		switch op.Kind {
		case Follow:
			next = s | op.Targets
		case Unfollow:
			next = s &^ op.Targets
		case ReadFollowing:
			if op.Result == s {
				return []any{s}
			}
			return nil
		case CheckTargets:
			if op.Result == s&op.Targets {
				return []any{s}
			}
			return nil
		default:
			return nil
		}
		if op.Outcome == Unknown && next != s {
			return []any{next, s}
		}
		return []any{next}
	},
	Equal: func(a, b any) bool { return a.(uint64) == b.(uint64) },
	Hash:  func(state any) uint64 { return state.(uint64) },
	DescribeOperation: func(input, output any) string {
		op := input.(Op)
		switch op.Kind {
		case ReadFollowing:
			return fmt.Sprintf("%s(%s) -> %s", op.Kind, userID(op.Actor), setString(op.Result))
		case CheckTargets:
			return fmt.Sprintf("%s(%s, %s) -> %s", op.Kind, userID(op.Actor), setString(op.Targets), setString(op.Result))
		}
		return fmt.Sprintf("%s(%s, %s) %s", op.Kind, userID(op.Actor), setString(op.Targets), op.Outcome)
	},
	DescribeState: func(state any) string { return setString(state.(uint64)) },
}

var followingModel = nondeterministicModel.ToModel()

func partitionByActor(h []porcupine.Operation) [][]porcupine.Operation {
	by := map[int][]porcupine.Operation{}
	var order []int
	for _, o := range h {
		a := o.Input.(Op).Actor
		if _, ok := by[a]; !ok {
			order = append(order, a)
		}
		by[a] = append(by[a], o)
	}
	out := make([][]porcupine.Operation, 0, len(order))
	for _, a := range order {
		out = append(out, by[a])
	}
	return out
}

func setString(s uint64) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range 64 {
		if s&(1<<i) != 0 {
			if b.Len() > 1 {
				b.WriteByte(' ')
			}
			b.WriteString(userID(i))
		}
	}
	b.WriteByte('}')
	return b.String()
}

// unknownHorizon bounds when a write of unknown outcome may still apply
// after its call. An entry its client gave up on is committed by a
// leader of its term or a successor within an election and a commit
// (seconds; faults last at most a few), or never: an entry only a
// deposed leader held is overwritten. Two minutes is far beyond that.
// Without a bound, an unknown write stays pending to the end of the
// history, and porcupine tries to place it at every later point: a
// 60-minute soak's few thousand of them took its search past 24 GiB.
const unknownHorizon = int64(2 * time.Minute)

// porcupineOps turns the history into porcupine's operations: failed
// operations are left out (they had no effect and returned nothing); an
// unknown write may take effect at any point up to unknownHorizon after
// its call, or not at all (the model's nondeterministic step).
func porcupineOps(ops []Op) []porcupine.Operation {
	out := make([]porcupine.Operation, 0, len(ops))
	for _, o := range ops {
		switch o.Outcome {
		case Failed:
			continue
		case Unknown:
			o.Return = min(o.Call+unknownHorizon, math.MaxInt64)
		}
		out = append(out, porcupine.Operation{ClientId: o.Client, Input: o, Output: nil, Call: o.Call, Return: o.Return})
	}
	return out
}

// Linearizability is the result of the porcupine check.
type Linearizability struct {
	Result porcupine.CheckResult
	Info   porcupine.LinearizationInfo // of the first illegal actor, if small enough to explain
	Ops    int                         // operations checked
	Actor  int                         // the first actor whose history is illegal (-1: none)
}

// maxExplained bounds the actor history for which an illegal result is
// re-checked verbosely for the visualisation: porcupine's partial
// linearizations grow with the square of the history.
const maxExplained = 20000

// CheckLinearizable checks the history within timeout, one actor at a
// time. porcupine checks all partitions at once and its cache holds a
// bitset of the partition's size per linearized step, so memory grows
// with the square of each actor's history times the number of actors:
// a 60-minute soak's 4.4M operations over 32 actors needed more than
// 24 GiB that way. One at a time it is one actor's square.
func CheckLinearizable(ops []Op, timeout time.Duration) Linearizability {
	deadline := time.Now().Add(timeout)
	parts := followingModel.Partition(porcupineOps(ops))
	out := Linearizability{Result: porcupine.Ok, Actor: -1}
	for _, part := range parts {
		out.Ops += len(part)
		left := time.Until(deadline)
		if left <= 0 {
			out.Result = porcupine.Unknown
			continue
		}
		res := porcupine.CheckOperationsTimeout(followingModel, part, left)
		switch {
		case res == porcupine.Illegal && out.Actor < 0:
			out.Result, out.Actor = porcupine.Illegal, part[0].Input.(Op).Actor
			if len(part) <= maxExplained {
				_, out.Info = porcupine.CheckOperationsVerbose(followingModel, part, time.Until(deadline))
			}
		case res == porcupine.Unknown && out.Result == porcupine.Ok:
			out.Result = porcupine.Unknown
		}
		runtime.GC() // the next actor's cache should not sit on this one's
	}
	return out
}

// Lost is an acknowledged write whose effect is missing at the end.
type Lost struct {
	Write  Op     `json:"write"`
	Target int    `json:"target"`
	Final  uint64 `json:"final"` // the actor's final set
}

// LostWrites compares each actor's final set (read once all faults are
// over) with the acknowledged writes. For each (actor, target) edge whose
// last write is certain - acknowledged, called after every other write of
// the edge returned, and with no write of unknown outcome on the edge -
// the final set must hold that write's effect. It returns the losses and
// how many edges could be decided this way.
func LostWrites(ops []Op, final map[int]uint64) (lost []Lost, decided int) {
	type edge struct{ actor, target int }
	last := map[edge]Op{}
	maxReturn := map[edge]int64{} // latest return of the other writes
	ambiguous := map[edge]bool{}
	for _, o := range ops {
		if o.Kind != Follow && o.Kind != Unfollow || o.Outcome == Failed {
			continue
		}
		for t := o.Targets; t != 0; t &= t - 1 {
			e := edge{o.Actor, bits.TrailingZeros64(t)}
			if o.Outcome == Unknown {
				ambiguous[e] = true
				continue
			}
			if prev, ok := last[e]; !ok || o.Call > prev.Call {
				if ok {
					maxReturn[e] = max(maxReturn[e], prev.Return)
				}
				last[e] = o
			} else {
				maxReturn[e] = max(maxReturn[e], o.Return)
			}
		}
	}
	for e, w := range last {
		if ambiguous[e] || maxReturn[e] > w.Call {
			continue
		}
		f, ok := final[e.actor]
		if !ok {
			continue
		}
		decided++
		has := f&(1<<e.target) != 0
		if has != (w.Kind == Follow) {
			lost = append(lost, Lost{Write: w, Target: e.target, Final: f})
		}
	}
	return lost, decided
}
