// Package opconn dials HashInsight services the way an operator does: over
// mutual TLS, presenting an operator certificate and accepting only a server
// that carries the expected service's SPIFFE identity. hictl's health checks
// and its operator commands (user, apikey, audit) share it.
package opconn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/hashinsight/platform/pkg/grpcclient"
	"github.com/hashinsight/platform/pkg/mtls"
)

// Target is one gRPC service.
type Target struct {
	// Name is the service name; the server must present identity svc/<Name>.
	Name string
	// Addr is host:port.
	Addr string
}

// Pool holds the operator's certificate and one connection per target.
type Pool struct {
	src  *mtls.Source
	opts []grpcclient.Option

	mu    sync.Mutex
	conns map[Target]*grpc.ClientConn
}

// New loads the operator's key material from cfg. opts apply to every
// connection the pool dials (after the pool's own reconnect settings).
func New(cfg mtls.Config, opts ...grpcclient.Option) (*Pool, error) {
	src, err := mtls.NewSource(cfg, nil)
	if err != nil {
		return nil, fmt.Errorf("operator certificate: %w", err)
	}
	return &Pool{src: src, opts: opts, conns: map[Target]*grpc.ClientConn{}}, nil
}

// Identity is the identity the pool presents (operator/<name>).
func (p *Pool) Identity() mtls.Identity { return p.src.Identity() }

// Conn returns the (shared) connection to t, dialling it on first use. The
// connection retries quickly (at most every second) so a service that comes up
// is seen at once rather than after gRPC's default back-off.
func (p *Pool) Conn(ctx context.Context, t Target) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cc, ok := p.conns[t]; ok {
		return cc, nil
	}
	opts := append([]grpcclient.Option{
		grpcclient.WithDialOptions(grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 2 * time.Second,
		})),
	}, p.opts...)
	cc, err := grpcclient.Dial(ctx, t.Addr, p.src, mtls.Service(t.Name), opts...)
	if err != nil {
		return nil, err
	}
	p.conns[t] = cc
	return cc, nil
}

// Close closes every connection.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for t, cc := range p.conns {
		errs = append(errs, cc.Close())
		delete(p.conns, t)
	}
	return errors.Join(errs...)
}
