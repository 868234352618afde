package postfixtest

import (
	"strings"
	"testing"
)

func TestMainCFOverridesInPlace(t *testing.T) {
	inst := &Instance{Dir: "/x", Maillog: "/x/maillog"}
	got := inst.mainCF([]string{
		"mydestination = local.test",
		"virtual_transport = mapdrop",
		"alias_maps = hash:/etc/aliases,",
		"  texthash:/etc/more",
		"# a comment",
	})
	if n := strings.Count(got, "mydestination"); n != 1 {
		t.Errorf("mydestination appears %d times:\n%s", n, got)
	}
	for _, want := range []string{
		"\nmydestination = local.test\n",
		"\nvirtual_transport = mapdrop\n",
		"\nalias_maps = hash:/etc/aliases,\n  texthash:/etc/more\n",
		"\nmaillog_file = /x/maillog\n",
		"\n# a comment\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("main.cf lacks %q:\n%s", want, got)
		}
	}
	// The override stays where the default was: before the appended lines.
	if strings.Index(got, "mydestination") > strings.Index(got, "virtual_transport") {
		t.Errorf("override moved to the end:\n%s", got)
	}
}
