package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, time.December, 1, 12, 0, 0, 0, time.UTC)

func TestServingCertificate(t *testing.T) {
	ca, err := NewCA(t0, 365*24*time.Hour)
	require.NoError(t, err)
	names := append(ServiceNames("lanyard-webhook", "lanyard-system"), "127.0.0.1")
	leaf, err := IssueServing(ca, names, t0, 90*24*time.Hour)
	require.NoError(t, err)

	tests := map[string]func(t *testing.T){
		"the CA is a CA that signs certificates and nothing below it": func(t *testing.T) {
			assert.True(t, ca.Cert.IsCA)
			assert.True(t, ca.Cert.MaxPathLenZero)
			assert.NotZero(t, ca.Cert.KeyUsage&x509.KeyUsageCertSign)
		},
		"keys are ECDSA P-256": func(t *testing.T) {
			for _, kp := range []*KeyPair{ca, leaf} {
				pub, ok := kp.Cert.PublicKey.(*ecdsa.PublicKey)
				require.True(t, ok)
				assert.Equal(t, elliptic.P256(), pub.Curve)
			}
		},
		"the leaf names the Service's four DNS names and extra IPs": func(t *testing.T) {
			assert.Equal(t, []string{"lanyard-webhook", "lanyard-webhook.lanyard-system", "lanyard-webhook.lanyard-system.svc",
				"lanyard-webhook.lanyard-system.svc.cluster.local"}, leaf.Cert.DNSNames)
			require.Len(t, leaf.Cert.IPAddresses, 1)
			assert.True(t, HasNames(leaf.Cert, names))
			assert.False(t, HasNames(leaf.Cert, names[:2]))
		},
		"the leaf is for server auth only and not a CA": func(t *testing.T) {
			assert.False(t, leaf.Cert.IsCA)
			assert.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, leaf.Cert.ExtKeyUsage)
			assert.Equal(t, x509.KeyUsageDigitalSignature, leaf.Cert.KeyUsage)
		},
		"validity starts a minute early and lasts the lifetime": func(t *testing.T) {
			assert.Equal(t, t0.Add(-time.Minute), leaf.Cert.NotBefore)
			assert.Equal(t, t0.Add(90*24*time.Hour), leaf.Cert.NotAfter)
		},
		"the leaf verifies against the CA for every name": func(t *testing.T) {
			pool := x509.NewCertPool()
			pool.AddCert(ca.Cert)
			for _, n := range names {
				_, err := leaf.Cert.Verify(x509.VerifyOptions{DNSName: n, Roots: pool, CurrentTime: t0,
					KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
				assert.NoError(t, err, n)
			}
		},
		"a leaf never outlives its CA": func(t *testing.T) {
			short, err := NewCA(t0, time.Hour)
			require.NoError(t, err)
			l, err := IssueServing(short, names, t0, 24*time.Hour)
			require.NoError(t, err)
			assert.Equal(t, short.Cert.NotAfter, l.Cert.NotAfter)
		},
		"PEM round trip keeps certificate and key together": func(t *testing.T) {
			back, err := ParseKeyPair(leaf.CertPEM, leaf.KeyPEM)
			require.NoError(t, err)
			assert.True(t, back.Cert.Equal(leaf.Cert))
			_, err = ParseKeyPair(leaf.CertPEM, ca.KeyPEM)
			assert.ErrorContains(t, err, "does not belong to the certificate")
		},
	}
	for name, check := range tests {
		t.Run(name, check)
	}
}

// Files loads at once, reports the leaf and reloads when the files change.
func TestFilesSource(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewCA(time.Now(), 365*24*time.Hour)
	require.NoError(t, err)
	write := func() *KeyPair {
		leaf, err := IssueServing(ca, []string{"localhost"}, time.Now(), 24*time.Hour)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "tls.crt"), leaf.CertPEM, 0o600))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "tls.key"), leaf.KeyPEM, 0o600))
		return leaf
	}
	first := write()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ca.crt"), ca.CertPEM, 0o600))
	reg := prometheus.NewRegistry()
	f, err := NewFiles(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "ca.crt"), NewMetrics(reg), logr.Discard())
	require.NoError(t, err)
	require.NotNil(t, f.Leaf())
	assert.True(t, f.Leaf().Equal(first.Cert))
	expiry, err := testutil.GatherAndCount(reg, "lanyard_certificate_expiry_timestamp_seconds")
	require.NoError(t, err)
	assert.Equal(t, 2, expiry, "leaf and CA expiry")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = f.Start(ctx) }()
	second := write()
	require.Eventually(t, func() bool { return f.Leaf() != nil && f.Leaf().Equal(second.Cert) }, 15*time.Second, 20*time.Millisecond)
}
