package grpcapi

import (
	"context"
	"net"
	"net/netip"
	"strings"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/hashinsight/platform/pkg/mtls"
	"github.com/hashinsight/platform/services/auth/internal/reqinfo"
)

// forwardedFor is the metadata key in which the gateway passes the client IP it resolved.
const forwardedFor = "x-forwarded-for"

// gateway is the only caller whose x-forwarded-for is believed: anyone else could claim any
// address and so dodge the per-IP login throttle.
var gateway = mtls.Service("gateway")

// withClientIP returns ctx carrying the client IP: the first x-forwarded-for entry when the mTLS
// caller is the gateway, else the peer's address.
func withClientIP(ctx context.Context) context.Context {
	return reqinfo.WithClientIP(ctx, clientIP(ctx))
}

func clientIP(ctx context.Context) string {
	if id, err := mtls.PeerIdentity(ctx); err == nil && id == gateway {
		md, _ := metadata.FromIncomingContext(ctx)
		for _, v := range md.Get(forwardedFor) {
			first, _, _ := strings.Cut(v, ",")
			if addr, err := netip.ParseAddr(strings.TrimSpace(first)); err == nil {
				return addr.Unmap().String()
			}
		}
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		host, _, err := net.SplitHostPort(p.Addr.String())
		if err != nil {
			host = p.Addr.String()
		}
		if addr, err := netip.ParseAddr(host); err == nil {
			return addr.Unmap().String()
		}
	}
	return ""
}
