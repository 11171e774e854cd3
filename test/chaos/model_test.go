package chaos

import (
	"reflect"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// op is a history entry for the checker tests (times in ms).
func op(client int, k Kind, actor int, targets uint64, call, ret int64, out Outcome, result uint64) Op {
	return Op{Client: client, Kind: k, Actor: actor, Targets: targets, Call: call * 1e6, Return: ret * 1e6, Outcome: out, Result: result}
}

func TestModelAcceptsLinearizableHistories(t *testing.T) {
	h := []Op{
		op(0, Follow, 0, 0b110, 0, 10, OK, 0),
		op(1, ReadFollowing, 0, 0, 5, 8, OK, 0),       // concurrent with the follow: may miss it
		op(1, ReadFollowing, 0, 0, 11, 12, OK, 0b110), // after it: must see it
		op(2, Unfollow, 0, 0b010, 13, 20, OK, 0),
		op(1, CheckTargets, 0, 0b110, 14, 15, OK, 0b110), // concurrent: before the unfollow
		op(1, CheckTargets, 0, 0b110, 21, 22, OK, 0b100),
		op(3, Follow, 1, 0b1, 0, 5, Unknown, 0),     // never observed: may not have applied
		op(1, ReadFollowing, 1, 0, 30, 31, OK, 0),   // ...
		op(3, Follow, 1, 0b1000, 40, 45, Failed, 0), // refused: no effect
		op(1, ReadFollowing, 1, 0, 50, 51, OK, 0),
		op(4, Follow, 2, 0b1, 0, 5, Unknown, 0), // applied late
		op(1, ReadFollowing, 2, 0, 30, 31, OK, 0),
		op(1, ReadFollowing, 2, 0, 40, 41, OK, 0b1),
	}
	if r := CheckLinearizable(h, time.Minute); r.Result != porcupine.Ok {
		t.Fatalf("a linearizable history was judged %s", r.Result)
	}
}

func TestModelRejectsViolations(t *testing.T) {
	cases := map[string][]Op{
		"stale read after an acknowledged follow": {
			op(0, Follow, 0, 0b10, 0, 10, OK, 0),
			op(1, ReadFollowing, 0, 0, 11, 12, OK, 0),
		},
		"a read that goes back in time": {
			op(0, Follow, 0, 0b10, 0, 100, OK, 0),
			op(1, ReadFollowing, 0, 0, 10, 11, OK, 0b10),
			op(1, ReadFollowing, 0, 0, 12, 13, OK, 0),
		},
		"a refused write that applied": {
			op(0, Follow, 0, 0b10, 0, 10, Failed, 0),
			op(1, CheckTargets, 0, 0b10, 11, 12, OK, 0b10),
		},
		"an unfollow that was lost": {
			op(0, Follow, 0, 0b10, 0, 10, OK, 0),
			op(0, Unfollow, 0, 0b10, 11, 20, OK, 0),
			op(1, CheckTargets, 0, 0b10, 21, 22, OK, 0b10),
		},
	}
	for name, h := range cases {
		if r := CheckLinearizable(h, time.Minute); r.Result != porcupine.Illegal {
			t.Errorf("%s: judged %s, want Illegal", name, r.Result)
		}
	}
}

func TestLostWrites(t *testing.T) {
	h := []Op{
		op(0, Follow, 0, 0b110, 0, 10, OK, 0),
		op(0, Unfollow, 0, 0b100, 20, 30, OK, 0),
		op(1, Follow, 1, 0b1, 0, 10, OK, 0),
		op(2, Unfollow, 1, 0b1, 5, 15, OK, 0), // concurrent with the follow: undecided
		op(1, Follow, 2, 0b1, 0, 10, OK, 0),
		op(2, Unfollow, 2, 0b1, 20, 25, Unknown, 0), // unknown outcome: undecided
	}
	lost, decided := LostWrites(h, map[int]uint64{0: 0b010, 1: 0, 2: 0})
	if len(lost) != 0 || decided != 2 {
		t.Fatalf("consistent final state: lost %v, decided %d (want 0 lost, 2 decided)", lost, decided)
	}
	lost, _ = LostWrites(h, map[int]uint64{0: 0b100})
	if len(lost) != 2 {
		t.Fatalf("final {u02} after follow u01,u02 and unfollow u02: %d losses, want 2 (%v)", len(lost), lost)
	}
}

func TestScheduleIsDeterministic(t *testing.T) {
	a, b := Schedule(7, 5*time.Minute, AllFaults), Schedule(7, 5*time.Minute, AllFaults)
	if len(a) < 10 {
		t.Fatalf("only %d faults in 5 minutes", len(a))
	}
	kinds := map[FaultKind]bool{}
	for i := range a {
		if !reflect.DeepEqual(a[i], b[i]) {
			t.Fatalf("fault %d differs: %+v vs %+v", i, a[i], b[i])
		}
		kinds[a[i].Kind] = true
		if a[i].At+a[i].Hold > 5*time.Minute {
			t.Fatalf("fault %d ends after the run", i)
		}
	}
	if len(kinds) != len(AllFaults) {
		t.Errorf("5 minutes drew %d of %d fault kinds", len(kinds), len(AllFaults))
	}
	if c := Schedule(8, 5*time.Minute, AllFaults); reflect.DeepEqual(c[:2], a[:2]) {
		t.Error("seeds 7 and 8 give the same schedule")
	}
}

func TestUnavailabilityCountsFailingWindows(t *testing.T) {
	sched := []Fault{{Kind: FaultKill, Injected: time.Second}}
	var h []Op
	for ms := int64(0); ms < 3000; ms += 50 {
		out := OK
		if ms >= 1000 && ms < 1500 { // writes fail for 0.5 s after the kill
			out = Failed
		}
		h = append(h, op(0, Follow, 0, 0b10, ms, ms+1, out, 0))
	}
	av := Unavailability(h, sched, 3*time.Second, 1)
	if len(av) != 2 || av[0].Kind != FaultNone || av[1].Kind != FaultKill {
		t.Fatalf("windows: %+v", av)
	}
	if av[0].Unavailable != 0 || av[1].Unavailable != 500*time.Millisecond || av[1].Max != 500*time.Millisecond {
		t.Fatalf("unavailable: none %v, kill %v (max %v); want 0, 500ms, 500ms", av[0].Unavailable, av[1].Unavailable, av[1].Max)
	}
}

// TestUnknownWrites: a write of unknown outcome may apply at any point
// within unknownHorizon of its call, or never; applied later than that is
// a violation (no raft entry lingers that long).
func TestUnknownWrites(t *testing.T) {
	h := unknownHorizon / 1e6 // ms
	never := []Op{
		op(0, Follow, 0, 0b10, 0, 5, Unknown, 0),
		op(1, ReadFollowing, 0, 0, 10, 11, OK, 0),
		op(1, ReadFollowing, 0, 0, 2*h, 2*h+1, OK, 0), // never applied
		op(0, Unfollow, 0, 0b100, 2*h+5, 2*h+9, Unknown, 0),
		op(1, ReadFollowing, 0, 0, 3*h, 3*h+1, OK, 0),
	}
	if r := CheckLinearizable(never, time.Minute); r.Result != porcupine.Ok {
		t.Fatalf("an unknown write that never applied: %s", r.Result)
	}
	late := []Op{
		op(0, Follow, 0, 0b10, 0, 5, Unknown, 0),
		op(1, ReadFollowing, 0, 0, h+10, h+11, OK, 0),
		op(1, ReadFollowing, 0, 0, h+20, h+21, OK, 0b10), // applied after the horizon
	}
	if r := CheckLinearizable(late, time.Minute); r.Result != porcupine.Illegal {
		t.Fatalf("an unknown write applied after the horizon: %s, want Illegal", r.Result)
	}
}
