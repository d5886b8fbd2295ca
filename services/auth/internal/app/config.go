package app

import (
	"fmt"
	"regexp"
	"time"

	"github.com/hashinsight/platform/pkg/authn/token"
	"github.com/hashinsight/platform/pkg/config"
)

// Config is the auth service's own configuration, beyond what every service reads
// (service.Config). It is read once, at start, by LoadConfig.
type Config struct {
	// AccessTokenTTL is the lifetime of access tokens; at most 15 minutes.
	AccessTokenTTL time.Duration `env:"ACCESS_TOKEN_TTL" envDefault:"15m"`
	// RefreshTokenTTL is the lifetime of a refresh token; each refresh issues a new one.
	RefreshTokenTTL time.Duration `env:"REFRESH_TOKEN_TTL" envDefault:"720h"`
	// SigningKeyRotation is how long a key signs access tokens before a new one replaces it.
	SigningKeyRotation time.Duration `env:"SIGNING_KEY_ROTATION" envDefault:"24h"`
	// Env is the environment name embedded in API keys and collector tokens (hsi_<env>_…).
	Env string `env:"HASHINSIGHT_ENV" envDefault:"dev"`
	// PasswordHashing is where argon2id runs: "workers" (default) in worker processes of this
	// binary at the lowest CPU priority, so a login flood's hashing only takes CPU time nothing
	// else wants; "inline" in this process (for platforms that cannot start processes).
	PasswordHashing string `env:"PASSWORD_HASHING" envDefault:"workers"`
}

// Values of PASSWORD_HASHING.
const (
	HashingWorkers = "workers"
	HashingInline  = "inline"
)

// Bounds of the configuration.
const (
	// MinSigningKeyRotation keeps a typo ("24" instead of "24h") from rotating keys in a loop.
	MinSigningKeyRotation = time.Second
	// MaxRefreshTokenTTL bounds how long an unused session may live.
	MaxRefreshTokenTTL = 365 * 24 * time.Hour
)

var envName = regexp.MustCompile(`^[a-z]{2,8}$`)

// Validate implements config.Validator.
func (c *Config) Validate() error {
	var problems []*config.Error
	if c.AccessTokenTTL <= 0 || c.AccessTokenTTL > token.MaxLifetime {
		problems = append(problems, &config.Error{Var: "ACCESS_TOKEN_TTL",
			Reason: fmt.Sprintf("must be a positive duration of at most %s", token.MaxLifetime)})
	}
	if c.RefreshTokenTTL <= c.AccessTokenTTL || c.RefreshTokenTTL > MaxRefreshTokenTTL {
		problems = append(problems, &config.Error{Var: "REFRESH_TOKEN_TTL",
			Reason: fmt.Sprintf("must be longer than ACCESS_TOKEN_TTL and at most %s", MaxRefreshTokenTTL)})
	}
	if c.SigningKeyRotation < MinSigningKeyRotation {
		problems = append(problems, &config.Error{Var: "SIGNING_KEY_ROTATION",
			Reason: fmt.Sprintf("must be at least %s", MinSigningKeyRotation)})
	}
	if c.PasswordHashing != HashingWorkers && c.PasswordHashing != HashingInline {
		problems = append(problems, &config.Error{Var: "PASSWORD_HASHING",
			Reason: fmt.Sprintf("must be %q or %q", HashingWorkers, HashingInline)})
	}
	if !envName.MatchString(c.Env) {
		problems = append(problems, &config.Error{Var: "HASHINSIGHT_ENV", Reason: "must be 2 to 8 lower-case letters"})
	}
	if len(problems) == 0 {
		return nil
	}
	first := problems[0]
	first.Others = problems[1:]
	return first
}

// LoadConfig reads Config from environ (the process environment when nil). An invalid value is a
// *config.Error naming the variable: main exits with config.ExitCode (2).
func LoadConfig(environ map[string]string) (Config, error) { return config.Read[Config](environ) }
