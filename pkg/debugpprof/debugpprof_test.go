package debugpprof_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashinsight/platform/pkg/debugpprof"
)

func TestRegister(t *testing.T) {
	mux := http.NewServeMux()
	debugpprof.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		path string
		want int
		body string
	}{
		{"/debug/pprof/", http.StatusOK, "goroutine"},
		{"/debug/pprof/heap?debug=1", http.StatusOK, "heap profile"},
		{"/debug/pprof/cmdline", http.StatusOK, ""},
		{"/debug/pprof/nothing", http.StatusNotFound, ""},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := srv.Client().Get(srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body strings.Builder
			if _, err := io.Copy(&body, resp.Body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.want || !strings.Contains(body.String(), tc.body) {
				t.Fatalf("status %d, want %d with %q in %.200q", resp.StatusCode, tc.want, tc.body, body.String())
			}
		})
	}
}
