package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/lanyard-dev/lanyard/certs"
	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

const (
	selfSignedSecret = "lanyard-e2e-self-signed"
	// selfSignedLabel marks this test's webhook configurations, so that the suite's own
	// configurations (files mode) are never touched by the authority under test.
	selfSignedLabel = "lanyard.dev/ca-bundle"
	selfSignedValue = "e2e-self-signed"
)

// selfSignedWebhooks creates a mutating configuration that sends pods of namespaces labelled
// namespaceLabel to https://127.0.0.1:port, and a validating one that matches nothing (both found
// by label, neither with a caBundle yet).
func selfSignedWebhooks(t *testing.T, port int, namespaceLabel string) {
	t.Helper()
	none := admissionregistrationv1.SideEffectClassNone
	fail, ignore := admissionregistrationv1.Fail, admissionregistrationv1.Ignore
	url := "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	meta := metav1.ObjectMeta{Name: "lanyard-e2e-self-signed", Labels: map[string]string{selfSignedLabel: selfSignedValue}}
	mutating := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: meta, Webhooks: []admissionregistrationv1.MutatingWebhook{{
		Name: "pods.self-signed.e2e.lanyard.dev", AdmissionReviewVersions: []string{"v1"},
		ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: ptr.To(url + "/mutate-v1-pod")},
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
		}},
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{namespaceLabel: "true"}},
		SideEffects:       &none, FailurePolicy: &fail, TimeoutSeconds: ptr.To[int32](5),
		ReinvocationPolicy: ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy),
	}}}
	validating := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: meta, Webhooks: []admissionregistrationv1.ValidatingWebhook{{
		Name: "identityassociations.self-signed.e2e.lanyard.dev", AdmissionReviewVersions: []string{"v1"},
		ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: ptr.To(url + "/validate-lanyard-dev-v1alpha1-identityassociation")},
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{"lanyard.dev"}, APIVersions: []string{"v1alpha1"}, Resources: []string{"identityassociations"}},
		}},
		ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"lanyard-e2e-never": "true"}},
		SideEffects:    &none, FailurePolicy: &ignore, TimeoutSeconds: ptr.To[int32](5),
	}}}
	mustCreate(t, mutating)
	mustCreate(t, validating)
	t.Cleanup(func() {
		_ = k8s.Delete(context.Background(), mutating)
		_ = k8s.Delete(context.Background(), validating)
	})
}

// selfSignedLanyard runs lanyard in self-signed mode on port with short lifetimes: the serving
// certificate lives 15 s (renewed every 10 s), the CA 45 s (renewed after 30 s).
func selfSignedLanyard(t *testing.T, port int) *lanyardProcess {
	t.Helper()
	l := &lanyardProcess{binary: lanyard.binary, kubeconfig: lanyard.kubeconfig, port: port, noWait: true, args: []string{
		"--cert-mode", "self-signed", "--cert-secret-name", selfSignedSecret,
		"--ca-bundle-selector", selfSignedLabel + "=" + selfSignedValue, "--cert-extra-names", "127.0.0.1",
		"--self-signed-cert-lifetime", "15s", "--self-signed-ca-lifetime", "45s", "--ca-propagation-delay", "3s",
	}}
	require.NoError(t, l.Start())
	t.Cleanup(l.Stop)
	return l
}

func freePort(t *testing.T) int {
	t.Helper()
	addr, err := freeAddr()
	require.NoError(t, err)
	_, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	port, err := strconv.Atoi(p)
	require.NoError(t, err)
	return port
}

// servedLeaf is the certificate a lanyard on port presents.
func servedLeaf(port int) (*x509.Certificate, error) {
	conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reading which certificate is served
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	return conn.ConnectionState().PeerCertificates[0], nil
}

func selfSignedMaterial(t *testing.T) *certs.Material {
	t.Helper()
	s := &corev1.Secret{}
	require.NoError(t, k8s.Get(ctx(t), types.NamespacedName{Namespace: lanyardNamespace, Name: selfSignedSecret}, s))
	return certs.FromSecretData(s.Data)
}

// Self-signed mode from nothing: two replicas started together end with one Secret and one CA,
// the API server admits pods through them, and while pods are created without pause the serving
// certificate is renewed several times and the CA once — with zero failed creations.
func TestSelfSignedBootstrapAndRotation(t *testing.T) {
	_ = k8s.Delete(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: lanyardNamespace, Name: selfSignedSecret}})
	nsLabel := "lanyard-e2e-self-signed"
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-self-signed-", Labels: map[string]string{nsLabel: "true"}}}
	mustCreate(t, ns)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), ns) })
	serviceAccount(t, ns.Name, "app", nil)
	association(t, ns.Name, "app", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}})

	served, standby := freePort(t), freePort(t)
	selfSignedWebhooks(t, served, nsLabel)
	started := time.Now()
	a, b := selfSignedLanyard(t, served), selfSignedLanyard(t, standby)
	for _, l := range []*lanyardProcess{a, b} {
		require.NoError(t, l.waitReady(60*time.Second), "ready once the caBundle trusts the served certificate")
	}
	t.Logf("both replicas ready %s after start", time.Since(started).Round(10*time.Millisecond))

	first := selfSignedMaterial(t)
	require.Empty(t, first.Problems)
	require.Len(t, first.Bundle, 1, "two replicas started together end with one CA")
	for _, port := range []int{served, standby} {
		require.Eventually(t, func() bool {
			leaf, err := servedLeaf(port)
			return err == nil && certs.SignedBy(leaf, first.CA.Cert)
		}, 10*time.Second, 50*time.Millisecond, "replica on %d serves a certificate of the one CA", port)
	}
	mustCreate(t, newPod(ns.Name, "first", "app"))
	assert.Equal(t, "aws", stored(t, ns.Name, "first").Annotations[policy.AnnotationInjected])

	// Observe the Secret while pods are created without pause.
	type event struct {
		at       time.Time
		leaf, ca string
		signed   bool // the leaf is signed by the CA that signs new certificates
	}
	var (
		mu      sync.Mutex
		events  []event
		created []time.Time
		failed  []string
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		n       atomic.Int64
	)
	wg.Go(func() {
		var last event
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			s := &corev1.Secret{}
			if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: lanyardNamespace, Name: selfSignedSecret}, s); err != nil {
				continue
			}
			m := certs.FromSecretData(s.Data)
			if m.Leaf == nil || m.CA == nil {
				continue
			}
			e := event{time.Now(), certs.Fingerprint(m.Leaf.Cert), certs.Fingerprint(m.CA.Cert), certs.SignedBy(m.Leaf.Cert, m.CA.Cert)}
			if e.leaf != last.leaf || e.ca != last.ca {
				mu.Lock()
				events = append(events, e)
				mu.Unlock()
				last = e
			}
		}
	})
	for w := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("p%d-%d", w, n.Add(1))
				err := k8s.Create(context.Background(), newPod(ns.Name, name, "app"))
				mu.Lock()
				if err != nil {
					failed = append(failed, err.Error())
				} else {
					created = append(created, time.Now())
				}
				mu.Unlock()
			}
		})
	}
	// Run until a CA rotation has completed: a certificate of a second CA has been served for a
	// while, after several renewals of the serving certificate.
	caRotated := func() (leafChanges, caChanges int, done bool) {
		mu.Lock()
		defer mu.Unlock()
		for i := 1; i < len(events); i++ {
			if events[i].leaf != events[i-1].leaf {
				leafChanges++
			}
			if events[i].ca != events[i-1].ca {
				caChanges++
			}
		}
		if caChanges == 0 {
			return leafChanges, caChanges, false
		}
		// done once a certificate of the newest CA has been served for a while
		lastCA := events[len(events)-1].ca
		for _, e := range events {
			if e.ca == lastCA && e.signed {
				return leafChanges, caChanges, time.Since(e.at) > 8*time.Second
			}
		}
		return leafChanges, caChanges, false
	}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if _, _, done := caRotated(); done {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	leafChanges, caChanges, done := caRotated()
	require.True(t, done, "a CA rotation completed within 90 s (events: %d)", len(events))

	mu.Lock()
	defer mu.Unlock()
	assert.Empty(t, failed, "no pod creation failed across the rotations")
	assert.GreaterOrEqual(t, leafChanges, 2, "the serving certificate was renewed")
	assert.GreaterOrEqual(t, caChanges, 1, "the CA was renewed")
	// Creations around each kind of rotation: from the start to the second serving certificate,
	// and from the new CA's issuance to the end.
	var firstLeafRotation, caRotation time.Time
	for i := 1; i < len(events); i++ {
		if firstLeafRotation.IsZero() && events[i].leaf != events[i-1].leaf && events[i].ca == events[i-1].ca {
			firstLeafRotation = events[i].at
		}
		if caRotation.IsZero() && events[i].ca != events[i-1].ca {
			caRotation = events[i].at
		}
	}
	count := func(from, to time.Time) int {
		c := 0
		for _, at := range created {
			if !at.Before(from) && at.Before(to) {
				c++
			}
		}
		return c
	}
	beforeCA := count(time.Time{}, caRotation)
	afterCA := count(caRotation, time.Now())
	t.Logf("%d pods created, %d failed; %d serving certificate renewals, %d CA renewals; %d creations before the CA rotation (first leaf renewal at +%s), %d from the CA rotation on",
		len(created), len(failed), leafChanges, caChanges, beforeCA, firstLeafRotation.Sub(started).Round(time.Second), afterCA)
	assert.GreaterOrEqual(t, count(time.Time{}, firstLeafRotation.Add(2*time.Second)), 200, "creations across the first serving certificate renewal")
	assert.GreaterOrEqual(t, afterCA, 200, "creations across the CA renewal")

	final := selfSignedMaterial(t)
	for _, port := range []int{served, standby} {
		leaf, err := servedLeaf(port)
		require.NoError(t, err)
		assert.True(t, certs.SignedBy(leaf, final.CA.Cert), "replica on %d serves a certificate of the current CA", port)
	}
}
