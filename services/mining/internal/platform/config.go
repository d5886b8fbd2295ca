package platform

import (
	"time"

	"github.com/hashinsight/platform/pkg/config"
)

// Config is the mining service's own configuration, beyond what every service reads
// (service.Config). It is read once, at start, by LoadConfig.
type Config struct {
	// AnalyticsGRPCAddr is where the analytics service answers GetLatestMarketData (mTLS). When
	// it does not answer, profitability falls back to the bundled offline market snapshot.
	AnalyticsGRPCAddr string `env:"ANALYTICS_GRPC_ADDR" envDefault:"127.0.0.1:7005"`
	// DefaultElectricityUSDPerKWh is the electricity price of a calculation that names none, a
	// plain decimal ("0.05").
	DefaultElectricityUSDPerKWh string `env:"DEFAULT_ELECTRICITY_USD_PER_KWH" envDefault:"0.05"`
	// ImportMaxRows bounds the data rows of one import.
	ImportMaxRows int `env:"IMPORT_MAX_ROWS" envDefault:"100000"`
	// CollectorMaxRecords bounds the records of one collector upload (UploadCollectorBatch); a
	// larger upload is refused whole. DESIGN.md §5: up to 1,000 a request by default.
	CollectorMaxRecords int `env:"COLLECTOR_MAX_RECORDS" envDefault:"1000"`
	// MinerCacheTTL is how long a miner or catalogue read is served from the cache (every write
	// invalidates it at once; the TTL bounds what another writer, such as a manual SQL fix, costs).
	MinerCacheTTL time.Duration `env:"MINER_CACHE_TTL" envDefault:"5m"`
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	var problems []*config.Error
	if c.AnalyticsGRPCAddr == "" {
		problems = append(problems, &config.Error{Var: "ANALYTICS_GRPC_ADDR", Reason: "must not be empty"})
	}
	if !isPlainDecimal(c.DefaultElectricityUSDPerKWh) {
		problems = append(problems, &config.Error{Var: "DEFAULT_ELECTRICITY_USD_PER_KWH",
			Reason: `must be a plain decimal such as "0.05"`})
	}
	if c.ImportMaxRows < 1 || c.ImportMaxRows > 1_000_000 {
		problems = append(problems, &config.Error{Var: "IMPORT_MAX_ROWS", Reason: "must be between 1 and 1000000"})
	}
	if c.CollectorMaxRecords < 1 || c.CollectorMaxRecords > 100_000 {
		problems = append(problems, &config.Error{Var: "COLLECTOR_MAX_RECORDS", Reason: "must be between 1 and 100000"})
	}
	if c.MinerCacheTTL < time.Second {
		problems = append(problems, &config.Error{Var: "MINER_CACHE_TTL", Reason: "must be at least 1s"})
	}
	if len(problems) == 0 {
		return nil
	}
	first := problems[0]
	first.Others = problems[1:]
	return first
}

// isPlainDecimal reports whether s is digits with at most one decimal point and no sign or
// exponent, e.g. "0.05" or "12".
func isPlainDecimal(s string) bool {
	if s == "" || len(s) > 24 {
		return false
	}
	digits, dot := 0, false
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0 && s[0] != '.' && s[len(s)-1] != '.'
}

// LoadConfig reads Config from environ (the process environment when nil). An invalid value is a
// *config.Error naming the variable: main exits with config.ExitCode (2).
func LoadConfig(environ map[string]string) (Config, error) { return config.Read[Config](environ) }
