package commands

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hashinsight/platform/cmd/hictl/internal/devmesh"
	"github.com/hashinsight/platform/cmd/hictl/internal/meshhealth"
	"github.com/hashinsight/platform/pkg/mtls"
	"github.com/hashinsight/platform/pkg/mtls/devca"
)

// operatorFlags selects the operator certificate a command presents.
type operatorFlags struct {
	data, ca, cert, key string
}

func (f *operatorFlags) register(cmd *cobra.Command) { f.registerOn(cmd.Flags()) }

// registerOn adds the flags to fs (a command's persistent flags for a group).
func (f *operatorFlags) registerOn(fs *pflag.FlagSet) {
	fs.StringVar(&f.data, "data", "", dataFlagHelp+"; its certs/ supply the defaults below")
	fs.StringVar(&f.ca, "cacert", "", "CA bundle that signs the servers (default: <data>/certs/ca.crt)")
	fs.StringVar(&f.cert, "cert", "", "operator certificate (default: <data>/certs/operator-dev.crt)")
	fs.StringVar(&f.key, "key", "", "operator key (default: <data>/certs/operator-dev.key)")
}

// config returns the mtls configuration of the operator certificate.
func (f *operatorFlags) config(s IO) (mtls.Config, error) {
	cfg := mtls.Config{CACertPath: f.ca, CertPath: f.cert, KeyPath: f.key}
	if cfg.CACertPath == "" || cfg.CertPath == "" || cfg.KeyPath == "" {
		p, err := resolvePaths(s, f.data)
		if err != nil {
			return mtls.Config{}, err
		}
		op := devca.LeafPaths(p.data.Certs, devmesh.Operator())
		if cfg.CACertPath == "" {
			cfg.CACertPath = filepath.Join(p.data.Certs, devca.CACertFile)
		}
		if cfg.CertPath == "" {
			cfg.CertPath = op.Cert
		}
		if cfg.KeyPath == "" {
			cfg.KeyPath = op.Key
		}
	}
	return cfg, nil
}

func newHealthCmd(s IO) *cobra.Command {
	var (
		op      operatorFlags
		addrs   map[string]string
		gateway string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "health [SERVICE...]",
		Short: "Check every service's gRPC health over mTLS with an operator certificate",
		Long: `health asks each service's grpc.health.v1 Check over mutual TLS, presenting an operator
certificate and accepting only a server with the service's SPIFFE identity, and GETs the
gateway's /health. Addresses default to the local mesh (<SVC>_GRPC_ADDR and GATEWAY_ADDR
when set). It exits 1 unless everything checked is SERVING.`,
		Example: `  hictl health
  hictl health mining auth
  hictl health --addr mining=10.0.3.7:7002 --cacert ca.crt --cert alice.crt --key alice.key mining`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := op.config(s)
			if err != nil {
				return err
			}
			endpoints := devmesh.ResolveEndpoints(s.lookupEnv)
			names := devmesh.ServiceNames()
			checkGateway := gateway != "" && len(args) == 0
			if len(args) > 0 {
				names = nil
				for _, a := range args {
					if _, ok := endpoints.GRPC[a]; !ok && addrs[a] == "" {
						return usageError{fmt.Errorf("unknown service %q (one of %s)", a, strings.Join(devmesh.ServiceNames(), ", "))}
					}
					names = append(names, a)
				}
			}
			for name, addr := range addrs {
				if _, ok := endpoints.GRPC[name]; !ok && !contains(args, name) {
					return usageError{fmt.Errorf("--addr %s=%s: unknown service %q", name, addr, name)}
				}
				endpoints.GRPC[name] = addr
			}
			checker, err := meshhealth.NewChecker(cfg)
			if err != nil {
				return err
			}
			defer checker.Close()

			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			type row struct{ name, addr, status string }
			var (
				mu   sync.Mutex
				rows []row
				bad  []string
				wg   sync.WaitGroup
			)
			record := func(name, addr, st string, ok bool) {
				mu.Lock()
				defer mu.Unlock()
				rows = append(rows, row{name, addr, st})
				if !ok {
					bad = append(bad, name)
				}
			}
			for _, name := range names {
				addr := devmesh.DialAddr(endpoints.GRPC[name])
				wg.Go(func() {
					t := time.Now()
					st, err := checker.Check(ctx, meshhealth.Target{Name: name, Addr: addr})
					if err != nil {
						record(name, addr, err.Error(), false)
						return
					}
					record(name, addr, fmt.Sprintf("%s (%s)", st, time.Since(t).Round(time.Millisecond)), st.String() == "SERVING")
				})
			}
			if checkGateway {
				url := gateway
				if url == "auto" {
					url = "http://" + devmesh.DialAddr(endpoints.Gateway) + "/health"
				}
				wg.Go(func() {
					t := time.Now()
					if err := meshhealth.CheckHTTP(ctx, &http.Client{}, url); err != nil {
						record("gateway", url, err.Error(), false)
						return
					}
					record("gateway", url, fmt.Sprintf("OK (%s)", time.Since(t).Round(time.Millisecond)), true)
				})
			}
			wg.Wait()
			sort.Slice(rows, func(i, j int) bool { return order(rows[i].name) < order(rows[j].name) })
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "SERVICE\tADDRESS\tSTATUS\n")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", r.name, r.addr, r.status)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(bad) > 0 {
				sort.Strings(bad)
				return errors.New("not healthy: " + strings.Join(bad, ", "))
			}
			return nil
		},
	}
	op.register(cmd)
	cmd.Flags().StringToStringVar(&addrs, "addr", nil, "gRPC address of a service as `NAME=HOST:PORT` (repeatable; default: the local mesh's)")
	cmd.Flags().StringVar(&gateway, "gateway", "auto", "gateway health URL to GET (auto: http://<GATEWAY_ADDR>/health; empty: skip)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "deadline for all checks")
	return cmd
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// order sorts rows in mesh order.
func order(name string) int {
	for i, c := range devmesh.Components() {
		if c.Name == name {
			return i
		}
	}
	return len(devmesh.Components())
}
