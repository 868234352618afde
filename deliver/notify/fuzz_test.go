package notify

import (
	"strings"
	"testing"

	"github.com/mapdrop/mapdrop/deliver/msghdr"
)

// FuzzVacationAllowed reads arbitrary header sections with msghdr and
// applies the vacation rules. Neither may panic; a message the rules
// allow must still be refused once it carries List-Id or comes from the
// null sender; an address always contains itself and its bracketed form.
func FuzzVacationAllowed(f *testing.F) {
	f.Add("From: Alice <alice@example.net>\nTo: Bob <bob@example.org>\n", "alice@example.net", "bob@example.org")
	f.Add("To: x, \"Bob\" <BOB@example.org>\nCc: y\nAuto-Submitted: no\n", "alice@example.net", "bob@example.org")
	f.Add("To: bob@example.org.evil\nPrecedence: bulk\n", "owner-x@example.net", "bob@example.org")
	f.Fuzz(func(t *testing.T, head, sender, mine string) {
		msg := head + "\n\nbody\n"
		h, err := msghdr.Read(strings.NewReader(msg), int64(len(msg)))
		if err != nil {
			t.Fatal(err)
		}
		if mine != "" && (!containsAddr(mine, mine) || !containsAddr("X <"+mine+">", mine)) {
			t.Fatalf("containsAddr misses %q in itself", mine)
		}
		if VacationAllowed(h, sender, []string{mine}) != nil {
			return
		}
		listed := "List-Id: <l.example>\n" + msg
		hl, err := msghdr.Read(strings.NewReader(listed), int64(len(listed)))
		if err != nil {
			t.Fatal(err)
		}
		if VacationAllowed(hl, sender, []string{mine}) == nil {
			t.Fatalf("allowed with List-Id: %q", listed)
		}
		if VacationAllowed(h, "", []string{mine}) == nil {
			t.Fatal("allowed for the null sender")
		}
	})
}
