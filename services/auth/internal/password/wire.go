package password

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The wire protocol between the auth service and its hash workers (worker.go), over the
// worker's stdin and stdout. Every message is a frame: a 4-byte big-endian length, then that
// many bytes. The worker first sends the hello frame; then, for each request frame it reads, it
// sends one response frame.
//
//	request:  version(1) memoryKiB(4) time(4) threads(1) keyLen(4) saltLen(2) salt passwordLen(2) password
//	response: status(1) then the key (statusOK) or an error message (statusError)
const (
	wireVersion    = 1
	statusOK       = 0
	statusError    = 1
	maxFrame       = 8 << 10 // a request is at most ~4.2 KiB; a response at most 129 bytes or a short message
	maxWireSalt    = 64
	maxWirePass    = 4 << 10 // MaxLength runes of up to 4 bytes, and room for legacy hashes' passwords
	maxWorkerKiB   = 256 << 10
	requestFixed   = 1 + 4 + 4 + 1 + 4
	maxWireTime    = 64
	minWireKeyLen  = 16
	maxWireKeyLen  = 128
	helloFrameBody = "hashinsight-password-worker/1"
)

// errBadFrame reports a frame that does not decode: the connection is out of step and must be
// closed.
var errBadFrame = errors.New("password worker: malformed frame")

// keyRequest asks a worker for the argon2id key of password under salt and params.
type keyRequest struct {
	Params   Params
	Salt     []byte
	Password []byte
}

// validate checks the bounds a worker enforces before allocating memory for a hash.
func (r keyRequest) validate() error {
	p := r.Params
	switch {
	case p.MemoryKiB < 8*uint32(max(p.Threads, 1)) || p.MemoryKiB > maxWorkerKiB:
		return fmt.Errorf("memory %d KiB outside [8·threads, %d]", p.MemoryKiB, maxWorkerKiB)
	case p.Time == 0 || p.Time > maxWireTime:
		return fmt.Errorf("time %d outside [1, %d]", p.Time, maxWireTime)
	case p.Threads == 0:
		return errors.New("threads must be at least 1")
	case p.KeyLen < minWireKeyLen || p.KeyLen > maxWireKeyLen:
		return fmt.Errorf("key length %d outside [%d, %d]", p.KeyLen, minWireKeyLen, maxWireKeyLen)
	case len(r.Salt) < 8 || len(r.Salt) > maxWireSalt:
		return fmt.Errorf("salt length %d outside [8, %d]", len(r.Salt), maxWireSalt)
	case len(r.Password) > maxWirePass:
		return fmt.Errorf("password of %d bytes exceeds %d", len(r.Password), maxWirePass)
	}
	return nil
}

// marshal encodes r as a frame body.
func (r keyRequest) marshal() []byte {
	b := make([]byte, 0, requestFixed+2+len(r.Salt)+2+len(r.Password))
	b = append(b, wireVersion)
	b = binary.BigEndian.AppendUint32(b, r.Params.MemoryKiB)
	b = binary.BigEndian.AppendUint32(b, r.Params.Time)
	b = append(b, r.Params.Threads)
	b = binary.BigEndian.AppendUint32(b, r.Params.KeyLen)
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.Salt)))
	b = append(b, r.Salt...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.Password)))
	return append(b, r.Password...)
}

// unmarshalKeyRequest decodes a frame body. It fails on a wrong version, a truncated body or
// trailing bytes; the bounds are checked by validate.
func unmarshalKeyRequest(b []byte) (keyRequest, error) {
	if len(b) < requestFixed || b[0] != wireVersion {
		return keyRequest{}, errBadFrame
	}
	r := keyRequest{Params: Params{
		MemoryKiB: binary.BigEndian.Uint32(b[1:5]),
		Time:      binary.BigEndian.Uint32(b[5:9]),
		Threads:   b[9],
		KeyLen:    binary.BigEndian.Uint32(b[10:14]),
	}}
	rest := b[requestFixed:]
	var ok bool
	if r.Salt, rest, ok = cutField(rest); !ok {
		return keyRequest{}, errBadFrame
	}
	if r.Password, rest, ok = cutField(rest); !ok || len(rest) != 0 {
		return keyRequest{}, errBadFrame
	}
	r.Params.SaltLen = uint32(len(r.Salt))
	return r, nil
}

// cutField splits a 2-byte-length-prefixed field off b.
func cutField(b []byte) (field, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return nil, nil, false
	}
	return b[2 : 2+n], b[2+n:], true
}

// writeFrame writes body as one frame.
func writeFrame(w io.Writer, body []byte) error {
	if len(body) > maxFrame {
		return fmt.Errorf("password worker: frame of %d bytes exceeds %d", len(body), maxFrame)
	}
	buf := make([]byte, 4, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	_, err := w.Write(append(buf, body...))
	return err
}

// readFrame reads one frame's body. io.EOF means the peer closed cleanly between frames.
func readFrame(r *bufio.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return nil, errBadFrame
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("password worker: truncated frame: %w", io.ErrUnexpectedEOF)
	}
	return body, nil
}

// keyResponse builds a response body: the key, or the error's message.
func keyResponse(key []byte, err error) []byte {
	if err != nil {
		return append([]byte{statusError}, err.Error()...)
	}
	return append([]byte{statusOK}, key...)
}

// parseKeyResponse decodes a response body for a request of keyLen bytes.
func parseKeyResponse(b []byte, keyLen uint32) ([]byte, error) {
	switch {
	case len(b) == 0:
		return nil, errBadFrame
	case b[0] == statusError:
		return nil, fmt.Errorf("password worker: %s", b[1:])
	case b[0] != statusOK || uint32(len(b)-1) != keyLen:
		return nil, errBadFrame
	}
	return b[1:], nil
}
