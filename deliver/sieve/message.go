package sieve

import (
	"bufio"
	"bytes"
	"io"
	"strings"
)

// Message is the message a script looks at: its bytes, read through
// ReaderAt (the file in tmp/, or memory for a dry run).
type Message struct {
	R    io.ReaderAt
	Size int64
}

// Limits on what of a message the engine reads.
const (
	maxHeaderBytes = 1 << 20  // header section, beyond which fields are ignored
	maxBodyBytes   = 16 << 20 // body bytes the body test sees
)

// parsedMessage implements go-sieve's interp.Message.
type parsedMessage struct {
	size       int64
	fields     map[string][]string // lower-case name → raw values (folding kept)
	r          io.ReaderAt
	bodyOffset int64
	body       []byte
	bodyRead   bool
	bodyErr    error
}

// parse reads the header section. A first line "From " (an mbox
// separator, as local(8) sends) is skipped; a line that is neither a field
// nor a continuation ends nothing and is ignored, as Dovecot does.
func parse(m Message) (*parsedMessage, error) {
	pm := &parsedMessage{size: m.Size, fields: map[string][]string{}, r: m.R}
	br := bufio.NewReader(io.NewSectionReader(m.R, 0, min(m.Size, maxHeaderBytes)))
	var off int64
	var name string
	var val strings.Builder
	flush := func() {
		if name != "" {
			v := strings.TrimRight(strings.TrimLeft(val.String(), " \t"), " \t\r\n")
			pm.fields[name] = append(pm.fields[name], v)
		}
		name = ""
		val.Reset()
	}
	first := true
	for {
		line, err := br.ReadString('\n')
		off += int64(len(line))
		if first && strings.HasPrefix(line, "From ") {
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
			name = strings.ToLower(strings.TrimRight(line[:i], " \t"))
			val.WriteString(line[i+1:])
		} else {
			flush()
		}
		if err != nil {
			break
		}
	}
	flush()
	pm.bodyOffset = off
	return pm, nil
}

// HeaderGet returns the raw values of a field (the engine decodes RFC 2047
// words and unfolds).
func (m *parsedMessage) HeaderGet(key string) ([]string, error) {
	return m.fields[strings.ToLower(key)], nil
}

// MessageSize returns the size in bytes.
func (m *parsedMessage) MessageSize() int { return int(m.size) }

// BodyRaw returns the body, at most maxBodyBytes of it.
func (m *parsedMessage) BodyRaw() ([]byte, bool, error) {
	if !m.bodyRead {
		m.bodyRead = true
		n := min(m.size-m.bodyOffset, maxBodyBytes)
		if n > 0 {
			var buf bytes.Buffer
			_, m.bodyErr = io.Copy(&buf, io.NewSectionReader(m.r, m.bodyOffset, n))
			m.body = buf.Bytes()
		}
	}
	return m.body, m.size > m.bodyOffset, m.bodyErr
}

// first returns the first value of a field, "" when absent.
func (m *parsedMessage) first(name string) string {
	if v := m.fields[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}
