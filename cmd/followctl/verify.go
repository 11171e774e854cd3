package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/followgraph/followgraph/client"
	"github.com/followgraph/followgraph/codes"
)

// Verify.
//
// verify checks the graph's invariant (B is in following(A) exactly when A
// is in followers(B), with the same followTime; every count equals its
// list's length; mutual(A) = following(A) ∩ followers(A), at the later
// followTime) while streaming: it scans
// each shard's users from the shard's leader, a page at a time, and checks
// each user on its own, holding only that user's following list (bounded
// by the following cap) and the mutual relations it implies. The two sides
// of each edge live on different shards, so each is checked with one Check
// request per edge and side:
//
//   - for B in following(A), Check(B, A) must say A follows B (bit 1: A is
//     among B's followers);
//   - for F in followers(A), Check(F, A) must say F follows A (bit 2: A is
//     in F's following list).
//
// Check carries no followTime. The times are compared by an
// order-independent fingerprint instead: the sum (mod 2^64) of a keyed hash
// of (follower, followee, followTime) over every following list must equal
// the same sum over every followers list. A difference names no edge (the
// per-edge checks name the missing ones; a difference they do not explain
// is a followTime that differs between the two sides).

const (
	scanPage      = 1000 // users per ScanUsers request
	infoBatch     = 100  // users per Info request (the server's limit)
	maxViolations = 20   // violations listed; all are counted
	progressEvery = 2 * time.Second
)

func verifyFlags(fs *flag.FlagSet, o *options) {
	fs.IntVar(&o.parallel, "parallel", 8, "read `N` users and check N edges at a time")
	fs.Float64Var(&o.sample, "sample", 1, "check only a random fraction `F` (0 < F <= 1) of the users, with all their edges")
}

func verifyCheck(o *options) error {
	if o.parallel < 1 || o.parallel > 1024 {
		return usageErrorf("--parallel must be between 1 and 1024")
	}
	if !(o.sample > 0 && o.sample <= 1) {
		return usageErrorf("--sample must be above 0 and at most 1")
	}
	return nil
}

type verifyOutput struct {
	Shards     int      `json:"shards"`
	Sample     float64  `json:"sample"`
	Users      uint64   `json:"users"`  // users checked
	Edges      uint64   `json:"edges"`  // entries of their following lists
	Checks     uint64   `json:"checks"` // Check requests (one per edge and side)
	Violations uint64   `json:"violations"`
	Samples    []string `json:"samples"` // up to 20 of the violations
}

func (out verifyOutput) failure() error {
	if out.Violations == 0 {
		return nil
	}
	return fmt.Errorf("verify: %d violations of the invariant", out.Violations)
}

func (out verifyOutput) text(w io.Writer) {
	tw := newTable(w)
	fmt.Fprintf(tw, "shards:\t%d\n", out.Shards)
	if out.Sample < 1 {
		fmt.Fprintf(tw, "sample:\t%g of the users\n", out.Sample)
	}
	fmt.Fprintf(tw, "users:\t%d\n", out.Users)
	fmt.Fprintf(tw, "edges:\t%d\n", out.Edges)
	fmt.Fprintf(tw, "checks:\t%d\n", out.Checks)
	fmt.Fprintf(tw, "violations:\t%d\n", out.Violations)
	tw.Flush()
	if out.Violations == 0 {
		fmt.Fprintln(w, "\nok: every count matches its list, mutual lists match, and every edge is on both sides with the same followTime")
		return
	}
	if uint64(len(out.Samples)) < out.Violations {
		fmt.Fprintf(w, "\nVIOLATIONS (the first %d):\n", len(out.Samples))
	} else {
		fmt.Fprint(w, "\nVIOLATIONS:\n")
	}
	for _, v := range out.Samples {
		fmt.Fprintf(w, "  %s\n", v)
	}
}

type verifier struct {
	c *client.Client
	o *options

	seed      maphash.Seed
	threshold uint64 // a user is sampled when its hash is below (all: every user)
	all       bool

	ctx    context.Context
	cancel context.CancelCauseFunc // the first request error stops everything
	sem    chan struct{}           // bounds the Check requests in flight
	checks sync.WaitGroup

	shards                     int
	shard                      atomic.Int64 // being scanned, for progress
	users, edges, nchecks      atomic.Uint64
	violations, edgeViolations atomic.Uint64
	fwdSum, revSum, fwdN, revN atomic.Uint64 // the edge fingerprints, per side

	mu      sync.Mutex
	samples []string
}

type verifyJob struct {
	user string
	info client.Info
}

func verifyCmd(ctx context.Context, c *client.Client, o *options, _ []string) (output, error) {
	rctx, cancel := requestCtx(ctx, o)
	sm, err := c.ShardMap(rctx)
	cancel()
	if err != nil {
		return nil, err
	}
	v := &verifier{c: c, o: o, seed: maphash.MakeSeed(), shards: sm.Shards, sem: make(chan struct{}, o.parallel), all: o.sample >= 1}
	if !v.all {
		t := o.sample * math.Exp2(64)
		v.all = t >= math.Exp2(64)
		if !v.all {
			v.threshold = uint64(t)
		}
	}
	v.ctx, v.cancel = context.WithCancelCause(ctx)
	defer v.cancel(nil)

	stopProgress := v.progress()
	jobs := make(chan verifyJob, 2*o.parallel)
	var workers sync.WaitGroup
	for range o.parallel {
		workers.Go(func() {
			for j := range jobs {
				if v.ctx.Err() != nil {
					continue // drain
				}
				if err := v.user(j.user, j.info); err != nil {
					v.cancel(err)
				}
			}
		})
	}
	err = v.scan(jobs)
	close(jobs)
	workers.Wait()
	v.checks.Wait()
	stopProgress()
	if cause := context.Cause(v.ctx); cause != nil {
		err = cause // the first failure, rather than what it interrupted
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return nil, codes.New(codes.Timeout, "verify: %v", err)
		}
		return nil, err
	}

	// Both sides hold the same edges with the same times.
	fwd, rev, fwdN, revN := v.fwdSum.Load(), v.revSum.Load(), v.fwdN.Load(), v.revN.Load()
	switch {
	case v.edgeViolations.Load() > 0:
		// The edges found on one side only explain any difference.
	case fwdN != revN:
		v.violate("the following lists hold %d edges and the followers lists %d, though every edge was found on both sides by "+
			"check: the lists and check disagree", fwdN, revN)
	case fwd != rev:
		v.violate("the following and followers lists hold the same %d edges, but their fingerprints differ: some edge has "+
			"a different followTime in following(A) and in followers(B) (followbench --verify names such edges among "+
			"the users it samples)", fwdN)
	}
	out := verifyOutput{Shards: v.shards, Sample: o.sample, Users: v.users.Load(), Edges: v.edges.Load(), Checks: v.nchecks.Load(),
		Violations: v.violations.Load(), Samples: v.samples}
	if out.Samples == nil {
		out.Samples = []string{}
	}
	return out, nil
}

// progress prints a line on stderr every 2s until the returned function is
// called.
func (v *verifier) progress() (stop func()) {
	start := time.Now()
	return every(progressEvery, func() {
		fmt.Fprintf(v.o.stderr, "verify: shard %d of %d, %d users, %d edges, %d checks, %d violations (%s)\n",
			v.shard.Load()+1, v.shards, v.users.Load(), v.edges.Load(), v.nchecks.Load(), v.violations.Load(),
			time.Since(start).Round(time.Second))
	})
}

// scan sends every sampled user of every shard to jobs, with its counts.
func (v *verifier) scan(jobs chan<- verifyJob) error {
	for s := range v.shards {
		v.shard.Store(int64(s))
		// A scan position is the leader's own numbering: a scan that
		// spans a change of leader may skip or repeat users.
		before, err := v.leaderOf(s)
		if err != nil {
			return err
		}
		if err := v.scanShard(s, jobs); err != nil || v.ctx.Err() != nil {
			return err
		}
		after, err := v.leaderOf(s)
		if err != nil {
			return err
		}
		if before != after && before != "" && after != "" {
			return codes.New(codes.ShardUnavailable, "shard %d changed leader from %s to %s during the scan: run verify again once the cluster is quiet", s, before, after)
		}
	}
	return nil
}

// leaderOf returns the ID of shard s's leader, as the shard map says ("" if
// unknown).
func (v *verifier) leaderOf(s int) (string, error) {
	rctx, cancel := requestCtx(v.ctx, v.o)
	sm, err := v.c.ShardMap(rctx)
	cancel()
	if err != nil {
		return "", err
	}
	for _, l := range sm.Leaders {
		if l.Shard == s {
			return l.LeaderID, nil
		}
	}
	return "", nil
}

// scanShard sends every sampled user of shard s to jobs.
func (v *verifier) scanShard(s int, jobs chan<- verifyJob) error {
	var from uint64
	for {
		rctx, cancel := requestCtx(v.ctx, v.o)
		p, err := v.c.ScanUsers(rctx, s, from, scanPage)
		cancel()
		if err != nil {
			return fmt.Errorf("scan shard %d from %d: %w", s, from, err)
		}
		var users []string
		for _, u := range p.Users {
			if home := v.c.ShardOf(u); home != s {
				v.violate("user %q is on shard %d but hashes to shard %d", u, s, home)
			}
			if v.sampled(u) {
				users = append(users, u)
			}
		}
		for len(users) > 0 {
			batch := users[:min(len(users), infoBatch)]
			users = users[len(batch):]
			rctx, cancel := requestCtx(v.ctx, v.o)
			infos, err := v.c.Info(rctx, batch...)
			cancel()
			if err != nil {
				return fmt.Errorf("info of shard %d's users: %w", s, err)
			}
			for i, u := range batch {
				select {
				case jobs <- verifyJob{user: u, info: infos[i]}:
				case <-v.ctx.Done():
					return nil
				}
			}
		}
		if p.Next == 0 {
			break
		}
		if p.Next <= from {
			return codes.New(codes.Internal, "scan of shard %d does not advance (from %d, next %d)", s, from, p.Next)
		}
		from = p.Next
	}
	return nil
}

func (v *verifier) sampled(u string) bool {
	return v.all || maphash.String(v.seed, u) < v.threshold
}

// violate records a violation.
func (v *verifier) violate(format string, args ...any) {
	v.violations.Add(1)
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.samples) < maxViolations {
		v.samples = append(v.samples, fmt.Sprintf(format, args...))
	}
}

// edgeHash is the fingerprint of one edge. User IDs hold no NUL.
func (v *verifier) edgeHash(follower, followee string, t int64) uint64 {
	var h maphash.Hash
	h.SetSeed(v.seed)
	h.WriteString(follower)
	h.WriteByte(0)
	h.WriteString(followee)
	h.WriteByte(0)
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(t))
	h.Write(b[:])
	return h.Sum64()
}

// user checks one user: its three lists against each other and its
// counts, and (asynchronously) the other side of each of its edges.
func (v *verifier) user(a string, info client.Info) error {
	v.users.Add(1)
	if info.Code != codes.OK {
		v.violate("info(%s) failed with code %d", a, info.Code)
	}
	following, n, err := v.following(a)
	if err != nil {
		return err
	}
	v.checkCount(a, "following", info, info.Following, n)
	mutual, n, err := v.followers(a, following)
	if err != nil {
		return err
	}
	v.checkCount(a, "followers", info, info.Followers, n)
	n, err = v.mutual(a, mutual)
	if err != nil {
		return err
	}
	v.checkCount(a, "mutual", info, info.Mutual, n)
	return nil
}

// checkCount checks info(a)'s count of the named list against the n
// entries the list had, when the info request itself succeeded.
func (v *verifier) checkCount(a, name string, info client.Info, count, n uint64) {
	if info.Code == codes.OK && count != n {
		v.violate("info(%s) says %s %d, the list has %d", a, name, count, n)
	}
}

// following reads following(A) whole (at most the following cap), checks
// it holds neither A nor a duplicate, adds its edges to the following
// side's fingerprint and has each checked on the followee's side. It
// returns the list, by followee, and its length.
func (v *verifier) following(a string) (map[string]int64, uint64, error) {
	following := map[string]int64{}
	var n uint64
	err := v.list((*client.Client).Following, "following", a, func(it client.Item) {
		n++
		if it.UserID == a {
			v.violate("following(%s) lists %s itself", a, a)
		}
		if _, dup := following[it.UserID]; dup {
			v.violate("following(%s) lists %s twice", a, it.UserID)
			return
		}
		following[it.UserID] = it.FollowTime
		v.edges.Add(1)
		if v.sampled(it.UserID) {
			v.fwdSum.Add(v.edgeHash(a, it.UserID, it.FollowTime))
			v.fwdN.Add(1)
		}
		// A is among B's followers.
		v.check(it.UserID, a, 1, func() string {
			return fmt.Sprintf("following(%s) lists %s (followTime %d) but followers(%s) lacks %s", a, it.UserID, it.FollowTime, it.UserID, a)
		})
	})
	return following, n, err
}

// followers streams followers(A), which may be long, holding only the
// mutual relations it implies with following: each at the later of the
// two times. It checks it does not hold A, adds its edges to the
// followers side's fingerprint and has each checked on the follower's
// side. It returns the mutual relations and the list's length.
func (v *verifier) followers(a string, following map[string]int64) (map[string]int64, uint64, error) {
	mutual := map[string]int64{}
	var n uint64
	err := v.list((*client.Client).Followers, "followers", a, func(it client.Item) {
		n++
		if it.UserID == a {
			v.violate("followers(%s) lists %s itself", a, a)
		}
		if t, ok := following[it.UserID]; ok {
			if _, dup := mutual[it.UserID]; dup {
				v.violate("followers(%s) lists %s twice", a, it.UserID)
			}
			mutual[it.UserID] = max(t, it.FollowTime)
		}
		if v.sampled(it.UserID) {
			v.revSum.Add(v.edgeHash(it.UserID, a, it.FollowTime))
			v.revN.Add(1)
		}
		// A is in F's following list.
		v.check(it.UserID, a, 2, func() string {
			return fmt.Sprintf("followers(%s) lists %s (followTime %d) but following(%s) lacks %s", a, it.UserID, it.FollowTime, it.UserID, a)
		})
	})
	return mutual, n, err
}

// mutual reads mutual(A) and checks it is exactly the relations implied
// by following(A) and followers(A), each at the later of the two times. It
// consumes mutual and returns the list's length.
func (v *verifier) mutual(a string, mutual map[string]int64) (uint64, error) {
	var n uint64
	err := v.list((*client.Client).Mutual, "mutual", a, func(it client.Item) {
		n++
		t, ok := mutual[it.UserID]
		switch {
		case !ok:
			v.violate("mutual(%s) lists %s, who is not in both following(%s) and followers(%s) (or is listed twice)", a, it.UserID, a, a)
		case t != it.FollowTime:
			v.violate("mutual(%s) lists %s at %d, want %d (the later of the following and followers times)", a, it.UserID, it.FollowTime, t)
		}
		delete(mutual, it.UserID)
	})
	if err != nil {
		return n, err
	}
	for u := range mutual {
		v.violate("mutual(%s) lacks %s, who is in following(%s) and followers(%s)", a, u, a, a)
	}
	return n, nil
}

// list pages through one list of user, calling fn for each item, and
// checks the order: newest first, ties by user ID ascending.
func (v *verifier) list(op listFunc, name, user string, fn func(client.Item)) error {
	var cursor string
	var prev *client.Item
	ordered := true
	for {
		rctx, cancel := requestCtx(v.ctx, v.o)
		p, err := op(v.c, rctx, user, client.Cursor(cursor), client.Limit(maxPage))
		cancel()
		if err != nil {
			return fmt.Errorf("%s(%s): %w", name, user, err)
		}
		for i := range p.Items {
			it := &p.Items[i]
			if ordered && prev != nil && (it.FollowTime > prev.FollowTime || (it.FollowTime == prev.FollowTime && it.UserID <= prev.UserID)) {
				ordered = false
				v.violate("%s(%s) is out of order: %s (%d) after %s (%d)", name, user, it.UserID, it.FollowTime, prev.UserID, prev.FollowTime)
			}
			fn(*it)
			prev = it
		}
		if p.NextCursor == "" {
			return nil
		}
		if p.NextCursor == cursor {
			return codes.New(codes.Internal, "%s(%s): the server returned the same cursor again", name, user)
		}
		cursor = p.NextCursor
	}
}

// check asks, in the background, for the relation of actor with target
// and records a violation (described by what) unless its FollowType has
// bit set.
func (v *verifier) check(actor, target string, bit uint8, what func() string) {
	select {
	case v.sem <- struct{}{}:
	case <-v.ctx.Done():
		return
	}
	v.checks.Go(func() {
		defer func() { <-v.sem }()
		rctx, cancel := requestCtx(v.ctx, v.o)
		cs, err := v.c.Check(rctx, actor, target)
		cancel()
		v.nchecks.Add(1)
		switch {
		case err != nil:
			v.cancel(fmt.Errorf("check %s %s: %w", actor, target, err))
		case len(cs) != 1:
			v.cancel(codes.New(codes.Internal, "check %s %s: %d results", actor, target, len(cs)))
		case cs[0].Code != codes.OK:
			v.violate("%s (check %s %s failed with code %d)", what(), actor, target, cs[0].Code)
			v.edgeViolations.Add(1)
		case cs[0].FollowType&bit == 0:
			v.violate("%s", what())
			v.edgeViolations.Add(1)
		}
	})
}
