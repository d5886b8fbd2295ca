package devmesh

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func TestComposeEnv(t *testing.T) {
	tests := []struct {
		name     string
		base     []string
		defaults map[string]string
		forced   map[string]string
		want     map[string]string
	}{
		{
			name:     "defaults fill what the environment lacks",
			base:     []string{"PATH=/bin"},
			defaults: map[string]string{"LOG_FORMAT": "text"},
			want:     map[string]string{"PATH": "/bin", "LOG_FORMAT": "text"},
		},
		{
			name:     "the user's environment wins over defaults",
			base:     []string{"LOG_FORMAT=json", "SESSION_SECRET=mine"},
			defaults: map[string]string{"LOG_FORMAT": "text", "SESSION_SECRET": "generated"},
			want:     map[string]string{"LOG_FORMAT": "json", "SESSION_SECRET": "mine"},
		},
		{
			name:     "an empty variable counts as unset",
			base:     []string{"LOG_FORMAT="},
			defaults: map[string]string{"LOG_FORMAT": "text"},
			want:     map[string]string{"LOG_FORMAT": "text"},
		},
		{
			name:   "an empty variable without default is kept",
			base:   []string{"OTEL_EXPORTER_OTLP_ENDPOINT="},
			forced: map[string]string{},
			want:   map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ""},
		},
		{
			name:     "forced values win over the environment",
			base:     []string{"GRPC_ADDR=:1234"},
			defaults: map[string]string{"GRPC_ADDR": "x"},
			forced:   map[string]string{"GRPC_ADDR": "127.0.0.1:7002"},
			want:     map[string]string{"GRPC_ADDR": "127.0.0.1:7002"},
		},
		{
			name: "malformed entries are dropped, later duplicates win",
			base: []string{"=x", "NOEQUALS", "A=1", "A=2"},
			want: map[string]string{"A": "2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ComposeEnv(tt.base, tt.defaults, tt.forced)
			if !slices.IsSorted(got) {
				t.Errorf("not sorted: %v", got)
			}
			m := envMap(got)
			if len(m) != len(tt.want) {
				t.Errorf("got %v, want %v", m, tt.want)
			}
			for k, v := range tt.want {
				if m[k] != v {
					t.Errorf("%s = %q, want %q", k, m[k], v)
				}
			}
		})
	}
}

func testMesh(lookup func(string) (string, bool)) MeshEnv {
	m := MeshEnv{
		AdminDSN: "postgres://postgres@127.0.0.1:5433/hashinsight?sslmode=disable",
		RoleDSNs: map[string]string{},
		Secrets:  Secrets{SessionSecret: "S", EncryptionPassword: "E"},
		RedisURL: MemoryRedisURL,
		CACert:   "/d/certs/ca.crt",
		Certs:    map[string]CertPair{},
		AuditLog: "/d/logs/audit.jsonl",
	}
	for _, c := range Components() {
		m.Certs[c.Name] = CertPair{Cert: "/d/certs/svc-" + c.Name + ".crt", Key: "/d/certs/svc-" + c.Name + ".key"}
		if c.Service {
			m.RoleDSNs[c.Name] = "postgres://hashinsight_" + c.Name + ":pw@127.0.0.1:5433/hashinsight"
		}
	}
	m.Endpoints = ResolveEndpoints(lookup)
	return m
}

func component(name string) Component {
	for _, c := range Components() {
		if c.Name == name {
			return c
		}
	}
	panic("no component " + name)
}

func TestChildEnv(t *testing.T) {
	tests := []struct {
		name   string
		comp   string
		base   []string
		want   map[string]string
		absent []string
	}{
		{
			name: "service defaults",
			comp: "mining",
			base: []string{"PATH=/usr/bin"},
			want: map[string]string{
				"PATH": "/usr/bin",
				// A service gets its own role's DSN, never the administrator's.
				"DATABASE_URL":          "postgres://hashinsight_mining:pw@127.0.0.1:5433/hashinsight",
				"MINING_DATABASE_URL":   "postgres://hashinsight_mining:pw@127.0.0.1:5433/hashinsight",
				"SESSION_SECRET":        "S",
				"ENCRYPTION_PASSWORD":   "E",
				"REDIS_URL":             "memory",
				"LOG_FORMAT":            "text",
				"MTLS_CA_CERT_PATH":     "/d/certs/ca.crt",
				"MTLS_SERVER_CERT_PATH": "/d/certs/svc-mining.crt",
				"MTLS_SERVER_KEY_PATH":  "/d/certs/svc-mining.key",
				"GRPC_ADDR":             "127.0.0.1:7002",
				"HTTP_ADDR":             "127.0.0.1:9102",
				"MINING_GRPC_ADDR":      "127.0.0.1:7002",
				"AUTH_GRPC_ADDR":        "127.0.0.1:7001",
				"ANALYTICS_GRPC_ADDR":   "127.0.0.1:7005",
				"MINING_HTTP_ADDR":      "127.0.0.1:9102",
				"AUDIT_LOG_PATH":        "/d/logs/audit.jsonl",
				"GATEWAY_ADDR":          ":5000",
				"PROMETHEUS_PORT":       "9090",
			},
			// Another service's role DSN (and so its password) never leaks.
			absent: []string{"AUTH_DATABASE_URL", "BILLING_DATABASE_URL"},
		},
		{
			name: "user overrides win, per-process variables do not leak",
			comp: "billing",
			base: []string{"LOG_FORMAT=json", "LOG_LEVEL=debug", "SESSION_SECRET=from-user", "GRPC_ADDR=:1", "REDIS_URL=redis://elsewhere:6379", "BILLING_DATABASE_URL=postgres://mine"},
			want: map[string]string{
				"LOG_FORMAT":           "json",
				"LOG_LEVEL":            "debug",
				"SESSION_SECRET":       "from-user",
				"GRPC_ADDR":            "127.0.0.1:7003",
				"REDIS_URL":            "memory", // the probe's verdict
				"BILLING_DATABASE_URL": "postgres://mine",
			},
		},
		{
			name: "per-service addresses come from <SVC>_GRPC_ADDR and <SVC>_HTTP_ADDR",
			comp: "sla",
			base: []string{"SLA_GRPC_ADDR=127.0.0.1:17004", "SLA_HTTP_ADDR=127.0.0.1:19104"},
			want: map[string]string{"GRPC_ADDR": "127.0.0.1:17004", "HTTP_ADDR": "127.0.0.1:19104", "SLA_GRPC_ADDR": "127.0.0.1:17004"},
		},
		{
			name: "gateway dials every service and has no service listen addresses",
			comp: "gateway",
			want: map[string]string{
				"AUTH_GRPC_ADDR":        "127.0.0.1:7001",
				"MINING_GRPC_ADDR":      "127.0.0.1:7002",
				"BILLING_GRPC_ADDR":     "127.0.0.1:7003",
				"SLA_GRPC_ADDR":         "127.0.0.1:7004",
				"ANALYTICS_GRPC_ADDR":   "127.0.0.1:7005",
				"GATEWAY_ADDR":          ":5000",
				"PROMETHEUS_PORT":       "9090",
				"MTLS_SERVER_CERT_PATH": "/d/certs/svc-gateway.crt",
				"DATABASE_URL":          "postgres://postgres@127.0.0.1:5433/hashinsight?sslmode=disable",
			},
			absent: []string{"GRPC_ADDR", "HTTP_ADDR", "MINING_DATABASE_URL"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testMesh(lookupIn(tt.base))
			got := envMap(m.ChildEnv(component(tt.comp), tt.base))
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			for _, k := range tt.absent {
				if _, ok := got[k]; ok {
					t.Errorf("%s is set, want absent", k)
				}
			}
		})
	}
}

func TestResolveEndpointsAndDialAddr(t *testing.T) {
	e := ResolveEndpoints(lookupIn([]string{"GATEWAY_ADDR=0.0.0.0:8080", "PROMETHEUS_PORT=9999", "AUTH_GRPC_ADDR=10.0.0.1:7001"}))
	if e.Gateway != "0.0.0.0:8080" || e.PrometheusPort != "9999" || e.GRPC["auth"] != "10.0.0.1:7001" || e.GRPC["mining"] != "127.0.0.1:7002" || e.HTTP["analytics"] != "127.0.0.1:9105" {
		t.Errorf("endpoints = %+v", e)
	}
	for in, want := range map[string]string{
		":5000":          "127.0.0.1:5000",
		"0.0.0.0:5000":   "127.0.0.1:5000",
		"[::]:5000":      "127.0.0.1:5000",
		"10.1.2.3:7002":  "10.1.2.3:7002",
		"localhost:7002": "localhost:7002",
		"garbage":        "garbage",
	} {
		if got := DialAddr(in); got != want {
			t.Errorf("DialAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://hashinsight_mining:s3cret@127.0.0.1:5433/hashinsight": "postgres://hashinsight_mining:xxxxx@127.0.0.1:5433/hashinsight",
		"postgres://postgres@127.0.0.1:5433/hashinsight?sslmode=disable":  "postgres://postgres@127.0.0.1:5433/hashinsight?sslmode=disable",
		"host=x password=secret": "(unprintable DSN)",
	} {
		got := RedactDSN(in)
		if got != want {
			t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(got, "s3cret") || strings.Contains(got, "secret") {
			t.Errorf("RedactDSN leaked the password: %q", got)
		}
	}
}

func TestBuildArgs(t *testing.T) {
	got := BuildArgs("/d/bin", Components())
	want := []string{"build", "-o", "/d/bin/", "./services/auth", "./services/mining", "./services/billing", "./services/sla", "./services/analytics", "./gateway"}
	if !slices.Equal(got, want) {
		t.Errorf("BuildArgs = %v, want %v", got, want)
	}
}

func TestCheckPortsFree(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free := "127.0.0.1:" + strconv.Itoa(freePort(t))
	if err := CheckPortsFree([]Listener{{"mining gRPC", free}}); err != nil {
		t.Errorf("free port reported taken: %v", err)
	}
	err = CheckPortsFree([]Listener{{"mining gRPC", free}, {"auth gRPC", busy.Addr().String()}})
	if err == nil || !strings.Contains(err.Error(), "auth gRPC "+busy.Addr().String()) || strings.Contains(err.Error(), "mining") {
		t.Errorf("err = %v, want only auth's address named", err)
	}
	if n := len(ResolveEndpoints(lookupIn(nil)).Listeners()); n != 12 {
		t.Errorf("%d listeners, want 12 (5 × gRPC + metrics, gateway REST + metrics)", n)
	}
}
