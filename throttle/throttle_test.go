package throttle

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	l := New(10, 5*time.Minute)
	l.Now = func() time.Time { return now }
	for i := range 10 {
		if ok, _ := l.Allowed("login:admin"); !ok {
			t.Fatalf("refused after %d failures, want 10 allowed", i)
		}
		l.Fail("login:admin")
		now = now.Add(time.Second)
	}
	ok, until := l.Allowed("login:admin")
	if ok {
		t.Fatal("allowed after 10 failures in 10 s")
	}
	if want := time.Date(2026, 11, 27, 9, 5, 0, 0, time.UTC); !until.Equal(want) {
		t.Errorf("retry at %v, want %v (the first failure + 5 min)", until, want)
	}
	if ok, _ := l.Allowed("login:other"); !ok {
		t.Error("another key is refused")
	}
	now = time.Date(2026, 11, 27, 9, 5, 0, 1, time.UTC) // the first failure has left the window
	if ok, _ := l.Allowed("login:admin"); !ok {
		t.Error("still refused after the window moved on")
	}
	l.Fail("login:admin")
	if ok, _ := l.Allowed("login:admin"); ok {
		t.Error("allowed with 10 failures in the window again")
	}
	l.Reset("login:admin")
	if ok, _ := l.Allowed("login:admin"); !ok {
		t.Error("refused after Reset")
	}
}
