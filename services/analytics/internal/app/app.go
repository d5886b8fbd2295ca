// Package app wires the analytics service: its spec (identity, schema, ports) and the registration of its
// gRPC implementation on the shared runtime.
package app

import (
	"context"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/hashinsight/platform/pkg/service"
	analyticsv1 "github.com/hashinsight/platform/proto/hashinsight/analytics/v1"
	"github.com/hashinsight/platform/services/analytics/migrations"
)

// Spec describes the analytics binary: SPIFFE identity svc/analytics, schema analytics, gRPC :7005, HTTP :9105.
func Spec() service.Spec {
	return service.Spec{
		Name:            "analytics",
		Services:        []protoreflect.FullName{protoreflect.FullName(analyticsv1.AnalyticsService_ServiceDesc.ServiceName)},
		Migrations:      migrations.FS,
		DefaultGRPCAddr: ":7005",
		DefaultHTTPAddr: ":9105",
	}
}

// Register registers the AnalyticsService implementation. No RPC of it is built yet, so every method
// answers UNIMPLEMENTED through the generated default rather than with invented data.
func Register(_ context.Context, rt *service.Runtime) error {
	analyticsv1.RegisterAnalyticsServiceServer(rt.GRPC(), analyticsv1.UnimplementedAnalyticsServiceServer{})
	return nil
}
