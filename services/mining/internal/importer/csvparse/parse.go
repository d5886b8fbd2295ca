// Package csvparse splits a CSV stream into records one line at a time, with bounded memory: a
// line longer than the limit is skipped (reported, never buffered), invalid UTF-8 and bad quoting
// are reported for their line, and parsing always goes on with the next line, so that a caller
// can report every bad line of a file in one pass.
//
// The dialect is RFC 4180 without line breaks inside quoted fields: fields are separated by
// commas, a field may be enclosed in double quotes (a quote inside is written twice), lines end
// in LF or CRLF, a UTF-8 byte-order mark before the first line is ignored and empty lines are
// skipped. Fields are returned as written (no trimming).
package csvparse

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// DefaultMaxLineBytes bounds a line (without its line ending) when Options.MaxLineBytes is 0.
const DefaultMaxLineBytes = 64 << 10

// Options configure a Parser.
type Options struct {
	// MaxLineBytes is the longest line accepted; longer lines become a Record with Err set.
	MaxLineBytes int
}

// Record is one non-empty line.
type Record struct {
	// Line is the 1-based line number in the stream (empty lines count).
	Line int64
	// Fields are the line's fields; valid until the next call of Next. Nil when Err is set.
	Fields []string
	// Err says why the line could not be split into fields (too long, invalid UTF-8, bad
	// quoting); empty for a good line.
	Err string
}

// Parser reads Records from a stream.
type Parser struct {
	r       *bufio.Reader
	max     int
	line    int64
	bytes   int64
	fields  []string
	scratch []byte
}

// New returns a Parser reading r.
func New(r io.Reader, o Options) *Parser {
	maxLine := o.MaxLineBytes
	if maxLine <= 0 {
		maxLine = DefaultMaxLineBytes
	}
	// Room for the longest line plus CR LF, so that ReadSlice only fails with ErrBufferFull for
	// a line that is too long.
	return &Parser{r: bufio.NewReaderSize(r, maxLine+2), max: maxLine}
}

// BytesRead is the number of bytes consumed so far.
func (p *Parser) BytesRead() int64 { return p.bytes }

// Line is the number of the last line read (0 before the first).
func (p *Parser) Line() int64 { return p.line }

var bom = []byte{0xEF, 0xBB, 0xBF}

// Next returns the next non-empty line: io.EOF after the last one, or the reader's error.
func (p *Parser) Next() (Record, error) {
	for {
		raw, tooLong, err := p.readLine()
		if err != nil && (err != io.EOF || (len(raw) == 0 && !tooLong)) {
			return Record{}, err
		}
		p.line++
		if tooLong {
			return Record{Line: p.line, Err: fmt.Sprintf("line too long (more than %d bytes)", p.max)}, nil
		}
		if p.line == 1 {
			raw = bytes.TrimPrefix(raw, bom)
		}
		raw = bytes.TrimSuffix(raw, []byte{'\n'})
		raw = bytes.TrimSuffix(raw, []byte{'\r'})
		if len(raw) == 0 {
			if err == io.EOF {
				return Record{}, io.EOF
			}
			continue
		}
		if len(raw) > p.max {
			return Record{Line: p.line, Err: fmt.Sprintf("line too long (more than %d bytes)", p.max)}, nil
		}
		if !utf8.Valid(raw) {
			return Record{Line: p.line, Err: "invalid UTF-8"}, nil
		}
		fields, reason := p.split(raw)
		if reason != "" {
			return Record{Line: p.line, Err: reason}, nil
		}
		return Record{Line: p.line, Fields: fields}, nil
	}
}

// readLine returns the next line including its LF. A line longer than the buffer is consumed up
// to and including its LF without being kept (tooLong). At the end of the stream it returns the
// last unterminated line, if any, with io.EOF.
func (p *Parser) readLine() (line []byte, tooLong bool, err error) {
	line, err = p.r.ReadSlice('\n')
	p.bytes += int64(len(line))
	if !errors.Is(err, bufio.ErrBufferFull) {
		return line, false, err
	}
	for {
		var chunk []byte
		chunk, err = p.r.ReadSlice('\n')
		p.bytes += int64(len(chunk))
		if !errors.Is(err, bufio.ErrBufferFull) {
			if err == io.EOF {
				return nil, true, io.EOF
			}
			return nil, true, err
		}
	}
}

// split splits a line into fields, or says why it cannot.
func (p *Parser) split(line []byte) ([]string, string) {
	p.fields = p.fields[:0]
	i := 0
	for {
		if i < len(line) && line[i] == '"' {
			p.scratch = p.scratch[:0]
			i++
			closed := false
			for i < len(line) {
				c := line[i]
				if c != '"' {
					p.scratch = append(p.scratch, c)
					i++
					continue
				}
				if i+1 < len(line) && line[i+1] == '"' {
					p.scratch = append(p.scratch, '"')
					i += 2
					continue
				}
				i++
				closed = true
				break
			}
			if !closed {
				return nil, fmt.Sprintf("field %d: unterminated quoted field (quoted fields may not span lines)", len(p.fields)+1)
			}
			p.fields = append(p.fields, string(p.scratch))
			if i == len(line) {
				return p.fields, ""
			}
			if line[i] != ',' {
				return nil, fmt.Sprintf("field %d: unexpected character after closing quote", len(p.fields))
			}
			i++
			continue
		}
		end := bytes.IndexByte(line[i:], ',')
		last := end < 0
		if last {
			end = len(line) - i
		}
		f := line[i : i+end]
		if bytes.IndexByte(f, '"') >= 0 {
			return nil, fmt.Sprintf(`field %d: bare " in an unquoted field`, len(p.fields)+1)
		}
		p.fields = append(p.fields, string(f))
		if last {
			return p.fields, ""
		}
		i += end + 1
	}
}
