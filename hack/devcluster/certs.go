package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
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

// newDevCertificates generates a fresh ECDSA P-256 CA and a serving certificate it signs, valid
// from an hour before now (clock skew) for devCertValidity.
func newDevCertificates(now time.Time) (*devCertificates, error) {
	notBefore, notAfter := now.Add(-time.Hour), now.Add(devCertValidity)

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caSerial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	caTemplate := &x509.Certificate{
		SerialNumber:          caSerial,
		Subject:               pkix.Name{CommonName: "lanyard dev-cluster CA"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // signs leaves only
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("creating the CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER) // as the parent: carries the generated SubjectKeyId
	if err != nil {
		return nil, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "localhost"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature, // ECDSA: no key encipherment
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("creating the serving certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &devCertificates{
		CA:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func randomSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
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
