package config_test

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashinsight/platform/pkg/config"
)

func validEnv() map[string]string {
	return map[string]string{
		"DATABASE_URL":          "postgres://hi:pw@127.0.0.1:5432/hashinsight?sslmode=disable",
		"SESSION_SECRET":        strings.Repeat("s", 32),
		"ENCRYPTION_PASSWORD":   strings.Repeat("e", 40),
		"MTLS_CA_CERT_PATH":     "/certs/ca.crt",
		"MTLS_SERVER_CERT_PATH": "/certs/svc-mining.crt",
		"MTLS_SERVER_KEY_PATH":  "/certs/svc-mining.key",
	}
}

func with(kv ...string) map[string]string {
	e := validEnv()
	for i := 0; i+1 < len(kv); i += 2 {
		e[kv[i]] = kv[i+1]
	}
	return e
}

func without(keys ...string) map[string]string {
	e := validEnv()
	for _, k := range keys {
		delete(e, k)
	}
	return e
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		environ map[string]string
		vars    []string // every variable named, in order
		msg     string   // exact message when set
	}{
		{name: "missing DATABASE_URL", environ: without("DATABASE_URL"), vars: []string{"DATABASE_URL"},
			msg: "config: DATABASE_URL: required variable is not set"},
		{name: "empty DATABASE_URL", environ: with("DATABASE_URL", ""), vars: []string{"DATABASE_URL"}},
		{name: "short SESSION_SECRET", environ: with("SESSION_SECRET", strings.Repeat("x", 20)),
			vars: []string{"SESSION_SECRET"}, msg: "config: SESSION_SECRET: must be at least 32 characters"},
		{name: "missing ENCRYPTION_PASSWORD", environ: without("ENCRYPTION_PASSWORD"),
			vars: []string{"ENCRYPTION_PASSWORD"}, msg: "config: ENCRYPTION_PASSWORD: required variable is not set"},
		{name: "short ENCRYPTION_PASSWORD", environ: with("ENCRYPTION_PASSWORD", "abc"), vars: []string{"ENCRYPTION_PASSWORD"}},
		{name: "all required missing", environ: map[string]string{},
			vars: []string{"DATABASE_URL", "SESSION_SECRET", "ENCRYPTION_PASSWORD",
				"MTLS_CA_CERT_PATH", "MTLS_SERVER_CERT_PATH", "MTLS_SERVER_KEY_PATH"}},
		{name: "bad DSN scheme", environ: with("DATABASE_URL", "mysql://u:p@h/db"), vars: []string{"DATABASE_URL"}},
		{name: "bad DSN text", environ: with("DATABASE_URL", "not a dsn"), vars: []string{"DATABASE_URL"}},
		{name: "bad override DSN", environ: with("MINING_DATABASE_URL", "mysql://x"), vars: []string{"MINING_DATABASE_URL"}},
		{name: "bad LOG_FORMAT", environ: with("LOG_FORMAT", "xml"), vars: []string{"LOG_FORMAT"}},
		{name: "bad LOG_LEVEL", environ: with("LOG_LEVEL", "verbose"), vars: []string{"LOG_LEVEL"}},
		{name: "bad LOG_BUFFERED", environ: with("LOG_BUFFERED", "sometimes"), vars: []string{"LOG_BUFFERED"}},
		{name: "non-numeric PROMETHEUS_PORT", environ: with("PROMETHEUS_PORT", "abc"), vars: []string{"PROMETHEUS_PORT"},
			msg: "config: PROMETHEUS_PORT: must be an integer"},
		{name: "PROMETHEUS_PORT out of range", environ: with("PROMETHEUS_PORT", "70000"), vars: []string{"PROMETHEUS_PORT"}},
		{name: "bad bool", environ: with("ENABLE_BACKGROUND_SERVICES", "maybe"), vars: []string{"ENABLE_BACKGROUND_SERVICES"}},
		{name: "mTLS disabled", environ: with("MTLS_ENABLED", "false"), vars: []string{"MTLS_ENABLED"}},
		{name: "missing mTLS key", environ: without("MTLS_SERVER_KEY_PATH"), vars: []string{"MTLS_SERVER_KEY_PATH"}},
		{name: "bad REDIS_URL", environ: with("REDIS_URL", "http://cache:6379"), vars: []string{"REDIS_URL"}},
		{name: "bad OTLP endpoint", environ: with("OTEL_EXPORTER_OTLP_ENDPOINT", "collector"), vars: []string{"OTEL_EXPORTER_OTLP_ENDPOINT"}},
		{name: "SLO window zero", environ: with("SLO_MEASUREMENT_WINDOW", "0"), vars: []string{"SLO_MEASUREMENT_WINDOW"}},
		{name: "blockchain without key", environ: with("BLOCKCHAIN_ENABLED", "true"), vars: []string{"BLOCKCHAIN_PRIVATE_KEY"}},
		{name: "malformed private key", environ: with("BLOCKCHAIN_PRIVATE_KEY", "0x1234"), vars: []string{"BLOCKCHAIN_PRIVATE_KEY"}},
		{name: "bad RPC URL", environ: with("BASE_RPC_URL", "sepolia.base.org"), vars: []string{"BASE_RPC_URL"}},
		{name: "s3 without bucket", environ: with("BACKUP_STORAGE_TYPE", "s3"), vars: []string{"BACKUP_STORAGE_BUCKET"}},
		{name: "unknown storage", environ: with("BACKUP_STORAGE_TYPE", "ftp"), vars: []string{"BACKUP_STORAGE_TYPE"}},
		{name: "short backup key", environ: with("BACKUP_ENCRYPTION_KEY", "short"), vars: []string{"BACKUP_ENCRYPTION_KEY"}},
		{name: "two KMS providers", environ: with("AWS_KMS_KEY_ID", "arn:aws:kms:x", "AZURE_KEY_VAULT_URL", "https://v.vault.azure.net/"),
			vars: []string{"AZURE_KEY_VAULT_URL"}},
		{name: "partial GCP KMS", environ: with("GCP_KMS_PROJECT_ID", "p", "GCP_KMS_LOCATION", "l"),
			vars: []string{"GCP_KMS_KEYRING", "GCP_KMS_KEY_ID"}},
		{name: "vault without token", environ: with("VAULT_ADDR", "https://vault:8200", "VAULT_TRANSIT_KEY", "kek"),
			vars: []string{"VAULT_TOKEN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c config.Common
			err := config.LoadFrom(&c, tt.environ)
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("LoadFrom() error = %v, want *config.Error", err)
			}
			if got := ce.Vars(); !slices.Equal(got, tt.vars) {
				t.Errorf("variables named = %v, want %v (error: %v)", got, tt.vars, err)
			}
			if tt.msg != "" && err.Error() != tt.msg {
				t.Errorf("Error() = %q, want %q", err.Error(), tt.msg)
			}
			for _, v := range tt.vars {
				if !strings.Contains(err.Error(), v) {
					t.Errorf("message %q does not name %s", err.Error(), v)
				}
			}
		})
	}
}

func TestErrorsNeverEchoValues(t *testing.T) {
	secret := "tooshort-but-secret"
	env := with("SESSION_SECRET", secret, "DATABASE_URL", "mysql://admin:hunter2@db/x")
	err := config.LoadFrom(&config.Common{}, env)
	if err == nil {
		t.Fatal("LoadFrom() succeeded, want error")
	}
	for _, leaked := range []string{secret, "hunter2"} {
		if strings.Contains(err.Error(), leaked) {
			t.Errorf("error %q contains a secret value", err)
		}
	}
}

func TestLoadDefaults(t *testing.T) {
	var c config.Common
	if err := config.LoadFrom(&c, validEnv()); err != nil {
		t.Fatalf("LoadFrom() = %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"RedisURL", c.RedisURL, config.DefaultRedisURL},
		{"InMemoryCache", c.InMemoryCache(), false},
		{"Log.Format", c.Log.Format, "json"},
		{"Log.Level", c.Log.Level, "info"},
		{"Log.Buffered", c.Log.Buffered, true},
		{"PrometheusPort", c.PrometheusPort, 9090},
		{"SLOWindow", c.SLOWindow(), 30 * time.Minute},
		{"EnableBackgroundServices", c.EnableBackgroundServices, false},
		{"MTLS.Enabled", c.MTLS.Enabled, true},
		{"MTLS.VerifyClient", c.MTLS.VerifyClient, true},
		{"RateLimit.Enabled", c.RateLimit.Enabled, true},
		{"RateLimit.RequestsPerMinute", c.RateLimit.RequestsPerMinute, 60},
		{"AuditLogPath", c.AuditLogPath, "logs/audit.jsonl"},
		{"Blockchain.Enabled", c.Blockchain.Enabled, false},
		{"Blockchain.Network", c.Blockchain.Network, "base-sepolia"},
		{"Blockchain.RPCURL", c.Blockchain.RPCURL, "https://sepolia.base.org"},
		{"Backup.Dir", c.Backup.Dir, "/tmp/backups"},
		{"Backup.RetentionDays", c.Backup.RetentionDays, 30},
		{"Backup.StorageType", c.Backup.StorageType, "local"},
		{"KMS.Provider", c.KMS.Provider(), ""},
		{"DatabaseURLFor(mining)", c.DatabaseURLFor("mining"), validEnv()["DATABASE_URL"]},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestLoadValues(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, c *config.Common)
	}{
		{"redis empty means memory", with("REDIS_URL", ""), func(t *testing.T, c *config.Common) {
			if !c.InMemoryCache() || c.RedisURL != "" {
				t.Errorf("RedisURL = %q, want in-memory", c.RedisURL)
			}
		}},
		{"redis memory keyword", with("REDIS_URL", "memory"), func(t *testing.T, c *config.Common) {
			if !c.InMemoryCache() {
				t.Errorf("RedisURL = %q, want in-memory", c.RedisURL)
			}
		}},
		{"redis explicit", with("REDIS_URL", "rediss://:pw@cache:6380/2"), func(t *testing.T, c *config.Common) {
			if c.RedisURL != "rediss://:pw@cache:6380/2" {
				t.Errorf("RedisURL = %q", c.RedisURL)
			}
		}},
		{"background services 1", with("ENABLE_BACKGROUND_SERVICES", "1"), func(t *testing.T, c *config.Common) {
			if !c.EnableBackgroundServices {
				t.Error("EnableBackgroundServices = false, want true")
			}
		}},
		{"background services 0", with("ENABLE_BACKGROUND_SERVICES", "0"), func(t *testing.T, c *config.Common) {
			if c.EnableBackgroundServices {
				t.Error("EnableBackgroundServices = true, want false")
			}
		}},
		{"log level upper case", with("LOG_LEVEL", "WARNING", "LOG_FORMAT", "TEXT"), func(t *testing.T, c *config.Common) {
			if c.Log.Level != "warn" || c.Log.Format != "text" {
				t.Errorf("Log = %+v, want warn/text", c.Log)
			}
		}},
		{"unbuffered logs", with("LOG_BUFFERED", "false"), func(t *testing.T, c *config.Common) {
			if c.Log.Buffered {
				t.Error("Log.Buffered = true, want false")
			}
		}},
		{"keyword DSN", with("DATABASE_URL", "host=/tmp dbname=hashinsight user=hi password='a b'"), func(t *testing.T, c *config.Common) {
			if !strings.HasPrefix(c.DatabaseURL, "host=") {
				t.Errorf("DatabaseURL = %q", c.DatabaseURL)
			}
		}},
		{"per-service override", with("MINING_DATABASE_URL", "postgres://m@other:5432/mining", "TEST_DATABASE_URL", "postgres://t@x/y"),
			func(t *testing.T, c *config.Common) {
				if got := c.DatabaseURLFor("mining"); got != "postgres://m@other:5432/mining" {
					t.Errorf("DatabaseURLFor(mining) = %q", got)
				}
				if got := c.DatabaseURLFor("Billing"); got != c.DatabaseURL {
					t.Errorf("DatabaseURLFor(billing) = %q, want shared", got)
				}
				if got := c.DatabaseURLFor("test"); got != c.DatabaseURL {
					t.Errorf("TEST_DATABASE_URL taken as an override: %q", got)
				}
			}},
		{"DN patterns", with("MTLS_ALLOWED_DN_PATTERNS", "CN=*.hashinsight.net,O=HashInsight,C=US; CN=operator-*"),
			func(t *testing.T, c *config.Common) {
				want := []string{"CN=*.hashinsight.net,O=HashInsight,C=US", "CN=operator-*"}
				if !slices.Equal(c.MTLS.AllowedDNPatterns, want) {
					t.Errorf("AllowedDNPatterns = %q, want %q", c.MTLS.AllowedDNPatterns, want)
				}
			}},
		{"blockchain", with("BLOCKCHAIN_ENABLED", "true", "BLOCKCHAIN_PRIVATE_KEY", "0x"+strings.Repeat("ab", 32)),
			func(t *testing.T, c *config.Common) {
				if !c.Blockchain.Enabled {
					t.Error("Blockchain.Enabled = false")
				}
			}},
		{"aws kms", with("AWS_KMS_KEY_ID", "arn:aws:kms:us-east-1:1:key/x", "AWS_KMS_REGION", "us-east-1"),
			func(t *testing.T, c *config.Common) {
				if c.KMS.Provider() != "aws" {
					t.Errorf("Provider() = %q, want aws", c.KMS.Provider())
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c config.Common
			if err := config.LoadFrom(&c, tt.env); err != nil {
				t.Fatalf("LoadFrom() = %v", err)
			}
			tt.check(t, &c)
		})
	}
}

type serviceConfig struct {
	config.Common
	GRPCAddr string `env:"MINING_GRPC_ADDR" envDefault:":7002"`
	Workers  int    `env:"MINING_WORKERS" envDefault:"4"`
}

func (s *serviceConfig) Validate() error {
	if s.Workers < 1 {
		return &config.Error{Var: "MINING_WORKERS", Reason: "must be at least 1"}
	}
	return nil
}

func TestLoadServiceStruct(t *testing.T) {
	var s serviceConfig
	if err := config.LoadFrom(&s, validEnv()); err != nil {
		t.Fatalf("LoadFrom() = %v", err)
	}
	if s.GRPCAddr != ":7002" || s.RedisURL != config.DefaultRedisURL {
		t.Errorf("got GRPCAddr=%q RedisURL=%q", s.GRPCAddr, s.RedisURL)
	}

	env := maps.Clone(validEnv())
	env["MINING_WORKERS"] = "0"
	delete(env, "SESSION_SECRET")
	err := config.LoadFrom(&s, env)
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("LoadFrom() = %v, want *config.Error", err)
	}
	if got, want := ce.Vars(), []string{"SESSION_SECRET", "MINING_WORKERS"}; !slices.Equal(got, want) {
		t.Errorf("Vars() = %v, want %v", got, want)
	}
}

func TestLoadRejectsNonPointer(t *testing.T) {
	if err := config.LoadFrom(config.Common{}, validEnv()); err == nil {
		t.Error("LoadFrom(non-pointer) = nil, want error")
	}
}

func TestExit(t *testing.T) {
	var buf bytes.Buffer
	err := config.LoadFrom(&config.Common{}, without("DATABASE_URL"))
	if code := config.Exit(err, &buf); code != config.ExitCode || config.ExitCode != 2 {
		t.Errorf("Exit() = %d, want 2", code)
	}
	if !strings.Contains(buf.String(), "DATABASE_URL") {
		t.Errorf("Exit printed %q, want the variable named", buf.String())
	}
	if code := config.Exit(nil, &buf); code != 0 {
		t.Errorf("Exit(nil) = %d, want 0", code)
	}
	if code := config.Exit(errors.New("boom"), &buf); code != 1 {
		t.Errorf("Exit(other) = %d, want 1", code)
	}
}

func TestRead(t *testing.T) {
	type own struct {
		Port int `env:"OWN_PORT" envDefault:"7"`
	}
	got, err := config.Read[own](map[string]string{"OWN_PORT": "9"})
	if err != nil || got.Port != 9 {
		t.Fatalf("Read = %+v, %v", got, err)
	}
	if _, err := config.Read[own](map[string]string{"OWN_PORT": "x"}); err == nil {
		t.Fatal("Read accepted OWN_PORT=x")
	}
}
