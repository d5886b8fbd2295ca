// Package commands is hictl's command tree. Each command group lives in its
// own file and is attached in NewRoot: dev (certs, up, down), health, and the
// operator commands user, apikey and audit, which call the auth service over
// gRPC with the operator certificate (authconn.go holds their shared flags,
// connection, output and error mapping).
package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hashinsight/platform/cmd/hictl/internal/devmesh"
)

// Exit statuses of hictl.
const (
	ExitOK          = 0
	ExitError       = 1
	ExitUsage       = 2
	ExitInterrupted = 130
)

// IO is the process's environment as the commands see it.
type IO struct {
	Stdout, Stderr io.Writer
	// Environ is the process environment (os.Environ()).
	Environ []string
	// Getwd returns the working directory.
	Getwd func() (string, error)
	// Stdin is standard input (`user create --password-stdin` reads it); nil
	// reads as empty.
	Stdin io.Reader
	// ReadPassword writes a prompt and reads one line from the terminal
	// without echo (`user create --password-prompt`); nil means there is no
	// terminal. See TerminalPassword.
	ReadPassword PasswordReader
}

// lookupEnv looks a variable up in Environ.
func (s IO) lookupEnv(key string) (string, bool) {
	for i := len(s.Environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(s.Environ[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// usageError marks errors in how hictl was invoked.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// Execute runs hictl with args and returns its exit status.
func Execute(ctx context.Context, args []string, s IO) int {
	root := NewRoot(s)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return ExitOK
	case ctx.Err() != nil:
		fmt.Fprintf(s.Stderr, "hictl: interrupted: %v\n", err)
		return ExitInterrupted
	}
	fmt.Fprintf(s.Stderr, "hictl: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return ExitError
}

// NewRoot builds the command tree.
func NewRoot(s IO) *cobra.Command {
	root := &cobra.Command{
		Use:   "hictl",
		Short: "HashInsight operator CLI and local mesh launcher",
		Long: `hictl operates a HashInsight mesh: it manages users, API keys and the audit log through the
auth service, checks the services' health over mutual TLS with an operator certificate, and runs
the whole mesh locally (hictl dev up, behind make run).

Exit status: 0 success, 1 error, 2 usage error (including a request the server rejected as
invalid), 130 interrupted.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(s.Stdout)
	root.SetErr(s.Stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newDevCmd(s), newHealthCmd(s), newUserCmd(s), newAPIKeyCmd(s), newAuditCmd(s), newMinersCmd(s))
	return root
}

// paths resolves the data directory: the flag when given (relative to the
// working directory), else .data at the repository root (the directory with
// go.work), else ./.data.
type paths struct {
	repoRoot string
	data     devmesh.Layout
}

func resolvePaths(s IO, dataFlag string) (paths, error) {
	wd, err := s.Getwd()
	if err != nil {
		return paths{}, fmt.Errorf("working directory: %w", err)
	}
	root, rootErr := devmesh.FindRepoRoot(wd)
	if rootErr != nil {
		root = ""
	}
	dir := dataFlag
	switch {
	case dir == "" && root != "":
		dir = filepath.Join(root, ".data")
	case dir == "":
		dir = filepath.Join(wd, ".data")
	case !filepath.IsAbs(dir):
		dir = filepath.Join(wd, dir)
	}
	l, err := devmesh.NewLayout(dir)
	if err != nil {
		return paths{}, err
	}
	return paths{repoRoot: root, data: l}, nil
}

// dataFlagHelp documents --data.
const dataFlagHelp = "data directory (default: .data at the repository root, else ./.data)"
