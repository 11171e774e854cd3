package clock

import (
	"testing"
	"time"
)

func TestOffset(t *testing.T) {
	defer SetOffset(0)
	before := time.Now()
	SetOffset(time.Hour)
	if got := Now().Sub(before); got < time.Hour || got > time.Hour+time.Minute {
		t.Fatalf("with +1h: Now is %v after time.Now", got)
	}
	SetOffset(-time.Hour)
	if got := before.Sub(Now()); got < time.Hour-time.Minute || got > time.Hour {
		t.Fatalf("with -1h: Now is %v before time.Now", got)
	}
	SetOffset(0)
	if got := Now().Sub(before); got < 0 || got > time.Minute {
		t.Fatalf("with no offset: Now is %v after time.Now", got)
	}
}
