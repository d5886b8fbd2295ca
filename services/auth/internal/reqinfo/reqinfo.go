// Package reqinfo carries facts about the current request that the domain needs but that only the
// transport knows — today the client IP address, used for login throttling and audit entries.
package reqinfo

import "context"

type ipKey struct{}

// WithClientIP returns ctx carrying the client's IP address.
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, ipKey{}, ip)
}

// ClientIP returns the client IP address carried by ctx, or "".
func ClientIP(ctx context.Context) string {
	ip, _ := ctx.Value(ipKey{}).(string)
	return ip
}
