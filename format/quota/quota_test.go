package quota

import "testing"

func TestParseFile(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Limits
		str  string
	}{
		{"104857600S", Limits{Bytes: 104857600}, "104857600S"},
		{"52428800S,1000C", Limits{52428800, 1000}, "52428800S,1000C"},
		{"1000C,5S", Limits{5, 1000}, "5S,1000C"},
		{"10C", Limits{Messages: 10}, "10C"},
		{"", Limits{}, ""},
		{"100S,7X", Limits{Bytes: 100}, "100S"}, // unknown letters ignored
	} {
		got, err := ParseFile(c.in)
		if err != nil || got != c.want || got.String() != c.str {
			t.Errorf("ParseFile(%q) = %+v (%q), %v; want %+v (%q)", c.in, got, got.String(), err, c.want, c.str)
		}
	}
	for _, bad := range []string{"S", "xS", "-5S", "+5S", "5", "1S,,2C"} {
		if l, err := ParseFile(bad); err == nil {
			t.Errorf("ParseFile(%q) = %+v, want an error", bad, l)
		}
	}
	if (Limits{}).Enabled() || !(Limits{Messages: 1}).Enabled() {
		t.Error("Enabled is wrong")
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]Limits{
		"104857600S": {Bytes: 104857600},
		"1000C":      {Messages: 1000},
		"5S,1000C":   {5, 1000},
		"1000C,5S":   {5, 1000},
		"0S":         {},
		"00012S":     {Bytes: 12},
	} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if want.Enabled() {
			if again, err := Parse(got.String()); err != nil || again != want {
				t.Errorf("Parse(%q.String()) = %+v, %v", in, again, err)
			}
		}
	}
	for _, bad := range []string{"", "S", "5", "5X", "5S,6S", "1C,2C", "-5S", "+5S", " 5S", "5S,", "1S,,2C", "99999999999999999999S", "5s"} {
		if l, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", bad, l)
		}
	}
}
