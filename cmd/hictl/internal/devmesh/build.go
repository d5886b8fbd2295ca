package devmesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// BuildArgs returns the arguments of the one `go build` that builds every
// component into binDir. A single invocation lets the go command build the
// six binaries in parallel and share the work on common packages; with -o
// naming a directory each binary is named after its package directory.
func BuildArgs(binDir string, comps []Component) []string {
	args := []string{"build", "-o", binDir + string(filepath.Separator)}
	for _, c := range comps {
		args = append(args, c.Package)
	}
	return args
}

// Build compiles every component into binDir, running the go command in repoRoot.
func Build(ctx context.Context, repoRoot, binDir string, comps []Component, out io.Writer) error {
	goBin, err := findGo()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, goBin, BuildArgs(binDir, comps)...)
	cmd.Dir = repoRoot
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build in %s: %w", repoRoot, err)
	}
	return nil
}

// CheckBinaries reports a missing binary (for --no-build).
func CheckBinaries(binDir string, comps []Component) error {
	for _, c := range comps {
		p := filepath.Join(binDir, c.Name)
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("--no-build: %s is missing (run without --no-build once): %w", p, err)
		}
	}
	return nil
}

func findGo() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	if p := "/usr/local/go/bin/go"; isFile(p) {
		return p, nil
	}
	return "", errors.New("the go command is not on PATH; install Go or use --no-build with binaries in .data/bin")
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
