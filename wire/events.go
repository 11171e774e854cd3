package wire

import "fmt"

// EventKind says what changed in whose list. The numbers are part of the
// protocol.
type EventKind uint8

// Event kinds.
const (
	// FollowingAdded and FollowingRemoved: User started or stopped
	// following Other (on User's shard, in the follow's own entry).
	FollowingAdded   EventKind = 1
	FollowingRemoved EventKind = 2
	// FollowerAdded and FollowerRemoved: Other started or stopped
	// following User (on User's shard, when the reverse edge arrives).
	FollowerAdded   EventKind = 3
	FollowerRemoved EventKind = 4
	// MutualFormed and MutualBroken: User's mutual list gained or lost
	// Other (each side on its own shard, when its lists show it).
	MutualFormed EventKind = 5
	MutualBroken EventKind = 6
)

var kindNames = [...]string{FollowingAdded: "following_added", FollowingRemoved: "following_removed",
	FollowerAdded: "follower_added", FollowerRemoved: "follower_removed", MutualFormed: "mutual_formed", MutualBroken: "mutual_broken"}

// String names the kind as docs/PROTOCOL.md does.
func (k EventKind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind%d", uint8(k))
}

// ParseEventKind is the inverse of String.
func ParseEventKind(s string) (EventKind, bool) {
	for k, n := range kindNames {
		if n != "" && n == s {
			return EventKind(k), true
		}
	}
	return 0, false
}
