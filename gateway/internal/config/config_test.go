package config

import (
	"strings"
	"testing"
)

const testSecret = "0123456789abcdef0123456789abcdef-test"

func TestConfig(t *testing.T) {
	base := map[string]string{
		"DATABASE_URL":          "postgres://u:p@127.0.0.1:5432/db",
		"SESSION_SECRET":        testSecret,
		"ENCRYPTION_PASSWORD":   testSecret,
		"MTLS_CA_CERT_PATH":     "/x/ca.crt",
		"MTLS_SERVER_CERT_PATH": "/x/gw.crt",
		"MTLS_SERVER_KEY_PATH":  "/x/gw.key",
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
		check   func(t *testing.T, c Config)
	}{
		{"defaults", nil, "", func(t *testing.T, c Config) {
			if c.Addr != ":5000" || c.PrometheusPort != 9090 || c.MaxBodyBytes != 10<<20 {
				t.Errorf("defaults = %s %d %d", c.Addr, c.PrometheusPort, c.MaxBodyBytes)
			}
			if c.LoginsPerSecond != 5 || c.LoginBurst != 0 || c.LoginConcurrency != 4 {
				t.Errorf("login cap defaults = %d/s, burst %d, %d in flight", c.LoginsPerSecond, c.LoginBurst, c.LoginConcurrency)
			}
			want := map[string]string{"auth": "127.0.0.1:7001", "mining": "127.0.0.1:7002", "billing": "127.0.0.1:7003", "sla": "127.0.0.1:7004", "analytics": "127.0.0.1:7005"}
			for k, v := range want {
				if got := c.BackendAddrs()[k]; got != v {
					t.Errorf("%s = %s, want %s", k, got, v)
				}
			}
		}},
		{"listen-style backend address", map[string]string{"MINING_GRPC_ADDR": ":7102"}, "", func(t *testing.T, c Config) {
			if got := c.BackendAddrs()["mining"]; got != "127.0.0.1:7102" {
				t.Errorf("mining = %s", got)
			}
		}},
		{"bad backend address", map[string]string{"SLA_GRPC_ADDR": "nonsense"}, "SLA_GRPC_ADDR", nil},
		{"bad body limit", map[string]string{"MAX_BODY_BYTES": "0"}, "MAX_BODY_BYTES", nil},
		{"login cap", map[string]string{"GATEWAY_LOGINS_PER_SECOND": "30", "GATEWAY_LOGIN_BURST": "30", "GATEWAY_LOGIN_CONCURRENCY": "2"}, "", func(t *testing.T, c Config) {
			if c.LoginsPerSecond != 30 || c.LoginBurst != 30 || c.LoginConcurrency != 2 {
				t.Errorf("login cap = %d/s, burst %d, %d in flight", c.LoginsPerSecond, c.LoginBurst, c.LoginConcurrency)
			}
		}},
		{"rate above the default burst", map[string]string{"GATEWAY_LOGINS_PER_SECOND": "30"}, "", func(t *testing.T, c Config) {
			if c.LoginsPerSecond != 30 || c.LoginBurst != 0 {
				t.Errorf("login cap = %d/s, burst %d", c.LoginsPerSecond, c.LoginBurst)
			}
		}},
		{"burst below the rate", map[string]string{"GATEWAY_LOGINS_PER_SECOND": "30", "GATEWAY_LOGIN_BURST": "10"}, "GATEWAY_LOGIN_BURST", nil},
		{"negative burst", map[string]string{"GATEWAY_LOGIN_BURST": "-1"}, "GATEWAY_LOGIN_BURST", nil},
		{"non-numeric burst", map[string]string{"GATEWAY_LOGIN_BURST": "lots"}, "GATEWAY_LOGIN_BURST", nil},
		{"zero login concurrency", map[string]string{"GATEWAY_LOGIN_CONCURRENCY": "0"}, "GATEWAY_LOGIN_CONCURRENCY", nil},
		{"zero logins per second", map[string]string{"GATEWAY_LOGINS_PER_SECOND": "0"}, "GATEWAY_LOGINS_PER_SECOND", nil},
		{"negative login concurrency", map[string]string{"GATEWAY_LOGIN_CONCURRENCY": "-1"}, "GATEWAY_LOGIN_CONCURRENCY", nil},
		{"non-numeric logins per second", map[string]string{"GATEWAY_LOGINS_PER_SECOND": "many"}, "GATEWAY_LOGINS_PER_SECOND", nil},
		{"bad trusted proxy", map[string]string{"GATEWAY_TRUSTED_PROXIES": "10.0.0.0/8,bogus"}, "GATEWAY_TRUSTED_PROXIES", nil},
		{"missing database", map[string]string{"DATABASE_URL": ""}, "DATABASE_URL", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				if v == "" {
					delete(env, k)
					continue
				}
				env[k] = v
			}
			c, err := LoadFrom(env)
			if tt.wantVar != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantVar) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantVar)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}
