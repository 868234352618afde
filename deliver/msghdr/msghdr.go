// Package msghdr reads the header section of a stored message (RFC 5322),
// leniently, for filters and auto-replies: field names are matched without
// regard to ASCII case, values keep their folding, and nothing is decoded.
//
// A first line that is an mbox "From " line (as local(8) sends; see
// envelope.IsFromLine) is skipped. The header ends at the first empty line, at the end
// of the message, or after MaxBytes; a line that is neither a field nor a
// continuation line is ignored.
package msghdr

import (
	"bufio"
	"io"
	"strings"

	"github.com/mapdrop/mapdrop/deliver/envelope"
)

// MaxBytes bounds the header section read.
const MaxBytes = 1 << 20

// Header is a parsed header section.
type Header struct {
	fields map[string][]string // lower-case name → values
	// BodyOffset is the byte offset where the body starts.
	BodyOffset int64
}

// Read parses the header of the size-byte message in r.
func Read(r io.ReaderAt, size int64) (*Header, error) {
	h := &Header{fields: map[string][]string{}}
	br := bufio.NewReader(io.NewSectionReader(r, 0, min(size, MaxBytes)))
	var off int64
	var name string
	var val strings.Builder
	flush := func() {
		if name != "" {
			v := strings.TrimRight(strings.TrimLeft(val.String(), " \t"), " \t\r\n")
			h.fields[name] = append(h.fields[name], v)
		}
		name = ""
		val.Reset()
	}
	first := true
	for {
		line, err := br.ReadString('\n')
		off += int64(len(line))
		if first && envelope.IsFromLine(line) {
			first = false
			if err != nil {
				break
			}
			continue
		}
		first = false
		if line == "\n" || line == "\r\n" || (line == "" && err != nil) {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if name != "" {
				val.WriteString(line)
			}
		} else if i := strings.IndexByte(line, ':'); i > 0 {
			flush()
			name = lowerASCII(strings.TrimRight(line[:i], " \t"))
			val.WriteString(line[i+1:])
		} else {
			flush()
		}
		if err != nil {
			if err != io.EOF {
				return nil, err
			}
			break
		}
	}
	flush()
	h.BodyOffset = off
	return h, nil
}

// Values returns the raw values of the field name (ASCII letters in any
// case), folding kept.
func (h *Header) Values(name string) []string { return h.fields[lowerASCII(name)] }

// lowerASCII maps A-Z to a-z and leaves every other byte alone: field
// names are ASCII (RFC 5322), compared as i;ascii-casemap does, so a
// non-ASCII byte never matches a letter (Unicode case rules would fold
// "ſ" and "K" onto "s" and "k").
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// Get returns the first value of the field, unfolded (every CR and LF
// removed), "" when absent.
func (h *Header) Get(name string) string {
	v := h.Values(name)
	if len(v) == 0 {
		return ""
	}
	return strings.NewReplacer("\r\n", "", "\n", "", "\r", "").Replace(v[0])
}

// Has reports whether the field is present.
func (h *Header) Has(name string) bool { return len(h.Values(name)) > 0 }

// ReturnPath returns the address in the first Return-Path field ("" for
// "<>"), and false when there is none.
func (h *Header) ReturnPath() (string, bool) {
	if !h.Has("return-path") {
		return "", false
	}
	v := strings.TrimSpace(h.Get("return-path"))
	v = strings.TrimSuffix(strings.TrimPrefix(v, "<"), ">")
	return strings.TrimSpace(v), true
}
