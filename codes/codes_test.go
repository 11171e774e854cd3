package codes

import (
	"errors"
	"fmt"
	"testing"
)

func TestIsMatchesByCode(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", New(InvalidParam, "bad user %q", "x\n"))
	if !errors.Is(err, ErrInvalidParam) {
		t.Fatal("errors.Is does not see the code through wrapping")
	}
	if errors.Is(err, ErrInternal) {
		t.Fatal("errors.Is matched another code")
	}
	if Of(err) != InvalidParam || Of(nil) != OK || Of(errors.New("plain")) != Internal {
		t.Fatal("Of maps codes wrongly")
	}
}

func TestCodesAreStable(t *testing.T) {
	// These numbers are part of the wire protocol and of the REST
	// heritage; changing one breaks clients.
	want := map[Code]uint32{
		OK: 0, InvalidParam: 30001, Internal: 30006, Timeout: 30007,
		FollowingLimit: 32100, FollowersLimit: 32101, UserRemoving: 32200,
		NotLeader: 40001, ShardUnavailable: 40002, Overloaded: 40003, AuthFailed: 40004,
		FrameTooLarge: 40005, UnsupportedVersion: 40006, UnknownOp: 40007, ShuttingDown: 40008, FeedExpired: 40009, ExportExpired: 40010,
		RateLimited: 40011, NotAllowed: 40012,
	}
	for c, n := range want {
		if uint32(c) != n || !c.Known() || c.String() == "" {
			t.Errorf("code %d (%s) changed", n, c)
		}
	}
	if Code(12345).Known() {
		t.Error("unknown code reported as known")
	}
	if !NotLeader.Retryable() || InvalidParam.Retryable() || FollowingLimit.Retryable() || !RateLimited.Retryable() || NotAllowed.Retryable() {
		t.Error("retryability changed")
	}
}
