module github.com/hashinsight/platform/gateway

go 1.26.0

require (
	github.com/hashinsight/platform/pkg v0.0.0
	github.com/hashinsight/platform/proto v0.0.0
)

require github.com/grpc-ecosystem/grpc-gateway/v2 v2.33.0 // indirect

replace github.com/hashinsight/platform/proto => ../proto

replace github.com/hashinsight/platform/pkg => ../pkg
