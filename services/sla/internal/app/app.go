// Package app wires the sla service: its spec (identity, schema, ports) and the registration of its
// gRPC implementation on the shared runtime.
package app

import (
	"context"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/hashinsight/platform/pkg/service"
	slav1 "github.com/hashinsight/platform/proto/hashinsight/sla/v1"
	"github.com/hashinsight/platform/services/sla/migrations"
)

// Spec describes the sla binary: SPIFFE identity svc/sla, schema sla, gRPC :7004, HTTP :9104.
func Spec() service.Spec {
	return service.Spec{
		Name:            "sla",
		Services:        []protoreflect.FullName{protoreflect.FullName(slav1.SLAService_ServiceDesc.ServiceName)},
		Migrations:      migrations.FS,
		DefaultGRPCAddr: ":7004",
		DefaultHTTPAddr: ":9104",
	}
}

// Register registers the SLAService implementation. No RPC of it is built yet, so every method
// answers UNIMPLEMENTED through the generated default rather than with invented data.
func Register(_ context.Context, rt *service.Runtime) error {
	slav1.RegisterSLAServiceServer(rt.GRPC(), slav1.UnimplementedSLAServiceServer{})
	return nil
}
