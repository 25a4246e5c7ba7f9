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

// The serving certificate is reloaded from disk when it changes, without a restart: rotation by
// cert-manager or a Secret update needs nothing else.
func TestCertificateHotReload(t *testing.T) {
	dir := testEnv.WebhookInstallOptions.LocalServingCertDir
	crtPath, keyPath := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	origCrt, err := os.ReadFile(crtPath)
	require.NoError(t, err)
	origKey, err := os.ReadFile(keyPath)
	require.NoError(t, err)
	origSerial, err := servedSerial()
	require.NoError(t, err)

	// A new key pair for the same address.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial := big.NewInt(time.Now().UnixNano())
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "lanyard-rotated"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)

	restore := func() {
		_ = os.WriteFile(keyPath, origKey, 0o600)
		_ = os.WriteFile(crtPath, origCrt, 0o600)
	}
	t.Cleanup(func() {
		restore()
		require.Eventually(t, func() bool {
			s, err := servedSerial()
			return err == nil && s.Cmp(origSerial) == 0
		}, 30*time.Second, 100*time.Millisecond, "the original certificate is served again")
	})

	require.NoError(t, os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	require.NoError(t, os.WriteFile(crtPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.Eventually(t, func() bool {
		s, err := servedSerial()
		return err == nil && s.Cmp(serial) == 0
	}, 30*time.Second, 100*time.Millisecond, "the rotated certificate is served without a restart")
}
