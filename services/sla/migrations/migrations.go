// Package migrations embeds the sla service's schema migrations (goose, zero-padded, applied in order).
package migrations

import "embed"

// FS holds the SQL migration files; the service applies them to its own schema at start-up.
//
//go:embed *.sql
var FS embed.FS
