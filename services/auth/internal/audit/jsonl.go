package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// FileTimeLayout is the manual's audit timestamp format: UTC with milliseconds,
// "2025-10-03T12:00:00.000Z". It sorts lexically, so jq string comparisons on it work.
const FileTimeLayout = "2006-01-02T15:04:05.000Z"

// FileLine is one line of logs/audit.jsonl: exactly the manual's fields, in its order.
type FileLine struct {
	Timestamp string         `json:"timestamp"`
	EventID   string         `json:"event_id"`
	Level     string         `json:"level"`
	Category  string         `json:"category"`
	Action    string         `json:"action"`
	UserID    string         `json:"user_id"`
	UserEmail string         `json:"user_email"`
	UserRole  string         `json:"user_role"`
	IPAddress string         `json:"ip_address"`
	Status    string         `json:"status"`
	Details   map[string]any `json:"details"`
}

// ToFileLine converts e to its JSONL form.
func ToFileLine(e Event) FileLine {
	details := e.Details
	if details == nil {
		details = map[string]any{}
	}
	return FileLine{
		Timestamp: e.Timestamp.UTC().Format(FileTimeLayout),
		EventID:   e.ID,
		Level:     string(e.Level),
		Category:  e.Category,
		Action:    e.Action,
		UserID:    e.UserID,
		UserEmail: e.UserEmail,
		UserRole:  e.UserRole,
		IPAddress: e.IPAddress,
		Status:    e.Status,
		Details:   details,
	}
}

// fileSink appends JSON lines to the audit file. Writes are serialised by a mutex and each line
// is a single write(2) on an O_APPEND descriptor, so lines never interleave, even with other
// processes appending to the same file.
type fileSink struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

// openFileSink creates path's directory (0700) and opens path for appending (created 0600; an
// existing file is tightened to 0600).
func openFileSink(path string) (*fileSink, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: create log directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open log file: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("audit: restrict log file permissions: %w", err)
	}
	return &fileSink{path: path, f: f}, nil
}

// write appends e as one line.
func (s *fileSink) write(e Event) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ToFileLine(e)); err != nil { // Encode appends the newline
		return fmt.Errorf("audit: encode log line: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return fmt.Errorf("audit: log file %s is closed", s.path)
	}
	if _, err := s.f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("audit: write log file: %w", err)
	}
	return nil
}

func (s *fileSink) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// timeNow is the default clock.
func timeNow() time.Time { return time.Now() }
