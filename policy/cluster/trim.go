package cluster

import (
	"encoding/binary"
	"hash/maphash"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// serviceAccountAnnotations are the only ServiceAccount annotations resolution reads: the compat
// annotations, with the EKS webhook's under the given prefix, and those the kubelet credential
// providers read (serviceAccountToken RegistryAttachments).
func serviceAccountAnnotations(eksPrefix string) []string {
	keys := append(policy.EKSKeysFor(eksPrefix).ServiceAccountKeys(),
		policy.AzureClientID, policy.AzureTenantID, policy.AzureTokenExpiration)
	return append(keys, policy.CredentialProviderAnnotations...)
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
	ann := keptAnnotations(m.Annotations, keep)
	out := &metav1.PartialObjectMetadata{TypeMeta: serviceAccountType}
	out.Name, out.Namespace, out.ResourceVersion = m.Name, intern(m.Namespace), m.ResourceVersion
	out.CreationTimestamp = m.CreationTimestamp // recent ServiceAccounts get a live association check
	out.Annotations = ann
	return out, nil
}

// keptAnnotations are the annotations among keep (nil when there are none: most ServiceAccounts
// carry no compat annotation).
func keptAnnotations(all map[string]string, keep []string) map[string]string {
	var kept map[string]string
	for _, k := range keep {
		if v, ok := all[k]; ok {
			if kept == nil {
				kept = make(map[string]string, 2)
			}
			kept[k] = v
		}
	}
	return kept
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

// TrimPolicyObject is the cache's transform for policy objects. It keeps what lanyard reads, spec
// and status (the status reconciler compares against the cached status, so a restart writes
// nothing and reads nothing live; see trimStatus): managed fields, annotations (kubectl's
// last-applied configuration doubles an object's size) and labels go.
func TrimPolicyObject(obj any) (any, error) {
	switch o := obj.(type) {
	case *v1alpha1.IdentityAssociation:
		o.TypeMeta = associationType
		trimMeta(&o.ObjectMeta)
		o.Spec.Namespace = intern(o.Spec.Namespace)
		if a := o.Spec.AWS; a != nil {
			a.Mode, a.Region, a.Audience = v1alpha1.AWSMode(intern(string(a.Mode))), intern(a.Region), intern(a.Audience)
		}
		trimStatus(&o.Status)
	case *v1alpha1.RegistryAttachment:
		o.TypeMeta = attachmentType
		trimMeta(&o.ObjectMeta)
	}
	return obj, nil
}

// trimStatus keeps what the status reconciler compares: the fixed words of a status (condition
// types, statuses, reasons, the providers summary) once per process, and the message of each of
// lanyard's conditions as a digest (MessageDigest). Messages repeat the association's names and were the largest part
// of a cached association; the reconciler only needs to know whether a message changed.
func trimStatus(st *v1alpha1.IdentityAssociationStatus) {
	st.Providers = intern(st.Providers)
	for i := range st.Conditions {
		c := &st.Conditions[i]
		switch c.Type {
		case v1alpha1.ConditionReady, v1alpha1.ConditionConflict, v1alpha1.ConditionServiceAccountFound:
		default:
			continue // not lanyard's: kept as written, since the reconciler writes it back
		}
		c.Type, c.Reason = intern(c.Type), intern(c.Reason)
		c.Status = metav1.ConditionStatus(intern(string(c.Status)))
		if !isDigest(c.Message) { // informers may run a transform on an object more than once
			c.Message = MessageDigest(c.Message)
		}
	}
}

// digestSeed makes MessageDigest stable within the process (cached digests are only compared
// with digests computed by the same process).
var digestSeed = maphash.MakeSeed()

// digestMark starts every digest: no message lanyard writes starts with a NUL byte, so a digest is
// never taken for a message and digested again.
const digestMark = "\x00"

// MessageDigest is what the cache keeps of a condition message: a mark and 8 bytes that differ,
// but for a 2⁻⁶⁴ chance, when the message differs. Compare a computed message with a cached one
// through it.
func MessageDigest(message string) string {
	if message == "" {
		return ""
	}
	b := append(make([]byte, 0, len(digestMark)+8), digestMark...)
	return string(binary.LittleEndian.AppendUint64(b, maphash.String(digestSeed, message)))
}

func isDigest(s string) bool { return len(s) == len(digestMark)+8 && s[:len(digestMark)] == digestMark }

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
