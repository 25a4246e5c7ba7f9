package cluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// Snapshot reads every IdentityAssociation, RegistryAttachment, Namespace and ServiceAccount (as
// trimmed metadata) from the cluster once, for lanyard inject/check --from-cluster.
func Snapshot(ctx context.Context, c client.Reader, eksPrefix string) (*policy.Static, error) {
	trim := serviceAccountTrimmer(eksPrefix)
	s := policy.NewStatic()
	ias := &v1alpha1.IdentityAssociationList{}
	if err := c.List(ctx, ias); err != nil {
		return nil, fmt.Errorf("listing IdentityAssociations: %w", err)
	}
	for i := range ias.Items {
		s.AddIdentityAssociation(&ias.Items[i])
	}
	ras := &v1alpha1.RegistryAttachmentList{}
	if err := c.List(ctx, ras); err != nil {
		return nil, fmt.Errorf("listing RegistryAttachments: %w", err)
	}
	for i := range ras.Items {
		s.AddRegistryAttachment(&ras.Items[i])
	}
	namespaces := &metav1.PartialObjectMetadataList{}
	namespaces.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NamespaceList"))
	if err := c.List(ctx, namespaces); err != nil {
		return nil, fmt.Errorf("listing Namespaces: %w", err)
	}
	for i := range namespaces.Items {
		t, _ := trimNamespace(&namespaces.Items[i])
		s.AddNamespace(&t.(*metav1.PartialObjectMetadata).ObjectMeta)
	}
	accounts := &metav1.PartialObjectMetadataList{}
	accounts.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ServiceAccountList"))
	if err := c.List(ctx, accounts); err != nil {
		return nil, fmt.Errorf("listing ServiceAccounts: %w", err)
	}
	for i := range accounts.Items {
		t, _ := trim(&accounts.Items[i])
		s.AddServiceAccount(&t.(*metav1.PartialObjectMetadata).ObjectMeta)
	}
	return s, nil
}

// SecretExists reports whether a Secret exists, reading only its metadata (never its data).
func SecretExists(ctx context.Context, c client.Reader, namespace, name string) (bool, error) {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, m)
	if err == nil {
		return true, nil
	}
	if client.IgnoreNotFound(err) == nil {
		return false, nil
	}
	return false, err
}
