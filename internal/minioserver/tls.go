package minioserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// StartTLS starts a server that speaks https with a self-signed certificate
// for 127.0.0.1; CAFile names the PEM a client must trust.
func StartTLS(t testing.TB) *Server {
	t.Helper()
	if Binary() == "" {
		Start(t) // skips or fails as Start does
	}
	certs := t.TempDir()
	writeSelfSigned(t, certs)
	s := &Server{t: t, bin: Binary(), dataDir: t.TempDir(), addr: freeAddr(t), certsDir: certs}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// CAFile is the PEM certificate a client must trust, or "" without TLS.
func (s *Server) CAFile() string {
	if s.certsDir == "" {
		return ""
	}
	return filepath.Join(s.certsDir, "public.crt")
}

// transport trusts the server's certificate.
func (s *Server) transport() *http.Transport {
	tr := &http.Transport{DisableKeepAlives: true}
	if s.certsDir != "" {
		pool := x509.NewCertPool()
		if pem, err := os.ReadFile(s.CAFile()); err == nil {
			pool.AppendCertsFromPEM(pem)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return tr
}

func writeSelfSigned(t testing.TB, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "cairn test minio"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("public.crt", "CERTIFICATE", der)
	write("private.key", "PRIVATE KEY", keyDER)
}
