package postgres_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hashinsight/platform/pkg/postgres"
)

func TestRoleDSN(t *testing.T) {
	t.Parallel()
	const password = `p@ss:w/rd 'q' \b ü`
	tests := []struct {
		name, admin string
		wantURL     bool
	}{
		{"url", "postgres://admin:adm%40pw@db.example:5433/hashinsight?sslmode=disable&search_path=public&application_name=hictl", true},
		{"postgresql url", "postgresql://admin@db.example:5433/hashinsight?sslmode=disable&options=-c%20search_path%3Dpublic%20-c%20work_mem%3D64MB&application_name=hictl", true},
		{"keyword", "host=db.example port=5433 dbname=hashinsight user=admin password='adm pw' sslmode=disable application_name=hictl", false},
		{"keyword with options", "host=db.example port=5433 dbname=hashinsight user=admin sslmode=disable options='-csearch_path=public -c work_mem=64MB' application_name='hictl'", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := postgres.RoleDSN(tt.admin, "hashinsight_mining", password)
			if err != nil {
				t.Fatal(err)
			}
			if isURL := strings.HasPrefix(got, "postgres"); isURL != tt.wantURL {
				t.Errorf("form changed: %q", got)
			}
			cfg, err := pgconn.ParseConfig(got)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.User != "hashinsight_mining" || cfg.Password != password {
				t.Errorf("user/password = %q/%q", cfg.User, cfg.Password)
			}
			if cfg.Host != "db.example" || cfg.Port != 5433 || cfg.Database != "hashinsight" || cfg.TLSConfig != nil {
				t.Errorf("server changed: host=%q port=%d db=%q tls=%v", cfg.Host, cfg.Port, cfg.Database, cfg.TLSConfig != nil)
			}
			if cfg.RuntimeParams["application_name"] != "hictl" {
				t.Errorf("other settings lost: %v", cfg.RuntimeParams)
			}
			if _, ok := cfg.RuntimeParams["search_path"]; ok || strings.Contains(cfg.RuntimeParams["options"], "search_path") {
				t.Errorf("the admin's search_path was kept: %v", cfg.RuntimeParams)
			}
			if strings.Contains(tt.admin, "work_mem") && !strings.Contains(cfg.RuntimeParams["options"], "work_mem=64MB") {
				t.Errorf("other options lost: %q", cfg.RuntimeParams["options"])
			}

			svcDSN, err := postgres.Service{Schema: "mining", Role: "hashinsight_mining", Password: password}.DSN(tt.admin)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err = pgconn.ParseConfig(svcDSN)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(cfg.RuntimeParams["options"], "-csearch_path=mining") || strings.Count(cfg.RuntimeParams["options"], "search_path") != 1 {
				t.Errorf("Service.DSN options = %q, want one -csearch_path=mining", cfg.RuntimeParams["options"])
			}

			other, err := postgres.DatabaseDSN(tt.admin, "test_db")
			if err != nil {
				t.Fatal(err)
			}
			if cfg, err := pgconn.ParseConfig(other); err != nil || cfg.Database != "test_db" || cfg.User != "admin" {
				t.Errorf("DatabaseDSN: %v %+v", err, cfg)
			}
		})
	}

	for _, bad := range []struct{ admin, role string }{
		{"postgres://admin@h/db", `x" SUPERUSER --`},
		{"host='unterminated", "r"},
		{"postgres://admin:secret@h:notaport/db", "r"},
	} {
		_, err := postgres.RoleDSN(bad.admin, bad.role, "pw")
		if err == nil {
			t.Errorf("RoleDSN(%q, %q): want an error", bad.admin, bad.role)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("error leaks the admin password: %v", err)
		}
	}
}

// TestRoleDSNConnects dials the cluster with role DSNs derived from URL and keyword admin DSNs.
func TestRoleDSNConnects(t *testing.T) {
	t.Parallel()
	adminDSN, mining, _ := scratch(t)
	if err := postgres.Bootstrap(t.Context(), adminDSN, mining); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgconn.ParseConfig(adminDSN)
	if err != nil {
		t.Fatal(err)
	}
	keyword := fmt.Sprintf("host=%s port=%d dbname=%s user=%s sslmode=prefer", cfg.Host, cfg.Port, cfg.Database, cfg.User)
	if cfg.Password != "" {
		keyword += " password='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(cfg.Password) + "'"
	}
	for _, admin := range []string{adminDSN, keyword} {
		dsn, err := postgres.RoleDSN(admin, mining.Role, mining.Password)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatalf("connect with role DSN from %.10q...: %v", admin, err)
		}
		var user, schema string
		err = conn.QueryRow(t.Context(), "SELECT current_user, current_schema()").Scan(&user, &schema)
		conn.Close(ctxT(t))
		if err != nil || user != mining.Role || schema != "mining" {
			t.Errorf("connected as %q in schema %q (%v)", user, schema, err)
		}
	}
}
