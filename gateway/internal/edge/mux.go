package edge

import (
	"context"
	"net/http"
	"net/textproto"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
)

// Metadata keys the gateway sets on every outgoing call.
const (
	MDRequestID    = "x-request-id"
	MDForwardedFor = "x-forwarded-for"
)

// forwardedHeaders are the request headers passed to the backends as gRPC
// metadata (lower-cased). Authorization is not listed: grpc-gateway always
// passes it as "authorization", and matching it here too would send it
// twice. X-Request-ID and X-Forwarded-For are not listed either: the
// gateway sets them itself from the validated values (see annotate).
var forwardedHeaders = map[string]string{
	"X-Collector-Key": "x-collector-key",
	"X-Site-Id":       "x-site-id",
	"X-Device-Id":     "x-device-id",
	"X-Zone-Id":       "x-zone-id",
	"X-Upload-Mode":   "x-upload-mode",
	"Traceparent":     "traceparent",
	"Tracestate":      "tracestate",
	"Baggage":         "baggage",
	"Idempotency-Key": "idempotency-key",
}

// incomingHeaderMatcher forwards only the headers the backends use. Every
// other header (cookies, Grpc-Metadata-*, hop-by-hop headers) stays at the
// edge.
func incomingHeaderMatcher(key string) (string, bool) {
	md, ok := forwardedHeaders[textproto.CanonicalMIMEHeaderKey(key)]
	return md, ok
}

// annotate adds the request id and the resolved client IP. grpc-gateway lets
// annotator values replace header-derived values under the same key, so a
// client cannot spoof either.
func annotate(ctx context.Context, r *http.Request) metadata.MD {
	md := metadata.MD{}
	if id := RequestID(r.Context()); id != "" {
		md.Set(MDRequestID, id)
	}
	if ip := ClientIP(r.Context()); ip != "" {
		md.Set(MDForwardedFor, ip)
	}
	return md
}

func dropMetadata(string) (string, bool) { return "", false }

// NewMux returns the grpc-gateway mux with the gateway's error body, header
// forwarding and JSON options (proto field names, unpopulated fields
// omitted, unknown request fields ignored).
func NewMux(opts ...runtime.ServeMuxOption) *runtime.ServeMux {
	marshaler := &runtime.HTTPBodyMarshaler{
		Marshaler: &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: false},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
		},
	}
	base := []runtime.ServeMuxOption{
		runtime.WithMarshalerOption(runtime.MIMEWildcard, marshaler),
		runtime.WithErrorHandler(errorHandler),
		runtime.WithRoutingErrorHandler(routingErrorHandler),
		runtime.WithIncomingHeaderMatcher(incomingHeaderMatcher),
		runtime.WithMetadata(annotate),
		runtime.WithDisableHTTPMethodOverride(),
		// Backend response metadata stays inside the mesh: the REST contract
		// is the status and the body (grpc-gateway would otherwise emit every
		// header and trailer as Grpc-Metadata-*).
		runtime.WithOutgoingHeaderMatcher(dropMetadata),
		runtime.WithOutgoingTrailerMatcher(dropMetadata),
	}
	return runtime.NewServeMux(append(base, opts...)...)
}

// Handle registers an http.Handler on mux for method and path (grpc-gateway
// path syntax). Handlers see the same middleware, error body and routing
// errors as the REST routes.
func Handle(mux *runtime.ServeMux, method, path string, h http.Handler) error {
	return mux.HandlePath(method, path, func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		h.ServeHTTP(w, r)
	})
}
