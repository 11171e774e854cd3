package shard

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"sync"
	"testing"
)

// Stores sharing one user table, written and snapshotted from their own
// goroutines at once (as a node's shards are), must keep the table exact:
// every user they name present with exactly their references, and every
// user they stopped naming reclaimed.
func TestSharedUsersConcurrent(t *testing.T) {
	users := NewUsers()
	cfg := DefaultConfig()
	cfg.Users = users
	const nstores, nids, steps = 4, 200, 3000
	stores := make([]*Store, nstores)
	for i := range stores {
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	id := func(r *rand.Rand) string { return fmt.Sprintf("user-%d", r.IntN(nids)) }
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 7))
			var view *View
			for step := range steps {
				a, b := id(r), id(r)
				switch r.IntN(6) {
				case 0, 1:
					s.Follow(a, []string{b, id(r)}, int64(step))
				case 2:
					s.Unfollow(a, []string{b, id(r)})
				case 3:
					s.AddFollower(a, b, int64(r.IntN(steps)))
				case 4:
					s.RemoveFollower(a, b, int64(r.IntN(steps)))
				case 5:
					// Lists read while other Stores reclaim and reuse uids.
					s.List(Followers, a, "", 50)
					s.Check(a, []string{b})
				}
				if view == nil && r.IntN(200) == 0 {
					view = s.View()
				} else if view != nil && r.IntN(50) == 0 {
					var buf bytes.Buffer
					if _, err := view.WriteTo(&buf); err != nil {
						t.Error(err)
					}
					view.Release()
					view = nil
				}
			}
			if view != nil {
				view.Release()
			}
		})
	}
	wg.Wait()
	for i, s := range stores {
		if err := s.CheckInvariants(); err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
	}
	if err := checkSharedUsers(users, stores); err != nil {
		t.Fatal(err)
	}
	// Closing every Store leaves the table empty.
	for _, s := range stores {
		s.Close()
	}
	if n := users.Stats().Users; n != 0 {
		t.Fatalf("%d users left after every Store closed", n)
	}
}

// A snapshot restored onto a node's table names the same users as the
// Store it came from, and closing the old Store keeps exactly the users
// the restored one still names.
func TestRestoreOntoSharedUsers(t *testing.T) {
	users := NewUsers()
	cfg := DefaultConfig()
	cfg.Users = users
	a, _ := New(cfg)
	b, _ := New(cfg)
	a.Follow("alice", []string{"bob", "carol"}, 10)
	b.Follow("dave", []string{"alice"}, 11)
	v := a.View()
	var buf bytes.Buffer
	if _, err := v.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	v.Release()
	a2, err := ReadFrom(&buf, cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if err := checkSharedUsers(users, []*Store{a2, b}); err != nil {
		t.Fatal(err)
	}
	if got := users.Stats().Users; got != 4 {
		t.Fatalf("%d users, want 4 (alice, bob, carol, dave)", got)
	}
	if _, err := a2.Unfollow("alice", []string{"bob", "carol"}); err != nil {
		t.Fatal(err)
	}
	// bob and carol are gone; alice stays, named by dave's list on b.
	if got := users.Stats().Users; got != 2 || !a2.HasUser("alice") || a2.HasUser("bob") {
		t.Fatalf("%d users after unfollow, want 2", got)
	}
	// A snapshot that breaks off after its users were read leaves no
	// references behind.
	v = b.View()
	buf.Reset()
	if _, err := v.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	v.Release()
	// One frame: change the trailer's last total and fix the checksum, so
	// that the loader fails at the very end.
	snap := buf.Bytes()
	payload := snap[snapHdrBytes+8:]
	payload[len(payload)-1]++
	binary.LittleEndian.PutUint32(snap[snapHdrBytes+4:], crc32.Checksum(payload, crcTable))
	if _, err := ReadFrom(bytes.NewReader(snap), cfg); !errors.Is(err, ErrSnapshotCorrupt) {
		t.Fatalf("snapshot with a wrong trailer: %v", err)
	}
	if err := checkSharedUsers(users, []*Store{a2, b}); err != nil {
		t.Fatal(err)
	}
}

// A uid freed while a View is live is not reused until the View is
// released: the View still resolves it to the ID it had.
func TestFreedUIDHeldForView(t *testing.T) {
	users := NewUsers()
	cfg := DefaultConfig()
	cfg.Users = users
	s, _ := New(cfg)
	s.Follow("a", []string{"old"}, 5)
	v := s.View()
	s.Unfollow("a", []string{"old"})
	s.Follow("b", []string{"new1", "new2", "new3"}, 6)
	var got []string
	v.st.each(v.st.recs.get(0).sets[kFollowing], func(peer uint32, _ int64) { got = append(got, string(v.st.idBytes(peer))) })
	if len(got) != 1 || got[0] != "old" {
		t.Fatalf("view sees %q, want [old]", got)
	}
	v.Release()
	s.Follow("c", []string{"newer"}, 7)
	if err := s.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	if len(users.pending) != 0 {
		t.Fatalf("%d uids still held back after the View's release", len(users.pending))
	}
}
