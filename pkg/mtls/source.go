package mtls

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultReloadInterval is how often [Source.Run] re-reads the files when
// Config.ReloadInterval is zero.
const DefaultReloadInterval = 2 * time.Second

// Config names the key material of one process. It mirrors the MTLS_*
// variables.
type Config struct {
	// CACertPath is a PEM bundle of the CA certificates trusted for peers
	// (MTLS_CA_CERT_PATH). Several CAs may be listed during a CA rotation.
	CACertPath string
	// CertPath is the PEM certificate chain of this process, leaf first
	// (MTLS_SERVER_CERT_PATH). It is used both as server and as client
	// certificate.
	CertPath string
	// KeyPath is the PEM private key of CertPath (MTLS_SERVER_KEY_PATH).
	KeyPath string
	// VerifyClient makes a client certificate mandatory (MTLS_VERIFY_CLIENT).
	// When false, a client without a certificate completes the handshake but
	// has no identity, so per-RPC allow-lists still refuse it; a certificate
	// that is presented is verified in full either way. HashInsight services
	// always run with true.
	VerifyClient bool
	// AllowedDNPatterns filters client certificate subjects
	// (MTLS_ALLOWED_DN_PATTERNS); see [DNFilter] for the syntax. Empty means no
	// subject filter.
	AllowedDNPatterns []string
	// ReloadInterval is the polling period of [Source.Run]; zero means
	// DefaultReloadInterval.
	ReloadInterval time.Duration
}

// Source holds the current CA bundle, certificate and key, and swaps them
// atomically when the files change. It is safe for concurrent use.
type Source struct {
	cfg    Config
	dn     *DNFilter
	logger *slog.Logger

	cur atomic.Pointer[material]

	mu       sync.Mutex // serialises reloads; guards lastErr and errCount
	lastErr  string     // last error seen by Run
	errCount int        // consecutive polls that failed with lastErr
}

// material is one consistent, verified set of key material. It is never
// modified after being published.
type material struct {
	cert   *tls.Certificate // Leaf is set
	pool   *x509.CertPool
	id     Identity
	digest [sha256.Size]byte
}

// NewSource loads the material named by cfg. It fails when any file is
// missing or unusable: the key must match the certificate, the certificate
// must chain to the CA bundle, be currently valid and carry a valid SPIFFE
// identity. A nil logger discards logs.
func NewSource(cfg Config, logger *slog.Logger) (*Source, error) {
	if cfg.CACertPath == "" || cfg.CertPath == "" || cfg.KeyPath == "" {
		return nil, errors.New("mtls: CA certificate, certificate and key paths are all required")
	}
	if cfg.ReloadInterval < 0 {
		return nil, fmt.Errorf("mtls: negative reload interval %s", cfg.ReloadInterval)
	}
	if cfg.ReloadInterval == 0 {
		cfg.ReloadInterval = DefaultReloadInterval
	}
	dn, err := ParseDNPatterns(cfg.AllowedDNPatterns)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Source{cfg: cfg, dn: dn, logger: logger}
	if _, err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Identity returns the SPIFFE identity of the current certificate.
func (s *Source) Identity() Identity { return s.cur.Load().id }

// Leaf returns the current leaf certificate. Callers must not modify it.
func (s *Source) Leaf() *x509.Certificate { return s.cur.Load().cert.Leaf }

// Run re-reads the files every ReloadInterval until ctx is done. A change that
// loads is published for new handshakes; one that does not leaves the
// previous material in use and is logged as an error once it persists for two
// polls (once per distinct failure).
func (s *Source) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, err := s.reload()
			s.noteResult(err)
		}
	}
}

// noteResult logs a failed poll once it has failed the same way twice in a
// row, and then not again until the failure changes or clears. One failed
// poll alone is normal: a rotation that replaces the certificate and the key
// one after the other is briefly inconsistent.
func (s *Source) noteResult(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.lastErr, s.errCount = "", 0
		return
	}
	msg := err.Error()
	if msg != s.lastErr {
		s.lastErr, s.errCount = msg, 0
	}
	s.errCount++
	switch s.errCount {
	case 1:
		s.logger.Debug("mtls: certificate material on disk not loadable yet", "err", err)
	case 2:
		s.logger.Error("mtls: certificate material on disk rejected, keeping the previous material", "err", err)
	}
}

// Reload re-reads the files now. It returns nil when the content is unchanged
// or the new material was published, and an error (leaving the previous
// material in use) when the new content does not load.
func (s *Source) Reload() error {
	_, err := s.reload()
	return err
}

func (s *Source) reload() (changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	caPEM, err := os.ReadFile(s.cfg.CACertPath)
	if err != nil {
		return false, fmt.Errorf("mtls: read CA bundle: %w", err)
	}
	certPEM, err := os.ReadFile(s.cfg.CertPath)
	if err != nil {
		return false, fmt.Errorf("mtls: read certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(s.cfg.KeyPath)
	if err != nil {
		return false, fmt.Errorf("mtls: read key: %w", err)
	}
	// Hashing the content rather than trusting mtimes catches copies that
	// preserve timestamps and costs nothing at these sizes.
	digest := digestOf(caPEM, certPEM, keyPEM)
	old := s.cur.Load()
	if old != nil && old.digest == digest {
		return false, nil
	}
	m, err := buildMaterial(caPEM, certPEM, keyPEM)
	if err != nil {
		return false, err
	}
	m.digest = digest
	s.cur.Store(m)

	attrs := []any{
		"identity", m.id.String(),
		"serial", m.cert.Leaf.SerialNumber.String(),
		"not_after", m.cert.Leaf.NotAfter.UTC().Format(time.RFC3339),
	}
	if old == nil {
		s.logger.Info("mtls: certificate material loaded", attrs...)
	} else {
		s.logger.Info("mtls: certificate material reloaded", attrs...)
	}
	return true, nil
}

func digestOf(parts ...[]byte) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

func buildMaterial(caPEM, certPEM, keyPEM []byte) (*material, error) {
	pool, err := parseCABundle(caPEM)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("mtls: certificate and key: %w", err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("mtls: parse certificate: %w", err)
		}
	}
	id, err := IdentityFromCert(pair.Leaf)
	if err != nil {
		return nil, fmt.Errorf("mtls: own certificate: %w", err)
	}
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("mtls: parse certificate chain: %w", err)
		}
		inter.AddCert(c)
	}
	_, err = pair.Leaf.Verify(x509.VerifyOptions{
		Roots:         pool,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, fmt.Errorf("mtls: own certificate %s does not verify against the CA bundle: %w", id, err)
	}
	return &material{cert: &pair, pool: pool, id: id}, nil
}

func parseCABundle(data []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := bytes.TrimSpace(data); len(rest) > 0; rest = bytes.TrimSpace(rest) {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("mtls: CA bundle: trailing data is not PEM")
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("mtls: CA bundle: %w", err)
		}
		if !c.IsCA {
			return nil, fmt.Errorf("mtls: CA bundle: certificate %s (%s) is not a CA", c.SerialNumber, c.Subject)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("mtls: CA bundle: no certificates")
	}
	return pool, nil
}

// ServerTLS returns the server configuration. It accepts TLS 1.3 only,
// disables session resumption (so every connection is verified against the
// CA bundle current at its handshake) and picks up rotated material for each
// new handshake; established connections are unaffected. The client must
// present a certificate that chains to the current CA bundle (optional when
// Config.VerifyClient is false), carries a valid SPIFFE identity and passes
// the DN filter.
func (s *Source) ServerTLS() *tls.Config {
	clientAuth := tls.RequireAndVerifyClientCert
	if !s.cfg.VerifyClient {
		clientAuth = tls.VerifyClientCertIfGiven
	}
	perHandshake := func() *tls.Config {
		m := s.cur.Load()
		return &tls.Config{
			MinVersion:             tls.VersionTLS13,
			Certificates:           []tls.Certificate{*m.cert},
			ClientAuth:             clientAuth,
			ClientCAs:              m.pool,
			SessionTicketsDisabled: true,
			VerifyConnection:       s.verifyClient,
		}
	}
	cfg := perHandshake()
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return perHandshake(), nil
	}
	return cfg
}

// verifyClient runs after the TLS stack has verified the chain against
// ClientCAs with the client-auth key usage.
func (s *Source) verifyClient(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		if s.cfg.VerifyClient {
			return errors.New("mtls: client certificate required")
		}
		return nil
	}
	if len(cs.VerifiedChains) == 0 {
		return errors.New("mtls: client certificate not verified")
	}
	leaf := cs.VerifiedChains[0][0]
	id, err := IdentityFromCert(leaf)
	if err != nil {
		s.logger.Warn("mtls: refused client certificate", "subject", leaf.Subject.String(), "serial", leaf.SerialNumber.String(), "err", err)
		return fmt.Errorf("mtls: client certificate: %w", err)
	}
	if !s.dn.Match(leaf.Subject) {
		s.logger.Warn("mtls: refused client certificate: subject not allowed", "identity", id.String(), "subject", leaf.Subject.String(), "allowed_dn_patterns", s.dn.String())
		return fmt.Errorf("mtls: client subject %q matches no allowed DN pattern", leaf.Subject)
	}
	return nil
}

// ClientTLS returns a client configuration that presents the current
// certificate and accepts only a server whose certificate chains to the
// current CA bundle, is valid for server authentication and carries exactly
// the identity expect. An invalid expect makes every handshake fail.
//
// Server certificates are identified by their SPIFFE ID, not by host name, so
// the TLS stack's host-name verification is switched off and the chain is
// verified in VerifyConnection instead; RootCAs is deliberately left unset
// because the pool in use is always the current one.
func (s *Source) ClientTLS(expect Identity) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// The chain and the SPIFFE ID are verified in full in VerifyConnection.
		InsecureSkipVerify: true, //nolint:gosec // see above
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return s.cur.Load().cert, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			return s.verifyServer(cs, expect)
		},
	}
}

func (s *Source) verifyServer(cs tls.ConnectionState, expect Identity) error {
	if err := expect.Validate(); err != nil {
		return fmt.Errorf("mtls: expected server identity: %w", err)
	}
	if len(cs.PeerCertificates) == 0 {
		return errors.New("mtls: server presented no certificate")
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         s.cur.Load().pool,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("mtls: server certificate: %w", err)
	}
	id, err := IdentityFromCert(leaf)
	if err != nil {
		return fmt.Errorf("mtls: server certificate: %w", err)
	}
	if id != expect {
		return fmt.Errorf("mtls: server identity is %s, want %s", id, expect)
	}
	return nil
}
