package mutf7

import "testing"

func TestEncode(t *testing.T) {
	cases := []struct{ in, out string }{
		{"INBOX", "INBOX"},
		{"Entwürfe", "Entw&APw-rfe"},
		{"A&B", "A&-B"},
		{"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
		{"Gelöschte Elemente", "Gel&APY-schte Elemente"},
		{"😀", "&2D3eAA-"},
		{"", ""},
	}
	for _, c := range cases {
		got, err := Encode(c.in)
		if err != nil || got != c.out {
			t.Errorf("Encode(%q) = %q, %v; want %q", c.in, got, err, c.out)
		}
		back, err := Decode(c.out)
		if err != nil || back != c.in {
			t.Errorf("Decode(%q) = %q, %v; want %q", c.out, back, err, c.in)
		}
	}
	if _, err := Encode("\xff"); err == nil {
		t.Error("Encode accepted invalid UTF-8")
	}
	for _, bad := range []string{"&", "&AB", "&Zg-", "\x01"} {
		if _, err := Decode(bad); err == nil {
			t.Errorf("Decode(%q) accepted", bad)
		}
	}
}

func FuzzRoundTrip(f *testing.F) {
	f.Add("Entwürfe")
	f.Add("A&B")
	f.Fuzz(func(t *testing.T, s string) {
		enc, err := Encode(s)
		if err != nil {
			return
		}
		dec, err := Decode(enc)
		if err != nil || dec != s {
			t.Fatalf("round trip %q -> %q -> %q, %v", s, enc, dec, err)
		}
	})
}
