// Package mapfile parses Postfix map source files: the text that postmap(1)
// turns into an indexed table, which mapdropd serves from memory instead.
//
// # Format
//
// The input is read as physical lines separated by "\n". Of each physical
// line, trailing whitespace (space, TAB, CR, VT, FF) is removed first, so
// CRLF files read like LF files.
//
//   - A line that is then empty, or whose first non-blank character is "#",
//     is ignored. Such a line does not end the logical line before it: an
//     indented line after a comment still continues the entry above the
//     comment (as postmap reads it).
//   - A line that starts with whitespace continues the previous logical line.
//     It is appended with its leading whitespace kept: "long first", "  second",
//     "\tthird" make the logical line "long first  second\tthird".
//   - Any other line starts a new logical line.
//
// A logical line is "KEY WHITESPACE VALUE". KEY ends at the first whitespace
// character that is neither inside double quotes nor preceded by a backslash;
// quotes and backslashes stay in the key (`"a b"@x` is the eleven-character
// key `"a b"@x`, `a\ b` is the four-character key `a\ b`), which is how
// Postfix 3.7's postmap splits a line. VALUE is the rest of the logical line
// without its leading whitespace; it may contain whitespace, commas and
// quotes. KEY is case-folded with FoldKey; VALUE is kept as written.
//
// # Errors and warnings
//
// The following are errors. Every error of a file is reported (up to 1000,
// then a count of the rest), and a file with any error yields no entries:
// the whole file is refused, so that a half-broken edit never replaces a
// working table.
//
//   - a key with no value ("expected format: key whitespace value"; postmap
//     merely skips such a line, mapfile is stricter on purpose);
//   - an unbalanced double quote in the key (postmap skips the line);
//   - a continuation line with no entry before it (postmap warns and skips);
//   - a NUL byte, or bytes that are not valid UTF-8 (keys are folded as
//     Unicode text, which invalid bytes are not);
//   - a logical line longer than MaxLineBytes (memory stays bounded whatever
//     the input).
//
// A duplicate key (after folding) is a warning and the first entry wins, as
// with postmap.
package mapfile

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// MaxLineBytes bounds the length of one logical line (a line and its
// continuation lines). Longer lines are errors; the parser never holds more
// than this much of a line in memory.
const MaxLineBytes = 1 << 20

// maxReported bounds the number of errors (and, separately, warnings) that
// Parse returns; the rest are counted in one final message.
const maxReported = 1000

// Entry is one key/value pair of a map source file.
type Entry struct {
	Key   string // folded with FoldKey
	Value string // as written, without leading or trailing whitespace
	Line  int    // 1-based line number where the entry's logical line starts
}

// Error is a problem at a line of a map source file, used for both errors
// and warnings.
type Error struct {
	File   string
	Line   int // 1-based; 0 for a problem with the whole file (e.g. a read error)
	Reason string
}

// Error returns "FILE:LINE: REASON", or "FILE: REASON" when Line is 0.
func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Reason)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
}

// ErrorList is every error found in one file. It is never empty when
// returned as an error.
type ErrorList []*Error

// Error returns one line per error, separated by newlines.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the errors of the list, for errors.As and errors.Is.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// FoldKey returns the lookup form of a key: strings.ToLower for valid UTF-8
// (Unicode-aware, so "ÜMLÄUT" folds to "ümläut"). A string that is not valid
// UTF-8 has only its ASCII letters folded and its other bytes kept, so that
// folding never invents text (such a key never matches a parsed entry, since
// map files must be valid UTF-8). A key that is already folded is returned
// without allocating.
func FoldKey(key string) string {
	if utf8.ValidString(key) {
		return strings.ToLower(key)
	}
	i := 0
	for i < len(key) && !('A' <= key[i] && key[i] <= 'Z') {
		i++
	}
	if i == len(key) {
		return key
	}
	b := []byte(key)
	for ; i < len(b); i++ {
		if 'A' <= b[i] && b[i] <= 'Z' {
			b[i] += 'a' - 'A'
		}
	}
	return string(b)
}

// Parse reads a map source file from r; file names it in errors and
// warnings. It returns the entries in file order without duplicates (the
// first of equal keys wins), the warnings, and nil; or no entries, the
// warnings, and an ErrorList with every error of the file.
func Parse(r io.Reader, file string) (entries []Entry, warnings []*Error, err error) {
	p := parser{
		br:   bufio.NewReaderSize(r, 64<<10),
		file: file,
		seen: make(map[string]int),
	}
	if rerr := p.run(); rerr != nil {
		p.errorf(0, "read: %v", rerr)
	}
	warnings = p.warnings
	if p.moreWarnings > 0 {
		warnings = append(warnings, &Error{File: file, Line: p.lastWarning, Reason: fmt.Sprintf("%d more warnings not shown", p.moreWarnings)})
	}
	if len(p.errs) > 0 {
		errs := p.errs
		if p.moreErrors > 0 {
			errs = append(errs, &Error{File: file, Line: p.lastError, Reason: fmt.Sprintf("%d more errors not shown", p.moreErrors)})
		}
		return nil, warnings, ErrorList(errs)
	}
	return p.entries, warnings, nil
}

type parser struct {
	br   *bufio.Reader
	file string
	line int // current physical line number

	long []byte // holds a physical line longer than the bufio buffer

	pending     []byte // current logical line
	pendingLine int    // its first line, 0 when there is none
	broken      bool   // the current logical line already had an error

	entries []Entry
	seen    map[string]int // folded key → line of first entry

	errs, warnings            []*Error
	moreErrors, lastError     int
	moreWarnings, lastWarning int
}

func (p *parser) errorf(line int, format string, args ...any) {
	if len(p.errs) >= maxReported {
		p.moreErrors++
		p.lastError = line
		return
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Reason: fmt.Sprintf(format, args...)})
}

func (p *parser) warnf(line int, format string, args ...any) {
	if len(p.warnings) >= maxReported {
		p.moreWarnings++
		p.lastWarning = line
		return
	}
	p.warnings = append(p.warnings, &Error{File: p.file, Line: line, Reason: fmt.Sprintf(format, args...)})
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}

// readLine returns the next physical line without its newline. A line longer
// than MaxLineBytes is returned cut short with tooLong set; the rest of it is
// read and dropped. The returned slice is valid until the next call.
func (p *parser) readLine() (line []byte, tooLong bool, err error) {
	line, err = p.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		p.long = append(p.long[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = p.br.ReadSlice('\n')
			if !tooLong && len(p.long)+len(line) <= MaxLineBytes+1 {
				p.long = append(p.long, line...)
			} else {
				tooLong = true
			}
		}
		line = p.long
	}
	if err == io.EOF {
		if len(line) == 0 {
			return nil, false, io.EOF
		}
		err = nil
	}
	if err != nil {
		return nil, false, err
	}
	line = bytes.TrimSuffix(line, []byte{'\n'})
	if len(line) > MaxLineBytes {
		tooLong = true
	}
	return line, tooLong, nil
}

func (p *parser) run() error {
	for {
		raw, tooLong, err := p.readLine()
		if err == io.EOF {
			p.flush()
			return nil
		}
		if err != nil {
			return err
		}
		p.line++
		p.physical(raw, tooLong)
	}
}

// physical handles one physical line.
func (p *parser) physical(raw []byte, tooLong bool) {
	line := bytes.TrimRight(raw, " \t\r\n\v\f")
	if len(line) == 0 {
		return
	}
	cont := isSpace(line[0])
	if cont {
		i := 1
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if line[i] == '#' {
			return
		}
	} else if line[0] == '#' {
		return
	}

	var bad string
	switch {
	case tooLong:
		bad = fmt.Sprintf("line longer than %d bytes", MaxLineBytes)
	case bytes.IndexByte(line, 0) >= 0:
		bad = "NUL byte in line"
	case !utf8.Valid(line):
		bad = "invalid UTF-8 in line"
	}

	if cont {
		if p.pendingLine == 0 {
			p.errorf(p.line, "continuation line (starts with whitespace) without an entry before it")
			return
		}
		if p.broken {
			return
		}
		if bad != "" {
			p.errorf(p.line, "%s", bad)
			p.broken = true
			return
		}
		if len(p.pending)+len(line) > MaxLineBytes {
			p.errorf(p.pendingLine, "logical line (with continuation lines) longer than %d bytes", MaxLineBytes)
			p.broken = true
			return
		}
		p.pending = append(p.pending, line...)
		return
	}

	p.flush()
	p.pendingLine = p.line
	if bad != "" {
		p.errorf(p.line, "%s", bad)
		p.broken = true
		return
	}
	p.pending = append(p.pending, line...)
}

// splitKey returns the length of the key at the start of line: up to the
// first whitespace outside double quotes and not escaped by a backslash.
// ok is false when a double quote in the key is not closed.
func splitKey(line []byte) (n int, ok bool) {
	quoted := false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && isSpace(c):
			return i, true
		}
	}
	return len(line), !quoted
}

// flush turns the pending logical line into an entry.
func (p *parser) flush() {
	defer func() {
		p.pending = p.pending[:0]
		p.pendingLine = 0
		p.broken = false
	}()
	if p.pendingLine == 0 || p.broken {
		return
	}
	n, ok := splitKey(p.pending)
	if !ok {
		p.errorf(p.pendingLine, "unbalanced '\"' in key")
		return
	}
	if n == len(p.pending) {
		p.errorf(p.pendingLine, "expected format: key whitespace value (key %q has no value)", truncate(p.pending, 64))
		return
	}
	v := n
	for isSpace(p.pending[v]) {
		v++
	}
	// One allocation holds both key and value.
	s := string(p.pending)
	key := FoldKey(s[:n])
	if first, dup := p.seen[key]; dup {
		p.warnf(p.pendingLine, "duplicate entry %q (first at line %d, which wins)", truncate([]byte(key), 64), first)
		return
	}
	p.seen[key] = p.pendingLine
	p.entries = append(p.entries, Entry{Key: key, Value: s[v:], Line: p.pendingLine})
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	for n > 0 && !utf8.RuneStart(b[n]) {
		n--
	}
	return string(b[:n]) + "..."
}
