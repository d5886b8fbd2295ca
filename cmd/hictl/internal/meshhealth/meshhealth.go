// Package meshhealth checks the health of the mesh the way an operator
// would: each service's grpc.health.v1 over mutual TLS with an operator
// certificate (verifying the service's SPIFFE identity), and the gateway's
// plain HTTP /health.
package meshhealth

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/hashinsight/platform/cmd/hictl/internal/opconn"
	"github.com/hashinsight/platform/pkg/mtls"
)

// PollInterval is how often WaitServing asks again.
const PollInterval = 100 * time.Millisecond

// Target is one gRPC service to check.
type Target = opconn.Target

// Checker holds the operator's certificate and one connection per target.
type Checker struct {
	pool *opconn.Pool
}

// NewChecker loads the operator's key material.
func NewChecker(cfg mtls.Config) (*Checker, error) {
	pool, err := opconn.New(cfg)
	if err != nil {
		return nil, err
	}
	return &Checker{pool: pool}, nil
}

// Identity is the operator identity the checker presents.
func (c *Checker) Identity() mtls.Identity { return c.pool.Identity() }

// Conn returns the (shared) connection to t, dialling it on first use (see
// opconn.Pool.Conn).
func (c *Checker) Conn(ctx context.Context, t Target) (*grpc.ClientConn, error) {
	return c.pool.Conn(ctx, t)
}

// Close closes every connection.
func (c *Checker) Close() error { return c.pool.Close() }

// Check asks t for the overall health of the server (service "").
func (c *Checker) Check(ctx context.Context, t Target) (healthpb.HealthCheckResponse_ServingStatus, error) {
	cc, err := c.Conn(ctx, t)
	if err != nil {
		return healthpb.HealthCheckResponse_UNKNOWN, err
	}
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return healthpb.HealthCheckResponse_UNKNOWN, fmt.Errorf("%s health at %s: %w", t.Name, t.Addr, err)
	}
	return resp.GetStatus(), nil
}

// WaitServing polls t until it reports SERVING or ctx ends. It returns the
// last error (or status) seen when ctx ends first.
func (c *Checker) WaitServing(ctx context.Context, t Target) error {
	return poll(ctx, func(ctx context.Context) error {
		st, err := c.Check(ctx, t)
		if err != nil {
			return err
		}
		if st != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("%s at %s is %s", t.Name, t.Addr, st)
		}
		return nil
	})
}

// CheckHTTP sends GET url and wants 200.
func CheckHTTP(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// WaitHTTP polls url until it answers 200 or ctx ends.
func WaitHTTP(ctx context.Context, client *http.Client, url string) error {
	return poll(ctx, func(ctx context.Context) error { return CheckHTTP(ctx, client, url) })
}

// poll calls f every PollInterval (each attempt bounded by a second) until it
// succeeds or ctx ends; then it returns the last failure.
func poll(ctx context.Context, f func(context.Context) error) error {
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		attempt, cancel := context.WithTimeout(ctx, time.Second)
		err := f(attempt)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}
