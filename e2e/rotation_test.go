package e2e

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
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

	// A new CA and a serving certificate it signs.
	ca, caKey := issue(t, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rotation-ca"},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, nil)
	serial := big.NewInt(time.Now().UnixNano())
	leaf, leafKey := issue(t, servingCert(serial, "lanyard"), ca, caKey)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	wio := &testEnv.WebhookInstallOptions

	// 1. Trust both issuers.
	setCABundle(t, append(append([]byte{}, wio.LocalServingCAData...), caPEM...))
	t.Cleanup(func() { setCABundle(t, wio.LocalServingCAData) }) // after the original certificate is back
	time.Sleep(time.Second)                                      // the API server picks up the new caBundle

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
	swapServingCert(t, leaf, leafKey)
	waitServed(t, serial, "the rotated certificate is served")
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	assert.Positive(t, created.Load())
	assert.Zero(t, failed.Load(), "admissions failed during rotation (%d ok): %v", created.Load(), firstErr)
	t.Logf("%d pods admitted across the certificate rotation, %d failed", created.Load(), failed.Load())
}
