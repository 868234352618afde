package server

import (
	"fmt"
	"testing"
	"time"
)

func TestFailLogWindow(t *testing.T) {
	var f failLog
	t0 := time.Unix(1e9, 0)
	for i := range FailureLogBurst {
		if ok, n := f.allow("m", t0.Add(time.Duration(i)*time.Second)); !ok || n != 0 {
			t.Fatalf("line %d: allow = %v, %d", i, ok, n)
		}
	}
	for range 7 {
		if ok, _ := f.allow("m", t0.Add(30*time.Second)); ok {
			t.Fatal("allowed over the burst")
		}
	}
	if ok, _ := f.allow("other", t0.Add(30*time.Second)); !ok {
		t.Fatal("another map is limited by the first")
	}
	if ok, n := f.allow("m", t0.Add(61*time.Second)); !ok || n != 7 {
		t.Fatalf("next minute: allow = %v, suppressed %d; want true, 7", ok, n)
	}
}

func TestFailLogBounded(t *testing.T) {
	var f failLog
	now := time.Unix(1e9, 0)
	for i := range maxFailMaps + 500 {
		f.allow(fmt.Sprint("m", i), now)
	}
	if len(f.windows) != maxFailMaps {
		t.Errorf("%d limiters, want at most %d", len(f.windows), maxFailMaps)
	}
	lasts := 0
	for i := range MaxUnknownMaps + 500 {
		first, last := f.firstUnknown(fmt.Sprint("u", i))
		if first != (i < MaxUnknownMaps) {
			t.Fatalf("name %d: first = %v", i, first)
		}
		if last {
			lasts++
		}
	}
	if first, _ := f.firstUnknown("u0"); first {
		t.Error("a name logged twice")
	}
	if len(f.unknown) != MaxUnknownMaps || lasts != 1 {
		t.Errorf("%d names remembered, %d 'last' answers; want %d and 1", len(f.unknown), lasts, MaxUnknownMaps)
	}
}
