// Package mutf7 encodes mailbox names in IMAP's modified UTF-7 (RFC 3501
// section 5.1.3), the form Dovecot and Courier IMAP use for Maildir++
// folder names on disk.
//
// # Encoding
//
// Printable US-ASCII characters (0x20 to 0x7e) other than "&" stand for
// themselves; "&" is written "&-". Every run of other characters is written
// as "&", the modified BASE64 (RFC 2045 alphabet with "," instead of "/",
// no "=" padding) of the run's UTF-16BE form, and "-".
package mutf7

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

var b64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// Encode returns s in modified UTF-7. s must be valid UTF-8.
func Encode(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errors.New("mailbox name is not valid UTF-8")
	}
	var b strings.Builder
	var run []uint16
	flush := func() {
		if len(run) == 0 {
			return
		}
		buf := make([]byte, 0, 2*len(run))
		for _, u := range run {
			buf = append(buf, byte(u>>8), byte(u))
		}
		b.WriteByte('&')
		b.WriteString(b64.EncodeToString(buf))
		b.WriteByte('-')
		run = run[:0]
	}
	for _, r := range s {
		if r >= 0x20 && r <= 0x7e {
			flush()
			if r == '&' {
				b.WriteString("&-")
			} else {
				b.WriteRune(r)
			}
			continue
		}
		run = utf16.AppendRune(run, r)
	}
	flush()
	return b.String(), nil
}

// Decode returns the UTF-8 form of a modified UTF-7 name.
func Decode(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", errors.New("modified UTF-7: byte outside printable ASCII")
		}
		if c != '&' {
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", errors.New("modified UTF-7: unterminated &")
		}
		enc := s[i+1 : i+1+end]
		i += end + 1
		if enc == "" {
			b.WriteByte('&')
			continue
		}
		raw, err := b64.DecodeString(enc)
		if err != nil || len(raw)%2 != 0 {
			return "", errors.New("modified UTF-7: bad base64 run")
		}
		u := make([]uint16, len(raw)/2)
		for j := range u {
			u[j] = uint16(raw[2*j])<<8 | uint16(raw[2*j+1])
		}
		for j := 0; j < len(u); j++ {
			r := rune(u[j])
			if utf16.IsSurrogate(r) {
				if j+1 >= len(u) {
					return "", errors.New("modified UTF-7: unpaired surrogate")
				}
				r = utf16.DecodeRune(r, rune(u[j+1]))
				if r == utf8.RuneError {
					return "", errors.New("modified UTF-7: unpaired surrogate")
				}
				j++
			}
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}
