package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sort"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
)

// DefaultBundleSelector finds lanyard's webhook configurations: the ones whose caBundle lanyard
// keeps (self-signed mode) or checks (cert-manager mode).
const DefaultBundleSelector = "lanyard.dev/ca-bundle=true"

// webhookBundle is one webhook of a configuration and the CAs it trusts.
type webhookBundle struct {
	config, webhook string
	caBundle        []byte
}

// BundleChecker watches lanyard's webhook configurations (found by label) and tells whether they
// all trust a certificate: a replica is ready only when the API server will accept the
// certificate it serves.
type BundleChecker struct {
	client   kubernetes.Interface
	selector labels.Selector
	onChange func()

	mutating, validating toolscache.SharedIndexInformer
}

// NewBundleChecker watches the webhook configurations matching selector. onChange (optional) is
// called after every event.
func NewBundleChecker(client kubernetes.Interface, selector labels.Selector, onChange func()) *BundleChecker {
	b := &BundleChecker{client: client, selector: selector, onChange: onChange}
	sel := selector.String()
	ar := client.AdmissionregistrationV1()
	// ToListWatcherWithWatchListSemantics: streaming lists only where the client supports them.
	b.mutating = toolscache.NewSharedIndexInformer(toolscache.ToListWatcherWithWatchListSemantics(&toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = sel
			return ar.MutatingWebhookConfigurations().List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = sel
			return ar.MutatingWebhookConfigurations().Watch(ctx, o)
		},
	}, client), &admissionregistrationv1.MutatingWebhookConfiguration{}, 0, toolscache.Indexers{})
	b.validating = toolscache.NewSharedIndexInformer(toolscache.ToListWatcherWithWatchListSemantics(&toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = sel
			return ar.ValidatingWebhookConfigurations().List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = sel
			return ar.ValidatingWebhookConfigurations().Watch(ctx, o)
		},
	}, client), &admissionregistrationv1.ValidatingWebhookConfiguration{}, 0, toolscache.Indexers{})
	return b
}

// Start runs the watches until ctx ends.
func (b *BundleChecker) Start(ctx context.Context) error {
	h := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { b.changed() },
		UpdateFunc: func(any, any) { b.changed() },
		DeleteFunc: func(any) { b.changed() },
	}
	for _, inf := range []toolscache.SharedIndexInformer{b.mutating, b.validating} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return err
		}
		go inf.Run(ctx.Done())
	}
	<-ctx.Done()
	return nil
}

func (b *BundleChecker) changed() {
	if b.onChange != nil {
		b.onChange()
	}
}

func (b *BundleChecker) webhooks() ([]webhookBundle, error) {
	if !b.mutating.HasSynced() || !b.validating.HasSynced() {
		return nil, errors.New("webhook configurations not read yet")
	}
	var out []webhookBundle
	for _, obj := range b.mutating.GetStore().List() {
		c := obj.(*admissionregistrationv1.MutatingWebhookConfiguration)
		for _, w := range c.Webhooks {
			out = append(out, webhookBundle{"MutatingWebhookConfiguration " + c.Name, w.Name, w.ClientConfig.CABundle})
		}
	}
	for _, obj := range b.validating.GetStore().List() {
		c := obj.(*admissionregistrationv1.ValidatingWebhookConfiguration)
		for _, w := range c.Webhooks {
			out = append(out, webhookBundle{"ValidatingWebhookConfiguration " + c.Name, w.Name, w.ClientConfig.CABundle})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no webhook configuration is labelled %s", b.selector)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].config+out[i].webhook < out[j].config+out[j].webhook })
	return out, nil
}

// Trusts reports (as an error) whether every webhook of lanyard's configurations trusts the CA
// that signed leaf.
func (b *BundleChecker) Trusts(leaf *x509.Certificate) error {
	if leaf == nil {
		return errors.New("no serving certificate yet")
	}
	hooks, err := b.webhooks()
	if err != nil {
		return err
	}
	for _, h := range hooks {
		if !bundleTrusts(h.caBundle, leaf) {
			return fmt.Errorf("webhook %s of %s does not trust the CA of the served certificate yet", h.webhook, h.config)
		}
	}
	return nil
}

func bundleTrusts(caBundle []byte, leaf *x509.Certificate) bool {
	cas, err := ParseCertificates(caBundle)
	if err != nil {
		return false
	}
	for _, ca := range cas {
		if SignedBy(leaf, ca) {
			return true
		}
	}
	return false
}
