package wire

import (
	"testing"

	"github.com/followgraph/followgraph/internal/tokens"
)

func TestOpRole(t *testing.T) {
	for _, c := range []struct {
		op   Op
		want tokens.Role
	}{
		{OpFollow, tokens.RoleWrite}, {OpUnfollow, tokens.RoleWrite},
		{OpFollowers, tokens.RoleRead}, {OpFollowing, tokens.RoleRead}, {OpMutual, tokens.RoleRead},
		{OpInfo, tokens.RoleRead}, {OpCheck, tokens.RoleRead},
		{OpExport, tokens.RoleAdmin}, {OpHello, tokens.RoleNone}, {Op(200), tokens.RoleNone},
	} {
		if got := c.op.Role(); got != c.want {
			t.Errorf("%v.Role() = %v, want %v", c.op, got, c.want)
		}
	}
}
