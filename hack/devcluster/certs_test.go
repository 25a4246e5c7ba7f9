package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func parseCert(t *testing.T, name string, data []byte) *x509.Certificate {
	t.Helper()
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s: no CERTIFICATE PEM block", name)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("%s: more than one PEM block", name)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return cert
}

// tls.crt chains to ca.crt for the names lanyard serve is reached by locally, and ca.crt is a real
// CA (not the serving certificate, which is what envtest's LocalServingCAData is).
func TestDevCertificates(t *testing.T) {
	now := time.Now()
	certs, err := newDevCertificates(now)
	if err != nil {
		t.Fatal(err)
	}
	ca := parseCert(t, "ca.crt", certs.CA)
	leaf := parseCert(t, "tls.crt", certs.Cert)

	if !ca.IsCA || !ca.BasicConstraintsValid {
		t.Errorf("ca.crt: IsCA=%v BasicConstraintsValid=%v, want a CA", ca.IsCA, ca.BasicConstraintsValid)
	}
	if ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("ca.crt: key usage %b lacks CertSign", ca.KeyUsage)
	}
	if err := ca.CheckSignatureFrom(ca); err != nil {
		t.Errorf("ca.crt is not self-signed: %v", err)
	}
	if leaf.IsCA {
		t.Error("tls.crt is a CA")
	}
	if ca.Equal(leaf) || bytes.Equal(certs.CA, certs.Cert) {
		t.Fatal("ca.crt is the serving certificate")
	}
	for name, c := range map[string]*x509.Certificate{"ca.crt": ca, "tls.crt": leaf} {
		pub, ok := c.PublicKey.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			t.Errorf("%s: public key %T, want ECDSA P-256", name, c.PublicKey)
		}
	}

	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		chains, err := leaf.Verify(x509.VerifyOptions{
			DNSName:     name,
			Roots:       roots,
			KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			CurrentTime: now,
		})
		if err != nil {
			t.Errorf("tls.crt does not verify against ca.crt for %s: %v", name, err)
			continue
		}
		if len(chains) != 1 || len(chains[0]) != 2 || !chains[0][1].Equal(ca) {
			t.Errorf("%s: chains %v, want tls.crt → ca.crt", name, chains)
		}
	}
	// And for nothing else.
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: roots}); err == nil {
		t.Error("tls.crt verifies for example.com")
	}

	pair, err := tls.X509KeyPair(certs.Cert, certs.Key)
	if err != nil {
		t.Fatalf("tls.crt/tls.key: %v", err)
	}
	if !pair.Leaf.Equal(leaf) {
		t.Error("tls.key's pair is not tls.crt")
	}
}

// Every webhook of the configurations envtest installed gets the dev-cluster CA as its caBundle.
func TestUseCABundle(t *testing.T) {
	envtestBundle := []byte("envtest's serving certificate")
	mutating := &admissionv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "lanyard"},
		Webhooks: []admissionv1.MutatingWebhook{
			{Name: "a.lanyard.dev", ClientConfig: admissionv1.WebhookClientConfig{CABundle: envtestBundle}},
			{Name: "b.lanyard.dev", ClientConfig: admissionv1.WebhookClientConfig{CABundle: envtestBundle}},
		},
	}
	validating := &admissionv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "lanyard"},
		Webhooks: []admissionv1.ValidatingWebhook{
			{Name: "c.lanyard.dev", ClientConfig: admissionv1.WebhookClientConfig{CABundle: envtestBundle}},
		},
	}
	c := fake.NewClientBuilder().WithObjects(mutating, validating).Build()
	certs, err := newDevCertificates(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := useCABundle(ctx, c, []string{"lanyard"}, []string{"lanyard"}, certs.CA); err != nil {
		t.Fatal(err)
	}

	gotM := &admissionv1.MutatingWebhookConfiguration{}
	if err := c.Get(ctx, client.ObjectKey{Name: "lanyard"}, gotM); err != nil {
		t.Fatal(err)
	}
	for _, h := range gotM.Webhooks {
		if !bytes.Equal(h.ClientConfig.CABundle, certs.CA) {
			t.Errorf("mutating webhook %s: caBundle is not ca.crt", h.Name)
		}
	}
	gotV := &admissionv1.ValidatingWebhookConfiguration{}
	if err := c.Get(ctx, client.ObjectKey{Name: "lanyard"}, gotV); err != nil {
		t.Fatal(err)
	}
	for _, h := range gotV.Webhooks {
		if !bytes.Equal(h.ClientConfig.CABundle, certs.CA) {
			t.Errorf("validating webhook %s: caBundle is not ca.crt", h.Name)
		}
	}

	if err := useCABundle(ctx, c, []string{"missing"}, nil, certs.CA); err == nil {
		t.Error("a missing configuration is not an error")
	}
}
