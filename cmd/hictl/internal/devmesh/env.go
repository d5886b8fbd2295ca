package devmesh

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Component is one process of the local mesh.
type Component struct {
	// Name is the process name and the identity name (svc/<Name>).
	Name string
	// Package is the main package to build, relative to the repository root.
	Package string
	// Service is true for the five gRPC services, false for the gateway.
	Service bool
	// GRPCPort is the default gRPC port of a service.
	GRPCPort int
	// HTTPPort is the default metrics and health HTTP port of a service.
	HTTPPort int
}

// Default listen addresses of the gateway.
const (
	DefaultGatewayAddr    = ":5000"
	DefaultPrometheusPort = "9090"
	// DefaultRedisURL is where `dev up` looks for Redis when REDIS_URL is unset.
	DefaultRedisURL = "redis://127.0.0.1:6379"
	// MemoryRedisURL tells the services to use their in-memory cache only.
	MemoryRedisURL = "memory"
	// DatabaseName is the database the private cluster creates.
	DatabaseName = "hashinsight"
)

// Components returns the mesh in start order: the five services, then the gateway.
func Components() []Component {
	return []Component{
		{Name: "auth", Package: "./services/auth", Service: true, GRPCPort: 7001, HTTPPort: 9101},
		{Name: "mining", Package: "./services/mining", Service: true, GRPCPort: 7002, HTTPPort: 9102},
		{Name: "billing", Package: "./services/billing", Service: true, GRPCPort: 7003, HTTPPort: 9103},
		{Name: "sla", Package: "./services/sla", Service: true, GRPCPort: 7004, HTTPPort: 9104},
		{Name: "analytics", Package: "./services/analytics", Service: true, GRPCPort: 7005, HTTPPort: 9105},
		{Name: "gateway", Package: "./gateway"},
	}
}

// ServiceNames returns the names of the five gRPC services.
func ServiceNames() []string {
	var out []string
	for _, c := range Components() {
		if c.Service {
			out = append(out, c.Name)
		}
	}
	return out
}

// RoleName is the PostgreSQL login role of a service.
func RoleName(svc string) string { return "hashinsight_" + svc }

// envPrefix is the upper-case prefix of a service's variables (MINING_...).
func envPrefix(svc string) string { return strings.ToUpper(svc) }

// GRPCAddrVar names the variable holding a service's gRPC address (MINING_GRPC_ADDR).
func GRPCAddrVar(svc string) string { return envPrefix(svc) + "_GRPC_ADDR" }

// HTTPAddrVar names the variable holding a service's metrics/health address (MINING_HTTP_ADDR).
func HTTPAddrVar(svc string) string { return envPrefix(svc) + "_HTTP_ADDR" }

// DatabaseURLVar names the variable holding a service's own DSN (MINING_DATABASE_URL).
func DatabaseURLVar(svc string) string { return envPrefix(svc) + "_DATABASE_URL" }

// Endpoints are the addresses of the mesh after the user's overrides.
type Endpoints struct {
	// GRPC maps a service to its gRPC address (listen and dial), e.g. 127.0.0.1:7002.
	GRPC map[string]string
	// HTTP maps a service to its metrics and health address, e.g. 127.0.0.1:9102.
	HTTP map[string]string
	// Gateway is the gateway's REST listen address (GATEWAY_ADDR).
	Gateway string
	// PrometheusPort is the gateway's metrics port (PROMETHEUS_PORT).
	PrometheusPort string
}

// ResolveEndpoints returns the default addresses, each overridable from the
// environment: <SVC>_GRPC_ADDR, <SVC>_HTTP_ADDR, GATEWAY_ADDR, PROMETHEUS_PORT.
func ResolveEndpoints(lookupEnv func(string) (string, bool)) Endpoints {
	get := func(k, def string) string {
		if v, ok := lookupEnv(k); ok && v != "" {
			return v
		}
		return def
	}
	e := Endpoints{GRPC: map[string]string{}, HTTP: map[string]string{}}
	for _, c := range Components() {
		if !c.Service {
			continue
		}
		e.GRPC[c.Name] = get(GRPCAddrVar(c.Name), "127.0.0.1:"+strconv.Itoa(c.GRPCPort))
		e.HTTP[c.Name] = get(HTTPAddrVar(c.Name), "127.0.0.1:"+strconv.Itoa(c.HTTPPort))
	}
	e.Gateway = get("GATEWAY_ADDR", DefaultGatewayAddr)
	e.PrometheusPort = get("PROMETHEUS_PORT", DefaultPrometheusPort)
	return e
}

// DialAddr turns a listen address into one to connect to: an empty or
// wildcard host becomes 127.0.0.1.
func DialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// Listener is an address the mesh listens on.
type Listener struct {
	What string // "mining gRPC"
	Addr string
}

// Listeners lists every address the services and the gateway listen on.
func (e Endpoints) Listeners() []Listener {
	var out []Listener
	for _, svc := range ServiceNames() {
		out = append(out, Listener{svc + " gRPC", e.GRPC[svc]}, Listener{svc + " metrics/health", e.HTTP[svc]})
	}
	return append(out, Listener{"gateway REST", e.Gateway}, Listener{"gateway metrics", ":" + e.PrometheusPort})
}

// CheckPortsFree fails, naming them, when addresses the mesh needs are
// taken, typically by a mesh that is still running.
func CheckPortsFree(ls []Listener) error {
	var taken []string
	for _, l := range ls {
		lis, err := net.Listen("tcp", l.Addr)
		if err != nil {
			taken = append(taken, l.What+" "+l.Addr)
			continue
		}
		_ = lis.Close()
	}
	if len(taken) > 0 {
		return fmt.Errorf("address already in use: %s (is another mesh running? `hictl dev down` stops one started from this checkout; <SVC>_GRPC_ADDR, <SVC>_HTTP_ADDR, GATEWAY_ADDR and PROMETHEUS_PORT move them)",
			strings.Join(taken, ", "))
	}
	return nil
}

// MeshEnv is what every child's environment is built from.
type MeshEnv struct {
	// AdminDSN is the shared DATABASE_URL (superuser of the private cluster, or the user's).
	AdminDSN string `secret:"true"`
	// RoleDSNs maps a service to the DSN of its own role (<SVC>_DATABASE_URL).
	RoleDSNs map[string]string `secret:"true"`
	Secrets  Secrets
	// RedisURL is the Redis to use, or MemoryRedisURL.
	RedisURL string
	// CACert is the dev CA certificate (MTLS_CA_CERT_PATH).
	CACert string
	// Certs maps a component to its certificate and key paths.
	Certs     map[string]CertPair
	Endpoints Endpoints
	// AuditLog is AUDIT_LOG_PATH.
	AuditLog string
}

// CertPair is a certificate and its key on disk.
type CertPair struct{ Cert, Key string }

// ChildEnv returns the environment of component c. It is, in order of
// precedence: the per-process variables that cannot be shared (GRPC_ADDR,
// HTTP_ADDR, MTLS_SERVER_CERT_PATH, MTLS_SERVER_KEY_PATH — set them per
// service with <SVC>_GRPC_ADDR and <SVC>_HTTP_ADDR instead); then whatever is
// already in base (the user's environment wins over our defaults); then the
// mesh defaults.
func (m MeshEnv) ChildEnv(c Component, base []string) []string {
	defaults := map[string]string{
		"DATABASE_URL":        m.AdminDSN,
		"SESSION_SECRET":      m.Secrets.SessionSecret,
		"ENCRYPTION_PASSWORD": m.Secrets.EncryptionPassword,
		"LOG_FORMAT":          "text",
		"MTLS_CA_CERT_PATH":   m.CACert,
		"MTLS_VERIFY_CLIENT":  "true",
		"AUDIT_LOG_PATH":      m.AuditLog,
		"GATEWAY_ADDR":        m.Endpoints.Gateway,
		"PROMETHEUS_PORT":     m.Endpoints.PrometheusPort,
	}
	// Every service's addresses, under their own names: the gateway and the
	// services dial each other with <SVC>_GRPC_ADDR.
	for svc, addr := range m.Endpoints.GRPC {
		defaults[GRPCAddrVar(svc)] = addr
	}
	for svc, addr := range m.Endpoints.HTTP {
		defaults[HTTPAddrVar(svc)] = addr
	}
	if dsn, ok := m.RoleDSNs[c.Name]; ok {
		// A service never needs the administrator's DSN: least privilege, its own role only.
		defaults["DATABASE_URL"] = dsn
		defaults[DatabaseURLVar(c.Name)] = dsn
	}
	forced := map[string]string{
		// The probe decided: an unreachable REDIS_URL becomes the in-memory cache.
		"REDIS_URL": m.RedisURL,
	}
	if p, ok := m.Certs[c.Name]; ok {
		forced["MTLS_SERVER_CERT_PATH"] = p.Cert
		forced["MTLS_SERVER_KEY_PATH"] = p.Key
	}
	if c.Service {
		forced["GRPC_ADDR"] = m.Endpoints.GRPC[c.Name]
		forced["HTTP_ADDR"] = m.Endpoints.HTTP[c.Name]
	}
	return ComposeEnv(base, defaults, forced)
}

// ComposeEnv merges environments: forced wins over base, base wins over
// defaults. Empty values in base count as unset. The result is sorted.
func ComposeEnv(base []string, defaults, forced map[string]string) []string {
	out := map[string]string{}
	for k, v := range defaults {
		out[k] = v
	}
	for _, kv := range base {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		if _, isDefault := defaults[k]; isDefault && v == "" {
			continue
		}
		out[k] = v
	}
	for k, v := range forced {
		out[k] = v
	}
	env := make([]string, 0, len(out))
	for k, v := range out {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// RedactDSN hides the password of a DSN for printing.
func RedactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "(unprintable DSN)"
	}
	return u.Redacted()
}

// lookupIn returns a lookup function over an environment list (KEY=VALUE).
func lookupIn(env []string) func(string) (string, bool) {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}
