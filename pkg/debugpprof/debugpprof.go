// Package debugpprof mounts Go's runtime profiles (net/http/pprof) on a process's ops listener, for
// on-call engineers and benchmarks: /debug/pprof/ (index), profile (CPU, ?seconds=N), heap,
// goroutine, mutex, block, allocs and trace. Processes mount it only when PPROF_ENABLED is true:
// profiles reveal code paths and memory contents, so the ops listener must not be public.
package debugpprof

import (
	"net/http"
	"net/http/pprof"
)

// Prefix is the path every profile is served under.
const Prefix = "/debug/pprof/"

// Register mounts the profile handlers on mux.
func Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+Prefix, pprof.Index) // named profiles: heap, goroutine, allocs, …
	mux.HandleFunc("GET "+Prefix+"cmdline", pprof.Cmdline)
	mux.HandleFunc("GET "+Prefix+"profile", pprof.Profile)
	mux.HandleFunc("GET "+Prefix+"symbol", pprof.Symbol)
	mux.HandleFunc("POST "+Prefix+"symbol", pprof.Symbol)
	mux.HandleFunc("GET "+Prefix+"trace", pprof.Trace)
}
