package csvparse

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

type rec struct {
	line   int64
	fields []string
	err    string
}

func parseAll(t testing.TB, r io.Reader, o Options) []rec {
	t.Helper()
	p := New(r, o)
	var out []rec
	for {
		rc, err := p.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, rec{line: rc.Line, fields: append([]string(nil), rc.Fields...), err: rc.Err})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want []rec
	}{
		{name: "empty", in: "", want: nil},
		{name: "simple LF", in: "a,b\n1,2\n", want: []rec{{1, []string{"a", "b"}, ""}, {2, []string{"1", "2"}, ""}}},
		{name: "CRLF and no final newline", in: "a,b\r\n1,2", want: []rec{{1, []string{"a", "b"}, ""}, {2, []string{"1", "2"}, ""}}},
		{name: "BOM", in: "\xEF\xBB\xBFa,b\n", want: []rec{{1, []string{"a", "b"}, ""}}},
		{name: "empty lines skipped but counted", in: "a\n\n\r\nb\n\n", want: []rec{{1, []string{"a"}, ""}, {4, []string{"b"}, ""}}},
		{name: "empty fields", in: ",,\n", want: []rec{{1, []string{"", "", ""}, ""}}},
		{name: "quoted", in: `"a,b","say ""hi""",""` + "\n", want: []rec{{1, []string{"a,b", `say "hi"`, ""}, ""}}},
		{name: "formula kept as written", in: `=cmd|' /C calc'!A0,x` + "\n", want: []rec{{1, []string{`=cmd|' /C calc'!A0`, "x"}, ""}}},
		{name: "unterminated quote", in: "\"abc\nx\n", want: []rec{{1, nil, "field 1: unterminated quoted field (quoted fields may not span lines)"}, {2, []string{"x"}, ""}}},
		{name: "text after quote", in: "\"a\"b,c\n", want: []rec{{1, nil, "field 1: unexpected character after closing quote"}}},
		{name: "bare quote", in: "a,b\"c\n", want: []rec{{1, nil, `field 2: bare " in an unquoted field`}}},
		{name: "invalid UTF-8", in: "a\xff,b\nc\n", want: []rec{{1, nil, "invalid UTF-8"}, {2, []string{"c"}, ""}}},
		{name: "long line then good", max: 8, in: "0123456789abcdef\nok\n", want: []rec{{1, nil, "line too long (more than 8 bytes)"}, {2, []string{"ok"}, ""}}},
		{name: "line of exactly max", max: 8, in: "01234567\r\n012345678\n", want: []rec{{1, []string{"01234567"}, ""}, {2, nil, "line too long (more than 8 bytes)"}}},
		{name: "long last line without newline", max: 8, in: "ok\n0123456789abcdef", want: []rec{{1, []string{"ok"}, ""}, {2, nil, "line too long (more than 8 bytes)"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []struct {
				name string
				r    io.Reader
			}{{"whole", strings.NewReader(tc.in)}, {"one byte at a time", iotest.OneByteReader(strings.NewReader(tc.in))}} {
				got := parseAll(t, r.r, Options{MaxLineBytes: tc.max})
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("%s: got %#v, want %#v", r.name, got, tc.want)
				}
			}
		})
	}
}

// TestHugeLine checks that a 10 MB line is skipped without being held and that the next line
// is parsed.
func TestHugeLine(t *testing.T) {
	in := io.MultiReader(strings.NewReader("a,b\n"), io.LimitReader(repeatReader('x'), 10<<20), strings.NewReader("\nc,d\n"))
	p := New(in, Options{})
	var got []rec
	for {
		rc, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rec{rc.Line, append([]string(nil), rc.Fields...), rc.Err})
	}
	want := []rec{{1, []string{"a", "b"}, ""}, {2, nil, "line too long (more than 65536 bytes)"}, {3, []string{"c", "d"}, ""}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if p.BytesRead() != 4+10<<20+1+4 {
		t.Fatalf("BytesRead %d", p.BytesRead())
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	p := New(io.MultiReader(strings.NewReader("a\nb"), iotest.ErrReader(boom)), Options{})
	if _, err := p.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Next(); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// FuzzParse checks that the parser never panics, always terminates, numbers lines
// monotonically, never returns a field longer than the line limit, and that a file written
// from parsed fields parses back to the same fields.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"name,model,hashrate_th,power_w,efficiency\nm1,Antminer S19,95,3250,\n",
		"\xEF\xBB\xBF\"a,b\",\"c\"\"d\"\r\n",
		"=cmd|' /C calc'!A0,x\n\n\n",
		"\"unterminated\n",
		"a\xff\xfe,b\n",
		strings.Repeat("x", 200) + "\nok",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxLine = 64
		p := New(bytes.NewReader(data), Options{MaxLineBytes: maxLine})
		var last int64
		var good [][]string
		for n := 0; ; n++ {
			if n > len(data)+1 {
				t.Fatal("more records than bytes")
			}
			rc, err := p.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if rc.Line <= last {
				t.Fatalf("line %d after %d", rc.Line, last)
			}
			last = rc.Line
			if (rc.Err == "") == (rc.Fields == nil) {
				t.Fatalf("line %d: fields %q with err %q", rc.Line, rc.Fields, rc.Err)
			}
			for _, fl := range rc.Fields {
				if len(fl) > maxLine {
					t.Fatalf("field of %d bytes", len(fl))
				}
			}
			if rc.Err == "" {
				good = append(good, append([]string(nil), rc.Fields...))
			}
		}
		if p.BytesRead() != int64(len(data)) {
			t.Fatalf("read %d of %d bytes", p.BytesRead(), len(data))
		}
		// Round trip: quote every field and parse again.
		var buf bytes.Buffer
		var want [][]string
		for _, fields := range good {
			if len(fields) == 1 && fields[0] == "" {
				continue // an empty line is skipped, by design
			}
			for i, fl := range fields {
				if i > 0 {
					buf.WriteByte(',')
				}
				buf.WriteByte('"')
				buf.WriteString(strings.ReplaceAll(fl, `"`, `""`))
				buf.WriteByte('"')
			}
			buf.WriteByte('\n')
			want = append(want, fields)
		}
		var got [][]string
		for _, r := range parseAll(t, &buf, Options{MaxLineBytes: 1 << 20}) {
			if r.err != "" {
				t.Fatalf("round trip line %d: %s", r.line, r.err)
			}
			got = append(got, r.fields)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip: got %q, want %q", got, want)
		}
	})
}
