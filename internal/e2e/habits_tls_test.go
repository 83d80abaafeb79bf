//go:build linux

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// privateCA writes a CA certificate and a server certificate for
// 127.0.0.1 it signs, as PEM files below dir.
func privateCA(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cairn test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	caCert, _ := x509.ParseCertificate(caDER)
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "EC PRIVATE KEY", keyDER)
}

// TestHabitsCACert: a cairn server on HTTPS with a certificate from a
// private CA. Without --cacert the client refuses the certificate; with
// --cacert or CAIRN_CACERT it initialises, backs up and lists.
func TestHabitsCACert(t *testing.T) {
	e := newEnv(t)
	s := &serverEnv{env: e, data: filepath.Join(e.dir, "server")}
	e.vars["CAIRN_SERVER_DATA"] = s.data
	e.ok("server", "init")
	pw := filepath.Join(e.dir, "alice.pass")
	os.WriteFile(pw, []byte("alice-secret-pw\n"), 0o600)
	e.ok("server", "client", "add", "alice", "--password-file", pw)
	caFile, cert, key := privateCA(t, e.dir)
	s.start(t, "--tls-cert", cert, "--tls-key", key)
	fp := s.fingerprint(t)
	e.vars["XDG_CONFIG_HOME"] = filepath.Join(e.dir, "config")
	repo := "rest:https://alice:alice-secret-pw@" + s.addr + "/alice/main"

	r := e.run("-r", repo, "init", "--server-fingerprint", fp)
	if r.code == 0 || !strings.Contains(r.stderr, "--cacert") {
		t.Fatalf("init trusted a private CA without --cacert: exit %d\n%s", r.code, r.stderr)
	}
	e.ok("-r", repo, "--cacert", caFile, "init", "--server-fingerprint", fp)
	src := filepath.Join(e.dir, "src")
	os.MkdirAll(src, 0o755)
	writeRandom(t, filepath.Join(src, "f"), 4096)
	e.ok("-r", repo, "--cacert", caFile, "backup", src)
	r = e.run("-r", repo, "snapshots")
	expectExit(t, r, 1, "pass its CA certificate with --cacert")
	out := e.runWith(map[string]string{"CAIRN_CACERT": caFile}, "-r", repo, "snapshots")
	if out.code != 0 || !strings.Contains(out.stdout, "1 snapshot") {
		t.Fatalf("snapshots with CAIRN_CACERT: exit %d\n%s%s", out.code, out.stdout, out.stderr)
	}
	r = e.run("-r", repo, "--cacert", filepath.Join(e.dir, "alice.pass"), "snapshots")
	expectExit(t, r, 1, "holds no PEM certificate")
}
