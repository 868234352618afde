// Package netstring reads and writes netstrings as defined by D. J.
// Bernstein (https://cr.yp.to/proto/netstrings.txt), the framing used by
// Postfix's socketmap protocol.
//
// A netstring is
//
//	LEN ":" DATA ","
//
// where LEN is the length of DATA in bytes, written as a non-empty sequence
// of ASCII decimal digits, and DATA is any sequence of bytes. For example the
// string "hello world!" is the netstring "12:hello world!," and the empty
// string is "0:,".
//
// This reader is strict:
//
//   - LEN must be digits only: no sign, no spaces, no empty length
//     ("3:abc," ok; " 3:abc,", "+3:abc,", ":," are ErrSyntax).
//   - LEN may begin with 0 only when it is exactly "0" (Bernstein's rule):
//     "03:abc," is ErrSyntax.
//   - LEN greater than the reader's maximum is ErrTooLong, reported as soon
//     as the offending digit is read, before any DATA is read or memory for
//     it is allocated.
//   - the byte after DATA must be ","; anything else is ErrSyntax.
//
// After ErrSyntax or ErrTooLong the stream is no longer in step and the
// connection carrying it should be closed.
package netstring

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// ErrSyntax is wrapped by the errors Read returns for a malformed netstring:
// a non-digit or leading zero in the length, an empty length, or a missing
// trailing comma.
var ErrSyntax = errors.New("netstring syntax error")

// ErrTooLong is wrapped by the error Read returns when a netstring's length
// exceeds the reader's maximum.
var ErrTooLong = errors.New("netstring too long")

// maxLimit keeps LEN*10+9 from overflowing an int while digits are read.
const maxLimit = (math.MaxInt - 9) / 10

// Reader reads netstrings from a buffered stream.
type Reader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

// NewReader returns a Reader that reads netstrings of at most max data bytes
// from r. A max below zero is treated as zero; a max too large to be
// checked without integer overflow is lowered to the largest safe value.
func NewReader(r *bufio.Reader, max int) *Reader {
	if max < 0 {
		max = 0
	}
	if max > maxLimit {
		max = maxLimit
	}
	return &Reader{r: r, max: max}
}

// Read reads one netstring and returns its data. The returned slice is
// valid only until the next call to Read.
//
// At a clean end of stream (no byte of a new netstring read) Read returns
// io.EOF; a stream that ends inside a netstring gives io.ErrUnexpectedEOF.
// Malformed input gives an error wrapping ErrSyntax or ErrTooLong. Errors of
// the underlying reader (for example a network timeout) are returned as
// they are.
func (r *Reader) Read() ([]byte, error) {
	n, digits := 0, 0
	for {
		c, err := r.r.ReadByte()
		if err != nil {
			if err == io.EOF && digits > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if c == ':' {
			break
		}
		if c < '0' || c > '9' {
			return nil, fmt.Errorf("%w: unexpected byte %s in length", ErrSyntax, quoteByte(c))
		}
		if digits == 1 && n == 0 {
			return nil, fmt.Errorf("%w: leading zero in length", ErrSyntax)
		}
		n = n*10 + int(c-'0')
		digits++
		if n > r.max {
			return nil, fmt.Errorf("%w: length exceeds %d", ErrTooLong, r.max)
		}
	}
	if digits == 0 {
		return nil, fmt.Errorf("%w: empty length", ErrSyntax)
	}
	if cap(r.buf) < n {
		r.buf = make([]byte, n)
	}
	r.buf = r.buf[:n]
	if _, err := io.ReadFull(r.r, r.buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	c, err := r.r.ReadByte()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if c != ',' {
		return nil, fmt.Errorf("%w: missing ',' after %d data bytes, got %s", ErrSyntax, n, quoteByte(c))
	}
	return r.buf, nil
}

// Append appends the netstring encoding of data to dst and returns the
// extended slice.
func Append(dst, data []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(data)), 10)
	dst = append(dst, ':')
	dst = append(dst, data...)
	return append(dst, ',')
}

// AppendString is Append for a string.
func AppendString(dst []byte, data string) []byte {
	dst = strconv.AppendInt(dst, int64(len(data)), 10)
	dst = append(dst, ':')
	dst = append(dst, data...)
	return append(dst, ',')
}

// quoteByte quotes one byte for an error message, escaping it when it is
// not printable ASCII.
func quoteByte(c byte) string {
	return strconv.Quote(string([]byte{c}))
}
