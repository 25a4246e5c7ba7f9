package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Keys of the self-signed mode's Secret. tls.crt/tls.key are what every replica serves; ca.crt/
// ca.key the CA that signs new serving certificates; ca-bundle.crt every CA the webhook
// configurations trust (the signing CA and, after a CA rotation, older CAs until every certificate
// they signed has expired).
const (
	KeyServingCert = corev1.TLSCertKey
	KeyServingKey  = corev1.TLSPrivateKeyKey
	KeyCACert      = "ca.crt"
	KeyCAKey       = "ca.key"
	KeyCABundle    = "ca-bundle.crt"
)

// Material is what the Secret holds, parsed. A nil CA or Leaf means that part was absent or
// unusable; Problems says why, for the log.
type Material struct {
	CA       *KeyPair
	Leaf     *KeyPair
	Bundle   []*x509.Certificate
	Problems []string
}

// FromSecretData parses a Secret's data. It never fails: what cannot be used is left out and named
// in Problems, so that a corrupted or foreign Secret is repaired rather than fatal.
func FromSecretData(data map[string][]byte) *Material {
	m := &Material{}
	if len(data) == 0 {
		m.Problems = append(m.Problems, "the Secret is empty")
		return m
	}
	ca, err := ParseKeyPair(data[KeyCACert], data[KeyCAKey])
	switch {
	case err != nil:
		m.Problems = append(m.Problems, fmt.Sprintf("%s/%s: %v", KeyCACert, KeyCAKey, err))
	case !ca.Cert.IsCA:
		m.Problems = append(m.Problems, KeyCACert+" is not a CA certificate")
	default:
		m.CA = ca
	}
	leaf, err := ParseKeyPair(data[KeyServingCert], data[KeyServingKey])
	if err != nil {
		m.Problems = append(m.Problems, fmt.Sprintf("%s/%s: %v", KeyServingCert, KeyServingKey, err))
	} else {
		m.Leaf = leaf
	}
	if raw := data[KeyCABundle]; len(raw) > 0 {
		bundle, err := ParseCertificates(raw)
		if err != nil {
			m.Problems = append(m.Problems, fmt.Sprintf("%s: %v", KeyCABundle, err))
		}
		for _, c := range bundle {
			if c.IsCA {
				m.Bundle = append(m.Bundle, c)
			}
		}
	} else {
		m.Problems = append(m.Problems, KeyCABundle+" is missing")
	}
	return m
}

// SecretData is the Secret's data for m, which must be complete.
func (m *Material) SecretData() map[string][]byte {
	return map[string][]byte{
		KeyServingCert: m.Leaf.CertPEM, KeyServingKey: m.Leaf.KeyPEM,
		KeyCACert: m.CA.CertPEM, KeyCAKey: m.CA.KeyPEM,
		KeyCABundle: EncodeCertificates(m.Bundle),
	}
}

// Policy is when the self-signed authority renews what.
type Policy struct {
	// CALifetime and LeafLifetime are the validity of new certificates.
	CALifetime, LeafLifetime time.Duration
	// PropagationDelay is how long a new CA must have been in every webhook configuration's
	// caBundle before certificates it signed are served: the API server reloads changed
	// configurations asynchronously.
	PropagationDelay time.Duration
	// Names of the serving certificate (DNS names or IP addresses).
	Names []string
}

// Validate checks the policy's bounds.
func (p Policy) Validate() error {
	if p.LeafLifetime < 10*time.Second {
		return fmt.Errorf("serving certificate lifetime %s: must be at least 10s", p.LeafLifetime)
	}
	if p.CALifetime < 2*p.LeafLifetime {
		return fmt.Errorf("CA lifetime %s: must be at least twice the serving certificate lifetime (%s)", p.CALifetime, p.LeafLifetime)
	}
	if p.PropagationDelay < 0 || p.PropagationDelay >= p.LeafLifetime/3 {
		return fmt.Errorf("CA propagation delay %s: must be between 0 and a third of the serving certificate lifetime", p.PropagationDelay)
	}
	if len(p.Names) == 0 {
		return errors.New("the serving certificate needs at least one name")
	}
	return nil
}

// renewAt is two thirds into a certificate's validity.
func renewAt(c *x509.Certificate) time.Time {
	return c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) * 2 / 3)
}

// Plan is what the authority must do now, and when to look again.
type Plan struct {
	NewCA, NewLeaf bool
	// Reasons say why, for the log.
	Reasons []string
	// Bundle is the caBundle to keep after this plan (without a CA the plan creates).
	Bundle []*x509.Certificate
	// Next is when to plan again if nothing else happens first.
	Next time.Time
}

// Decide plans the authority's next step for m at now. caPublishedSince is when every webhook
// configuration was first seen trusting m's CA (zero: not yet).
func (p Policy) Decide(m *Material, now, caPublishedSince time.Time) Plan {
	var plan Plan
	next := now.Add(p.LeafLifetime / 3)
	soonest := func(t time.Time) {
		if t.After(now) && t.Before(next) {
			next = t
		}
	}
	// The bundle keeps every CA still valid: a CA is dropped only once it has expired, and no
	// certificate outlives the CA that signed it, so by then every certificate it signed has expired.
	for _, c := range m.Bundle {
		if now.Before(c.NotAfter) {
			plan.Bundle = append(plan.Bundle, c)
			soonest(c.NotAfter)
		}
	}
	ca := m.CA
	switch {
	case ca == nil:
		plan.NewCA, plan.Reasons = true, append(plan.Reasons, "no usable CA")
	case !now.Before(ca.Cert.NotAfter):
		plan.NewCA, plan.Reasons = true, append(plan.Reasons, "the CA has expired")
	case !now.Before(renewAt(ca.Cert)):
		plan.NewCA, plan.Reasons = true, append(plan.Reasons, "the CA is two thirds through its lifetime")
	case ca.Cert.NotAfter.Sub(now) < p.LeafLifetime:
		plan.NewCA, plan.Reasons = true, append(plan.Reasons, "the CA would expire before a new serving certificate")
	default:
		soonest(renewAt(ca.Cert))
		soonest(ca.Cert.NotAfter.Add(-p.LeafLifetime))
		if !containsCert(plan.Bundle, ca.Cert) {
			plan.Bundle = append(plan.Bundle, ca.Cert)
		}
	}
	leaf := m.Leaf
	leafUsable := leaf != nil && now.Before(leaf.Cert.NotAfter) && !now.Before(leaf.Cert.NotBefore) && trusted(plan.Bundle, leaf.Cert)
	switch {
	case leaf == nil:
		plan.NewLeaf, plan.Reasons = true, append(plan.Reasons, "no usable serving certificate")
	case !leafUsable:
		plan.NewLeaf, plan.Reasons = true, append(plan.Reasons, "the serving certificate is expired, not yet valid or signed by no trusted CA")
	case plan.NewCA:
		// A CA rotation: the new CA is published first, and certificates it signs are served
		// only once the API server trusts it; until then the current one is served.
	case !SignedBy(leaf.Cert, ca.Cert):
		if caPublishedSince.IsZero() {
			break // planned again when the configurations change
		}
		if ready := caPublishedSince.Add(p.PropagationDelay); now.Before(ready) {
			soonest(ready)
			break
		}
		plan.NewLeaf, plan.Reasons = true, append(plan.Reasons, "the new CA is trusted by every webhook configuration")
	case !HasNames(leaf.Cert, p.Names):
		plan.NewLeaf, plan.Reasons = true, append(plan.Reasons, "the serving certificate's names differ from the wanted ones")
	case !now.Before(renewAt(leaf.Cert)):
		plan.NewLeaf, plan.Reasons = true, append(plan.Reasons, "the serving certificate is two thirds through its lifetime")
	default:
		soonest(renewAt(leaf.Cert))
	}
	plan.Next = next
	return plan
}

func containsCert(list []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range list {
		if x.Equal(c) {
			return true
		}
	}
	return false
}

func trusted(bundle []*x509.Certificate, leaf *x509.Certificate) bool {
	for _, ca := range bundle {
		if SignedBy(leaf, ca) {
			return true
		}
	}
	return false
}
