package cluster

import (
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// serviceAccountAnnotations are the only ServiceAccount annotations resolution reads, with the
// EKS webhook's annotations under the given prefix.
func serviceAccountAnnotations(eksPrefix string) []string {
	return append(policy.EKSKeysFor(eksPrefix).ServiceAccountKeys(),
		policy.AzureClientID, policy.AzureTenantID, policy.AzureTokenExpiration)
}

// trimServiceAccount keeps a ServiceAccount's identity and the compat annotations (EKS keys with
// the default prefix): tens of thousands of ServiceAccounts must fit in a few MiB, and lanyard
// must not hold anything else of theirs (their secrets list, last-applied configurations, managed
// fields).
func trimServiceAccount(obj any) (any, error) { return trimDefaultServiceAccount(obj) }

var trimDefaultServiceAccount = serviceAccountTrimmer("")

// serviceAccountTrimmer is trimServiceAccount for the EKS annotations under eksPrefix.
func serviceAccountTrimmer(eksPrefix string) func(any) (any, error) {
	keep := serviceAccountAnnotations(eksPrefix)
	return func(obj any) (any, error) { return trimServiceAccountKeeping(obj, keep) }
}

func trimServiceAccountKeeping(obj any, keep []string) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	var ann map[string]string
	for _, k := range keep {
		if v, ok := m.Annotations[k]; ok {
			if ann == nil {
				ann = make(map[string]string, 2)
			}
			ann[k] = v
		}
	}
	out := &metav1.PartialObjectMetadata{TypeMeta: serviceAccountType}
	out.Name, out.Namespace, out.ResourceVersion = m.Name, intern(m.Namespace), m.ResourceVersion
	out.CreationTimestamp = m.CreationTimestamp // recent ServiceAccounts get a live association check
	out.Annotations = ann
	return out, nil
}

// trimNamespace keeps a Namespace's name and labels (namespaceSelectors match on labels).
func trimNamespace(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	out := &metav1.PartialObjectMetadata{TypeMeta: namespaceType}
	out.Name, out.ResourceVersion, out.Labels = intern(m.Name), m.ResourceVersion, m.Labels
	return out, nil
}

// trimPolicyObject keeps what lanyard reads, spec and status (the status reconciler compares
// against the cached status, so a restart writes nothing and reads nothing live): managed fields,
// annotations (kubectl's last-applied configuration doubles an object's size) and labels go.
func trimPolicyObject(obj any) (any, error) {
	switch o := obj.(type) {
	case *v1alpha1.IdentityAssociation:
		o.TypeMeta = associationType
		trimMeta(&o.ObjectMeta)
		o.Spec.Namespace = intern(o.Spec.Namespace)
	case *v1alpha1.RegistryAttachment:
		o.TypeMeta = attachmentType
		trimMeta(&o.ObjectMeta)
	}
	return obj, nil
}

func trimMeta(m *metav1.ObjectMeta) {
	m.ManagedFields, m.Annotations, m.Labels, m.OwnerReferences, m.UID = nil, nil, nil, nil, ""
}

var (
	serviceAccountType = metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}
	namespaceType      = metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}
	associationType    = metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "IdentityAssociation"}
	attachmentType     = metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "RegistryAttachment"}
	// interned holds one copy of each namespace name: tens of thousands of cached objects share a
	// few hundred namespaces.
	interned sync.Map
)

func intern(s string) string {
	if v, ok := interned.Load(s); ok {
		return v.(string)
	}
	v, _ := interned.LoadOrStore(s, s)
	return v.(string)
}
