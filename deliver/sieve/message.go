package sieve

import (
	"bytes"
	"io"
	"strings"

	"github.com/mapdrop/mapdrop/deliver/msghdr"
)

// Message is the message a script looks at: its bytes, read through
// ReaderAt (the file in tmp/, or memory for a dry run).
type Message struct {
	R    io.ReaderAt
	Size int64
}

// maxBodyBytes bounds the body bytes the body test sees.
const maxBodyBytes = 16 << 20

// parsedMessage implements go-sieve's interp.Message.
type parsedMessage struct {
	size     int64
	h        *msghdr.Header
	r        io.ReaderAt
	body     []byte
	bodyRead bool
	bodyErr  error
	flags    func() []string // the imap4flags variable, for hasflag
}

func parse(m Message) (*parsedMessage, error) {
	h, err := msghdr.Read(m.R, m.Size)
	if err != nil {
		return nil, err
	}
	return &parsedMessage{size: m.Size, h: h, r: m.R}, nil
}

// HeaderGet returns the raw values of a field (the engine decodes RFC 2047
// words and unfolds); for the pseudo field of hasflag, the current flags.
func (m *parsedMessage) HeaderGet(key string) ([]string, error) {
	if m.flags != nil && strings.EqualFold(key, flagsHeader) {
		var out []string
		for _, f := range m.flags() {
			if c, ok := systemFlags[strings.ToLower(f)]; ok {
				f = c
			}
			out = append(out, f)
		}
		return out, nil
	}
	return m.h.Values(key), nil
}

// MessageSize returns the size in bytes.
func (m *parsedMessage) MessageSize() int { return int(m.size) }

// BodyRaw returns the body, at most maxBodyBytes of it.
func (m *parsedMessage) BodyRaw() ([]byte, bool, error) {
	if !m.bodyRead {
		m.bodyRead = true
		n := min(m.size-m.h.BodyOffset, maxBodyBytes)
		if n > 0 {
			var buf bytes.Buffer
			_, m.bodyErr = io.Copy(&buf, io.NewSectionReader(m.r, m.h.BodyOffset, n))
			m.body = buf.Bytes()
		}
	}
	return m.body, m.size > m.h.BodyOffset, m.bodyErr
}
