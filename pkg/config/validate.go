package config

import (
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// MinSecretLength is the minimum length, in characters, of SESSION_SECRET, ENCRYPTION_PASSWORD and
// BACKUP_ENCRYPTION_KEY.
const MinSecretLength = 32

const dbOverrideSuffix = "_DATABASE_URL"

var (
	privateKeyRE   = regexp.MustCompile(`^0x[0-9a-fA-F]{64}$`)
	serviceNameRE  = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	logLevelAlias  = map[string]string{"debug": "debug", "info": "info", "warn": "warn", "warning": "warn", "error": "error"}
	backupStorages = map[string]bool{"local": true, "s3": true, "azure": true, "gcs": true}
)

// normalize applies the defaults and canonical forms that env tags cannot express, and captures the
// per-service database overrides from environ.
func (c *Common) normalize(environ map[string]string, prefix string) {
	if v, set := environ[prefix+"REDIS_URL"]; !set {
		c.RedisURL = DefaultRedisURL
	} else if v = strings.TrimSpace(v); v == "" || strings.EqualFold(v, "memory") {
		c.RedisURL = ""
	} else {
		c.RedisURL = v
	}
	c.Log.Format = strings.ToLower(strings.TrimSpace(c.Log.Format))
	c.Log.Level = strings.ToLower(strings.TrimSpace(c.Log.Level))
	if l, ok := logLevelAlias[c.Log.Level]; ok {
		c.Log.Level = l
	}
	c.Backup.StorageType = strings.ToLower(strings.TrimSpace(c.Backup.StorageType))

	patterns := c.MTLS.AllowedDNPatterns[:0]
	for _, p := range c.MTLS.AllowedDNPatterns {
		if p = strings.TrimSpace(p); p != "" {
			patterns = append(patterns, p)
		}
	}
	c.MTLS.AllowedDNPatterns = patterns

	c.dbOverrides = nil
	for k, v := range environ {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		svc, ok := strings.CutSuffix(rest, dbOverrideSuffix)
		// TEST_DATABASE_URL belongs to test harnesses, not to a service.
		if !ok || svc == "TEST" || !serviceNameRE.MatchString(svc) || strings.TrimSpace(v) == "" {
			continue
		}
		c.SetDatabaseURLFor(svc, strings.TrimSpace(v))
	}
}

// check validates c after normalize; prefix is the env prefix Common was parsed under.
func (c *Common) check(prefix string) []*Error {
	var errs []*Error
	bad := func(v, reason string) { errs = append(errs, &Error{Var: prefix + v, Reason: reason}) }

	// Required variables that are missing were already reported by the parser.
	if c.DatabaseURL != "" {
		if reason := checkDSN(c.DatabaseURL); reason != "" {
			bad("DATABASE_URL", reason)
		}
	}
	if c.SessionSecret != "" && utf8.RuneCountInString(c.SessionSecret) < MinSecretLength {
		bad("SESSION_SECRET", "must be at least 32 characters")
	}
	if c.EncryptionPassword != "" && utf8.RuneCountInString(c.EncryptionPassword) < MinSecretLength {
		bad("ENCRYPTION_PASSWORD", "must be at least 32 characters")
	}
	for _, svc := range sortedKeys(c.dbOverrides) {
		if reason := checkDSN(c.dbOverrides[svc]); reason != "" {
			bad(svc+dbOverrideSuffix, reason)
		}
	}

	if c.RedisURL != "" {
		u, err := url.Parse(c.RedisURL)
		switch {
		case err != nil:
			bad("REDIS_URL", "must be a redis://, rediss:// or unix:// URL (or empty/\"memory\" for the in-memory cache)")
		case u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix":
			bad("REDIS_URL", "scheme must be redis, rediss or unix (or empty/\"memory\" for the in-memory cache)")
		}
	}

	if c.Log.Format != "json" && c.Log.Format != "text" {
		bad("LOG_FORMAT", `must be "json" or "text"`)
	}
	if _, ok := logLevelAlias[c.Log.Level]; !ok {
		bad("LOG_LEVEL", `must be "debug", "info", "warn" or "error"`)
	}
	if c.Tracing.OTLPEndpoint != "" {
		if reason := checkEndpoint(c.Tracing.OTLPEndpoint); reason != "" {
			bad("OTEL_EXPORTER_OTLP_ENDPOINT", reason)
		}
	}

	if !c.MTLS.Enabled {
		bad("MTLS_ENABLED", "must be true: every hop of the mesh is mutual TLS and there is no plaintext mode")
	}

	if c.PrometheusPort < 1 || c.PrometheusPort > 65535 {
		bad("PROMETHEUS_PORT", "must be a port between 1 and 65535")
	}
	if c.SLOMeasurementWindowMinutes < 1 {
		bad("SLO_MEASUREMENT_WINDOW", "must be at least 1 (minutes)")
	}
	if strings.TrimSpace(c.AuditLogPath) == "" {
		bad("AUDIT_LOG_PATH", "must not be empty")
	}
	if c.RateLimit.RequestsPerMinute < 1 {
		bad("RATE_LIMIT_REQUESTS_PER_MINUTE", "must be at least 1")
	}

	switch {
	case c.Blockchain.PrivateKey != "" && !privateKeyRE.MatchString(c.Blockchain.PrivateKey):
		bad("BLOCKCHAIN_PRIVATE_KEY", "must be 0x followed by 64 hex digits")
	case c.Blockchain.Enabled && c.Blockchain.PrivateKey == "":
		bad("BLOCKCHAIN_PRIVATE_KEY", "is required when BLOCKCHAIN_ENABLED is true")
	}
	if strings.TrimSpace(c.Blockchain.Network) == "" {
		bad("BLOCKCHAIN_NETWORK", "must not be empty")
	}
	if !isHTTPURL(c.Blockchain.RPCURL) {
		bad("BASE_RPC_URL", "must be an http:// or https:// URL")
	}

	if c.Backup.RetentionDays < 1 {
		bad("BACKUP_RETENTION_DAYS", "must be at least 1")
	}
	if !backupStorages[c.Backup.StorageType] {
		bad("BACKUP_STORAGE_TYPE", `must be "local", "s3", "azure" or "gcs"`)
	} else if c.Backup.StorageType != "local" && c.Backup.StorageBucket == "" {
		bad("BACKUP_STORAGE_BUCKET", "is required when BACKUP_STORAGE_TYPE is not local")
	}
	if c.Backup.EncryptionKey != "" && utf8.RuneCountInString(c.Backup.EncryptionKey) < MinSecretLength {
		bad("BACKUP_ENCRYPTION_KEY", "must be at least 32 characters")
	}

	for _, e := range c.KMS.check() {
		e.Var = prefix + e.Var
		errs = append(errs, e)
	}

	if c.Alerts.SlackWebhookURL != "" && !isHTTPURL(c.Alerts.SlackWebhookURL) {
		bad("SLACK_WEBHOOK_URL", "must be an https:// URL")
	}
	return errs
}

func (k KMS) check() []*Error {
	var errs []*Error
	bad := func(v, reason string) { errs = append(errs, &Error{Var: v, Reason: reason}) }

	type provider struct {
		configured bool
		mainVar    string
	}
	gcpAny := k.GCP.ProjectID != "" || k.GCP.Location != "" || k.GCP.KeyRing != "" || k.GCP.KeyID != ""
	providers := []provider{
		{k.AWS.KeyID != "", "AWS_KMS_KEY_ID"},
		{gcpAny, "GCP_KMS_PROJECT_ID"},
		{k.Azure.VaultURL != "", "AZURE_KEY_VAULT_URL"},
		{k.Vault.Addr != "", "VAULT_ADDR"},
	}
	seen := 0
	for _, p := range providers {
		if !p.configured {
			continue
		}
		if seen++; seen > 1 {
			bad(p.mainVar, "only one KMS provider may be configured")
		}
	}

	if gcpAny {
		for _, f := range [][2]string{
			{"GCP_KMS_PROJECT_ID", k.GCP.ProjectID}, {"GCP_KMS_LOCATION", k.GCP.Location},
			{"GCP_KMS_KEYRING", k.GCP.KeyRing}, {"GCP_KMS_KEY_ID", k.GCP.KeyID},
		} {
			if f[1] == "" {
				bad(f[0], "is required when GCP KMS is configured")
			}
		}
	}
	if k.Azure.VaultURL != "" {
		if u, err := url.Parse(k.Azure.VaultURL); err != nil || u.Scheme != "https" || u.Host == "" {
			bad("AZURE_KEY_VAULT_URL", "must be an https:// URL")
		}
	}
	if k.Vault.Addr != "" {
		if !isHTTPURL(k.Vault.Addr) {
			bad("VAULT_ADDR", "must be an http:// or https:// URL")
		}
		if k.Vault.Token == "" {
			bad("VAULT_TOKEN", "is required when VAULT_ADDR is set")
		}
		if k.Vault.TransitKey == "" {
			bad("VAULT_TRANSIT_KEY", "is required when VAULT_ADDR is set")
		}
	}
	return errs
}

// checkDSN accepts a postgres:// or postgresql:// URL, or a libpq keyword/value string. It returns
// a reason, never echoing the DSN (which may carry a password).
func checkDSN(dsn string) string {
	dsn = strings.TrimSpace(dsn)
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "is not a valid URL"
		}
		if u.Scheme != "postgres" && u.Scheme != "postgresql" {
			return "URL scheme must be postgres or postgresql"
		}
		if u.Host == "" && u.Query().Get("host") == "" {
			return "URL has no host"
		}
		return ""
	}
	fields := strings.Fields(dsn)
	if len(fields) == 0 {
		return "must not be empty"
	}
	// Every unquoted token of a keyword/value DSN starts a key=value pair; quoted values may contain
	// spaces, so only the first token is checked strictly.
	if k, _, ok := strings.Cut(fields[0], "="); !ok || k == "" {
		return "must be a postgres:// URL or a key=value connection string"
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func checkEndpoint(ep string) string {
	if strings.Contains(ep, "://") {
		if !isHTTPURL(ep) {
			return "must be an http:// or https:// URL, or host:port"
		}
		return ""
	}
	if _, port, err := net.SplitHostPort(ep); err != nil || port == "" {
		return "must be an http:// or https:// URL, or host:port"
	}
	return ""
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
