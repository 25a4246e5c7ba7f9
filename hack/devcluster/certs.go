package main

import (
	"context"
	"fmt"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lanyard-dev/lanyard/certs"
)

// devCertValidity is how long the dev-cluster CA and serving certificate are valid; both are
// generated afresh on every run.
const devCertValidity = 365 * 24 * time.Hour

// devCertificates is what lanyard serve, the API server and curl need on a laptop: a CA
// (ca.crt, also the caBundle of the webhook configurations) and a serving certificate signed by
// it (tls.crt, tls.key) for localhost, 127.0.0.1 and ::1. All PEM.
type devCertificates struct {
	CA   []byte // CERTIFICATE: self-signed CA
	Cert []byte // CERTIFICATE: serving certificate (leaf only), signed by CA
	Key  []byte // PRIVATE KEY (PKCS #8): the serving certificate's key
}

// newDevCertificates makes them with lanyard's own authority (package certs: ECDSA P-256).
func newDevCertificates(now time.Time) (*devCertificates, error) {
	ca, err := certs.NewCA(now, devCertValidity)
	if err != nil {
		return nil, err
	}
	leaf, err := certs.IssueServing(ca, []string{"localhost", "127.0.0.1", "::1"}, now, devCertValidity)
	if err != nil {
		return nil, err
	}
	return &devCertificates{CA: ca.CertPEM, Cert: leaf.CertPEM, Key: leaf.KeyPEM}, nil
}

// useCABundle sets caBundle on every webhook of the named configurations. envtest installs them
// with a bundle of its own making (its LocalServingCAData is its serving certificate, not a CA, and
// Environment.Start always generates it); this replaces it with the dev-cluster CA.
func useCABundle(ctx context.Context, c client.Client, mutating, validating []string, caBundle []byte) error {
	for _, name := range mutating {
		cfg := &admissionv1.MutatingWebhookConfiguration{}
		if err := c.Get(ctx, client.ObjectKey{Name: name}, cfg); err != nil {
			return fmt.Errorf("MutatingWebhookConfiguration %s: %w", name, err)
		}
		for i := range cfg.Webhooks {
			cfg.Webhooks[i].ClientConfig.CABundle = caBundle
		}
		if err := c.Update(ctx, cfg); err != nil {
			return fmt.Errorf("MutatingWebhookConfiguration %s: %w", name, err)
		}
	}
	for _, name := range validating {
		cfg := &admissionv1.ValidatingWebhookConfiguration{}
		if err := c.Get(ctx, client.ObjectKey{Name: name}, cfg); err != nil {
			return fmt.Errorf("ValidatingWebhookConfiguration %s: %w", name, err)
		}
		for i := range cfg.Webhooks {
			cfg.Webhooks[i].ClientConfig.CABundle = caBundle
		}
		if err := c.Update(ctx, cfg); err != nil {
			return fmt.Errorf("ValidatingWebhookConfiguration %s: %w", name, err)
		}
	}
	return nil
}
