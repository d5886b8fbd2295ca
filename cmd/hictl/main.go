// Command hictl is the HashInsight operator CLI: `hictl user`, `hictl apikey`
// and `hictl audit` manage users, API keys and the audit log through the auth
// service, `hictl health` checks the services, all over mutual TLS with an
// operator certificate; `hictl dev up` (behind `make run`) runs the whole mesh
// on a developer machine.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashinsight/platform/cmd/hictl/internal/commands"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return commands.Execute(ctx, os.Args[1:], commands.IO{
		Stdout:       os.Stdout,
		Stderr:       os.Stderr,
		Environ:      os.Environ(),
		Getwd:        os.Getwd,
		Stdin:        os.Stdin,
		ReadPassword: commands.TerminalPassword(os.Stdin, os.Stderr),
	})
}
