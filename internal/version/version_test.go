package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFormat(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"},
		{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	if got, want := format("mapdropd", info), "mapdropd v1.2.3 (0123456789ab, modified, 2026-12-01T10:00:00Z) go1.26.8"; got != want {
		t.Errorf("format = %q, want %q", got, want)
	}
	info = &debug.BuildInfo{GoVersion: "go1.26.8"}
	if got, want := format("mapdrop", info), "mapdrop (devel) go1.26.8"; got != want {
		t.Errorf("format without VCS = %q, want %q", got, want)
	}
}

func TestString(t *testing.T) {
	if got := String("x"); !strings.HasPrefix(got, "x ") || !strings.Contains(got, "go1.") {
		t.Errorf("String = %q", got)
	}
}
