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
// random ones and the three most followed) and checks the graph's
// invariant: B is in following(A) exactly when A is in followers(B), with
// the same followTime; every count equals its list's length; mutual(A) is
// following(A) ∩ followers(A), at the later of the two times.
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

// userLists is what Verify reads of one user: its three lists (each up to
// verifyCap entries, with whether it was read to the end) and its counts.
type userLists struct {
	fwd, rev, mut          map[string]int64 // user -> followTime
	fwdAll, revAll, mutAll bool
	counts                 Counts
}

// verifyUser checks user a: its counts against its lists, the other side
// of its edges, and its mutual list against the other two.
func verifyUser(ctx context.Context, t Target, a string, v *VerifyReport) error {
	l, err := readUser(ctx, t, a)
	if err != nil {
		return err
	}
	l.checkCounts(a, v)
	if err := checkFollowees(ctx, t, a, l.fwd, v); err != nil {
		return err
	}
	if err := checkFollowers(ctx, t, a, l.rev, v); err != nil {
		return err
	}
	// Only whole lists say what mutual must hold.
	if l.fwdAll && l.revAll && l.mutAll {
		checkMutual(a, l.fwd, l.rev, l.mut, v)
	}
	return nil
}

// readUser reads a's three lists and its counts.
func readUser(ctx context.Context, t Target, a string) (*userLists, error) {
	l := &userLists{}
	var err error
	if l.fwd, l.fwdAll, err = readAll(ctx, t, Following, a); err != nil {
		return nil, err
	}
	if l.rev, l.revAll, err = readAll(ctx, t, Followers, a); err != nil {
		return nil, err
	}
	if l.mut, l.mutAll, err = readAll(ctx, t, Mutual, a); err != nil {
		return nil, err
	}
	cs, err := t.Counts(ctx, []string{a})
	if err != nil {
		return nil, err
	}
	l.counts = cs[0]
	return l, nil
}

// checkCounts checks that each count equals the length of its list, for
// the lists read to the end.
func (l *userLists) checkCounts(a string, v *VerifyReport) {
	c := l.counts
	if l.fwdAll && c.Following != int64(len(l.fwd)) {
		v.fail("%s: following count %d, list has %d", a, c.Following, len(l.fwd))
	}
	if l.revAll && c.Followers != int64(len(l.rev)) {
		v.fail("%s: followers count %d, list has %d", a, c.Followers, len(l.rev))
	}
	if l.mutAll && c.Mutual != int64(len(l.mut)) {
		v.fail("%s: mutual count %d, list has %d", a, c.Mutual, len(l.mut))
	}
}

// checkFollowees checks, for up to 200 of a's followees, that a is among
// their followers (on the followee's side), and for the first 20 of them
// that the followTime is the same on both sides.
func checkFollowees(ctx context.Context, t Target, a string, fwd map[string]int64, v *VerifyReport) error {
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
		if checked <= 20 {
			if err := checkFollowTime(ctx, t, a, b, tf, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkFollowTime checks that the edge a -> b, at time tf in following(a),
// has the same time in followers(b), where that list is short enough
// (2,000 entries) to read.
func checkFollowTime(ctx context.Context, t Target, a, b string, tf int64, v *VerifyReport) error {
	bc, err := t.Counts(ctx, []string{b})
	if err != nil {
		return err
	}
	if bc[0].Followers > 2000 {
		return nil
	}
	brev, _, err := readAll(ctx, t, Followers, b)
	if err != nil {
		return err
	}
	if tr, ok := brev[a]; ok && tr != tf {
		v.fail("%s->%s: followTime %d in following, %d in followers", a, b, tf, tr)
	}
	return nil
}

// checkFollowers checks, for up to 200 of a's followers, that they follow
// a (on the follower's side).
func checkFollowers(ctx context.Context, t Target, a string, rev map[string]int64, v *VerifyReport) error {
	checked := 0
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
	return nil
}

// checkMutual checks that mutual(a) is following(a) ∩ followers(a), each
// entry timed at the later of its two follows.
func checkMutual(a string, fwd, rev, mut map[string]int64, v *VerifyReport) {
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
