package postfixtest

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// DefaultMainCF is the default configuration file Postfix's set-gid
// programs read to decide whether to honour MAIL_CONFIG.
const DefaultMainCF = "/etc/postfix/main.cf"

// AllowSendmail lets Postfix's sendmail, run by any user with
// MAIL_CONFIG=inst.ConfDir (pipe(8) and local(8) pass MAIL_CONFIG to the
// commands they run), submit into this instance instead of the default
// one. The set-gid postdrop that sendmail runs honours MAIL_CONFIG only for
// a directory listed in alternate_config_directories of the default
// main.cf, so AllowSendmail appends that line to DefaultMainCF and, at
// the test's cleanup, restores the file as it was (or removes it when
// there was none). Like Start, it is meant for a test holding the
// machine's Postfix lock.
func AllowSendmail(t testing.TB, inst *Instance) {
	t.Helper()
	old, err := os.ReadFile(DefaultMainCF)
	existed := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	mode := os.FileMode(0o644)
	if st, err := os.Stat(DefaultMainCF); err == nil {
		mode = st.Mode().Perm()
	}
	t.Cleanup(func() {
		if existed {
			if err := os.WriteFile(DefaultMainCF, old, mode); err != nil {
				t.Errorf("postfixtest: restoring %s: %v", DefaultMainCF, err)
			}
		} else if err := os.Remove(DefaultMainCF); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("postfixtest: removing %s: %v", DefaultMainCF, err)
		}
	})
	text := string(old)
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	text += "# added by a mapdrop test (postfixtest.AllowSendmail), removed when it ends\n" +
		"alternate_config_directories = " + inst.ConfDir + "\n"
	if err := os.WriteFile(DefaultMainCF, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
}
