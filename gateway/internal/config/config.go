// Package config is the gateway's typed configuration: pkg/config's Common
// (DATABASE_URL, secrets, REDIS_URL, MTLS_*, LOG_*, OTEL_*, PROMETHEUS_PORT,
// …) plus the gateway's listen address, backend addresses and limits.
package config

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/hashinsight/platform/pkg/config"
)

// BackendNames returns the backend names in a fixed order. They are also
// the SPIFFE names of the backends' identities (svc/<name>) and the keys of
// /health/detailed's "services".
func BackendNames() []string {
	return []string{"auth", "mining", "billing", "sla", "analytics"}
}

// Config is the gateway's configuration, read once at start.
type Config struct {
	config.Common

	// Addr is the REST listen address.
	Addr string `env:"GATEWAY_ADDR" envDefault:":5000"`

	// Backend gRPC addresses. A bare ":port" means the loopback address.
	AuthAddr      string `env:"AUTH_GRPC_ADDR" envDefault:"127.0.0.1:7001"`
	MiningAddr    string `env:"MINING_GRPC_ADDR" envDefault:"127.0.0.1:7002"`
	BillingAddr   string `env:"BILLING_GRPC_ADDR" envDefault:"127.0.0.1:7003"`
	SLAAddr       string `env:"SLA_GRPC_ADDR" envDefault:"127.0.0.1:7004"`
	AnalyticsAddr string `env:"ANALYTICS_GRPC_ADDR" envDefault:"127.0.0.1:7005"`

	// MaxBodyBytes caps every request body (413 above it); 10 MiB.
	MaxBodyBytes int64 `env:"MAX_BODY_BYTES" envDefault:"10485760"`
	// Version is reported by /health and /health/detailed.
	Version string `env:"VERSION" envDefault:"dev"`
	// ShutdownTimeout bounds the drain of in-flight requests on SIGTERM.
	ShutdownTimeout time.Duration `env:"GATEWAY_SHUTDOWN_TIMEOUT" envDefault:"30s"`
	// HealthCheckTimeout bounds each check of /health/detailed.
	HealthCheckTimeout time.Duration `env:"GATEWAY_HEALTH_CHECK_TIMEOUT" envDefault:"1s"`
	// TrustedProxies are the addresses (IPs or CIDRs, comma separated) whose
	// X-Forwarded-For is believed when resolving the client IP. Empty: the
	// TCP peer is the client.
	TrustedProxies []string `env:"GATEWAY_TRUSTED_PROXIES" envSeparator:","`
	// LoginsPerSecond (sustained), LoginBurst (at once after a quiet spell) and
	// LoginConcurrency (in flight) cap the logins this replica passes to the auth service, each
	// of which costs auth a password hash; logins beyond them are answered 429 at once. They
	// bound what a flood of bad logins can take from every other request.
	// LoginBurst unset (or 0) is 20, or the rate when that is higher.
	LoginsPerSecond  int `env:"GATEWAY_LOGINS_PER_SECOND" envDefault:"5"`
	LoginBurst       int `env:"GATEWAY_LOGIN_BURST"`
	LoginConcurrency int `env:"GATEWAY_LOGIN_CONCURRENCY" envDefault:"4"`
}

// Load reads the process environment into a Config and validates it.
// Errors are *config.Error values naming the variable (exit code
// config.ExitCode).
func Load() (Config, error) {
	var c Config
	if err := config.Load(&c); err != nil {
		return Config{}, err
	}
	return c, nil
}

// LoadFrom is Load with an explicit environment, for tests.
func LoadFrom(environ map[string]string) (Config, error) {
	var c Config
	if err := config.LoadFrom(&c, environ); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks the gateway's own variables; config.Load calls it after
// Common's checks.
func (c *Config) Validate() error {
	var problems []*config.Error
	bad := func(v, reason string) { problems = append(problems, &config.Error{Var: v, Reason: reason}) }
	for _, a := range []struct{ name, v string }{
		{"AUTH_GRPC_ADDR", c.AuthAddr},
		{"MINING_GRPC_ADDR", c.MiningAddr},
		{"BILLING_GRPC_ADDR", c.BillingAddr},
		{"SLA_GRPC_ADDR", c.SLAAddr},
		{"ANALYTICS_GRPC_ADDR", c.AnalyticsAddr},
	} {
		if _, err := dialAddr(a.v); err != nil {
			bad(a.name, err.Error())
		}
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("GATEWAY_ADDR", "must be host:port or :port")
	}
	if c.MaxBodyBytes <= 0 {
		bad("MAX_BODY_BYTES", "must be a positive number of bytes")
	}
	if c.ShutdownTimeout <= 0 {
		bad("GATEWAY_SHUTDOWN_TIMEOUT", "must be positive")
	}
	if c.HealthCheckTimeout <= 0 {
		bad("GATEWAY_HEALTH_CHECK_TIMEOUT", "must be positive")
	}
	if c.LoginsPerSecond <= 0 {
		bad("GATEWAY_LOGINS_PER_SECOND", "must be a positive number of logins")
	}
	if c.LoginBurst < 0 || (c.LoginBurst > 0 && c.LoginBurst < c.LoginsPerSecond) {
		bad("GATEWAY_LOGIN_BURST", "must be at least GATEWAY_LOGINS_PER_SECOND (or unset)")
	}
	if c.LoginConcurrency <= 0 {
		bad("GATEWAY_LOGIN_CONCURRENCY", "must be a positive number of logins")
	}
	if c.PrometheusPort <= 0 || c.PrometheusPort > 65535 {
		bad("PROMETHEUS_PORT", "must be a TCP port")
	}
	if _, err := c.TrustedProxyPrefixes(); err != nil {
		bad("GATEWAY_TRUSTED_PROXIES", err.Error())
	}
	if len(problems) == 0 {
		return nil
	}
	first := problems[0]
	first.Others = problems[1:]
	return first
}

// dialAddr turns a listen-style address into a dial target: ":7001" becomes
// "127.0.0.1:7001"; anything else must be host:port.
func dialAddr(s string) (string, error) {
	host, port, err := net.SplitHostPort(strings.TrimSpace(s))
	if err != nil || port == "" {
		return "", fmt.Errorf("must be host:port, got %q", s)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// BackendAddrs maps each backend name to its dial address (":7001" becomes
// "127.0.0.1:7001").
func (c *Config) BackendAddrs() map[string]string {
	out := map[string]string{
		"auth":      c.AuthAddr,
		"mining":    c.MiningAddr,
		"billing":   c.BillingAddr,
		"sla":       c.SLAAddr,
		"analytics": c.AnalyticsAddr,
	}
	for k, v := range out {
		if a, err := dialAddr(v); err == nil {
			out[k] = a
		}
	}
	return out
}

// MetricsAddr is the Prometheus listener address.
func (c *Config) MetricsAddr() string {
	return fmt.Sprintf(":%d", c.PrometheusPort)
}

// TrustedProxyPrefixes parses TrustedProxies; a bare IP is a single-address
// prefix.
func (c *Config) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an IP nor a CIDR", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
