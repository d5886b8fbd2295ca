// Package devca creates the development certificate authority and the
// per-identity certificates that `hictl dev up` and the tests use.
//
// Layout of a directory managed by Ensure:
//
//	ca.crt, ca.key                 the CA (ECDSA P-256, 10 years)
//	<kind>-<name>.crt, .key        one leaf per identity (ECDSA P-256, 1 year)
//
// Every leaf carries the SPIFFE URI SAN of its identity, DNS SANs "localhost"
// and "<name>", IP SAN 127.0.0.1, the subject
// CN=<name>.<kind>.hashinsight.local, O=HashInsight, C=US, and both the
// server- and client-auth key usages, so one file pair serves a process as
// server and as client. Directories are created 0700 and keys written 0600.
//
// This is a development tool: the CA key sits next to the certificates.
package devca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/hashinsight/platform/pkg/mtls"
)

// Lifetimes and renewal margin.
const (
	CALifetime   = 10 * 365 * 24 * time.Hour
	LeafLifetime = 365 * 24 * time.Hour
	// RenewBefore is how close to expiry an existing leaf may be before
	// Ensure replaces it.
	RenewBefore = 30 * 24 * time.Hour
	// backdate tolerates clock skew between processes.
	backdate = 5 * time.Minute
)

// File names inside a managed directory.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
)

// Files lists the paths of a managed directory.
type Files struct {
	Dir    string
	CACert string
	CAKey  string
	// Leaves has one entry per identity passed to Ensure.
	Leaves map[mtls.Identity]LeafFiles
}

// LeafFiles are the certificate and key paths of one identity.
type LeafFiles struct {
	Cert string
	Key  string
}

// Config returns the mtls configuration of identity id, verifying clients.
func (f Files) Config(id mtls.Identity) mtls.Config {
	l := LeafPaths(f.Dir, id)
	return mtls.Config{CACertPath: f.CACert, CertPath: l.Cert, KeyPath: l.Key, VerifyClient: true}
}

// LeafPaths returns where the certificate and key of id live in dir.
func LeafPaths(dir string, id mtls.Identity) LeafFiles {
	base := filepath.Join(dir, id.Kind+"-"+id.Name)
	return LeafFiles{Cert: base + ".crt", Key: base + ".key"}
}

// CA is a loaded certificate authority able to issue leaves.
type CA struct {
	Cert *x509.Certificate
	key  crypto.Signer
}

// Ensure makes dir hold a CA and a certificate for each identity. It creates
// the CA when neither ca.crt nor ca.key exists, and issues a leaf for each
// identity whose pair is missing, unreadable, issued by another CA, for
// another identity, or within RenewBefore of expiry. Anything already in order
// is left byte-for-byte untouched, so running it again changes nothing.
func Ensure(dir string, ids []mtls.Identity) (Files, error) {
	for _, id := range ids {
		if err := id.Validate(); err != nil {
			return Files{}, fmt.Errorf("devca: %w", err)
		}
	}
	ca, err := EnsureCA(dir)
	if err != nil {
		return Files{}, err
	}
	files := Files{
		Dir:    dir,
		CACert: filepath.Join(dir, CACertFile),
		CAKey:  filepath.Join(dir, CAKeyFile),
		Leaves: make(map[mtls.Identity]LeafFiles, len(ids)),
	}
	now := time.Now()
	for _, id := range ids {
		lf := LeafPaths(dir, id)
		files.Leaves[id] = lf
		if ca.leafInOrder(lf, id, now) {
			continue
		}
		if _, err := ca.WriteLeaf(dir, id); err != nil {
			return Files{}, err
		}
	}
	return files, nil
}

// EnsureCA loads the CA in dir, creating dir (0700) and a new CA when neither
// CA file exists. A directory holding only one of the two files is an error
// rather than something to overwrite. Tests use it on a second directory to
// get a CA the first one does not trust.
func EnsureCA(dir string) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("devca: create %s: %w", dir, err)
	}
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	certOK, err := exists(certPath)
	if err != nil {
		return nil, err
	}
	keyOK, err := exists(keyPath)
	if err != nil {
		return nil, err
	}
	switch {
	case certOK && keyOK:
		return LoadCA(dir)
	case certOK || keyOK:
		return nil, fmt.Errorf("devca: %s holds only one of %s and %s; remove it to start over", dir, CACertFile, CAKeyFile)
	}
	return createCA(dir)
}

// LoadCA loads ca.crt and ca.key from dir.
func LoadCA(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, fmt.Errorf("devca: read CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("devca: read CA key: %w", err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("devca: CA certificate: %w", err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("devca: CA key: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("devca: ca.crt is not a CA certificate")
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, errors.New("devca: ca.key does not match ca.crt")
	}
	return &CA{Cert: cert, key: key}, nil
}

func createCA(dir string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devca: generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "HashInsight Development CA", Organization: []string{"HashInsight"}, Country: []string{"US"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		// SubjectKeyId is derived by CreateCertificate for CA certificates
		// and copied into each leaf's AuthorityKeyId.
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("devca: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("devca: parse CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	// Key first: a crash in between leaves a lone key, which EnsureCA reports
	// instead of silently pairing a new certificate with it.
	if err := writeFileAtomic(filepath.Join(dir, CAKeyFile), keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, CACertFile), encodeCert(der), 0o644); err != nil {
		return nil, err
	}
	return &CA{Cert: cert, key: key}, nil
}

// IssueLeaf returns a new PEM certificate and PKCS#8 key for id, with a fresh
// key pair and serial number.
func (ca *CA) IssueLeaf(id mtls.Identity) (certPEM, keyPEM []byte, err error) {
	if err := id.Validate(); err != nil {
		return nil, nil, fmt.Errorf("devca: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("devca: generate key for %s: %w", id, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	notAfter := now.Add(LeafLifetime)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   id.Name + "." + id.Kind + "." + mtls.TrustDomain,
			Organization: []string{"HashInsight"},
			Country:      []string{"US"},
		},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{id.URI()},
		DNSNames:              []string{"localhost", id.Name},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("devca: issue certificate for %s: %w", id, err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return encodeCert(der), keyPEM, nil
}

// WriteLeaf issues a fresh leaf for id and writes it to dir, replacing any
// previous pair (`hictl dev certs --rotate`). Each file is replaced by an
// atomic rename; the key is written first. A reader that catches the pair
// between the two renames sees a key that does not match its certificate,
// which mtls.Source rejects until the certificate follows.
func (ca *CA) WriteLeaf(dir string, id mtls.Identity) (LeafFiles, error) {
	certPEM, keyPEM, err := ca.IssueLeaf(id)
	if err != nil {
		return LeafFiles{}, err
	}
	lf := LeafPaths(dir, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return LeafFiles{}, fmt.Errorf("devca: create %s: %w", dir, err)
	}
	if err := writeFileAtomic(lf.Key, keyPEM, 0o600); err != nil {
		return LeafFiles{}, err
	}
	if err := writeFileAtomic(lf.Cert, certPEM, 0o644); err != nil {
		return LeafFiles{}, err
	}
	return lf, nil
}

// leafInOrder reports whether the pair at lf is usable as is: it parses, the
// key matches, it was issued by ca for id, and it is not close to expiry.
func (ca *CA) leafInOrder(lf LeafFiles, id mtls.Identity, now time.Time) bool {
	certPEM, err := os.ReadFile(lf.Cert)
	if err != nil {
		return false
	}
	keyPEM, err := os.ReadFile(lf.Key)
	if err != nil {
		return false
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return false
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil || !publicKeysEqual(cert.PublicKey, key.Public()) {
		return false
	}
	if got, err := mtls.IdentityFromCert(cert); err != nil || got != id {
		return false
	}
	if now.Add(RenewBefore).After(cert.NotAfter) {
		return false
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	_, err = cert.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
	return err == nil
}

func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("devca: serial number: %w", err)
	}
	return serial.Add(serial, big.NewInt(1)), nil // never zero
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("devca: marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func parseCertPEM(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

func parseKeyPEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("no PEM PKCS#8 private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported key type %T", k)
	}
	return signer, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("devca: %w", err)
	}
}

// writeFileAtomic writes data to a temporary file in the target directory and
// renames it over path, so readers see the old or the new content, never a
// mix. It does not touch path when the content is already identical.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("devca: write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("devca: write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("devca: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("devca: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("devca: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("devca: write %s: %w", path, err)
	}
	return nil
}
