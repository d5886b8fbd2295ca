package collectorwire

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkDecode10k decodes one gzip upload of 10,000 flat records.
func BenchmarkDecode10k(b *testing.B) {
	recs := make([]string, 10_000)
	for i := range recs {
		recs[i] = strings.Replace(flat, `"SN-1"`, fmt.Sprintf(`"SN-%05d"`, i), 1)
	}
	body := gz(b, []byte("["+strings.Join(recs, ",")+"]"))
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Decode(body, "gzip", Limits{MaxRecords: 10_000, MaxDecompressedBytes: 64 << 20}); err != nil {
			b.Fatal(err)
		}
	}
}
