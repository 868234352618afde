// Package tcptable encodes and decodes the lines of Postfix's tcp_table(5)
// client/server lookup protocol. It knows nothing about sockets: the server
// and client packages move the lines.
//
// Every request and every reply is one line ending in LF. The only request
// Postfix sends is
//
//	"get" SP KEY LF
//
// and the server answers exactly one line per request:
//
//	"200" SP VALUE LF   found; VALUE is the encoded value
//	"500" SP TEXT LF    not found (for a lookup), or request rejected
//	"400" SP TEXT LF    an error; the client should retry later
//
// Encoding: in KEY, VALUE and TEXT every byte that is '%', whitespace or
// not printable ASCII (that is, every byte <= 0x20, >= 0x7f, and '%') is
// written as %XX with XX its value in upper-case hexadecimal: "a b%c" is
// "a%20b%25c", "ün" is "%C3%BCn". Decoding accepts hex digits in either
// case and passes other bytes through unchanged; a '%' not followed by two
// hex digits is an error.
//
// A reply line, newline included, is at most MaxLine (4096) bytes, the
// limit Postfix's client enforces. A found value whose encoded reply would
// be longer is answered "400 value%20too%20long" instead, and an empty
// value "400 empty%20value" (as with socketmap: a map source line without a
// value is a configuration error, so an empty value means a broken table).
//
// Choices where tcp_table(5) is silent or loose, as implemented by this
// package and the server built on it:
//
//   - A request line may end in CR LF; the CR is dropped.
//   - "put ..." (update requests, which Postfix does not implement) is
//     answered "500 put not supported": 500 is what earlier editions of
//     tcp_table(5) specify for a rejected update.
//   - Any other command, a "get" without exactly one key field, or a key
//     with a malformed %-escape is answered "400 ..." and the connection
//     stays open: the line framing is intact, so the next request can
//     still be understood.
//   - A request line longer than MaxLine bytes is answered
//     "400 request too long" once the rest of it has been skipped; the
//     connection stays open.
//   - Errors map onto replies by failure.KindOf: NotFound gives 500,
//     every other kind 400 (the man page has no code for a permanent
//     error), with the error text encoded as TEXT.
package tcptable

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mapdrop/mapdrop/failure"
)

// MaxLine is the longest reply line, newline included, that Postfix's
// tcp_table client accepts; the server applies the same limit to request
// lines.
const MaxLine = 4096

// ErrMalformed is wrapped by the errors ParseRequest and Decode return for
// input that does not follow the protocol.
var ErrMalformed = errors.New("malformed tcp_table request")

// ErrUnsupported is wrapped by the error ParseRequest returns for a
// well-formed request other than "get".
var ErrUnsupported = errors.New("unsupported tcp_table request")

const hexDigits = "0123456789ABCDEF"

// mustEncode reports whether byte c is written as %XX.
func mustEncode(c byte) bool {
	return c <= ' ' || c >= 0x7f || c == '%'
}

// Encode returns s with every byte that must be encoded written as %XX.
func Encode(s string) string {
	return string(AppendEncode(nil, s))
}

// AppendEncode appends the encoding of s to dst.
func AppendEncode(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if mustEncode(c) {
			dst = append(dst, '%', hexDigits[c>>4], hexDigits[c&0xf])
		} else {
			dst = append(dst, c)
		}
	}
	return dst
}

// encodedLen returns len(Encode(s)).
func encodedLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		if mustEncode(s[i]) {
			n += 2
		}
	}
	return n
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Decode reverses Encode. A '%' not followed by two hex digits gives an
// error wrapping ErrMalformed.
func Decode(s string) (string, error) {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("%w: incomplete %%-escape at byte %d", ErrMalformed, i)
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("%w: bad %%-escape %q at byte %d", ErrMalformed, s[i:i+3], i)
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	return string(b), nil
}

// Request is a parsed request line.
type Request struct {
	// Command is the first word of the line, as sent ("get", "put", ...).
	Command string
	// Key is the decoded key of a "get" request.
	Key string
}

// ParseRequest parses one request line, without or with its trailing LF
// (and an optional CR before it). A "get" request gives its decoded key.
// A well-formed line with another command gives the Request and an error
// wrapping ErrUnsupported; a malformed line gives an error wrapping
// ErrMalformed.
func ParseRequest(line string) (Request, error) {
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	fields := strings.FieldsFunc(line, isSpace)
	if len(fields) == 0 {
		return Request{}, fmt.Errorf("%w: empty line", ErrMalformed)
	}
	req := Request{Command: fields[0]}
	if req.Command != "get" {
		return req, fmt.Errorf("%w: %.20q", ErrUnsupported, req.Command)
	}
	switch len(fields) {
	case 1:
		// "get " with an empty key.
	case 2:
		key, err := Decode(fields[1])
		if err != nil {
			return req, err
		}
		req.Key = key
	default:
		return req, fmt.Errorf("%w: get with %d fields", ErrMalformed, len(fields)-1)
	}
	return req, nil
}

func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\v' || r == '\f' || r == '\r' || r == '\n'
}

// AppendRequest appends the request line "get KEY\n" for key to dst.
func AppendRequest(dst []byte, key string) []byte {
	dst = append(dst, "get "...)
	dst = AppendEncode(dst, key)
	return append(dst, '\n')
}

// AppendReply appends the reply line, newline included, for a lookup that
// returned value and err; see the package documentation for the mapping.
func AppendReply(dst []byte, value string, err error) []byte {
	if err != nil {
		code := "400 "
		if failure.KindOf(err) == failure.NotFound {
			code = "500 "
		}
		return appendText(append(dst, code...), err.Error())
	}
	if value == "" {
		return append(dst, "400 empty%20value\n"...)
	}
	if len("200 ")+encodedLen(value)+1 > MaxLine {
		return append(dst, "400 value%20too%20long\n"...)
	}
	dst = append(dst, "200 "...)
	dst = AppendEncode(dst, value)
	return append(dst, '\n')
}

// AppendRequestError appends the reply line for a request that ParseRequest
// rejected with err: "500 put not supported" for a put, "400 ..." for
// anything else.
func AppendRequestError(dst []byte, req Request, err error) []byte {
	if errors.Is(err, ErrUnsupported) && req.Command == "put" {
		return append(dst, "500 put%20not%20supported\n"...)
	}
	return appendText(append(dst, "400 "...), err.Error())
}

// AppendTooLong appends the reply to a request line longer than MaxLine.
func AppendTooLong(dst []byte) []byte {
	return append(dst, "400 request%20too%20long\n"...)
}

// appendText appends an encoded TEXT cut so that the line fits in
// MaxLine, and the newline.
func appendText(dst []byte, text string) []byte {
	const room = MaxLine - len("400 ") - 1
	start := len(dst)
	for i := 0; i < len(text); i++ {
		c := text[i]
		if mustEncode(c) {
			if len(dst)-start+3 > room {
				break
			}
			dst = append(dst, '%', hexDigits[c>>4], hexDigits[c&0xf])
		} else {
			if len(dst)-start+1 > room {
				break
			}
			dst = append(dst, c)
		}
	}
	return append(dst, '\n')
}

// ParseReply decodes one reply line (with or without its LF) into the
// looked-up value or an error: 500 is failure.ErrNotFound, 400 a
// failure.Temporary error carrying the decoded text, anything else (or an
// undecodable line) a failure.Temporary error.
func ParseReply(line string) (string, error) {
	line = strings.TrimSuffix(line, "\n")
	if len(line) < 4 || line[3] != ' ' {
		return "", failure.Temp("tcp_table server sent a malformed reply %.100q", line)
	}
	text, err := Decode(line[4:])
	if err != nil {
		return "", failure.Temp("tcp_table server sent a malformed reply %.100q", line)
	}
	switch line[:3] {
	case "200":
		return text, nil
	case "500":
		return "", failure.ErrNotFound
	case "400":
		return "", failure.Temp("tcp_table server: %s", strings.Map(printable, text))
	}
	return "", failure.Temp("tcp_table server sent an unexpected reply %.100q", line)
}

// printable maps control characters to spaces, keeping error texts on one
// log line.
func printable(r rune) rune {
	if r < 0x20 || r == 0x7f {
		return ' '
	}
	return r
}
