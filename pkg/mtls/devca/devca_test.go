package devca_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hashinsight/platform/pkg/mtls"
	"github.com/hashinsight/platform/pkg/mtls/devca"
)

var ids = []mtls.Identity{mtls.Service("mining"), mtls.Service("gateway"), mtls.Operator("dev")}

// snapshot returns every file in dir with its content and mode.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = info.Mode().String() + info.ModTime().String() + "\n" + string(data)
	}
	return out
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s: no certificate", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEnsure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	files, err := devca.Ensure(dir, ids)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}

	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o700 {
		t.Errorf("dir mode %v, want 0700", perm)
	}
	wantNames := []string{"ca.crt", "ca.key", "operator-dev.crt", "operator-dev.key", "svc-gateway.crt", "svc-gateway.key", "svc-mining.crt", "svc-mining.key"}
	snap := snapshot(t, dir)
	var names []string
	for n := range snap {
		names = append(names, n)
	}
	slices.Sort(names)
	if !slices.Equal(names, wantNames) {
		t.Fatalf("files %v, want %v", names, wantNames)
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".key" {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s mode %v, want 0600", path, perm)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	ca := readCert(t, files.CACert)
	if !ca.IsCA || ca.NotAfter.Sub(ca.NotBefore) < 10*365*24*time.Hour {
		t.Errorf("CA: IsCA=%v lifetime %s", ca.IsCA, ca.NotAfter.Sub(ca.NotBefore))
	}
	if pub, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", ca.PublicKey)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)

	for _, id := range ids {
		lf := files.Leaves[id]
		if lf != devca.LeafPaths(dir, id) {
			t.Errorf("Leaves[%v] = %+v", id, lf)
		}
		c := readCert(t, lf.Cert)
		got, err := mtls.IdentityFromCert(c)
		if err != nil || got != id {
			t.Errorf("%v: identity %v, %v", id, got, err)
		}
		if want := id.Name + "." + id.Kind + ".hashinsight.local"; c.Subject.CommonName != want {
			t.Errorf("%v: CN %q, want %q", id, c.Subject.CommonName, want)
		}
		if !slices.Equal(c.Subject.Organization, []string{"HashInsight"}) || !slices.Equal(c.Subject.Country, []string{"US"}) {
			t.Errorf("%v: subject %v", id, c.Subject)
		}
		if !slices.Equal(c.DNSNames, []string{"localhost", id.Name}) {
			t.Errorf("%v: DNS SANs %v", id, c.DNSNames)
		}
		if len(c.IPAddresses) != 1 || !c.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
			t.Errorf("%v: IP SANs %v", id, c.IPAddresses)
		}
		if life := c.NotAfter.Sub(c.NotBefore); life < 365*24*time.Hour || life > 366*24*time.Hour {
			t.Errorf("%v: lifetime %s", id, life)
		}
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("%v: verify for usage %v: %v", id, usage, err)
			}
		}
		// The pair loads as an mtls.Source, which checks key, chain and identity.
		src, err := mtls.NewSource(files.Config(id), nil)
		if err != nil {
			t.Errorf("%v: NewSource: %v", id, err)
		} else if src.Identity() != id {
			t.Errorf("%v: source identity %v", id, src.Identity())
		}
	}

	// A second run changes nothing, byte for byte and timestamp for timestamp.
	again, err := devca.Ensure(dir, ids)
	if err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	if !mapsEqual(snapshot(t, dir), snap) {
		t.Fatal("second Ensure modified files")
	}
	if again.CACert != files.CACert || len(again.Leaves) != len(files.Leaves) {
		t.Fatalf("second Ensure returned %+v, want %+v", again, files)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestEnsureRepairs(t *testing.T) {
	dir := t.TempDir()
	files, err := devca.Ensure(dir, ids[:1])
	if err != nil {
		t.Fatal(err)
	}
	id := ids[0]
	lf := files.Leaves[id]

	tests := []struct {
		name    string
		corrupt func(t *testing.T)
	}{
		{"missing key", func(t *testing.T) { mustRemove(t, lf.Key) }},
		{"missing certificate", func(t *testing.T) { mustRemove(t, lf.Cert) }},
		{"corrupt certificate", func(t *testing.T) { mustWrite(t, lf.Cert, []byte("junk")) }},
		{"key of another identity", func(t *testing.T) {
			other, err := devca.Ensure(dir, ids[1:2])
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(other.Leaves[ids[1]].Key)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, lf.Key, data)
		}},
		{"certificate from another CA", func(t *testing.T) {
			otherDir := t.TempDir()
			other, err := devca.Ensure(otherDir, []mtls.Identity{id})
			if err != nil {
				t.Fatal(err)
			}
			copyFile(t, other.Leaves[id].Cert, lf.Cert)
			copyFile(t, other.Leaves[id].Key, lf.Key)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := os.ReadFile(lf.Cert)
			tt.corrupt(t)
			if _, err := devca.Ensure(dir, ids[:1]); err != nil {
				t.Fatalf("Ensure: %v", err)
			}
			after, err := os.ReadFile(lf.Cert)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(before, after) {
				t.Fatal("certificate not reissued")
			}
			if _, err := mtls.NewSource(files.Config(id), nil); err != nil {
				t.Fatalf("repaired pair does not load: %v", err)
			}
		})
	}
}

func TestEnsureCAIncomplete(t *testing.T) {
	dir := t.TempDir()
	if _, err := devca.EnsureCA(dir); err != nil {
		t.Fatal(err)
	}
	mustRemove(t, filepath.Join(dir, devca.CACertFile))
	if _, err := devca.Ensure(dir, ids); err == nil {
		t.Fatal("Ensure with a lone CA key succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, devca.CACertFile)); err == nil {
		t.Fatal("Ensure recreated the CA certificate next to a lone key")
	}
}

func TestEnsureRejectsInvalidIdentity(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	if _, err := devca.Ensure(dir, []mtls.Identity{{Kind: "svc", Name: "Bad/Name"}}); err == nil {
		t.Fatal("Ensure accepted an invalid identity")
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatal("Ensure created files before validating identities")
	}
}

func TestWriteLeafRotates(t *testing.T) {
	dir := t.TempDir()
	files, err := devca.Ensure(dir, ids[:1])
	if err != nil {
		t.Fatal(err)
	}
	ca, err := devca.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	id := ids[0]
	old := readCert(t, files.Leaves[id].Cert)
	lf, err := ca.WriteLeaf(dir, id)
	if err != nil {
		t.Fatal(err)
	}
	rotated := readCert(t, lf.Cert)
	if rotated.SerialNumber.Cmp(old.SerialNumber) == 0 {
		t.Fatal("rotation kept the serial number")
	}
	if _, err := mtls.NewSource(files.Config(id), nil); err != nil {
		t.Fatalf("rotated pair does not load: %v", err)
	}
	// Ensure accepts the rotated pair as is.
	before := snapshot(t, dir)
	if _, err := devca.Ensure(dir, ids[:1]); err != nil {
		t.Fatal(err)
	}
	if !mapsEqual(before, snapshot(t, dir)) {
		t.Fatal("Ensure replaced a freshly rotated pair")
	}
	// No temporary files are left behind.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name()[0] == '.' {
			t.Errorf("leftover %s", e.Name())
		}
	}
}

func mustRemove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, dst, data)
}
