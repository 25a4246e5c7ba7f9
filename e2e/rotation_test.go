package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// setCABundle sets the caBundle of every webhook of lanyard's two configurations.
func setCABundle(t *testing.T, bundle []byte) {
	t.Helper()
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	require.NoError(t, k8s.Get(ctx(t), client.ObjectKey{Name: "lanyard"}, m))
	for i := range m.Webhooks {
		m.Webhooks[i].ClientConfig.CABundle = bundle
	}
	require.NoError(t, k8s.Update(ctx(t), m))
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	require.NoError(t, k8s.Get(ctx(t), client.ObjectKey{Name: "lanyard"}, v))
	for i := range v.Webhooks {
		v.Webhooks[i].ClientConfig.CABundle = bundle
	}
	require.NoError(t, k8s.Update(ctx(t), v))
}

// Certificate rotation as cert-manager does it: the new issuer is added to the caBundle first,
// then the serving certificate files change. Pods keep being admitted, with no failure, across
// the swap.
func TestCertificateRotationWithoutFailures(t *testing.T) {
	ns := namespace(t, true)
	serviceAccount(t, ns, "app", nil)
	association(t, ns, "app", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}})

	wio := &testEnv.WebhookInstallOptions
	crtPath, keyPath := filepath.Join(wio.LocalServingCertDir, "tls.crt"), filepath.Join(wio.LocalServingCertDir, "tls.key")
	origCrt, err := os.ReadFile(crtPath)
	require.NoError(t, err)
	origKey, err := os.ReadFile(keyPath)
	require.NoError(t, err)

	// A new CA and a serving certificate it signs.
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rotation-ca"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial := big.NewInt(time.Now().UnixNano())
	leafTmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "lanyard"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP(wio.LocalServingHost)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	require.NoError(t, err)
	leafKeyDER, err := x509.MarshalECPrivateKey(leafKey)
	require.NoError(t, err)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})

	// 1. Trust both issuers.
	setCABundle(t, append(append([]byte{}, wio.LocalServingCAData...), caPEM...))
	t.Cleanup(func() {
		_ = os.WriteFile(keyPath, origKey, 0o600)
		_ = os.WriteFile(crtPath, origCrt, 0o600)
		require.Eventually(t, func() bool {
			s, err := servedSerial()
			return err == nil && s.Cmp(serial) != 0
		}, 30*time.Second, 100*time.Millisecond)
		setCABundle(t, wio.LocalServingCAData)
	})
	time.Sleep(time.Second) // the API server picks up the new caBundle

	// 2. Keep creating pods through the API server while the serving certificate changes.
	var created, failed atomic.Int32
	var errMu sync.Mutex
	var firstErr error
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := newPod(ns, fmt.Sprintf("rot-%d-%d", w, i), "app")
				err := k8s.Create(ctx(t), p, client.DryRunAll)
				if err == nil && p.Annotations[policy.AnnotationInjected] != "aws" {
					err = fmt.Errorf("pod %s not injected", p.Name)
				}
				if err != nil {
					failed.Add(1)
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
				} else {
					created.Add(1)
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	require.NoError(t, os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: leafKeyDER}), 0o600))
	require.NoError(t, os.WriteFile(crtPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), 0o600))
	require.Eventually(t, func() bool {
		s, err := servedSerial()
		return err == nil && s.Cmp(serial) == 0
	}, 30*time.Second, 50*time.Millisecond, "the rotated certificate is served")
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	assert.Positive(t, created.Load())
	assert.Zero(t, failed.Load(), "admissions failed during rotation (%d ok): %v", created.Load(), firstErr)
	t.Logf("%d pods admitted across the certificate rotation, %d failed", created.Load(), failed.Load())
}
