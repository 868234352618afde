// Package key is how Postfix compares table keys: case-insensitively.
// Postfix folds the keys of an indexed table when it builds it and every
// key it looks up; for socketmap and tcp_table it sends the key as received,
// so the server folds ("USER1@Some.Domain"
// arrives with its capitals).
//
// # Folding
//
// A key that is valid UTF-8 is folded to Unicode lower case
// (strings.ToLower: "ÜMLÄUT" → "ümläut", as Postfix does with
// compatibility_level 3.6 or later, where smtputf8 is on). A key that is
// not valid UTF-8 has only its ASCII letters folded and its other bytes
// kept, so that folding never invents text; such a key never matches a
// parsed entry, since map files must be valid UTF-8.
package key

import (
	"strings"
	"unicode/utf8"
)

// Fold returns the lookup form of k, as the package documentation says. A
// key that is already folded is returned without allocating.
func Fold(k string) string {
	for i := 0; i < len(k); i++ {
		if c := k[i]; c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			return foldSlow(k, i)
		}
	}
	return k
}

// foldSlow is Fold for a key whose byte i is the first one that is not
// ASCII or is an upper-case ASCII letter.
func foldSlow(k string, i int) string {
	if utf8.ValidString(k[i:]) {
		return strings.ToLower(k)
	}
	for i < len(k) && !('A' <= k[i] && k[i] <= 'Z') {
		i++
	}
	if i == len(k) {
		return k
	}
	b := []byte(k)
	for ; i < len(b); i++ {
		if 'A' <= b[i] && b[i] <= 'Z' {
			b[i] += 'a' - 'A'
		}
	}
	return string(b)
}

// FoldValid is Fold for a key known to be valid UTF-8, for a parser that
// has checked the text already. changed reports whether the result is a new
// string rather than k itself (it may be a new string with the same text).
func FoldValid(k string) (folded string, changed bool) {
	for i := 0; i < len(k); i++ {
		if c := k[i]; c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			return strings.ToLower(k), true
		}
	}
	return k, false
}
