package reload

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mapdrop/mapdrop/failure"
	"github.com/mapdrop/mapdrop/tables/export"
)

// ConfirmSuffix ends the name of a confirmation file: .FILE.confirmed
// beside map file FILE (ConfirmName).
const ConfirmSuffix = ".confirmed"

// ConfirmName returns the path of the confirmation file of map file path:
// ".BASE.confirmed" in the same directory, a dotfile, so never a map
// itself.
func ConfirmName(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+ConfirmSuffix)
}

// confirmedFile returns the map file that path confirms, when path is named
// as a confirmation file.
func confirmedFile(path string) (string, bool) {
	base := filepath.Base(path)
	if len(base) <= 1+len(ConfirmSuffix) || base[0] != '.' || !strings.HasSuffix(base, ConfirmSuffix) {
		return "", false
	}
	return filepath.Join(filepath.Dir(path), strings.TrimSuffix(base[1:], ConfirmSuffix)), true
}

// textSum is the SHA-256 of a map file's text, in hexadecimal.
func textSum(text string) string {
	s := sha256.Sum256([]byte(text))
	return hex.EncodeToString(s[:])
}

// confirmed reports whether the confirmation file of path holds the SHA-256
// of text: the admin confirmed exactly this content.
func confirmed(path, text string) bool {
	b, err := os.ReadFile(ConfirmName(path))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b))
	return len(fields) > 0 && strings.EqualFold(fields[0], textSum(text))
}

// Confirm records that the admin wants the current content of map file
// path to go live although the guard holds it back (see "Held back loads"
// in the package documentation): it writes the file's SHA-256 to
// ConfirmName(path) atomically, in sha256sum(1) format ("HEX  BASE"), so
// "sha256sum -c" in that directory verifies it. A file with errors is not
// confirmed (its errors are returned, a mapfile.ErrorList), nor is one that
// cannot be read. It returns the file's entries and SHA-256.
func Confirm(path string) (entries int, sum string, err error) {
	text, _, err := readMap(path)
	if err != nil {
		return 0, "", failure.Wrap(failure.NoInput, err, "")
	}
	t, _, err := parseText(filepath.Base(path), path, text, false)
	if err != nil {
		return 0, "", err
	}
	sum = textSum(text)
	name := filepath.Base(ConfirmName(path))
	if err := export.WriteFile(filepath.Dir(path), name, sum+"  "+filepath.Base(path)+"\n", 0o644); err != nil {
		return 0, "", err
	}
	return len(t.Map), sum, nil
}

// HeldBack is the error of a load that the guard held back: the map keeps
// its previous table (if it has one) until the file changes or the admin
// confirms it.
type HeldBack struct {
	Map, File string
	Old       int  // entries of the table serving now (or of the last good copy)
	HaveOld   bool // there is such a table
	New       int  // entries of the file
	Reason    string
}

// Error says what was held back and how to confirm it.
func (h *HeldBack) Error() string {
	old := "none served"
	if h.HaveOld {
		old = fmt.Sprint(h.Old)
	}
	return fmt.Sprintf("%s: MAP LOAD HELD BACK: map %s: %s (entries now: %s, in the file: %d); if this is meant, run: mapdropd confirm %s",
		h.File, h.Map, h.Reason, old, h.New, h.File)
}

// guard returns why a load of text, parsed into entries, must be held back
// when it would replace a table of old entries (haveOld), or "": its last
// line has no newline; it empties a map that has entries; it drops more
// than half of the entries.
func guard(text string, entries, old int, haveOld bool) string {
	switch {
	case text != "" && !strings.HasSuffix(text, "\n"):
		return "its last line has no newline at the end (a file cut short?)"
	case haveOld && old > 0 && entries == 0:
		return "it has no entries"
	case haveOld && 2*(old-entries) > old:
		return "it drops more than half of the entries"
	}
	return ""
}

// lastLine is the number of the last line of text.
func lastLine(text string) int {
	return strings.Count(strings.TrimSuffix(text, "\n"), "\n") + 1
}
