package shard

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"
)

func FuzzCursor(f *testing.F) {
	s := newStore(f)
	for i := range 5 {
		mustFollow(f, s, fmt.Sprintf("f%d", i), int64(i), "star")
	}
	_, next, _ := s.List(Followers, "star", "", 2)
	f.Add(next, "star", uint8(Followers))
	f.Add("", "star", uint8(Following))
	f.Add("AQI", "x", uint8(Mutual))
	f.Fuzz(func(t *testing.T, c, owner string, kind uint8) {
		pos, err := decodeCursor([]byte("k"), owner, Kind(kind), c)
		if err != nil {
			return
		}
		// A cursor that decodes is one this key made; it re-encodes to
		// the same text and names a valid position.
		if again := encodeCursor([]byte("k"), owner, Kind(kind), pos.t, pos.id); again != c {
			t.Fatalf("cursor %q re-encodes as %q", c, again)
		}
		if !ValidUserID(string(pos.id)) || pos.t < 0 || pos.t > maxTime {
			t.Fatalf("cursor %q decodes to a bad position %+v", c, pos)
		}
		// And the Store accepts it.
		if _, _, err := s.List(Kind(kind), owner, c, 1); err != nil && ValidUserID(owner) {
			t.Fatalf("decoded cursor rejected by List: %v", err)
		}
	})
}

// FuzzSnapshot feeds arbitrary streams to ReadFrom.
func FuzzSnapshot(f *testing.F) {
	for _, seed := range snapshotSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkLoad(t, b)
	})
}

// FuzzSnapshotPayload fuzzes the payload behind a valid frame checksum,
// which random bytes almost never get past in FuzzSnapshot.
func FuzzSnapshotPayload(f *testing.F) {
	for _, seed := range snapshotSeeds(f) {
		f.Add(seed[snapHdrBytes+8:]) // the seeds are one frame each
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		if len(payload) == 0 || len(payload) > maxFrame {
			return
		}
		checkLoad(t, frame(payload))
	})
}

func frame(payload []byte) []byte {
	b := []byte(snapMagic)
	b = binary.LittleEndian.AppendUint32(b, snapVersion)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(payload, crcTable))
	return append(b, payload...)
}

func checkLoad(t *testing.T, b []byte) {
	// Through a table of its own the test can see: a snapshot that does
	// not load leaves no user behind, and one that does gives every user
	// back on Close.
	cfg := DefaultConfig()
	cfg.Users = NewUsers()
	s, err := ReadFrom(bytes.NewReader(b), cfg)
	if err != nil {
		if n := cfg.Users.Stats().Users; n != 0 {
			t.Fatalf("failed load (%v) left %d users in the table", err, n)
		}
		return
	}
	defer func() {
		s.Close()
		if n := cfg.Users.Stats().Users; n != 0 {
			t.Fatalf("%d users left after Close", n)
		}
	}()
	if err := s.CheckInvariants(); err != nil {
		t.Fatalf("accepted snapshot breaks invariants: %v", err)
	}
	// A snapshot that loads writes back identically when it came from our
	// writer's framing.
	again := snapshotBytes(t, s)
	s2, err := ReadFrom(bytes.NewReader(again), DefaultConfig())
	if err != nil {
		t.Fatalf("re-snapshot does not load: %v", err)
	}
	if !bytes.Equal(snapshotBytes(t, s2), again) {
		t.Fatal("snapshot round trip is not stable")
	}
}

func snapshotSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	empty := newStore(f)
	seeds = append(seeds, snapshotBytes(f, empty))
	s := newStore(f)
	mustFollow(f, s, "a", 5, "b", "c", "é")
	mustFollow(f, s, "b", 7, "a")
	seeds = append(seeds, snapshotBytes(f, s))
	big := newStore(f)
	for i := range 150 {
		mustFollow(f, big, fmt.Sprintf("u%d", i), int64(i/3), "star")
	}
	seeds = append(seeds, snapshotBytes(f, big))
	return seeds
}
