// Package app wires the mining service: its spec (identity, schema, ports) and the registration of its
// gRPC implementation on the shared runtime.
package app

import (
	"context"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/hashinsight/platform/pkg/service"
	miningv1 "github.com/hashinsight/platform/proto/hashinsight/mining/v1"
	"github.com/hashinsight/platform/services/mining/migrations"
)

// Spec describes the mining binary: SPIFFE identity svc/mining, schema mining, gRPC :7002, HTTP :9102.
func Spec() service.Spec {
	return service.Spec{
		Name:            "mining",
		Services:        []protoreflect.FullName{protoreflect.FullName(miningv1.MiningService_ServiceDesc.ServiceName)},
		Migrations:      migrations.FS,
		DefaultGRPCAddr: ":7002",
		DefaultHTTPAddr: ":9102",
	}
}

// Register registers the MiningService implementation. No RPC of it is built yet, so every method
// answers UNIMPLEMENTED through the generated default rather than with invented data.
func Register(_ context.Context, rt *service.Runtime) error {
	miningv1.RegisterMiningServiceServer(rt.GRPC(), miningv1.UnimplementedMiningServiceServer{})
	return nil
}
