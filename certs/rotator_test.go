package certs

import (
	"context"
	"crypto/x509"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

const (
	testNamespace = "lanyard-system"
	testSecret    = "lanyard-webhook-tls"
)

func webhookConfigs(label bool) []runtime.Object {
	meta := func(name string) metav1.ObjectMeta {
		m := metav1.ObjectMeta{Name: name}
		if label {
			m.Labels = map[string]string{"lanyard.dev/ca-bundle": "true"}
		}
		return m
	}
	return []runtime.Object{
		&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: meta("lanyard"), Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "pods.lanyard.dev"}}},
		&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: meta("lanyard"), Webhooks: []admissionregistrationv1.ValidatingWebhook{{Name: "identityassociations.lanyard.dev"}}},
	}
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newRotator(t *testing.T, client *fake.Clientset, c *clock) *Rotator {
	t.Helper()
	sel, err := labels.Parse(DefaultBundleSelector)
	require.NoError(t, err)
	return &Rotator{Client: client, Namespace: testNamespace, SecretName: testSecret, Selector: sel,
		Policy: testPolicy(), Log: logr.Discard(), Now: c.Now}
}

// settle reconciles until nothing changes.
func settle(t *testing.T, r *Rotator) {
	t.Helper()
	for range 10 {
		if _, err := r.Reconcile(context.Background()); err != nil {
			if _, retry := err.(errRetry); !retry {
				require.NoError(t, err)
			}
			continue
		}
		before := secretData(t, r.Client.(*fake.Clientset))
		_, err := r.Reconcile(context.Background())
		require.NoError(t, err)
		if sameData(before, secretData(t, r.Client.(*fake.Clientset))) {
			return
		}
	}
	t.Fatal("the rotator does not settle")
}

func secretData(t *testing.T, c *fake.Clientset) map[string][]byte {
	t.Helper()
	s, err := c.CoreV1().Secrets(testNamespace).Get(context.Background(), testSecret, metav1.GetOptions{})
	require.NoError(t, err)
	return s.Data
}

func bundles(t *testing.T, c *fake.Clientset) [][]byte {
	t.Helper()
	m, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(context.Background(), "lanyard", metav1.GetOptions{})
	require.NoError(t, err)
	v, err := c.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(context.Background(), "lanyard", metav1.GetOptions{})
	require.NoError(t, err)
	return [][]byte{m.Webhooks[0].ClientConfig.CABundle, v.Webhooks[0].ClientConfig.CABundle}
}

func TestRotatorBootstrapsFromNothing(t *testing.T) {
	client := fake.NewClientset(webhookConfigs(true)...)
	r := newRotator(t, client, &clock{now: t0})
	settle(t, r)
	m := FromSecretData(secretData(t, client))
	require.Empty(t, m.Problems)
	assert.True(t, SignedBy(m.Leaf.Cert, m.CA.Cert))
	assert.True(t, HasNames(m.Leaf.Cert, testNames))
	for _, b := range bundles(t, client) {
		assert.Equal(t, EncodeCertificates([]*x509.Certificate{m.CA.Cert}), b)
	}
}

func TestRotatorLeavesUnlabelledConfigurationsAlone(t *testing.T) {
	client := fake.NewClientset(webhookConfigs(false)...)
	r := newRotator(t, client, &clock{now: t0})
	settle(t, r)
	for _, b := range bundles(t, client) {
		assert.Empty(t, b)
	}
}

// Two replicas reconciling at once on an empty cluster (a lease handover, or no lease yet) end
// with one Secret and one CA: the create that loses re-reads and adopts the winner's.
func TestTwoRotatorsEndWithOneCA(t *testing.T) {
	for range 20 {
		client := fake.NewClientset(webhookConfigs(true)...)
		c := &clock{now: t0}
		a, b := newRotator(t, client, c), newRotator(t, client, c)
		var wg sync.WaitGroup
		for _, r := range []*Rotator{a, b} {
			wg.Go(func() {
				for range 5 {
					_, _ = r.Reconcile(context.Background())
				}
			})
		}
		wg.Wait()
		settle(t, a)
		settle(t, b)
		m := FromSecretData(secretData(t, client))
		require.Len(t, m.Bundle, 1, "one CA")
		for _, bundle := range bundles(t, client) {
			assert.Equal(t, EncodeCertificates(m.Bundle), bundle)
		}
	}
}

func TestRotatorRepairsADamagedSecret(t *testing.T) {
	damaged := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: testSecret},
		Type: corev1.SecretTypeOpaque, Data: map[string][]byte{KeyServingCert: []byte("garbage")}}
	client := fake.NewClientset(append(webhookConfigs(true), damaged)...)
	r := newRotator(t, client, &clock{now: t0})
	settle(t, r)
	m := FromSecretData(secretData(t, client))
	assert.Empty(t, m.Problems)
	assert.True(t, SignedBy(m.Leaf.Cert, m.CA.Cert))
}

// Through a whole CA lifetime: the leaf is renewed at two thirds of its life; the CA is renewed
// at two thirds of its own, published beside the old one, and only then used to sign; the served
// leaf is trusted by the published bundle at every step; the old CA is pruned after it expired.
func TestRotatorThroughACALifetime(t *testing.T) {
	client := fake.NewClientset(webhookConfigs(true)...)
	c := &clock{now: t0}
	r := newRotator(t, client, c)
	settle(t, r)
	first := FromSecretData(secretData(t, client))
	leaves, cas := map[string]bool{}, map[string]bool{}
	for step := time.Duration(0); step < 2*caLife; step += day {
		c.advance(day)
		settle(t, r)
		m := FromSecretData(secretData(t, client))
		require.Empty(t, m.Problems)
		leaves[Fingerprint(m.Leaf.Cert)], cas[Fingerprint(m.CA.Cert)] = true, true
		now := c.Now()
		require.True(t, now.Before(m.Leaf.Cert.NotAfter), "the served leaf is valid at %s", now)
		for _, b := range bundles(t, client) {
			require.True(t, bundleTrusts(b, m.Leaf.Cert), "the published bundle trusts the served leaf at %s", now)
		}
		if !now.Before(first.CA.Cert.NotAfter) {
			for _, ca := range m.Bundle {
				require.False(t, ca.Equal(first.CA.Cert), "the first CA is pruned once expired")
			}
		}
	}
	assert.GreaterOrEqual(t, len(leaves), 10, "leaves renewed about every 60 days over 720 days")
	assert.GreaterOrEqual(t, len(cas), 3, "CAs renewed about every 240 days over 720 days")
}

// Readiness: a replica's certificate is trusted only when every labelled webhook configuration's
// caBundle holds the CA that signed it; unlabelled configurations do not count.
func TestBundleCheckerTrusts(t *testing.T) {
	client := fake.NewClientset(webhookConfigs(true)...)
	sel, err := labels.Parse(DefaultBundleSelector)
	require.NoError(t, err)
	b := NewBundleChecker(client, sel, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = b.Start(ctx) }()

	m := material(t, t0, t0)
	require.Eventually(t, func() bool {
		err := b.Trusts(m.Leaf.Cert)
		return err != nil && err.Error() == "webhook identityassociations.lanyard.dev of ValidatingWebhookConfiguration lanyard does not trust the CA of the served certificate yet" ||
			err != nil && err.Error() == "webhook pods.lanyard.dev of MutatingWebhookConfiguration lanyard does not trust the CA of the served certificate yet"
	}, 5*time.Second, 10*time.Millisecond)

	r := newRotator(t, client, &clock{now: t0})
	_, err = r.publish(ctx, EncodeCertificates([]*x509.Certificate{m.CA.Cert}))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return b.Trusts(m.Leaf.Cert) == nil }, 5*time.Second, 10*time.Millisecond)
	assert.ErrorContains(t, b.Trusts(material(t, t0, t0).Leaf.Cert), "does not trust")
	assert.ErrorContains(t, b.Trusts(nil), "no serving certificate")

	none := NewBundleChecker(fake.NewClientset(webhookConfigs(false)...), sel, nil)
	go func() { _ = none.Start(ctx) }()
	require.Eventually(t, func() bool {
		err := none.Trusts(m.Leaf.Cert)
		return err != nil && err.Error() == "no webhook configuration is labelled lanyard.dev/ca-bundle=true"
	}, 5*time.Second, 10*time.Millisecond)
}

// Every replica serves the Secret's certificate as soon as it changes, and keeps serving the last
// good one when the Secret is damaged or deleted.
func TestSecretSourceFollowsTheSecret(t *testing.T) {
	m := material(t, t0, t0)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: testSecret}, Type: corev1.SecretTypeTLS, Data: m.SecretData()}
	client := fake.NewClientset(secret)
	changes := make(chan struct{}, 100)
	s := NewSecretSource(client, testNamespace, testSecret, nil, logr.Discard(), func() { changes <- struct{}{} })
	_, err := s.GetCertificate(nil)
	require.ErrorContains(t, err, "no serving certificate loaded yet")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _ = s.Start(ctx) }()
	require.Eventually(t, func() bool { return s.Leaf() != nil && s.Leaf().Equal(m.Leaf.Cert) }, 5*time.Second, 10*time.Millisecond)

	next, err := IssueServing(m.CA, testNames, t0.Add(day), leafLife)
	require.NoError(t, err)
	updated := secret.DeepCopy()
	updated.Data[KeyServingCert], updated.Data[KeyServingKey] = next.CertPEM, next.KeyPEM
	_, err = client.CoreV1().Secrets(testNamespace).Update(ctx, updated, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return s.Leaf().Equal(next.Cert) }, 5*time.Second, 10*time.Millisecond, "the new certificate is served")

	damaged := updated.DeepCopy()
	damaged.Data[KeyServingKey] = m.CA.KeyPEM
	_, err = client.CoreV1().Secrets(testNamespace).Update(ctx, damaged, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.NoError(t, client.CoreV1().Secrets(testNamespace).Delete(ctx, testSecret, metav1.DeleteOptions{}))
	for range 3 {
		<-changes
	}
	cert, err := s.GetCertificate(nil)
	require.NoError(t, err)
	assert.True(t, cert.Leaf.Equal(next.Cert), "the last good certificate is still served")
}
