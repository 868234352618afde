// Package address knows where a Postfix address extension starts, as
// Postfix's split_addr() decides it with recipient_delimiter. The store
// uses it to look up user@domain for user+ext@domain, and the delivery
// agent to find the extension it files into a folder; one rule serves both.
//
// The local part (the address before its last "@") is cut at the first
// character that is one of the delimiters, except:
//
//   - no delimiters configured: never cut;
//   - "postmaster", "mailer-daemon", "double-bounce" (any case): never cut;
//   - when "-" is a delimiter, a local part starting with "owner-" or
//     longer than 8 characters and ending in "-request" (any case): never
//     cut, so mailing-list owner addresses stay whole;
//   - a local part that starts with a delimiter ("+foo"): not cut;
//   - bytes that are not valid UTF-8 are never a delimiter.
package address

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ExtensionAt returns the byte index in local of the delimiter that starts
// its extension, or -1 when local is not to be cut. It does not allocate.
func ExtensionAt(local, delims string) int {
	if delims == "" {
		return -1
	}
	if strings.EqualFold(local, "postmaster") || strings.EqualFold(local, "mailer-daemon") ||
		strings.EqualFold(local, "double-bounce") {
		return -1
	}
	if strings.ContainsRune(delims, '-') &&
		((len(local) >= 6 && strings.EqualFold(local[:6], "owner-")) ||
			(len(local) > 8 && strings.EqualFold(local[len(local)-8:], "-request"))) {
		return -1
	}
	for i, r := range local {
		if r == utf8.RuneError || !strings.ContainsRune(delims, r) {
			continue
		}
		if i == 0 {
			return -1
		}
		return i
	}
	return -1
}

// CheckDelimiters reports whether delims can be a recipient delimiter set:
// valid UTF-8, each character printable and none of "@", white space or
// U+FFFD. The empty set ("no extensions") is the caller's to allow or not.
func CheckDelimiters(delims string) error {
	if !utf8.ValidString(delims) || strings.ContainsFunc(delims, func(r rune) bool {
		return r == '@' || r == '\uFFFD' || unicode.IsSpace(r) || !unicode.IsPrint(r)
	}) {
		return fmt.Errorf("recipient delimiters %q: want printable characters other than @ and white space", delims)
	}
	return nil
}

// Split cuts an address's local part where its extension starts:
// "user+ext@dom" → "user@dom", "ext", true (the delimiter itself is in
// neither). An address that is not to be cut comes back whole with ok false.
// The local part is what precedes the last "@", or all of full.
func Split(full, delims string) (base, ext string, ok bool) {
	local, domain := full, ""
	if i := strings.LastIndexByte(full, '@'); i >= 0 {
		local, domain = full[:i], full[i:]
	}
	i := ExtensionAt(local, delims)
	if i < 0 {
		return full, "", false
	}
	_, size := utf8.DecodeRuneInString(local[i:])
	return local[:i] + domain, local[i+size:], true
}
