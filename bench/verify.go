package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/followgraph/followgraph/internal/graphgen"
)

// VerifyReport is the outcome of an invariant check.
type VerifyReport struct {
	Users      int      `json:"users"`
	Edges      int64    `json:"edges"`
	Violations int      `json:"violations"`
	Samples    []string `json:"samples,omitempty"` // the first violations
	Seconds    float64  `json:"seconds"`
}

func (v *VerifyReport) fail(format string, args ...any) {
	v.Violations++
	if len(v.Samples) < 10 {
		v.Samples = append(v.Samples, fmt.Sprintf(format, args...))
	}
}

// verifyCap bounds how many entries of one list are read in full; longer
// lists are checked through counts and a prefix.
const verifyCap = 20_000

// Verify waits for the target to be quiescent, then samples users (n
// random ones and the three most followed) and checks the invariant of the
// brief (§3): B is in following(A) exactly when A is in followers(B), with
// the same followTime; counts equal list lengths; mutual(A) is following(A)
// ∩ followers(A) at the later of the two times.
func Verify(ctx context.Context, t Target, gcfg graphgen.Config, n int, seed uint64) (*VerifyReport, error) {
	start := time.Now()
	qctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err := t.Quiesce(qctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("waiting for the target to settle: %w", err)
	}
	g, err := graphgen.New(gcfg)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 99))
	users := []string{}
	for r := range min(3, gcfg.Users) {
		users = append(users, graphgen.UserID(g.ByRank(r)))
	}
	for range n {
		users = append(users, graphgen.UserID(rng.IntN(gcfg.Users)))
	}
	v := &VerifyReport{}
	for _, a := range users {
		if err := verifyUser(ctx, t, a, v); err != nil {
			return nil, err
		}
		v.Users++
	}
	v.Seconds = time.Since(start).Seconds()
	return v, nil
}

// readAll pages through a list, up to verifyCap entries.
func readAll(ctx context.Context, t Target, k ListKind, user string) (map[string]int64, bool, error) {
	out := map[string]int64{}
	cursor := ""
	for {
		p, err := t.List(ctx, k, user, cursor, 500)
		if err != nil {
			return nil, false, err
		}
		for _, it := range p.Items {
			out[it.User] = it.Time
		}
		if p.Next == "" {
			return out, true, nil
		}
		if len(out) >= verifyCap {
			return out, false, nil
		}
		cursor = p.Next
	}
}

func verifyUser(ctx context.Context, t Target, a string, v *VerifyReport) error {
	fwd, fwdAll, err := readAll(ctx, t, Following, a)
	if err != nil {
		return err
	}
	rev, revAll, err := readAll(ctx, t, Followers, a)
	if err != nil {
		return err
	}
	mut, mutAll, err := readAll(ctx, t, Mutual, a)
	if err != nil {
		return err
	}
	cs, err := t.Counts(ctx, []string{a})
	if err != nil {
		return err
	}
	c := cs[0]
	if fwdAll && c.Following != int64(len(fwd)) {
		v.fail("%s: following count %d, list has %d", a, c.Following, len(fwd))
	}
	if revAll && c.Followers != int64(len(rev)) {
		v.fail("%s: followers count %d, list has %d", a, c.Followers, len(rev))
	}
	if mutAll && c.Mutual != int64(len(mut)) {
		v.fail("%s: mutual count %d, list has %d", a, c.Mutual, len(mut))
	}
	// Every followee has a as a follower (checked on the followee's side).
	checked := 0
	for b, tf := range fwd {
		if checked == 200 {
			break
		}
		checked++
		v.Edges++
		ft, err := t.Check(ctx, b, []string{a})
		if err != nil {
			return err
		}
		if ft[0]&1 == 0 {
			v.fail("%s follows %s, but %s is not among %s's followers", a, b, a, b)
			continue
		}
		// Same followTime on both sides, where the followee's list is short
		// enough to read.
		if checked <= 20 {
			bc, err := t.Counts(ctx, []string{b})
			if err != nil {
				return err
			}
			if bc[0].Followers <= 2000 {
				brev, _, err := readAll(ctx, t, Followers, b)
				if err != nil {
					return err
				}
				if tr, ok := brev[a]; ok && tr != tf {
					v.fail("%s->%s: followTime %d in following, %d in followers", a, b, tf, tr)
				}
			}
		}
	}
	// Every follower follows a (checked on the follower's side).
	checked = 0
	for f := range rev {
		if checked == 200 {
			break
		}
		checked++
		v.Edges++
		ft, err := t.Check(ctx, f, []string{a})
		if err != nil {
			return err
		}
		if ft[0]&2 == 0 {
			v.fail("%s is among %s's followers, but does not follow %s", f, a, a)
		}
	}
	// mutual = following ∩ followers, timed at the later follow.
	if fwdAll && revAll && mutAll {
		want := 0
		for b, tf := range fwd {
			tr, ok := rev[b]
			if !ok {
				continue
			}
			want++
			if tm, ok := mut[b]; !ok {
				v.fail("%s and %s follow each other, but %s is not in mutual(%s)", a, b, b, a)
			} else if tm != max(tf, tr) {
				v.fail("mutual(%s) has %s at %d, want %d", a, b, tm, max(tf, tr))
			}
		}
		if want != len(mut) {
			v.fail("mutual(%s) has %d entries, following ∩ followers has %d", a, len(mut), want)
		}
	}
	return nil
}
