// Package mtls is the mutual-TLS kit shared by every HashInsight process.
//
// It covers three concerns:
//
//   - Identities. Every certificate carries exactly one SPIFFE URI SAN in the
//     trust domain hashinsight.local, spiffe://hashinsight.local/<kind>/<name>,
//     where kind is "svc" (a service) or "operator" (a person or tool). The
//     short form "svc/mining" is what allow-lists are written in; see
//     [Identity], [ParseIdentity], [IdentityFromCert], [PeerIdentity] and
//     [MatchAny].
//
//   - Key material that follows the files on disk. A [Source] loads the CA
//     bundle, certificate and key named by the MTLS_* variables and re-reads
//     them when their content changes. New handshakes use the new material at
//     once; established connections are left alone. A change that does not
//     load (a half-written file, a key that does not match its certificate, a
//     certificate that does not chain to the CA bundle) is logged and ignored,
//     so the previous material stays in use.
//
//   - TLS configurations. [Source.ServerTLS] and [Source.ClientTLS] are TLS 1.3
//     only. The server side requires a client certificate chaining to the CA
//     bundle, carrying a valid SPIFFE identity and, when configured, a subject
//     matching MTLS_ALLOWED_DN_PATTERNS (see [DNFilter]). The client side
//     verifies the server's chain against the CA bundle itself and requires the
//     server's SPIFFE identity to be exactly the one expected; host names play
//     no part.
//
// Authorization (which identity may call which method) is not decided here:
// the server layer calls [PeerIdentity] and [MatchAny] against the allow-list
// declared on each RPC.
package mtls
