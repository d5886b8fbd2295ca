package commands

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// PasswordReader writes prompt and reads one line without echoing it.
type PasswordReader func(ctx context.Context, prompt string) (string, error)

// ErrNoTerminal means a password prompt was asked for without a terminal.
var ErrNoTerminal = errors.New("--password-prompt needs a terminal on standard input (scripts: --password-stdin)")

// TerminalPassword reads passwords from the terminal on in (normally
// os.Stdin) with echo off, writing the prompts to out (normally os.Stderr, so
// standard output stays clean). When ctx ends during a prompt (Ctrl-C) the
// terminal's state is restored before returning.
func TerminalPassword(in *os.File, out io.Writer) PasswordReader {
	return func(ctx context.Context, prompt string) (string, error) {
		fd := int(in.Fd())
		if !term.IsTerminal(fd) {
			return "", ErrNoTerminal
		}
		state, err := term.GetState(fd)
		if err != nil {
			return "", fmt.Errorf("terminal: %w", err)
		}
		fmt.Fprint(out, prompt)
		type result struct {
			b   []byte
			err error
		}
		done := make(chan result, 1)
		go func() {
			b, err := term.ReadPassword(fd)
			done <- result{b, err}
		}()
		select {
		case r := <-done:
			fmt.Fprintln(out)
			if r.err != nil {
				return "", fmt.Errorf("read password: %w", r.err)
			}
			return string(r.b), nil
		case <-ctx.Done():
			_ = term.Restore(fd, state)
			fmt.Fprintln(out)
			return "", ctx.Err()
		}
	}
}

// Password prompts of `user create --password-prompt`.
const (
	passwordPrompt        = "Please enter password: "
	passwordConfirmPrompt = "Please confirm password: "
)

// promptPassword asks twice and requires both entries to match.
func promptPassword(ctx context.Context, read PasswordReader) (string, error) {
	if read == nil {
		return "", ErrNoTerminal
	}
	pw, err := read(ctx, passwordPrompt)
	if err != nil {
		return "", err
	}
	if pw == "" {
		return "", errors.New("empty password")
	}
	again, err := read(ctx, passwordConfirmPrompt)
	if err != nil {
		return "", err
	}
	if again != pw {
		return "", errors.New("passwords do not match")
	}
	return pw, nil
}

// readPasswordLine reads the first line of r (--password-stdin), without its
// line ending.
func readPasswordLine(r io.Reader) (string, error) {
	if r == nil {
		return "", errors.New("--password-stdin: standard input is empty")
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("--password-stdin: read: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("--password-stdin: standard input is empty")
	}
	return line, nil
}
