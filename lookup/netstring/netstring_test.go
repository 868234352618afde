package netstring

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func reader(s string, max int) *Reader {
	return NewReader(bufio.NewReader(strings.NewReader(s)), max)
}

func TestReadValid(t *testing.T) {
	r := reader("12:hello world!,0:,3:a,b,5:\x00\xff:,\n,", 100)
	for _, want := range []string{"hello world!", "", "a,b", "\x00\xff:,\n"} {
		got, err := r.Read()
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if string(got) != want {
			t.Fatalf("Read = %q, want %q", got, want)
		}
	}
	if _, err := r.Read(); err != io.EOF {
		t.Fatalf("Read at end = %v, want io.EOF", err)
	}
}

func TestReadErrors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"x:abc,", ErrSyntax},
		{"3x:abc,", ErrSyntax},
		{" 3:abc,", ErrSyntax},
		{"+3:abc,", ErrSyntax},
		{"-1:,", ErrSyntax},
		{":,", ErrSyntax},
		{"03:abc,", ErrSyntax},
		{"00:,", ErrSyntax},
		{"3:abc;", ErrSyntax},
		{"3:abcd,", ErrSyntax},
		{"11:abc,", ErrTooLong},
		{"99999999999999999999999999999999:", ErrTooLong},
		{"3:ab", io.ErrUnexpectedEOF},
		{"3:abc", io.ErrUnexpectedEOF},
		{"3", io.ErrUnexpectedEOF},
	} {
		_, err := reader(tc.in, 10).Read()
		if !errors.Is(err, tc.want) {
			t.Errorf("Read(%q) error = %v, want %v", tc.in, err, tc.want)
		}
	}
}

func TestMaxBoundary(t *testing.T) {
	data := strings.Repeat("x", 10)
	if got, err := reader(string(AppendString(nil, data)), 10).Read(); err != nil || string(got) != data {
		t.Fatalf("Read of exactly max = %q, %v", got, err)
	}
	if _, err := reader(string(AppendString(nil, data+"y")), 10).Read(); !errors.Is(err, ErrTooLong) {
		t.Fatalf("Read of max+1 error = %v, want ErrTooLong", err)
	}
}

func TestTooLongAllocatesNothing(t *testing.T) {
	in := "99999999999:"
	allocs := testing.AllocsPerRun(10, func() {
		r := reader(in, 100000)
		_, _ = r.Read()
		if r.buf != nil {
			t.Fatal("buffer allocated for a rejected length")
		}
	})
	// The reader, its bufio.Reader and the error message may allocate, but
	// nothing near the claimed length: check the total is small.
	if allocs > 20 {
		t.Fatalf("%v allocations for a rejected length", allocs)
	}
}

func TestAppend(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "0:,"},
		{"hello world!", "12:hello world!,"},
		{"a:b,c", "5:a:b,c,"},
	} {
		if got := string(Append([]byte("pre"), []byte(tc.in))); got != "pre"+tc.want {
			t.Errorf("Append(%q) = %q, want %q", tc.in, got, "pre"+tc.want)
		}
		if got := string(AppendString(nil, tc.in)); got != tc.want {
			t.Errorf("AppendString(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNegativeMax(t *testing.T) {
	r := reader("0:,1:a,", -5)
	if got, err := r.Read(); err != nil || len(got) != 0 {
		t.Fatalf("Read empty = %q, %v", got, err)
	}
	if _, err := r.Read(); !errors.Is(err, ErrTooLong) {
		t.Fatalf("Read with max<0 = %v, want ErrTooLong", err)
	}
}

func FuzzNetstring(f *testing.F) {
	f.Fuzz(func(t *testing.T, data, raw []byte, max int) {
		if max < 0 {
			max = -max
		}
		max %= 1 << 20
		// Round trip: what Append writes, Read returns.
		enc := Append(nil, data)
		enc = Append(enc, data)
		r := NewReader(bufio.NewReader(bytes.NewReader(enc)), len(data))
		for i := 0; i < 2; i++ {
			got, err := r.Read()
			if err != nil {
				t.Fatalf("round trip Read: %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("round trip = %q, want %q", got, data)
			}
		}
		if _, err := r.Read(); err != io.EOF {
			t.Fatalf("after round trip: %v, want io.EOF", err)
		}
		// Arbitrary input: no panic, and never a buffer beyond max.
		r = NewReader(bufio.NewReader(bytes.NewReader(raw)), max)
		for i := 0; i < len(raw)+1; i++ {
			got, err := r.Read()
			if cap(r.buf) > max {
				t.Fatalf("buffer of %d bytes with max %d", cap(r.buf), max)
			}
			if err != nil {
				break
			}
			if len(got) > max {
				t.Fatalf("Read returned %d bytes with max %d", len(got), max)
			}
		}
	})
}
