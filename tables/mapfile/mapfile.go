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
// quotes. KEY is case-folded with key.Fold (package format/key); VALUE is kept as written.
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
//   - a logical line longer than MaxLineBytes.
//
// A duplicate key (after folding) is a warning and the first entry wins, as
// with postmap. A UTF-8 byte order mark (EF BB BF) at the very start of the
// input, which some Windows editors write, is removed with a warning at
// line 1, so that it does not become part of the first key.
//
// # Memory
//
// The parser reads the whole input into one string and hands out keys and
// values as substrings of it, so that a million-line file costs one
// allocation rather than a million. The parsed entries therefore keep the
// file's text alive: at most the file's size, and less than what one string
// per entry would cost for a typical file. When more than half of the text
// is not part of any entry (comments, duplicates), ParseTable copies the
// entries out instead, so that a table never pins much more than it holds.
package mapfile

import (
	"fmt"
	"io"
	"io/fs"
	"strings"
	"unicode/utf8"

	"github.com/mapdrop/mapdrop/format/key"
)

// MaxLineBytes bounds the length of one logical line (a line and its
// continuation lines). Longer lines are errors.
const MaxLineBytes = 1 << 20

// maxReported bounds the number of errors (and, separately, warnings) that
// Parse returns; the rest are counted in one final message.
const maxReported = 1000

// Entry is one key/value pair of a map source file.
type Entry struct {
	Key   string // folded with key.Fold
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

// Table is a parsed map source file, ready to serve.
type Table struct {
	// Map holds every entry: key folded with key.Fold → value. Of equal keys
	// the first in the file wins.
	Map map[string]string
	// Entries are the same entries in file order, with their line numbers,
	// when ParseTable was asked for them; nil otherwise.
	Entries []Entry
}

// Parse reads a map source file from r; file names it in errors and
// warnings. It returns the entries in file order without duplicates (the
// first of equal keys wins), the warnings, and nil; or no entries, the
// warnings, and an ErrorList with every error of the file.
func Parse(r io.Reader, file string) (entries []Entry, warnings []*Error, err error) {
	t, warnings, err := ParseTable(r, file, true)
	if err != nil {
		return nil, warnings, err
	}
	return t.Entries, warnings, nil
}

// ParseTable is Parse returning the entries as a lookup table, which is
// what a server needs: building it is part of finding duplicates, so it
// costs nothing extra. withEntries asks for Table.Entries as well. On error
// the Table is nil.
func ParseTable(r io.Reader, file string, withEntries bool) (*Table, []*Error, error) {
	text, rerr := ReadAll(r)
	return parseText(text, rerr, file, withEntries)
}

// ParseText is ParseTable for a file's text already read (with ReadAll),
// for a caller that wants the text itself too, e.g. to compare it with the
// text of the last load. The table may point into text.
func ParseText(text, file string, withEntries bool) (*Table, []*Error, error) {
	return parseText(text, nil, file, withEntries)
}

// BOM is the UTF-8 byte order mark, removed from the start of a file with a
// warning.
const BOM = "\xEF\xBB\xBF"

func parseText(text string, rerr error, file string, withEntries bool) (*Table, []*Error, error) {
	var bomWarning *Error
	if strings.HasPrefix(text, BOM) {
		text = text[len(BOM):]
		bomWarning = &Error{File: file, Line: 1, Reason: "UTF-8 byte order mark at the start of the file removed (save the file without it)"}
	}
	p := parser{
		text:       text,
		file:       file,
		checkBytes: strings.IndexByte(text, 0) >= 0 || !utf8.ValidString(text),
	}
	hint := entryHint(text)
	p.m = make(map[string]string, hint)
	if withEntries {
		p.entries = make([]Entry, 0, hint)
	}
	p.run()
	if rerr != nil {
		p.errorf(0, "read: %v", rerr)
	}
	warnings := p.duplicateWarnings()
	if bomWarning != nil {
		warnings = append([]*Error{bomWarning}, warnings...)
	}
	if len(p.errs) > 0 {
		errs := p.errs
		if p.moreErrors > 0 {
			errs = append(errs, &Error{File: file, Line: p.lastError, Reason: fmt.Sprintf("%d more errors not shown", p.moreErrors)})
		}
		return nil, warnings, ErrorList(errs)
	}
	t := &Table{Map: p.m, Entries: p.entries}
	if withEntries && len(t.Entries) == 0 {
		t.Entries = nil
	}
	if p.pinned < len(text)/2 {
		t.compact()
	}
	return t, warnings, nil
}

// ReadAll reads r to its end into one string, sized up front when r can
// tell its size (an *os.File).
func ReadAll(r io.Reader) (string, error) {
	var b strings.Builder
	if st, ok := r.(interface{ Stat() (fs.FileInfo, error) }); ok {
		if fi, err := st.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 && fi.Size() < 1<<40 {
			b.Grow(int(fi.Size()))
		}
	}
	_, err := io.Copy(&b, r)
	return b.String(), err
}

// entryHint counts the lines of text that can start an entry (those that
// start with neither whitespace nor "#"): at least the number of entries,
// and equal to it in a file without errors or duplicates.
func entryHint(text string) int {
	n := 0
	for len(text) > 0 {
		if c := text[0]; !isSpace(c) && c != '#' {
			n++
		}
		i := strings.IndexByte(text, '\n')
		if i < 0 {
			break
		}
		text = text[i+1:]
	}
	return n
}

// compact replaces the table's strings by copies, so that it no longer pins
// the file's text. Entries, when there are any, hold the same pairs as Map,
// and share the copies with it.
func (t *Table) compact() {
	m := make(map[string]string, len(t.Map))
	if t.Entries == nil {
		for k, v := range t.Map {
			m[strings.Clone(k)] = strings.Clone(v)
		}
	}
	for i := range t.Entries {
		e := &t.Entries[i]
		e.Key, e.Value = strings.Clone(e.Key), strings.Clone(e.Value)
		m[e.Key] = e.Value
	}
	t.Map = m
}

// duplicate is a duplicate key found at line.
type duplicate struct {
	key  string
	line int
}

type parser struct {
	text       string
	file       string
	checkBytes bool // text has NUL bytes or invalid UTF-8: check each line
	line       int  // current physical line number

	// The current logical line: cur, a substring of text, until a
	// continuation line is appended; then joined is set and buf holds it.
	cur         string
	buf         []byte
	joined      bool
	pendingLine int  // its first line, 0 when there is none
	broken      bool // the current logical line already had an error

	m       map[string]string
	entries []Entry // nil unless asked for
	pinned  int     // bytes of text that entries keep alive

	// firstLine, set on the second pass that finds where duplicated keys
	// first appeared, maps each such key to that line (0 until found).
	firstLine map[string]int

	errs                  []*Error
	moreErrors, lastError int
	dups                  []duplicate // the first maxReported duplicates
	moreDups, lastDup     int
}

func (p *parser) errorf(line int, format string, args ...any) {
	if len(p.errs) >= maxReported {
		p.moreErrors++
		p.lastError = line
		return
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Reason: fmt.Sprintf(format, args...)})
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}

func trimRightSpace(s string) string {
	n := len(s)
	for n > 0 && isSpace(s[n-1]) {
		n--
	}
	return s[:n]
}

// run parses the text line by line.
func (p *parser) run() {
	rest := p.text
	for len(rest) > 0 {
		raw := rest
		if i := strings.IndexByte(rest, '\n'); i >= 0 {
			raw, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		p.line++
		p.physical(raw)
	}
	p.flush()
}

// physical handles one physical line, without its newline.
func (p *parser) physical(raw string) {
	tooLong := len(raw) > MaxLineBytes
	line := trimRightSpace(raw)
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
	case p.checkBytes && strings.IndexByte(line, 0) >= 0:
		bad = "NUL byte in line"
	case p.checkBytes && !utf8.ValidString(line):
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
		if !p.joined {
			p.buf = append(p.buf[:0], p.cur...)
			p.joined = true
		}
		if len(p.buf)+len(line) > MaxLineBytes {
			p.errorf(p.pendingLine, "logical line (with continuation lines) longer than %d bytes", MaxLineBytes)
			p.broken = true
			return
		}
		p.buf = append(p.buf, line...)
		return
	}

	p.flush()
	p.pendingLine = p.line
	if bad != "" {
		p.errorf(p.line, "%s", bad)
		p.broken = true
		return
	}
	p.cur = line
}

// splitKey returns the length of the key at the start of line: up to the
// first whitespace outside double quotes and not escaped by a backslash.
// ok is false when a double quote in the key is not closed.
func splitKey(line string) (n int, ok bool) {
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
	if p.pendingLine == 0 {
		return
	}
	line, s, joined, broken := p.pendingLine, p.cur, p.joined, p.broken
	if joined {
		s = string(p.buf)
	}
	p.cur, p.joined, p.pendingLine, p.broken = "", false, 0, false
	if broken {
		return
	}
	n, ok := splitKey(s)
	if !ok {
		p.errorf(line, "unbalanced '\"' in key")
		return
	}
	if n == len(s) {
		p.errorf(line, "expected format: key whitespace value (key %q has no value)", truncate(s, 64))
		return
	}
	v := n
	for isSpace(s[v]) {
		v++
	}
	// The line is valid UTF-8: bad lines never get here.
	key, folded := key.FoldValid(s[:n])
	if p.firstLine != nil {
		if first, ok := p.firstLine[key]; ok && first == 0 {
			p.firstLine[key] = line
		}
		return
	}
	if _, dup := p.m[key]; dup {
		if len(p.dups) >= maxReported {
			p.moreDups++
			p.lastDup = line
			return
		}
		p.dups = append(p.dups, duplicate{key, line})
		return
	}
	p.m[key] = s[v:]
	if p.entries != nil {
		p.entries = append(p.entries, Entry{Key: key, Value: s[v:], Line: line})
	}
	if !joined {
		p.pinned += len(s) - v
		if !folded {
			p.pinned += n
		}
	}
}

// duplicateWarnings returns a warning for each duplicate key found. Where
// each key first appeared is only looked up here, by parsing the text again,
// so that a file without duplicates does not pay for remembering the line
// of every key.
func (p *parser) duplicateWarnings() []*Error {
	if len(p.dups) == 0 {
		return nil
	}
	again := parser{text: p.text, file: p.file, checkBytes: p.checkBytes, firstLine: map[string]int{}}
	for _, d := range p.dups {
		again.firstLine[d.key] = 0
	}
	again.run()
	warnings := make([]*Error, 0, len(p.dups)+1)
	for _, d := range p.dups {
		warnings = append(warnings, &Error{File: p.file, Line: d.line,
			Reason: fmt.Sprintf("duplicate entry %q (first at line %d, which wins)", truncate(d.key, 64), again.firstLine[d.key])})
	}
	if p.moreDups > 0 {
		warnings = append(warnings, &Error{File: p.file, Line: p.lastDup, Reason: fmt.Sprintf("%d more warnings not shown", p.moreDups)})
	}
	return warnings
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
