package maildir

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// age sets a file's access and modification times to d ago.
func age(t *testing.T, p string, d time.Duration) {
	t.Helper()
	when := time.Now().Add(-d)
	if err := os.Chtimes(p, when, when); err != nil {
		t.Fatal(err)
	}
}

func TestCleanTmp(t *testing.T) {
	home := t.TempDir()
	d, err := Open(home, filepath.Join(home, "Maildir"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tmp := filepath.Join(home, "Maildir", "tmp")
	write := func(name string, old time.Duration) {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
		age(t, p, old)
	}
	write("killed", 37*time.Hour)
	write("fresh", 0)
	write("young", 35*time.Hour)
	// Read recently, written long ago: someone may still be at it.
	write("read", 40*time.Hour)
	os.Chtimes(filepath.Join(tmp, "read"), time.Now(), time.Now().Add(-40*time.Hour))
	// Not regular files: left alone however old.
	os.Mkdir(filepath.Join(tmp, "dir"), 0o700)
	age(t, filepath.Join(tmp, "dir"), 48*time.Hour)
	os.Symlink(filepath.Join(home, "elsewhere"), filepath.Join(tmp, "link"))
	os.WriteFile(filepath.Join(home, "target"), nil, 0o600)
	age(t, filepath.Join(home, "target"), 48*time.Hour)
	os.Symlink(filepath.Join(home, "target"), filepath.Join(tmp, "link-to-old"))

	if n := d.CleanTmp(time.Now(), 128, time.Minute); n != 1 {
		t.Errorf("CleanTmp removed %d, want 1", n)
	}
	got := entries(t, tmp)
	sort.Strings(got)
	if want := "dir fresh link link-to-old read young"; strings.Join(got, " ") != want {
		t.Errorf("tmp/ holds %q, want %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(home, "target")); err != nil {
		t.Errorf("the symlink's target was removed: %v", err)
	}
	// Two days later, the young file and the one read are old too.
	if n := d.CleanTmp(time.Now().Add(48*time.Hour), 128, time.Minute); n != 3 {
		t.Errorf("two days later CleanTmp removed %d, want 3 (fresh, young, read)", n)
	}
	// A budget already spent removes nothing.
	write("killed2", 37*time.Hour)
	if n := d.CleanTmp(time.Now(), 128, -1); n != 0 {
		t.Errorf("CleanTmp with no budget removed %d", n)
	}
}

func TestCleanTmpBounded(t *testing.T) {
	home := t.TempDir()
	d, err := Open(home, filepath.Join(home, "Maildir"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tmp := filepath.Join(home, "Maildir", "tmp")
	for i := range 300 {
		p := filepath.Join(tmp, fmt.Sprint(i))
		os.WriteFile(p, nil, 0o600)
		age(t, p, 40*time.Hour)
	}
	total := 0
	for range 3 {
		n := d.CleanTmp(time.Now(), 128, time.Minute)
		if n > 128 {
			t.Errorf("CleanTmp removed %d, more than the 128 entries it may look at", n)
		}
		total += n
	}
	if total != 300 || len(entries(t, tmp)) != 0 {
		t.Errorf("three rounds removed %d of 300, %d left", total, len(entries(t, tmp)))
	}
}

// BenchmarkCleanTmp is the cost every delivery pays: a tmp/ with nothing
// to remove (empty, or two deliveries in flight).
func BenchmarkCleanTmp(b *testing.B) {
	for _, inFlight := range []int{0, 2} {
		b.Run(fmt.Sprintf("files=%d", inFlight), func(b *testing.B) {
			home := b.TempDir()
			d, err := Open(home, filepath.Join(home, "Maildir"))
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			for i := range inFlight {
				os.WriteFile(filepath.Join(home, "Maildir", "tmp", fmt.Sprint(i)), nil, 0o600)
			}
			for b.Loop() {
				d.CleanTmp(time.Now(), 128, 5*time.Millisecond)
			}
		})
	}
}
