package telemetry

import (
	"testing"

	"github.com/hashinsight/platform/services/mining/internal/telemetry/collectorwire"
)

func TestLimits(t *testing.T) {
	tests := []struct {
		configured int
		records    int
		bytes      int64
	}{
		{0, 1000, collectorwire.DefaultMaxDecompressedBytes}, // unset: DESIGN's default
		{1000, 1000, collectorwire.DefaultMaxDecompressedBytes},
		{10, 10, collectorwire.DefaultMaxDecompressedBytes}, // never below 8 MiB
		{10_000, 10_000, 10_000 * bytesPerRecord},
	}
	for _, tc := range tests {
		got := limits(tc.configured)
		if got.MaxRecords != tc.records || got.MaxDecompressedBytes != tc.bytes {
			t.Errorf("limits(%d) = %+v, want %d records, %d bytes", tc.configured, got, tc.records, tc.bytes)
		}
	}
}
