module github.com/hashinsight/platform/services/mining

go 1.26.0

require (
	github.com/hashinsight/platform/pkg v0.0.0
	github.com/hashinsight/platform/proto v0.0.0
)

replace github.com/hashinsight/platform/proto => ../../proto

replace github.com/hashinsight/platform/pkg => ../../pkg
