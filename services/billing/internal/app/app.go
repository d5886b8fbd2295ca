// Package app wires the billing service: its spec (identity, schema, ports) and the registration of its
// gRPC implementation on the shared runtime.
package app

import (
	"context"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/hashinsight/platform/pkg/service"
	billingv1 "github.com/hashinsight/platform/proto/hashinsight/billing/v1"
	"github.com/hashinsight/platform/services/billing/migrations"
)

// Spec describes the billing binary: SPIFFE identity svc/billing, schema billing, gRPC :7003, HTTP :9103.
func Spec() service.Spec {
	return service.Spec{
		Name:            "billing",
		Services:        []protoreflect.FullName{protoreflect.FullName(billingv1.BillingService_ServiceDesc.ServiceName)},
		Migrations:      migrations.FS,
		DefaultGRPCAddr: ":7003",
		DefaultHTTPAddr: ":9103",
	}
}

// Register registers the BillingService implementation. No RPC of it is built yet, so every method
// answers UNIMPLEMENTED through the generated default rather than with invented data.
func Register(_ context.Context, rt *service.Runtime) error {
	billingv1.RegisterBillingServiceServer(rt.GRPC(), billingv1.UnimplementedBillingServiceServer{})
	return nil
}
