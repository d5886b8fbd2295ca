// Package app wires the auth service: its spec (identity, schema, ports) and the registration of its
// gRPC implementation on the shared runtime.
package app

import (
	"context"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/hashinsight/platform/pkg/service"
	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
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

// Register registers the AuthService implementation. No RPC of it is built yet, so every method
// answers UNIMPLEMENTED through the generated default rather than with invented data.
func Register(_ context.Context, rt *service.Runtime) error {
	authv1.RegisterAuthServiceServer(rt.GRPC(), authv1.UnimplementedAuthServiceServer{})
	return nil
}
