// Package randtoken makes the random part of unique file names: 8 bytes
// from getrandom(2), as 16 lowercase hex digits.
//
// It calls getrandom(2) itself rather than using crypto/rand, whose package
// initialisation costs a one-shot process (mapdrop runs once per message)
// more than the call.
package randtoken

import (
	"encoding/hex"
	"fmt"

	"golang.org/x/sys/unix"
)

// New returns 16 random hex digits, or an error when the kernel gives
// fewer than 8 random bytes.
func New() (string, error) {
	var rnd [8]byte
	if n, err := unix.Getrandom(rnd[:], 0); err != nil || n != len(rnd) {
		return "", fmt.Errorf("getrandom: %d bytes, %v", n, err)
	}
	return hex.EncodeToString(rnd[:]), nil
}
