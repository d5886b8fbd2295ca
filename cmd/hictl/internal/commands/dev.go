package commands

import (
	"context"
	"crypto/rand"
	"fmt"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hashinsight/platform/cmd/hictl/internal/devmesh"
	"github.com/hashinsight/platform/cmd/hictl/internal/pgcluster"
	"github.com/hashinsight/platform/pkg/mtls"
	"github.com/hashinsight/platform/pkg/mtls/devca"
)

func newDevCmd(s IO) *cobra.Command {
	dev := &cobra.Command{
		Use:   "dev",
		Short: "Run the mesh on this machine (development only)",
	}
	dev.AddCommand(newDevCertsCmd(s), newDevUpCmd(s), newDevDownCmd(s))
	return dev
}

func newDevCertsCmd(s IO) *cobra.Command {
	var (
		dir    string
		rotate []string
		extra  []string
	)
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Create the dev CA and a certificate per service and for operator/dev",
		Long: `certs makes sure the directory holds a development CA and one certificate per identity:
svc/auth, svc/mining, svc/billing, svc/sla, svc/analytics, svc/gateway and operator/dev
(plus any --identity). Existing certificates that are in order are left untouched;
--rotate issues a fresh key and certificate for an identity (running services pick it up
without a restart).`,
		Example: `  hictl dev certs
  hictl dev certs --identity operator/alice
  hictl dev certs --rotate svc/mining`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				p, err := resolvePaths(s, "")
				if err != nil {
					return err
				}
				dir = p.data.Certs
			}
			ids := devmesh.Identities()
			parse := func(list []string) ([]mtls.Identity, error) {
				var out []mtls.Identity
				for _, v := range list {
					id, err := mtls.ParseIdentity(v)
					if err != nil {
						return nil, usageError{fmt.Errorf("identity %q: %w", v, err)}
					}
					out = append(out, id)
				}
				return out, nil
			}
			more, err := parse(extra)
			if err != nil {
				return err
			}
			rot, err := parse(rotate)
			if err != nil {
				return err
			}
			ids = appendNew(appendNew(ids, more...), rot...)
			files, err := devca.Ensure(dir, ids)
			if err != nil {
				return err
			}
			if len(rot) > 0 {
				ca, err := devca.LoadCA(dir)
				if err != nil {
					return err
				}
				for _, id := range rot {
					if _, err := ca.WriteLeaf(dir, id); err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "rotated %s\n", id)
				}
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "IDENTITY\tCERTIFICATE\tKEY\n")
			fmt.Fprintf(tw, "CA\t%s\t%s\n", files.CACert, files.CAKey)
			for _, id := range ids {
				lf := files.Leaves[id]
				fmt.Fprintf(tw, "%s\t%s\t%s\n", id, lf.Cert, lf.Key)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "certificate directory (default: <data directory>/certs)")
	cmd.Flags().StringArrayVar(&rotate, "rotate", nil, "issue a new key and certificate for `IDENTITY` (svc/<name> or operator/<name>); repeatable")
	cmd.Flags().StringArrayVar(&extra, "identity", nil, "also make sure `IDENTITY` has a certificate (e.g. operator/alice); repeatable")
	return cmd
}

func appendNew(ids []mtls.Identity, more ...mtls.Identity) []mtls.Identity {
	for _, m := range more {
		found := false
		for _, id := range ids {
			if id == m {
				found = true
				break
			}
		}
		if !found {
			ids = append(ids, m)
		}
	}
	return ids
}

func newDevUpCmd(s IO) *cobra.Command {
	var (
		data        string
		noBuild     bool
		wait, grace time.Duration
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the whole mesh locally (make run)",
		Long: `up starts the five services and the gateway on this machine and keeps them running until
Ctrl-C or SIGTERM, then stops them (and the private PostgreSQL cluster it started).

On a fresh machine it needs nothing set. Under the data directory it keeps:
  certs/        dev CA and certificates (svc/* and operator/dev)
  secrets.env   SESSION_SECRET, ENCRYPTION_PASSWORD and the database role passwords (0600)
  pg/           a private PostgreSQL cluster, unless DATABASE_URL is set
  logs/         one log per process, pg_ctl.log and audit.jsonl
  bin/          the binaries it builds
  owner.txt     the generated bootstrap owner's login (0600)
A second run reuses all of it.

The private cluster listens on 127.0.0.1:$HASHINSIGHT_PG_PORT (default 5433) and trusts
every local connection (no passwords): it is for development only. When run as root,
PostgreSQL runs as the OS user postgres, which owns pg/ and is given search (x)
permission on the data directory.

Redis is used when REDIS_URL (default redis://127.0.0.1:6379) answers PING within 500ms;
otherwise the services get REDIS_URL=memory (in-memory cache).

Variables already set in the environment win over the defaults it passes to the
processes; per-service addresses are set with <SVC>_GRPC_ADDR and <SVC>_HTTP_ADDR.
HASHINSIGHT_BOOTSTRAP_OWNER_EMAIL and HASHINSIGHT_BOOTSTRAP_OWNER_PASSWORD choose
the bootstrap owner; otherwise one is generated.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := resolvePaths(s, data)
			if err != nil {
				return err
			}
			return devmesh.Up(cmd.Context(), devmesh.Options{
				Layout:      p.data,
				RepoRoot:    p.repoRoot,
				NoBuild:     noBuild,
				WaitTimeout: wait,
				StopTimeout: grace,
				Environ:     s.Environ,
				Out:         cmd.OutOrStdout(),
				Rand:        rand.Reader,
			})
		},
	}
	cmd.Flags().StringVar(&data, "data", "", dataFlagHelp)
	cmd.Flags().BoolVar(&noBuild, "no-build", false, "use the binaries already in <data>/bin instead of building them")
	cmd.Flags().DurationVar(&wait, "wait", devmesh.DefaultWaitTimeout, "how long to wait for every process to be healthy")
	cmd.Flags().DurationVar(&grace, "stop-timeout", devmesh.DefaultStopTimeout, "how long to wait after SIGTERM before SIGKILL")
	return cmd
}

func newDevDownCmd(s IO) *cobra.Command {
	var (
		data string
		wait time.Duration
	)
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop a local mesh and its private PostgreSQL cluster left running",
		Long: `down stops what a dev up left behind: a dev up still running on the data directory
(it is sent SIGTERM and stops its processes), then the private PostgreSQL cluster
if it is still running (pg_ctl stop -m fast).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := resolvePaths(s, data)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if pid, ok := devmesh.LockHolder(p.data); ok {
				fmt.Fprintf(out, "stopping hictl dev up (pid %d)\n", pid)
				if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
					return fmt.Errorf("signal dev up (pid %d): %w", pid, err)
				}
				if err := waitUnlocked(cmd.Context(), p.data, wait); err != nil {
					return err
				}
			}
			c, err := pgcluster.New(p.data.PG, pgcluster.DefaultPort, s.lookupEnv)
			if err != nil {
				return err
			}
			if !c.Initialized() {
				fmt.Fprintf(out, "no private PostgreSQL cluster in %s\n", p.data.PG)
				return nil
			}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			if !st.Running {
				fmt.Fprintf(out, "PostgreSQL in %s is not running\n", p.data.PG)
				return nil
			}
			if err := c.Stop(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintf(out, "stopped PostgreSQL in %s (port %d)\n", p.data.PG, st.Port)
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "", dataFlagHelp)
	cmd.Flags().DurationVar(&wait, "wait", 30*time.Second, "how long to wait for a running dev up to stop")
	return cmd
}

// waitUnlocked polls until no dev up holds the data directory's lock.
func waitUnlocked(ctx context.Context, l devmesh.Layout, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if _, held := devmesh.LockHolder(l); !held {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dev up did not stop within %s", d)
		case <-t.C:
		}
	}
}
