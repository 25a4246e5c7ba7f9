package cluster

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// serviceAccountAnnotations are the only ServiceAccount annotations resolution reads.
var serviceAccountAnnotations = []string{
	policy.EKSRoleARN, policy.EKSAudience, policy.EKSSTSRegionalEndpoints, policy.EKSTokenExpiration,
	policy.AzureClientID, policy.AzureTenantID, policy.AzureTokenExpiration,
}

// trimServiceAccount keeps a ServiceAccount's identity and the compat annotations: tens of
// thousands of ServiceAccounts must fit in a few MiB, and lanyard must not hold anything else of
// theirs (their secrets list, last-applied configurations, managed fields).
func trimServiceAccount(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	var ann map[string]string
	for _, k := range serviceAccountAnnotations {
		if v, ok := m.Annotations[k]; ok {
			if ann == nil {
				ann = make(map[string]string, 2)
			}
			ann[k] = v
		}
	}
	out := &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta}
	out.Name, out.Namespace, out.UID, out.ResourceVersion = m.Name, m.Namespace, m.UID, m.ResourceVersion
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
	out := &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta}
	out.Name, out.UID, out.ResourceVersion, out.Labels = m.Name, m.UID, m.ResourceVersion, m.Labels
	return out, nil
}

// trimPolicyObject drops managed fields and annotations (kubectl's last-applied configuration
// doubles an object's size); everything lanyard reads is in spec and status.
func trimPolicyObject(obj any) (any, error) {
	switch o := obj.(type) {
	case *v1alpha1.IdentityAssociation:
		o.ManagedFields, o.Annotations = nil, nil
	case *v1alpha1.RegistryAttachment:
		o.ManagedFields, o.Annotations = nil, nil
	}
	return obj, nil
}
