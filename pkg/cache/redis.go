package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
)

// NewRedis builds the Redis client for REDIS_URL. It does not connect; the first command does.
//
//   - redis://[user:pass@]host:port[/db][?opts], rediss://… (TLS), unix:///path.sock: one server.
//   - …?master_name=mymaster[&addr=sentinel2:26379…]: Sentinel; host and addr are the sentinels.
//   - …?cluster=true[&addr=node2:6379…], or any URL with addr=… and no master_name: Redis Cluster.
//
// Other query parameters are go-redis options (dial_timeout, pool_size, …). Every client honours
// context deadlines (ContextTimeoutEnabled), which the Cache relies on to bound each operation, and
// is traced with OpenTelemetry through the global tracer provider. Errors never echo the URL, which
// may hold a password.
func NewRedis(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("cache: REDIS_URL: %w", err)
	}
	q := u.Query()
	cluster := false
	if v := q.Get("cluster"); v != "" {
		if cluster, err = strconv.ParseBool(v); err != nil {
			return nil, fmt.Errorf("cache: REDIS_URL: cluster=%q is not a boolean", v)
		}
		q.Del("cluster")
		u.RawQuery = q.Encode()
	}

	var client redis.UniversalClient
	switch {
	case u.Scheme == "unix":
		opt, err := redis.ParseURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("cache: REDIS_URL: %w", err)
		}
		opt.ContextTimeoutEnabled = true
		client = redis.NewClient(opt)
	case q.Has("master_name"):
		opt, err := redis.ParseFailoverURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("cache: REDIS_URL (sentinel): %w", err)
		}
		opt.ContextTimeoutEnabled = true
		client = redis.NewFailoverClient(opt)
	case cluster || q.Has("addr"):
		opt, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("cache: REDIS_URL (cluster): %w", err)
		}
		opt.ContextTimeoutEnabled = true
		client = redis.NewClusterClient(opt)
	default:
		opt, err := redis.ParseURL(u.String())
		if err != nil {
			return nil, fmt.Errorf("cache: REDIS_URL: %w", err)
		}
		opt.ContextTimeoutEnabled = true
		client = redis.NewClient(opt)
	}
	// Spans name the command only: capturing the caller (a stack walk per command) and the full
	// command text (keys and cached values) costs more CPU per command than the command itself on a
	// hot path, and values do not belong in traces.
	if err := redisotel.InstrumentTracing(client, redisotel.WithCallerEnabled(false), redisotel.WithDBStatement(false)); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("cache: instrument redis tracing: %w", err)
	}
	return client, nil
}

// GetJSON is GetOrLoad for a JSON-encoded value of type T. An entry that no longer decodes into T
// (written by an older version of the type) is deleted and loaded afresh.
func GetJSON[T any](ctx context.Context, c *Cache, key string, load func(context.Context) (T, error)) (T, error) {
	var zero T
	loadJSON := func(ctx context.Context) ([]byte, error) {
		v, err := load(ctx)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("cache %s: encode %q: %w", c.name, key, err)
		}
		return b, nil
	}
	raw, err := c.getOrLoad(ctx, key, loadJSON)
	if err != nil {
		return zero, err
	}
	var out T
	if err := json.Unmarshal(raw, &out); err == nil {
		return out, nil
	}
	_ = c.Delete(ctx, key)
	if raw, err = c.getOrLoad(ctx, key, loadJSON); err != nil {
		return zero, err
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return zero, fmt.Errorf("cache %s: decode %q: %w", c.name, key, err)
	}
	return out, nil
}

// RedisLogger adapts a slog.Logger to go-redis's internal logger, so the client's own messages
// (failed dials during an outage, once per attempt) are structured like the rest of the process's
// logs. go-redis only has a process-wide logger: main opts in with
// redis.SetLogger(cache.RedisLogger{Logger: logger}).
type RedisLogger struct {
	Logger *slog.Logger
}

// Printf logs one go-redis message at warn level.
func (l RedisLogger) Printf(ctx context.Context, format string, v ...any) {
	if l.Logger == nil {
		return
	}
	l.Logger.LogAttrs(ctx, slog.LevelWarn, fmt.Sprintf(format, v...), slog.String("component", "go-redis"))
}
