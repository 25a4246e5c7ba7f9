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

// TrimPolicyObject is the cache's transform for policy objects. It keeps what lanyard reads: the
// spec, and of an association's status only its digest (CachedStatus: the status reconciler
// compares against it, so a restart writes nothing and reads nothing live). Managed fields,
// annotations (kubectl's last-applied configuration doubles an object's size) and labels go.
func TrimPolicyObject(obj any) (any, error) {
	switch o := obj.(type) {
	case *v1alpha1.IdentityAssociation:
		o.TypeMeta = associationType
		trimMeta(&o.ObjectMeta)
		o.Spec.Namespace = intern(o.Spec.Namespace)
		if a := o.Spec.AWS; a != nil {
			a.Mode, a.Region, a.Audience = v1alpha1.AWSMode(intern(string(a.Mode))), intern(a.Region), intern(a.Audience)
		}
		o.Status = CachedStatus(o.Status)
	case *v1alpha1.RegistryAttachment:
		o.TypeMeta = attachmentType
		trimMeta(&o.ObjectMeta)
	}
	return obj, nil
}

// CachedStatus is what the cache keeps of an association's status: the counters, and in place of
// the providers summary and the conditions a digest of what lanyard writes (StatusDigest).
// Conditions were the largest part of a cached association, and the reconciler only needs to know
// whether the status it would write differs. A status without conditions is kept as it is (empty:
// the reconciler writes a first status without reading the association live). Idempotent:
// informers may run a transform on an object more than once.
func CachedStatus(st v1alpha1.IdentityAssociationStatus) v1alpha1.IdentityAssociationStatus {
	if len(st.Conditions) == 0 && (st.Providers == "" || isDigest(st.Providers)) {
		return st
	}
	return v1alpha1.IdentityAssociationStatus{ObservedGeneration: st.ObservedGeneration,
		MatchedServiceAccounts: st.MatchedServiceAccounts, Providers: StatusDigest(st)}
}

// IsCachedDigest reports whether a cached status holds a digest (the association has a status
// with conditions: writing another keeps their transition times, so it is read live first).
func IsCachedDigest(st v1alpha1.IdentityAssociationStatus) bool { return isDigest(st.Providers) }

// digestSeed makes StatusDigest stable within the process (cached digests are only compared
// with digests computed by the same process).
var digestSeed = maphash.MakeSeed()

// digestMark starts every digest: no providers summary starts with a NUL byte, so a digest is
// never taken for a status and digested again.
const digestMark = "\x00"

// StatusDigest is a mark and 8 bytes that differ, but for a 2⁻⁶⁴ chance, when what lanyard writes
// of a status differs: the observed generation, the providers summary, the matched count and its
// own conditions (type, status, reason, message, observed generation; in any order). Transition
// times and other controllers' conditions are not part of it: lanyard keeps those as they are.
func StatusDigest(st v1alpha1.IdentityAssociationStatus) string {
	var h maphash.Hash
	h.SetSeed(digestSeed)
	field := func(s string) {
		_ = binary.Write(&h, binary.LittleEndian, uint32(len(s)))
		_, _ = h.WriteString(s)
	}
	number := func(n int64) { _ = binary.Write(&h, binary.LittleEndian, n) }
	number(st.ObservedGeneration)
	field(st.Providers)
	number(int64(st.MatchedServiceAccounts))
	for _, t := range []string{v1alpha1.ConditionConflict, v1alpha1.ConditionReady, v1alpha1.ConditionServiceAccountFound} {
		for _, c := range st.Conditions {
			if c.Type == t {
				field(c.Type)
				field(string(c.Status))
				field(c.Reason)
				field(c.Message)
				number(c.ObservedGeneration)
			}
		}
	}
	b := append(make([]byte, 0, len(digestMark)+8), digestMark...)
	return string(binary.LittleEndian.AppendUint64(b, h.Sum64()))
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
