package log_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/hashinsight/platform/pkg/config"
	hlog "github.com/hashinsight/platform/pkg/log"
)

func decode(t *testing.T, buf *bytes.Buffer) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("log line %q is not JSON: %v", buf.String(), err)
	}
	return m
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		format, level string
		ok            bool
	}{
		{"json", "info", true},
		{"TEXT", "DEBUG", true},
		{"json", "warning", true},
		{"", "", true},
		{"xml", "info", false},
		{"json", "verbose", false},
	}
	for _, tt := range tests {
		_, err := hlog.New(&bytes.Buffer{}, tt.format, tt.level)
		if (err == nil) != tt.ok {
			t.Errorf("New(%q, %q) error = %v, want ok=%v", tt.format, tt.level, err, tt.ok)
		}
	}
}

func TestLevelFilters(t *testing.T) {
	var buf bytes.Buffer
	logger, err := hlog.New(&buf, "json", "warn")
	if err != nil {
		t.Fatal(err)
	}
	logger.Info("dropped")
	if buf.Len() != 0 {
		t.Fatalf("info logged at warn level: %q", buf.String())
	}
	logger.Warn("kept")
	if got := decode(t, &buf)["msg"]; got != "kept" {
		t.Errorf("msg = %v", got)
	}
}

func TestHandlerMasksSecrets(t *testing.T) {
	tests := []struct {
		name string
		attr slog.Attr
		want string
	}{
		{"password", slog.String("password", "hunter2"), hlog.Mask},
		{"session secret", slog.String("SESSION_SECRET", "abc"), hlog.Mask},
		{"authorization header", slog.String("Authorization", "Bearer xyz"), hlog.Mask},
		{"api key", slog.String("api_key", "hsi_live_key_abc"), hlog.Mask},
		{"collector key header", slog.String("X-Collector-Key", "k"), hlog.Mask},
		{"refresh token", slog.String("refresh_token", "t"), hlog.Mask},
		{"private key", slog.String("private_key_hex", "0xabc"), hlog.Mask},
		{"non-string secret", slog.Int("pin_secret", 1234), hlog.Mask},
		{"empty secret stays empty", slog.String("password", ""), ""},
		{"key id is not secret", slog.String("key_id", "kid-1"), "kid-1"},
		{"token id is not secret", slog.String("token_id", "42"), "42"},
		{"key path is not secret", slog.String("MTLS_SERVER_KEY_PATH", "/certs/x.key"), "/certs/x.key"},
		{"dsn url", slog.String("dsn", "postgres://hi:pw@db:5432/x?sslmode=disable"), "postgres://hi:****@db:5432/x?sslmode=disable"},
		{"dsn keyword", slog.String("dsn", "host=db user=hi password='p w' dbname=x"), "host=db user=hi password=**** dbname=x"},
		{"plain value", slog.String("miner", "s19"), "s19"},
		{"url value", slog.Any("target", &url.URL{Scheme: "redis", User: url.UserPassword("u", "pw"), Host: "c:6379"}), "redis://u:****@c:6379"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger, err := hlog.New(&buf, "json", "debug")
			if err != nil {
				t.Fatal(err)
			}
			logger.LogAttrs(context.Background(), slog.LevelInfo, "m", tt.attr)
			got := decode(t, &buf)[tt.attr.Key]
			if s, _ := got.(string); s != tt.want {
				t.Errorf("%s = %v, want %q", tt.attr.Key, got, tt.want)
			}
		})
	}
}

func TestHandlerMasksInsideSecretGroup(t *testing.T) {
	var buf bytes.Buffer
	logger, err := hlog.New(&buf, "text", "info")
	if err != nil {
		t.Fatal(err)
	}
	logger.Info("m", slog.Group("credentials", slog.String("user", "alice")))
	if strings.Contains(buf.String(), "alice") {
		t.Errorf("value inside a secret group leaked: %q", buf.String())
	}
}

func TestMaskURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://user:secret@host/db", "postgres://user:****@host/db"},
		{"postgres://user@host/db", "postgres://user@host/db"},
		{"redis://:pw@cache:6379/0", "redis://:****@cache:6379/0"},
		{"postgres://u@h/db?password=x", "postgres://u@h/db?password=****"},
		{"host=h password=abc user=u", "host=h password=**** user=u"},
		{"nothing here", "nothing here"},
	}
	for _, tt := range tests {
		if got := hlog.MaskURL(tt.in); got != tt.want {
			t.Errorf("MaskURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMaskedConfig(t *testing.T) {
	c := config.Common{
		DatabaseURL:        "postgres://hashinsight:dbpass@127.0.0.1:5432/hashinsight",
		SessionSecret:      strings.Repeat("s", 32),
		EncryptionPassword: strings.Repeat("e", 32),
		RedisURL:           "redis://127.0.0.1:6379",
		PrometheusPort:     9090,
	}
	c.MTLS.ServerKeyPath = "/certs/svc.key"
	c.MTLS.AllowedDNPatterns = []string{"CN=a", "CN=b"}
	c.Log.Level = "info"

	attrs := hlog.Masked(&c)
	got := map[string]slog.Value{}
	for _, a := range attrs {
		got[a.Key] = a.Value
	}
	want := map[string]string{
		"DATABASE_URL":             "postgres://hashinsight:****@127.0.0.1:5432/hashinsight",
		"SESSION_SECRET":           hlog.Mask,
		"ENCRYPTION_PASSWORD":      hlog.Mask,
		"BLOCKCHAIN_PRIVATE_KEY":   "", // secret but unset
		"SENDGRID_API_KEY":         "",
		"REDIS_URL":                "redis://127.0.0.1:6379",
		"LOG_LEVEL":                "info",
		"MTLS_SERVER_KEY_PATH":     "/certs/svc.key",
		"MTLS_ALLOWED_DN_PATTERNS": "CN=a,CN=b",
		"PROMETHEUS_PORT":          "9090",
		"MTLS_ENABLED":             "false",
	}
	for k, w := range want {
		v, ok := got[k]
		if !ok {
			t.Errorf("Masked() has no %s", k)
			continue
		}
		if v.String() != w {
			t.Errorf("%s = %q, want %q", k, v.String(), w)
		}
	}

	var buf bytes.Buffer
	logger, err := hlog.New(&buf, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	logger.LogAttrs(context.Background(), slog.LevelInfo, "config", attrs...)
	for _, leaked := range []string{"dbpass", c.SessionSecret, c.EncryptionPassword} {
		if strings.Contains(buf.String(), leaked) {
			t.Errorf("config log line leaks %q", leaked)
		}
	}
	if hlog.Masked(nil) != nil || hlog.Masked((*config.Common)(nil)) != nil || hlog.Masked(3) != nil {
		t.Error("Masked of a non-struct should be nil")
	}
}

func TestTraceIDs(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled,
	}))

	var buf bytes.Buffer
	logger, err := hlog.New(&buf, "json", "info")
	if err != nil {
		t.Fatal(err)
	}

	logger.With("component", "x").InfoContext(ctx, "with span")
	m := decode(t, &buf)
	if m["trace_id"] != tid.String() || m["span_id"] != sid.String() {
		t.Errorf("record = %v, want trace_id %s span_id %s", m, tid, sid)
	}

	buf.Reset()
	logger.InfoContext(context.Background(), "no span")
	if m := decode(t, &buf); m["trace_id"] != nil {
		t.Errorf("trace_id added without a span: %v", m)
	}

	buf.Reset()
	hlog.WithTrace(ctx, logger).Info("bound")
	if m := decode(t, &buf); m["trace_id"] != tid.String() {
		t.Errorf("WithTrace record = %v", m)
	}
	if hlog.WithTrace(context.Background(), logger) != logger {
		t.Error("WithTrace without a span should return the logger unchanged")
	}
}
