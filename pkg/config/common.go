package config

import (
	"strings"
	"time"
)

// Common holds the variables every HashInsight process shares (operations manual, chapter 2, plus the
// mesh's own MTLS_*, LOG_*, OTEL_* and REDIS_URL). A service embeds it in its own config struct:
//
//	type Config struct {
//		config.Common
//		GRPCAddr string `env:"MINING_GRPC_ADDR" envDefault:":7002"`
//	}
//
// Fields tagged `secret:"true"` are never logged in clear; pkg/log's Masked renders them "****".
type Common struct {
	// DatabaseURL is the shared Postgres DSN (postgres:// URL or keyword/value form). A service may
	// use its own cluster through <SVC>_DATABASE_URL; see DatabaseURLFor.
	DatabaseURL string `env:"DATABASE_URL,required,notEmpty"`
	// SessionSecret keys the MACs of API keys and sessions; at least 32 characters.
	SessionSecret string `env:"SESSION_SECRET,required,notEmpty" secret:"true"`
	// EncryptionPassword derives the key-encryption key for sensitive columns; at least 32 characters.
	EncryptionPassword string `env:"ENCRYPTION_PASSWORD,required,notEmpty" secret:"true"`

	// RedisURL is the L2 cache and rate-limit store: redis://, rediss:// or unix:// (see
	// pkg/cache.NewRedis for Sentinel and Cluster forms). Unset means redis://127.0.0.1:6379; set to
	// the empty string or "memory" it is "" and the process uses its in-memory cache only.
	RedisURL string `env:"REDIS_URL"`

	Log     Log
	Tracing Tracing
	MTLS    MTLS

	// PrometheusPort is the port of the Prometheus exporter (the gateway's /metrics listener).
	PrometheusPort int `env:"PROMETHEUS_PORT" envDefault:"9090"`
	// SLOMeasurementWindowMinutes is the SLO measurement window in minutes; see SLOWindow.
	SLOMeasurementWindowMinutes int `env:"SLO_MEASUREMENT_WINDOW" envDefault:"30"`
	// EnableBackgroundServices turns on background jobs (market data collection, invoice runs,
	// reconciliation). Off unless explicitly set to 1/true.
	EnableBackgroundServices bool `env:"ENABLE_BACKGROUND_SERVICES" envDefault:"false"`
	// PprofEnabled serves Go's runtime profiles (pkg/debugpprof) under /debug/pprof/ on the ops
	// listener (a service's HTTP_ADDR, the gateway's PROMETHEUS_PORT). Off by default: profiles
	// reveal code paths and memory, so enable it only where that listener is private.
	PprofEnabled bool `env:"PPROF_ENABLED" envDefault:"false"`
	// AuditLogPath is the JSON Lines file every audit event is appended to.
	AuditLogPath string `env:"AUDIT_LOG_PATH" envDefault:"logs/audit.jsonl"`

	RateLimit    RateLimit
	Blockchain   Blockchain
	ExternalAPIs ExternalAPIs
	Backup       Backup
	KMS          KMS
	Alerts       Alerts

	// dbOverrides maps an upper-case service name to its <SVC>_DATABASE_URL, captured at load.
	dbOverrides map[string]string
}

// Log configures pkg/log.
type Log struct {
	// Format is "json" or "text".
	Format string `env:"LOG_FORMAT" envDefault:"json"`
	// Level is "debug", "info", "warn" or "error" (case-insensitive; stored lower-case).
	Level string `env:"LOG_LEVEL" envDefault:"info"`
	// Buffered collects log lines in memory and writes them in batches (pkg/log.NewBuffered):
	// at most 100 ms late, at once for errors, and all of them at exit. Set it to
	// false for a write per line.
	Buffered bool `env:"LOG_BUFFERED" envDefault:"true"`
}

// Tracing configures pkg/otel.
type Tracing struct {
	// OTLPEndpoint is the OTLP/gRPC collector. Empty: spans are created (for log correlation) but not
	// exported. An http:// URL means plaintext; https:// or a bare host:port means TLS.
	OTLPEndpoint string `env:"OTEL_EXPORTER_OTLP_ENDPOINT"`
	// ServiceName overrides the service.name resource attribute; empty means the binary's own name.
	ServiceName string `env:"OTEL_SERVICE_NAME"`
}

// MTLS configures the mutual-TLS certificate source (pkg/mtls). The mesh has no plaintext mode, so
// MTLS_ENABLED=false is rejected as a configuration error rather than silently honoured.
type MTLS struct {
	Enabled        bool   `env:"MTLS_ENABLED" envDefault:"true"`
	CACertPath     string `env:"MTLS_CA_CERT_PATH,required,notEmpty"`
	ServerCertPath string `env:"MTLS_SERVER_CERT_PATH,required,notEmpty"`
	ServerKeyPath  string `env:"MTLS_SERVER_KEY_PATH,required,notEmpty"`
	// VerifyClient requires and verifies client certificates on every server.
	VerifyClient bool `env:"MTLS_VERIFY_CLIENT" envDefault:"true"`
	// AllowedDNPatterns optionally restricts peer certificate subjects. Patterns are separated by
	// ';' (not ','), because one DN pattern itself contains commas, as in the manual's
	// "CN=*.hashinsight.net,O=HashInsight,C=US".
	AllowedDNPatterns []string `env:"MTLS_ALLOWED_DN_PATTERNS" envSeparator:";"`
}

// RateLimit configures the gateway's per-client rate limit.
type RateLimit struct {
	Enabled           bool `env:"RATE_LIMIT_ENABLED" envDefault:"true"`
	RequestsPerMinute int  `env:"RATE_LIMIT_REQUESTS_PER_MINUTE" envDefault:"60"`
}

// Blockchain configures SLA certificate minting on Base L2 (manual 2.2).
type Blockchain struct {
	Enabled bool `env:"BLOCKCHAIN_ENABLED" envDefault:"false"`
	// PrivateKey is the signer's key: 0x followed by 64 hex digits. Required when Enabled.
	PrivateKey string `env:"BLOCKCHAIN_PRIVATE_KEY" secret:"true"`
	Network    string `env:"BLOCKCHAIN_NETWORK" envDefault:"base-sepolia"`
	RPCURL     string `env:"BASE_RPC_URL" envDefault:"https://sepolia.base.org"`
}

// ExternalAPIs holds the credentials of third-party data and mail providers (manual 2.6).
type ExternalAPIs struct {
	CoinWarzAPIKey  string `env:"COINWARZ_API_KEY" secret:"true"`
	CoinGeckoAPIKey string `env:"COINGECKO_API_KEY" secret:"true"`
	SendGridAPIKey  string `env:"SENDGRID_API_KEY" secret:"true"`
}

// Backup configures database backups (manual 2.3).
type Backup struct {
	Dir           string `env:"BACKUP_DIR" envDefault:"/tmp/backups"`
	EncryptionKey string `env:"BACKUP_ENCRYPTION_KEY" secret:"true"`
	RetentionDays int    `env:"BACKUP_RETENTION_DAYS" envDefault:"30"`
	// StorageType is "local", "s3", "azure" or "gcs"; every type but local needs StorageBucket.
	StorageType   string `env:"BACKUP_STORAGE_TYPE" envDefault:"local"`
	StorageBucket string `env:"BACKUP_STORAGE_BUCKET"`
	StorageRegion string `env:"BACKUP_STORAGE_REGION"`
}

// KMS selects an external key-encryption-key provider (manual 2.4). With none configured, the KEK
// is derived from ENCRYPTION_PASSWORD.
type KMS struct {
	AWS   AWSKMS
	GCP   GCPKMS
	Azure AzureKeyVault
	Vault HashiCorpVault
}

// AWSKMS is the AWS KMS provider; AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY also serve S3 backups.
type AWSKMS struct {
	KeyID           string `env:"AWS_KMS_KEY_ID"`
	Region          string `env:"AWS_KMS_REGION"`
	AccessKeyID     string `env:"AWS_ACCESS_KEY_ID"`
	SecretAccessKey string `env:"AWS_SECRET_ACCESS_KEY" secret:"true"`
}

// GCPKMS is the Google Cloud KMS provider.
type GCPKMS struct {
	ProjectID       string `env:"GCP_KMS_PROJECT_ID"`
	Location        string `env:"GCP_KMS_LOCATION"`
	KeyRing         string `env:"GCP_KMS_KEYRING"`
	KeyID           string `env:"GCP_KMS_KEY_ID"`
	CredentialsFile string `env:"GOOGLE_APPLICATION_CREDENTIALS"`
}

// AzureKeyVault is the Azure Key Vault provider.
type AzureKeyVault struct {
	VaultURL     string `env:"AZURE_KEY_VAULT_URL"`
	TenantID     string `env:"AZURE_TENANT_ID"`
	ClientID     string `env:"AZURE_CLIENT_ID"`
	ClientSecret string `env:"AZURE_CLIENT_SECRET" secret:"true"`
}

// HashiCorpVault is the Vault transit-engine provider (standard VAULT_ADDR/VAULT_TOKEN variables).
type HashiCorpVault struct {
	Addr       string `env:"VAULT_ADDR"`
	Token      string `env:"VAULT_TOKEN" secret:"true"`
	TransitKey string `env:"VAULT_TRANSIT_KEY"`
}

// Alerts configures alert notifications (manual 4.6). The Slack webhook URL embeds its credential.
type Alerts struct {
	SlackWebhookURL     string `env:"SLACK_WEBHOOK_URL" secret:"true"`
	SlackChannel        string `env:"ALERT_SLACK_CHANNEL"`
	PagerDutyAPIKey     string `env:"PAGERDUTY_API_KEY" secret:"true"`
	PagerDutyServiceKey string `env:"PAGERDUTY_SERVICE_KEY" secret:"true"`
}

// Provider names the configured KMS: "aws", "gcp", "azure", "vault", or "" (ENCRYPTION_PASSWORD).
func (k KMS) Provider() string {
	switch {
	case k.AWS.KeyID != "":
		return "aws"
	case k.GCP.KeyID != "" || k.GCP.ProjectID != "":
		return "gcp"
	case k.Azure.VaultURL != "":
		return "azure"
	case k.Vault.Addr != "":
		return "vault"
	}
	return ""
}

// DatabaseURLFor returns <SERVICE>_DATABASE_URL (e.g. MINING_DATABASE_URL for "mining") when it was
// set at load, else DATABASE_URL. The service name is case-insensitive; '-' maps to '_'.
func (c *Common) DatabaseURLFor(service string) string {
	if dsn, ok := c.dbOverrides[overrideName(service)]; ok {
		return dsn
	}
	return c.DatabaseURL
}

// SetDatabaseURLFor records a per-service DSN override, as <SVC>_DATABASE_URL would at load. It is
// meant for tests and launchers that build a Common by hand.
func (c *Common) SetDatabaseURLFor(service, dsn string) {
	if c.dbOverrides == nil {
		c.dbOverrides = make(map[string]string)
	}
	c.dbOverrides[overrideName(service)] = dsn
}

// InMemoryCache reports whether REDIS_URL selected the in-memory cache only.
func (c *Common) InMemoryCache() bool { return c.RedisURL == "" }

// SLOWindow is SLO_MEASUREMENT_WINDOW as a duration.
func (c *Common) SLOWindow() time.Duration {
	return time.Duration(c.SLOMeasurementWindowMinutes) * time.Minute
}

func overrideName(service string) string {
	return strings.ReplaceAll(strings.ToUpper(strings.TrimSpace(service)), "-", "_")
}
