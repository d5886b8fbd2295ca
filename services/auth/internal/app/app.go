// Package app wires the auth service: its spec (identity, schema, ports), its configuration and
// the registration of its gRPC implementation on the shared runtime — Postgres stores → domain
// services → grpcapi — plus the in-process credential checks (access-token keys, API keys,
// permission-denial auditing) that pkg/authn uses for the auth service's own RPCs.
package app

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/hashinsight/platform/pkg/authn"
	"github.com/hashinsight/platform/pkg/authn/apikey"
	"github.com/hashinsight/platform/pkg/authn/token"
	"github.com/hashinsight/platform/pkg/service"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
	"github.com/hashinsight/platform/services/auth/internal/apikeys"
	"github.com/hashinsight/platform/services/auth/internal/apikeys/apikeyspg"
	"github.com/hashinsight/platform/services/auth/internal/audit"
	"github.com/hashinsight/platform/services/auth/internal/audit/auditpg"
	"github.com/hashinsight/platform/services/auth/internal/credentials"
	"github.com/hashinsight/platform/services/auth/internal/grpcapi"
	"github.com/hashinsight/platform/services/auth/internal/password"
	"github.com/hashinsight/platform/services/auth/internal/postgres"
	"github.com/hashinsight/platform/services/auth/internal/sessions"
	"github.com/hashinsight/platform/services/auth/internal/signing"
	"github.com/hashinsight/platform/services/auth/internal/throttle"
	"github.com/hashinsight/platform/services/auth/internal/usercache"
	"github.com/hashinsight/platform/services/auth/internal/users"
	"github.com/hashinsight/platform/services/auth/migrations"
)

// Spec describes the auth binary: SPIFFE identity svc/auth, schema auth, gRPC :7001, HTTP :9101.
func Spec() service.Spec {
	return service.Spec{
		Name:            "auth",
		Services:        []protoreflect.FullName{protoreflect.FullName(authv1.AuthService_ServiceDesc.ServiceName)},
		Migrations:      migrations.FS,
		DefaultGRPCAddr: ":7001",
		DefaultHTTPAddr: ":9101",
	}
}

// Login throttling: an account locks after 5 failures in 15 minutes (1 s, 2 s, 4 s … 15 min);
// a client IP after 20, since offices and carrier NATs put many people behind one address.
var (
	accountPolicy = throttle.DefaultPolicy
	ipPolicy      = throttle.Policy{Threshold: 20, Window: 15 * time.Minute, BaseLock: time.Second, MaxLock: 15 * time.Minute}
)

// newHasher returns the password hasher on the engine PASSWORD_HASHING selects; worker
// processes are stopped once the server has drained.
func newHasher(rt *service.Runtime, cfg Config) (*password.Hasher, error) {
	var engine password.Engine = password.NewInline(0)
	if cfg.PasswordHashing == HashingWorkers {
		pool, err := password.StartWorkers(password.WorkerOptions{Logger: rt.Logger})
		if err != nil {
			return nil, fmt.Errorf("password hash workers: %w", err)
		}
		rt.Logger.Info("password hashing in worker processes", "workers", pool.Slots(), "nice", password.WorkerNice)
		engine = pool
	}
	rt.OnStop(func() {
		if err := engine.Close(); err != nil {
			rt.Logger.Warn("password hash workers did not stop cleanly", "error", err)
		}
	})
	return password.NewHasher(password.OWASP, engine)
}

// Register returns the registration of the auth service configured by cfg.
func Register(cfg Config) service.RegisterFunc {
	return func(ctx context.Context, rt *service.Runtime) error {
		return register(ctx, rt, cfg)
	}
}

func register(ctx context.Context, rt *service.Runtime, cfg Config) error {
	logger := rt.Logger

	hasher, err := newHasher(rt, cfg)
	if err != nil {
		return err
	}
	auditLog, err := audit.New(audit.Options{Store: auditpg.New(rt.DB), FilePath: rt.Config.AuditLogPath, Logger: logger})
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}

	// Signing keys: the first key is created now (under a lock, so replicas agree), then
	// rotated every SIGNING_KEY_ROTATION; a rotated-out key stays published as long as a token
	// it signed can be valid.
	keys, err := signing.NewManager(postgres.NewSigningKeys(rt.DB), rt.Config.EncryptionPassword, signing.Options{
		Rotation:      cfg.SigningKeyRotation,
		TokenLifetime: cfg.AccessTokenTTL + token.DefaultLeeway,
		Logger:        logger,
	})
	if err != nil {
		return err
	}
	if err := keys.Start(ctx); err != nil {
		return err
	}

	keyHasher, err := apikey.NewHasher(rt.Config.SessionSecret)
	if err != nil {
		return fmt.Errorf("api key hasher: %w", err)
	}
	apiKeys, err := apikeys.New(apikeys.Options{Store: apikeyspg.New(rt.DB), Hasher: keyHasher, Env: cfg.Env, Logger: logger})
	if err != nil {
		return err
	}

	// Users by id (every /me, refresh and API key creation) come from the cache; writes forget them.
	userStore := usercache.New(postgres.NewUsers(rt.DB), rt.NewCache(usercache.Name, usercache.L1TTL, usercache.L2TTL))
	creds := credentials.NewService(apiKeys, userStore, auditLog)
	userSvc := users.NewService(users.Config{Store: userStore, Hasher: hasher, Audit: auditLog, Keys: creds})
	accountThrottle, ipThrottle := newThrottles(rt)
	sessionSvc := sessions.NewService(userStore, postgres.NewSessions(rt.DB), hasher,
		&issuer{tokens: token.NewIssuer(token.IssuerOptions{}), keys: keys, ttl: cfg.AccessTokenTTL},
		auditLog, sessions.Config{RefreshTTL: cfg.RefreshTokenTTL, AccountThrottle: accountThrottle, IPThrottle: ipThrottle})

	api := grpcapi.New(grpcapi.Deps{
		Users: userSvc, Sessions: sessionSvc, Keys: keys, Audit: auditLog, Credentials: creds, Logger: logger,
	})
	authv1.RegisterAuthServiceServer(rt.GRPC(), api)

	inProcessAuthn(rt, keys, creds, api)

	// Background work, until the service stops: key rotation and reload, expired-session purge.
	go keys.Run(ctx)
	go sessionSvc.RunPurge(ctx, time.Hour, func(msg string, args ...any) { logger.Info(msg, args...) })
	return nil
}

// newThrottles returns the login throttles: in Redis when the runtime has one (every replica
// counts together), else in memory.
func newThrottles(rt *service.Runtime) (account, ip sessions.Throttle) {
	if rt.Redis == nil {
		return throttle.NewMemory(accountPolicy), throttle.NewMemory(ipPolicy)
	}
	return throttle.NewRedis(rt.Redis, "hashinsight:auth:login:account:", accountPolicy, rt.Logger),
		throttle.NewRedis(rt.Redis, "hashinsight:auth:login:ip:", ipPolicy, rt.Logger)
}

// inProcessAuthn gives pkg/authn the auth service's own implementations, so checking a
// credential on an auth RPC needs no RPC to itself: access tokens are verified with the keys in
// memory, API keys and collector tokens are resolved against the database (the runtime caches
// both like the remote ones, answers at most 30 s), and permission denials become audit events.
func inProcessAuthn(rt *service.Runtime, keys *signing.Manager, creds *credentials.Service, recorder authn.DenialRecorder) {
	rt.UseLocalAuthn(service.LocalAuthn{
		Keys: token.KeySourceFunc(func(ctx context.Context) (map[string]ed25519.PublicKey, error) {
			pub := keys.FreshPublicKeys(ctx)
			out := make(map[string]ed25519.PublicKey, len(pub))
			for _, k := range pub {
				out[k.ID] = k.Key
			}
			return out, nil
		}),
		Resolver: authn.CredentialResolverFunc(func(ctx context.Context, plaintext string) (*authn.Principal, error) {
			return creds.Resolve(ctx, plaintext, "")
		}),
		Recorder: recorder,
	})
}

// issuer signs access tokens with the current signing key.
type issuer struct {
	tokens *token.Issuer
	keys   *signing.Manager
	ttl    time.Duration
}

// IssueAccessToken implements sessions.Issuer.
func (i *issuer) IssueAccessToken(_ context.Context, p *authn.Principal) (string, time.Time, error) {
	signer, err := i.keys.Signer()
	if err != nil {
		return "", time.Time{}, err
	}
	claims := token.ClaimsFor(p, "", time.Now(), i.ttl)
	raw, err := i.tokens.Sign(claims, &token.SigningKey{ID: signer.ID, Private: signer.Key})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign access token: %w", err)
	}
	return raw, claims.Expiry(), nil
}
