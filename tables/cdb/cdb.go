// Package cdb writes and reads constant databases in D. J. Bernstein's cdb
// format, the format Postfix reads as a cdb: lookup table (cdb_table(5)).
//
// # File format
//
// A cdb file maps byte-string keys to byte-string data. All numbers are
// 32-bit unsigned integers stored little-endian in 4 bytes, so a whole file
// must fit in 4 GiB (2^32-1 bytes); Writer reports ErrTooLarge otherwise.
// The file is laid out as a header, the records and 256 hash tables:
//
//	+----------------+---------+-------+-------+-----+---------+
//	| p0 p1 ... p255 | records | hash0 | hash1 | ... | hash255 |
//	+----------------+---------+-------+-------+-----+---------+
//
// The header is 2048 bytes: 256 pairs (position, length). Pair i gives the
// byte offset of hash table i from the start of the file and its number of
// slots; a table of length 0 is empty. The records follow from offset 2048
// on, back to back without alignment, each being key length, data length,
// the key bytes, the data bytes. The hash tables follow the records, back to
// back. Each slot is a pair (hash, position): position is the file offset of
// a record, 0 marks an empty slot. A table holding n records has 2n slots.
//
// The hash of a key is h = ((h << 5) + h) ^ c over its bytes c, starting at
// h = 5381, in 32-bit arithmetic. A key lives in table h & 255 (h mod 256).
// Its search starts at slot (h >> 8) mod length and probes the following
// slots, wrapping round at the end, until a slot with the key's hash points
// to a record whose key is equal (a hit) or an empty slot is met (a miss).
// A key may be stored more than once; a lookup finds the record that was
// added first, as Postfix does.
//
// # Postfix conventions
//
// This package stores bytes as given. Postfix's cdb: map (dict_cdb) queries a
// key first with a trailing NUL byte, then without, and from the first hit on
// keeps to the form that hit; "postmap cdb:FILE" stores keys and values without
// the NUL, and so should every producer of files for Postfix. Postfix also
// folds the query key to lower case before it looks it up. Both are the
// caller's business (see package tables/export).
package cdb

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/mapdrop/mapdrop/failure"
)

// headerSize is the size of the table of 256 (position, length) pairs.
const headerSize = 256 * 8

// maxSize is the largest file the 32-bit positions can describe.
const maxSize = math.MaxUint32

// ErrTooLarge is returned by Add when the file would no longer fit in 4 GiB.
// It is Permanent: a table that is too large stays too large.
var ErrTooLarge = failure.Perm("cdb: file would exceed the 4 GiB limit of the format")

// ErrClosed is returned by Add and Close after Close has been called.
var ErrClosed = errors.New("cdb: writer is closed")

// Hash returns the cdb hash of key.
func Hash(key []byte) uint32 {
	h := uint32(5381)
	for _, c := range key {
		h = ((h << 5) + h) ^ uint32(c)
	}
	return h
}

// slot is what the writer remembers of each record until Close: 8 bytes.
type slot struct {
	hash, pos uint32
}

// slotList is an append-only list of slots kept in chunks, so that growing
// it never copies: memory stays at about 8 bytes per record.
type slotList struct {
	chunks [][]slot
	n      int
}

const maxChunk = 4096

func (l *slotList) add(s slot) {
	if k := len(l.chunks); k == 0 || len(l.chunks[k-1]) == cap(l.chunks[k-1]) {
		size := min(16<<k, maxChunk)
		l.chunks = append(l.chunks, make([]slot, 0, size))
	}
	last := &l.chunks[len(l.chunks)-1]
	*last = append(*last, s)
	l.n++
}

// Writer streams records into a cdb file. Only the hash and position of each
// record are kept in memory (8 bytes per record); keys and data go straight to
// the underlying writer through a buffer. A Writer is not safe for concurrent
// use.
type Writer struct {
	ws      io.WriteSeeker
	bw      *bufio.Writer
	pos     uint64        // offset of the next byte written
	tables  [256]slotList // records by hash table, in the order added
	count   uint64        // records added
	err     error         // sticky: first error met
	scratch [8]byte       // encoding buffer, here so that it does not escape per call
	closed  bool
}

// NewWriter returns a Writer that writes a cdb file to ws, which must be
// positioned at offset 0 of an empty file (or one the writer may overwrite;
// Close does not truncate). The header is written as zeroes first and filled
// in by Close, which seeks back to offset 0; nothing in ws is a valid cdb
// until Close returns nil.
func NewWriter(ws io.WriteSeeker) *Writer {
	w := &Writer{ws: ws, bw: bufio.NewWriterSize(ws, 256<<10)}
	var zero [headerSize]byte
	if _, err := w.bw.Write(zero[:]); err != nil {
		w.err = err
	}
	w.pos = headerSize
	return w
}

// Add appends a record. The file must still fit in 4 GiB once every hash
// table is written, otherwise Add returns ErrTooLarge. After any error the
// Writer is unusable and keeps returning that error.
func (w *Writer) Add(key, data []byte) error {
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	// Every record costs 8 bytes of lengths plus 16 bytes (two slots) of
	// hash table; the final file must end within maxSize.
	need := w.pos + 8 + uint64(len(key)) + uint64(len(data)) + 16*(w.count+1)
	if need > maxSize {
		w.err = ErrTooLarge
		return w.err
	}
	h := Hash(key)
	w.tables[h&255].add(slot{hash: h, pos: uint32(w.pos)})
	binary.LittleEndian.PutUint32(w.scratch[0:], uint32(len(key)))
	binary.LittleEndian.PutUint32(w.scratch[4:], uint32(len(data)))
	if err := w.write(w.scratch[:]); err != nil {
		return err
	}
	if err := w.write(key); err != nil {
		return err
	}
	if err := w.write(data); err != nil {
		return err
	}
	w.count++
	return nil
}

func (w *Writer) write(b []byte) error {
	n, err := w.bw.Write(b)
	w.pos += uint64(n)
	if err != nil {
		w.err = fmt.Errorf("cdb: write: %w", err)
	}
	return w.err
}

// Close writes the hash tables and the header. It does not close or sync
// the underlying writer. Close after Close returns ErrClosed.
func (w *Writer) Close() error {
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	var header [headerSize]byte
	var buf []slot
	for i := range w.tables {
		recs := &w.tables[i]
		n := uint32(2 * recs.n)
		binary.LittleEndian.PutUint32(header[i*8:], uint32(w.pos))
		binary.LittleEndian.PutUint32(header[i*8+4:], n)
		if n == 0 {
			continue
		}
		if uint32(cap(buf)) < n {
			buf = make([]slot, n)
		} else {
			buf = buf[:n]
			clear(buf)
		}
		for _, chunk := range recs.chunks {
			for _, r := range chunk {
				j := (r.hash >> 8) % n
				for buf[j].pos != 0 {
					j++
					if j == n {
						j = 0
					}
				}
				buf[j] = r
			}
		}
		for _, s := range buf {
			binary.LittleEndian.PutUint32(w.scratch[0:], s.hash)
			binary.LittleEndian.PutUint32(w.scratch[4:], s.pos)
			if err := w.write(w.scratch[:]); err != nil {
				return err
			}
		}
		*recs = slotList{} // let the memory go as we progress
	}
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("cdb: write: %w", err)
	}
	if _, err := w.ws.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("cdb: seek to header: %w", err)
	}
	if _, err := w.ws.Write(header[:]); err != nil {
		return fmt.Errorf("cdb: write header: %w", err)
	}
	return nil
}

// ErrCorrupt is wrapped by Lookup's errors for data that is not a valid cdb.
var ErrCorrupt = failure.Perm("cdb: corrupt file")

// Lookup finds key in the cdb file r and returns the data of the first
// record added with that key. It returns found == false and no error for a
// key that is absent, and an error wrapping ErrCorrupt when a position or
// length points outside the file, or the read error of r. A probe never visits
// more slots than the table has, so Lookup ends on any input.
func Lookup(r io.ReaderAt, key []byte) (data []byte, found bool, err error) {
	h := Hash(key)
	var b [8]byte
	if err := readFull(r, b[:], int64(h&255)*8); err != nil {
		return nil, false, err
	}
	tpos := binary.LittleEndian.Uint32(b[0:])
	tlen := binary.LittleEndian.Uint32(b[4:])
	if tlen == 0 {
		return nil, false, nil
	}
	start := uint64((h >> 8) % tlen)
	var kbuf []byte
	for i := uint64(0); i < uint64(tlen); i++ {
		j := start + i
		if j >= uint64(tlen) {
			j -= uint64(tlen)
		}
		if err := readFull(r, b[:], int64(tpos)+int64(j)*8); err != nil {
			return nil, false, err
		}
		sh := binary.LittleEndian.Uint32(b[0:])
		spos := binary.LittleEndian.Uint32(b[4:])
		if spos == 0 {
			return nil, false, nil
		}
		if sh != h {
			continue
		}
		if err := readFull(r, b[:], int64(spos)); err != nil {
			return nil, false, err
		}
		klen := binary.LittleEndian.Uint32(b[0:])
		dlen := binary.LittleEndian.Uint32(b[4:])
		if int64(klen) != int64(len(key)) {
			continue
		}
		if cap(kbuf) < len(key) {
			kbuf = make([]byte, len(key))
		}
		kbuf = kbuf[:len(key)]
		if err := readFull(r, kbuf, int64(spos)+8); err != nil {
			return nil, false, err
		}
		if string(kbuf) != string(key) {
			continue
		}
		data, err := readData(r, int64(spos)+8+int64(klen), dlen)
		if err != nil {
			return nil, false, err
		}
		return data, true, nil
	}
	return nil, false, nil
}

// readData reads n bytes at off in chunks, so that a corrupt length does
// not allocate gigabytes before the read fails.
func readData(r io.ReaderAt, off int64, n uint32) ([]byte, error) {
	const chunk = 1 << 20
	var out []byte
	for remain := int64(n); remain > 0; {
		step := min(remain, chunk)
		start := len(out)
		out = append(out, make([]byte, step)...)
		if err := readFull(r, out[start:], off); err != nil {
			return nil, err
		}
		off += step
		remain -= step
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		return fmt.Errorf("%w: %d bytes at offset %d run past the end", ErrCorrupt, len(b), off)
	}
	return fmt.Errorf("cdb: read %d bytes at offset %d: %w", len(b), off, err)
}
