package certs

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// RBAC of the self-signed mode, generated into deploy/overlays/self-signed/rbac by controller-gen:
// the one Secret by name (create cannot be limited to a name: Kubernetes does not know the name
// of an object before it exists), and updates of lanyard's own webhook configurations by name.
//
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;update;patch,resourceNames=lanyard-webhook-tls,namespace=lanyard-system
// +kubebuilder:rbac:groups="",resources=secrets,verbs=create,namespace=lanyard-system
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations;validatingwebhookconfigurations,verbs=update;patch,resourceNames=lanyard

// Rotator is the self-signed authority: on the elected leader it keeps the Secret's CA and serving
// certificate current (Policy) and the caBundle of lanyard's webhook configurations equal to the
// Secret's ca-bundle.crt. Every write is optimistic (create fails if the Secret exists, updates
// carry the resourceVersion read), so two writers — a lease handover, two replicas on an empty
// cluster — end with one Secret and one CA: the loser re-reads and adopts what the winner wrote.
type Rotator struct {
	Client     kubernetes.Interface
	Namespace  string
	SecretName string
	// Selector finds lanyard's webhook configurations.
	Selector labels.Selector
	Policy   Policy
	Log      logr.Logger
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time

	// published[CA fingerprint] is when every webhook configuration was first seen trusting it.
	published map[string]time.Time
}

// errRetry asks Run to reconcile again at once (an optimistic write lost a race).
type errRetry struct{ reason string }

func (e errRetry) Error() string { return e.reason }

// Run reconciles until ctx ends: after every change signalled on trigger, and when the plan says.
func (r *Rotator) Run(ctx context.Context, trigger <-chan struct{}) error {
	backoff := time.Second
	for {
		next, err := r.Reconcile(ctx)
		wait := time.Until(next)
		switch {
		case err == nil:
			backoff = time.Second
		case ctx.Err() != nil:
			return nil
		default:
			if _, ok := err.(errRetry); ok {
				r.Log.V(1).Info("certificate write lost a race; reading again", "reason", err.Error())
				wait = 0
			} else {
				r.Log.Error(err, "certificate reconcile failed; retrying", "in", backoff.String())
				wait = backoff
				backoff = min(2*backoff, 30*time.Second)
			}
		}
		timer := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-trigger:
			timer.Stop()
		case <-timer.C:
		}
	}
}

func (r *Rotator) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Reconcile brings the Secret and the webhook configurations up to date once, and returns when to
// look again.
func (r *Rotator) Reconcile(ctx context.Context) (time.Time, error) {
	now := r.now()
	secrets := r.Client.CoreV1().Secrets(r.Namespace)
	secret, err := secrets.Get(ctx, r.SecretName, metav1.GetOptions{})
	exists := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return now, fmt.Errorf("reading Secret %s/%s: %w", r.Namespace, r.SecretName, err)
	}
	m := &Material{}
	if exists {
		m = FromSecretData(secret.Data)
		if len(m.Problems) > 0 && len(secret.Data) > 0 {
			r.Log.Info("the certificate Secret is incomplete or damaged; repairing it", "secret", r.key(), "problems", strings.Join(m.Problems, "; "))
		}
	}
	if r.published == nil {
		r.published = map[string]time.Time{}
	}
	var since time.Time
	if m.CA != nil {
		since = r.published[Fingerprint(m.CA.Cert)]
	}

	plan := r.Policy.Decide(m, now, since)
	bundle := plan.Bundle
	if plan.NewCA {
		ca, err := NewCA(now, r.Policy.CALifetime)
		if err != nil {
			return now, err
		}
		m.CA = ca
		bundle = append(bundle, ca.Cert)
	}
	if plan.NewLeaf {
		leaf, err := IssueServing(m.CA, r.Policy.Names, now, r.Policy.LeafLifetime)
		if err != nil {
			return now, err
		}
		m.Leaf = leaf
	}
	m.Bundle = bundle
	data := m.SecretData()
	if !exists || !sameData(secret.Data, data) {
		if err := r.writeSecret(ctx, secret, exists, data); err != nil {
			return now, err
		}
		if plan.NewCA {
			r.Log.Info("issued a new CA", "fingerprint", Fingerprint(m.CA.Cert), "expires", m.CA.Cert.NotAfter.UTC().Format(time.RFC3339),
				"reason", strings.Join(plan.Reasons, "; "), "trusted", len(bundle))
		}
		if plan.NewLeaf {
			r.Log.Info("issued a new serving certificate", "fingerprint", Fingerprint(m.Leaf.Cert), "ca", Fingerprint(m.CA.Cert),
				"expires", m.Leaf.Cert.NotAfter.UTC().Format(time.RFC3339), "names", r.Policy.Names, "reason", strings.Join(plan.Reasons, "; "))
		}
	}

	encoded := data[KeyCABundle]
	complete, err := r.publish(ctx, encoded)
	if err != nil {
		return now, err
	}
	fp := Fingerprint(m.CA.Cert)
	if complete {
		if _, ok := r.published[fp]; !ok {
			r.published[fp] = now
			r.Log.Info("every webhook configuration trusts the CA", "ca", fp)
		}
	} else {
		delete(r.published, fp)
	}
	next := plan.Next
	if plan.NewCA || plan.NewLeaf || !complete {
		next = now.Add(min(time.Second, r.Policy.PropagationDelay+time.Millisecond)) // look again soon: publication, propagation
	}
	return next, nil
}

func (r *Rotator) key() string { return r.Namespace + "/" + r.SecretName }

func (r *Rotator) writeSecret(ctx context.Context, current *corev1.Secret, exists bool, data map[string][]byte) error {
	secrets := r.Client.CoreV1().Secrets(r.Namespace)
	if !exists {
		_, err := secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: r.SecretName, Namespace: r.Namespace,
				Labels: map[string]string{"app.kubernetes.io/name": "lanyard", "app.kubernetes.io/managed-by": "lanyard"}},
			Type: corev1.SecretTypeTLS, Data: data,
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return errRetry{"the Secret was created meanwhile"}
		}
		if err != nil {
			return fmt.Errorf("creating Secret %s: %w", r.key(), err)
		}
		return nil
	}
	updated := current.DeepCopy()
	updated.Data = data
	if updated.Type != corev1.SecretTypeTLS && updated.Type != corev1.SecretTypeOpaque {
		// A foreign Secret of another type cannot be changed in place (type is immutable).
		return fmt.Errorf("the Secret %s has type %s; delete it so that lanyard can create its own", r.key(), updated.Type)
	}
	_, err := secrets.Update(ctx, updated, metav1.UpdateOptions{}) // carries the resourceVersion read
	if apierrors.IsConflict(err) {
		return errRetry{"the Secret changed meanwhile"}
	}
	if err != nil {
		return fmt.Errorf("updating Secret %s: %w", r.key(), err)
	}
	return nil
}

// publish sets caBundle of every webhook of lanyard's configurations; it reports whether all of
// them held it already (nothing had to be written).
func (r *Rotator) publish(ctx context.Context, bundle []byte) (bool, error) {
	ar := r.Client.AdmissionregistrationV1()
	opts := metav1.ListOptions{LabelSelector: r.Selector.String()}
	mutating, err := ar.MutatingWebhookConfigurations().List(ctx, opts)
	if err != nil {
		return false, fmt.Errorf("listing MutatingWebhookConfigurations: %w", err)
	}
	validating, err := ar.ValidatingWebhookConfigurations().List(ctx, opts)
	if err != nil {
		return false, fmt.Errorf("listing ValidatingWebhookConfigurations: %w", err)
	}
	if len(mutating.Items)+len(validating.Items) == 0 {
		r.Log.Info("no webhook configuration is labelled for lanyard's CA; nothing to publish", "selector", r.Selector.String())
		return false, nil
	}
	complete := true
	for i := range mutating.Items {
		c := &mutating.Items[i]
		changed := false
		for j := range c.Webhooks {
			changed = setBundle(&c.Webhooks[j].ClientConfig, bundle) || changed
		}
		if changed {
			complete = false
			if _, err := ar.MutatingWebhookConfigurations().Update(ctx, c, metav1.UpdateOptions{}); err != nil {
				return false, configError("MutatingWebhookConfiguration", c.Name, err)
			}
			r.Log.Info("published the CA bundle", "config", "MutatingWebhookConfiguration "+c.Name)
		}
	}
	for i := range validating.Items {
		c := &validating.Items[i]
		changed := false
		for j := range c.Webhooks {
			changed = setBundle(&c.Webhooks[j].ClientConfig, bundle) || changed
		}
		if changed {
			complete = false
			if _, err := ar.ValidatingWebhookConfigurations().Update(ctx, c, metav1.UpdateOptions{}); err != nil {
				return false, configError("ValidatingWebhookConfiguration", c.Name, err)
			}
			r.Log.Info("published the CA bundle", "config", "ValidatingWebhookConfiguration "+c.Name)
		}
	}
	return complete, nil
}

func setBundle(cc *admissionregistrationv1.WebhookClientConfig, bundle []byte) bool {
	if bytes.Equal(cc.CABundle, bundle) {
		return false
	}
	cc.CABundle = bundle
	return true
}

func configError(kind, name string, err error) error {
	if apierrors.IsConflict(err) {
		return errRetry{kind + " " + name + " changed meanwhile"}
	}
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("%s %s is labelled for lanyard's CA but lanyard may not update it (RBAC names the configurations it may update): %w", kind, name, err)
	}
	return fmt.Errorf("updating %s %s: %w", kind, name, err)
}

func sameData(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if !bytes.Equal(a[k], v) {
			return false
		}
	}
	return true
}
