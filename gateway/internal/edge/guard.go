package edge

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/time/rate"

	"github.com/hashinsight/platform/gateway/internal/ratelimit"
	"github.com/hashinsight/platform/pkg/errcode"
)

// Rate-limit response headers.
const (
	HeaderRateLimitLimit     = "X-RateLimit-Limit"
	HeaderRateLimitRemaining = "X-RateLimit-Remaining"
	HeaderRetryAfter         = "Retry-After"
)

// Rate-limit scopes: which bucket refused a request (the label of the rejection counter).
const (
	ScopeAPIKey = "api_key"
	ScopeUser   = "user"
	ScopeIP     = "ip"
	// ScopeLogin: the gateway's cap on concurrent logins (WithLoginCap).
	ScopeLogin = "login"
)

// GuardOptions configure WithGuard.
type GuardOptions struct {
	// Limiter holds the request budgets of API keys, users and client IPs (shared by the
	// replicas when it is Redis); nil disables rate limiting (RATE_LIMIT_ENABLED=false).
	Limiter ratelimit.Limiter
	// Failures holds each client IP's budget of refused credentials. It is consulted on every
	// credentialed request, so it should be in memory (a Redis round trip per request for a
	// guard that only matters under attack is not worth it); per replica, an attacker spread
	// over N replicas gets N budgets, still a bound. nil: no such budget.
	Failures ratelimit.Limiter
	// Exempt paths are neither limited nor credential-checked (health probes, /metrics).
	Exempt []string
	// Logger receives limiter failures.
	Logger *slog.Logger
	// OnReject, when set, is called for each 429 with the scope that refused it.
	OnReject func(scope string)
}

// WithGuard is the gateway's admission check, before any backend is called:
//
//  1. A credential that cannot be valid — an Authorization header that is not one
//     "Bearer <x>" where x is JWT-shaped or an API key passing apikey.Parse (checksum) — is
//     answered 401 AUTH_001. Everything else about credentials (signatures, expiry, revocation,
//     permissions) is decided by the services.
//  2. Rate limits (when a Limiter is set), RATE_LIMIT_REQUESTS_PER_MINUTE per bucket: a request
//     carrying an API key spends from that key's bucket; one carrying a token from its user's
//     bucket (the unverified `sub`: only a counting key, services verify); one without a
//     credential from its client IP's bucket. Over the limit: 429 API_001 with Retry-After
//     (whole seconds, rounded up). Responses carry X-RateLimit-Limit and X-RateLimit-Remaining.
//  3. Refused credentials — malformed ones here, and credentialed requests a service answers
//     401 — spend from the client IP's budget of failures (Failures), and a credentialed
//     request is refused while that budget is empty. Inventing keys or tokens (each would get
//     a fresh bucket of its own) is thereby bounded per IP, while the users behind one address
//     keep their own budgets as long as their credentials are good.
func WithGuard(o GuardOptions) Middleware {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	exempt := make(map[string]bool, len(o.Exempt))
	for _, p := range o.Exempt {
		exempt[p] = true
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if exempt[r.URL.Path] {
				next.ServeHTTP(w, r)
				return
			}
			ip := ipBucket(ClientIP(r.Context()))
			g := guard{o: o, w: w, r: r, ip: ip, failures: "authfail:" + ip}
			g.serve(next)
		})
	}
}

// guard is the admission of one request.
type guard struct {
	o        GuardOptions
	w        http.ResponseWriter
	r        *http.Request
	ip       string // the client IP's bucket
	failures string // the client IP's bucket of refused credentials
}

func (g *guard) serve(next http.Handler) {
	cred := classify(g.r)
	if cred.kind == credMalformed {
		// A refused credential costs the IP one failure; past its budget the answer is 429.
		if g.spendFrom(g.o.Failures, g.failures, ScopeIP, false) {
			g.unauthenticated()
		}
		return
	}
	if g.o.Limiter == nil {
		next.ServeHTTP(g.w, g.r)
		return
	}
	if cred.bucket == "" {
		if g.spend(g.ip, ScopeIP) {
			next.ServeHTTP(g.w, g.r)
		}
		return
	}
	// The IP must not have spent its budget of refused credentials.
	if g.o.Failures != nil {
		d, err := g.o.Failures.Allow(g.r.Context(), g.failures, 0)
		if !g.decide(d, err, ScopeIP, false) {
			return
		}
	}
	scope := ScopeUser
	if cred.kind == credAPIKey || cred.kind == credNone { // credNone: a collector key header
		scope = ScopeAPIKey
	}
	if !g.spend(cred.bucket, scope) {
		return
	}
	if g.o.Failures == nil {
		next.ServeHTTP(g.w, g.r)
		return
	}
	rec := &statusRecorder{ResponseWriter: g.w}
	next.ServeHTTP(rec, g.r)
	if rec.status == http.StatusUnauthorized {
		// The service refused the credential: the IP pays for it, so forged keys and tokens
		// (each with a bucket of its own) are bounded by the IP's budget.
		_, _ = g.o.Failures.Allow(context.WithoutCancel(g.r.Context()), g.failures, 1)
	}
}

// spend takes one request from bucket of the shared Limiter and sets the rate-limit headers;
// see spendFrom.
func (g *guard) spend(bucket, scope string) bool {
	return g.spendFrom(g.o.Limiter, bucket, scope, true)
}

// spendFrom takes one request from bucket of l (setting the rate-limit headers when headers is
// set). It reports whether the request may go on; when not, the 429 has been written. A nil l
// lets everything pass.
func (g *guard) spendFrom(l ratelimit.Limiter, bucket, scope string, headers bool) bool {
	if l == nil {
		return true
	}
	d, err := l.Allow(g.r.Context(), bucket, 1)
	return g.decide(d, err, scope, headers)
}

func (g *guard) decide(d ratelimit.Decision, err error, scope string, headers bool) bool {
	if err != nil {
		if g.r.Context().Err() != nil {
			return false // the client went away
		}
		// Not reachable with the Failover limiter (its in-memory fallback never fails). Let
		// the request through, loudly.
		g.o.Logger.ErrorContext(g.r.Context(), "rate limiter failed; request not limited", slog.Any("error", err))
		return true
	}
	if d.Allowed {
		if headers {
			g.w.Header().Set(HeaderRateLimitLimit, strconv.Itoa(d.Limit))
			g.w.Header().Set(HeaderRateLimitRemaining, strconv.Itoa(d.Remaining))
		}
		return true
	}
	if g.o.OnReject != nil {
		g.o.OnReject(scope)
	}
	secs := d.RetryAfterSeconds()
	h := g.w.Header()
	h.Set(HeaderRetryAfter, strconv.FormatInt(secs, 10))
	h.Set(HeaderRateLimitLimit, strconv.Itoa(d.Limit))
	h.Set(HeaderRateLimitRemaining, "0")
	writeError(g.w, g.r, http.StatusTooManyRequests, apiError{
		Code:     errcode.RateLimited,
		Message:  fmt.Sprintf("rate limit of %d requests per minute exceeded; retry after %d s", d.Limit, secs),
		GRPCCode: "RESOURCE_EXHAUSTED",
	})
	return false
}

func (g *guard) unauthenticated() {
	writeError(g.w, g.r, http.StatusUnauthorized, apiError{
		Code:     errcode.AuthRequired,
		Message:  `invalid credential: Authorization must be "Bearer <access token or API key>"`,
		GRPCCode: "UNAUTHENTICATED",
	})
}

// LoginPath is the password login route, whose requests each cost the auth service an argon2id
// hash.
const LoginPath = "/api/v1/auth/login"

// Defaults of LoginCap.
const (
	// DefaultMaxConcurrentLogins is how many logins one gateway lets through to the auth
	// service at once.
	DefaultMaxConcurrentLogins = 4
	// DefaultLoginsPerSecond is how many logins per second one gateway lets through in a
	// sustained stream. Each costs the auth service an argon2id hash (~25 ms of a core and
	// 19 MiB), so under a flood of bad logins this is the CPU the flood can take from everything
	// else: 5 hashes a second is about an eighth of a core, and 18,000 logins an hour is far more
	// than the people and tools of a hosting operation need (sessions renew with refresh
	// tokens, API keys need no login).
	DefaultLoginsPerSecond = 5
	// DefaultLoginBurst is how many logins may arrive at once after a quiet spell (a shift
	// starting); a sustained flood keeps the bucket empty, so it adds nothing to an attack.
	DefaultLoginBurst = 20
)

// loginRetryAfter is the Retry-After, in seconds, of a login shed by WithLoginCap.
const loginRetryAfter = "1"

// LoginCap bounds the logins one gateway passes to the auth service (WithLoginCap).
type LoginCap struct {
	// MaxInFlight is how many may be in flight at once; 0 means DefaultMaxConcurrentLogins.
	MaxInFlight int
	// PerSecond is how many may start per second, sustained; 0 means DefaultLoginsPerSecond.
	PerSecond int
	// Burst is how many may start at once; 0 means DefaultLoginBurst. It is never less than
	// PerSecond.
	Burst int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// WithLoginCap lets at most c.MaxInFlight POST /api/v1/auth/login requests through at once and
// at most c.PerSecond per second (c.Burst at once), and answers any further one at once with 429 API_001 and
// Retry-After, without calling the auth service. Each login costs auth an expensive password
// hash (auth runs few at a time and refuses the rest itself, but each refusal still costs a
// backend call and an audit entry), so under a flood of logins this sheds the excess at the
// edge, where it is cheapest, while every other route is untouched. The cap is per gateway
// replica. Shed logins never reached a password check, so they are not failed logins for the
// audit log; they are counted through onReject (scope "login").
func WithLoginCap(c LoginCap, onReject func(scope string)) Middleware {
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxConcurrentLogins
	}
	if c.PerSecond <= 0 {
		c.PerSecond = DefaultLoginsPerSecond
	}
	if c.Burst <= 0 {
		c.Burst = DefaultLoginBurst
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	slots := make(chan struct{}, c.MaxInFlight)
	starts := rate.NewLimiter(rate.Limit(c.PerSecond), max(c.Burst, c.PerSecond))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || r.URL.Path != LoginPath {
				next.ServeHTTP(w, r)
				return
			}
			select {
			case slots <- struct{}{}:
				if starts.AllowN(c.Now(), 1) {
					defer func() { <-slots }()
					next.ServeHTTP(w, r)
					return
				}
				<-slots
			default:
			}
			if onReject != nil {
				onReject(ScopeLogin)
			}
			w.Header().Set(HeaderRetryAfter, loginRetryAfter)
			writeError(w, r, http.StatusTooManyRequests, apiError{
				Code:     errcode.RateLimited,
				Message:  "too many logins in progress; retry after " + loginRetryAfter + " s",
				GRPCCode: "RESOURCE_EXHAUSTED",
			})
		})
	}
}
