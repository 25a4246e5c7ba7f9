package e2e

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
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// servedSerial is the serial number of the certificate lanyard presents.
func servedSerial() (*big.Int, error) {
	wio := &testEnv.WebhookInstallOptions
	conn, err := tls.Dial("tcp", net.JoinHostPort(wio.LocalServingHost, strconv.Itoa(wio.LocalServingPort)),
		&tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reading which certificate is served
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

// waitServed waits until lanyard presents the certificate with this serial number.
func waitServed(t *testing.T, serial *big.Int, msg string) {
	t.Helper()
	require.Eventually(t, func() bool {
		s, err := servedSerial()
		return err == nil && s.Cmp(serial) == 0
	}, 30*time.Second, 50*time.Millisecond, msg)
}

// issue makes a key and a certificate from tmpl, signed by parent (self-signed when parent is
// nil). Validity is set to the next hour.
func issue(t *testing.T, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert, key
}

// servingCert is a serving certificate for lanyard's address.
func servingCert(serial *big.Int, name string) *x509.Certificate {
	return &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP(testEnv.WebhookInstallOptions.LocalServingHost)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
}

// swapServingCert writes cert and key over lanyard's serving files. At cleanup the originals are
// written back and served again.
func swapServingCert(t *testing.T, cert *x509.Certificate, key *ecdsa.PrivateKey) {
	t.Helper()
	dir := testEnv.WebhookInstallOptions.LocalServingCertDir
	crtPath, keyPath := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	origCrt, err := os.ReadFile(crtPath)
	require.NoError(t, err)
	origKey, err := os.ReadFile(keyPath)
	require.NoError(t, err)
	origSerial, err := servedSerial()
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = os.WriteFile(keyPath, origKey, 0o600)
		_ = os.WriteFile(crtPath, origCrt, 0o600)
		waitServed(t, origSerial, "the original certificate is served again")
	})
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	require.NoError(t, os.WriteFile(crtPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600))
}

// The serving certificate is reloaded from disk when it changes, without a restart: rotation by
// cert-manager or a Secret update needs nothing else.
func TestCertificateHotReload(t *testing.T) {
	serial := big.NewInt(time.Now().UnixNano())
	cert, key := issue(t, servingCert(serial, "lanyard-rotated"), nil, nil)
	swapServingCert(t, cert, key)
	waitServed(t, serial, "the rotated certificate is served without a restart")
}
