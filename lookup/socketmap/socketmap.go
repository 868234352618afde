// Package socketmap encodes and decodes the payloads of the socketmap lookup
// protocol that Postfix speaks as a client (socketmap_table(5), originally
// Sendmail's). Framing is not done here: every request and every reply
// travels as one netstring (package lookup/netstring), and this package
// deals only with the bytes inside.
//
// Request (client to server):
//
//	NAME " " KEY
//
// split at the FIRST space: NAME is the map name and must be non-empty;
// KEY is everything after that space, byte for byte (it may contain spaces
// and raw UTF-8, and may be empty). A payload without a space or with an
// empty NAME is malformed.
//
// Replies (server to client), one per request:
//
//	"OK " VALUE       the key was found; VALUE is non-empty
//	"NOTFOUND "       the key is not in the map (trailing space included,
//	                  as in the manual's example)
//	"TEMP " REASON    a temporary failure; Postfix defers and retries
//	"PERM " REASON    a permanent (configuration) failure; Postfix defers
//	                  and logs a configuration error
//
// Postfix rejects requests and replies whose payload exceeds 100000 bytes
// (MaxSize). The server side of this package guarantees:
//
//   - a reply never exceeds MaxSize; a value too long for that is answered
//     "TEMP reply too long" instead;
//   - a reply is never "OK " with an empty value: an empty value is answered
//     "PERM empty value" (a map source line without a value is a
//     configuration error, so an empty value can only come from a broken
//     table);
//   - REASON is one line of printable text: control characters (CR, LF,
//     TAB, NUL, DEL, ...) become spaces, and it is cut to MaxReason bytes at
//     a UTF-8 boundary.
//
// Errors map onto replies by failure.KindOf: NotFound gives NOTFOUND,
// Permanent gives PERM, every other kind (and a plain error) gives TEMP.
// Decoding a reply gives the inverse: NOTFOUND is failure.ErrNotFound, TEMP
// (and Sendmail's TIMEOUT) a failure.Temporary error, PERM a
// failure.Permanent error, and an unrecognised reply a Temporary error.
package socketmap

import (
	"bytes"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/mapdrop/mapdrop/failure"
)

// MaxSize is the largest request or reply payload, in bytes, that Postfix
// accepts, not counting the netstring framing.
const MaxSize = 100000

// MaxReason is the longest TEMP or PERM reason, in bytes, that AppendReply
// writes; longer reasons are cut.
const MaxReason = 1000

// ErrMalformed is wrapped by the error ParseRequest returns for a payload
// that is not NAME SPACE KEY with a non-empty NAME.
var ErrMalformed = errors.New("malformed socketmap request")

// Reply prefixes.
const (
	okPrefix   = "OK "
	notFound   = "NOTFOUND "
	tempPrefix = "TEMP "
	permPrefix = "PERM "
)

// ParseRequest splits a request payload into map name and key.
func ParseRequest(payload []byte) (mapName, key string, err error) {
	i := bytes.IndexByte(payload, ' ')
	switch {
	case i < 0:
		return "", "", failure.Wrap(failure.Permanent, ErrMalformed, "no space between map name and key")
	case i == 0:
		return "", "", failure.Wrap(failure.Permanent, ErrMalformed, "empty map name")
	}
	return string(payload[:i]), string(payload[i+1:]), nil
}

// AppendRequest appends the request payload for key in mapName to dst. The
// map name must be non-empty and contain no space, and the payload must fit
// in MaxSize; otherwise AppendRequest returns dst unchanged and a
// failure.Permanent error.
func AppendRequest(dst []byte, mapName, key string) ([]byte, error) {
	switch {
	case mapName == "":
		return dst, failure.Perm("socketmap: empty map name")
	case strings.IndexByte(mapName, ' ') >= 0:
		return dst, failure.Perm("socketmap: map name %q contains a space", mapName)
	case len(mapName)+1+len(key) > MaxSize:
		return dst, failure.Perm("socketmap: request for map %q longer than %d bytes", mapName, MaxSize)
	}
	dst = append(dst, mapName...)
	dst = append(dst, ' ')
	return append(dst, key...), nil
}

// AppendReply appends to dst the reply payload for a lookup that returned
// value and err, following the rules in the package documentation.
func AppendReply(dst []byte, value string, err error) []byte {
	if err != nil {
		switch failure.KindOf(err) {
		case failure.NotFound:
			return append(dst, notFound...)
		case failure.Permanent:
			return appendReason(append(dst, permPrefix...), err.Error())
		default:
			return appendReason(append(dst, tempPrefix...), err.Error())
		}
	}
	switch {
	case value == "":
		return append(dst, permPrefix+"empty value"...)
	case len(okPrefix)+len(value) > MaxSize:
		return append(dst, tempPrefix+"reply too long"...)
	}
	return append(append(dst, okPrefix...), value...)
}

// appendReason appends s to dst as one line of at most MaxReason bytes,
// with every control character replaced by a space.
func appendReason(dst []byte, s string) []byte {
	if len(s) > MaxReason {
		cut := MaxReason
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			c = ' '
		}
		dst = append(dst, c)
	}
	return dst
}

// ParseReply decodes a reply payload into the looked-up value or an error
// of the matching failure kind.
func ParseReply(payload []byte) (string, error) {
	word, rest, _ := strings.Cut(string(payload), " ")
	switch word {
	case "OK":
		if rest == "" {
			return "", failure.Perm("socketmap server sent an empty value")
		}
		return rest, nil
	case "NOTFOUND":
		return "", failure.ErrNotFound
	case "TEMP", "TIMEOUT":
		return "", failure.Temp("socketmap server: %s", printable(rest))
	case "PERM":
		return "", failure.Perm("socketmap server: %s", printable(rest))
	}
	return "", failure.Temp("socketmap server sent an unexpected reply %q", cut(string(payload), 100))
}

// printable returns s cut to MaxReason bytes, with control characters
// replaced by spaces.
func printable(s string) string {
	return string(appendReason(nil, s))
}

// cut returns at most n bytes of s.
func cut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
