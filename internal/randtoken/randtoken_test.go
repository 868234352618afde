package randtoken

import (
	"regexp"
	"testing"
)

func TestNew(t *testing.T) {
	hex16 := regexp.MustCompile(`^[0-9a-f]{16}$`)
	seen := map[string]bool{}
	for range 1000 {
		tok, err := New()
		if err != nil || !hex16.MatchString(tok) || seen[tok] {
			t.Fatalf("New() = %q, %v: want 16 new hex digits", tok, err)
		}
		seen[tok] = true
	}
}
