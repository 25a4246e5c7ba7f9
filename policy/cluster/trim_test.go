package cluster

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

var created = metav1.NewTime(time.Date(2026, time.July, 14, 9, 21, 7, 0, time.UTC))

func managedFields() []metav1.ManagedFieldsEntry {
	return []metav1.ManagedFieldsEntry{{
		Manager: "kubectl-client-side-apply", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1",
		FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:annotations":{}}}`),
	}}
}

// fullMeta is everything an API server returns in a ServiceAccount's or Namespace's metadata.
func fullMeta(gvk string, namespace, name string, annotations, labels map[string]string) *metav1.PartialObjectMetadata {
	m := serviceAccountMeta()
	if gvk == "Namespace" {
		m = namespaceMeta()
	}
	m.ObjectMeta = metav1.ObjectMeta{
		Namespace: namespace, Name: name, UID: "0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a", ResourceVersion: "4711", Generation: 3,
		CreationTimestamp: created, Labels: labels, Annotations: annotations, ManagedFields: managedFields(),
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "owner", UID: "1"}},
		Finalizers:      []string{"example.com/keep"},
	}
	return m
}

func TestTrimServiceAccount(t *testing.T) {
	all := map[string]string{
		policy.EKSRoleARN:              roleARN,
		policy.EKSAudience:             "sts.amazonaws.com",
		policy.EKSSTSRegionalEndpoints: "true",
		policy.EKSTokenExpiration:      "3600",
		policy.AzureClientID:           "11111111-2222-3333-4444-555555555555",
		policy.AzureTenantID:           "66666666-7777-8888-9999-000000000000",
		policy.AzureTokenExpiration:    "7200",
	}
	tests := map[string]struct {
		annotations map[string]string
		want        map[string]string
	}{
		"keeps only the compat annotations": {
			annotations: map[string]string{
				policy.EKSRoleARN: roleARN, lastApplied: `{"apiVersion":"v1","kind":"ServiceAccount","secrets":[{"name":"web-token"}]}`,
				"kubernetes.io/enforce-mountable-secrets": "true", "team": "payments",
			},
			want: map[string]string{policy.EKSRoleARN: roleARN},
		},
		"keeps every compat annotation": {annotations: all, want: all},
		"no compat annotation leaves no map": {
			annotations: map[string]string{lastApplied: "{}"},
			want:        nil,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := fullMeta("ServiceAccount", ns, "web", tc.annotations, map[string]string{"app": "web"})
			out, err := trimServiceAccount(in)
			require.NoError(t, err)
			m, ok := out.(*metav1.PartialObjectMetadata)
			require.True(t, ok)
			assert.Equal(t, tc.want, m.Annotations)
			assert.Equal(t, serviceAccountType, m.TypeMeta)
			assert.Equal(t, metav1.ObjectMeta{
				Namespace: ns, Name: "web", ResourceVersion: "4711", CreationTimestamp: created, Annotations: tc.want,
			}, m.ObjectMeta, "identity, age and compat annotations only: no labels, managed fields, owners, finalizers")
		})
	}
}

func TestTrimNamespace(t *testing.T) {
	labels := map[string]string{policy.InjectLabel: policy.InjectEnabled, "kubernetes.io/metadata.name": ns}
	in := fullMeta("Namespace", "", ns, map[string]string{lastApplied: "{}"}, labels)
	out, err := trimNamespace(in)
	require.NoError(t, err)
	m, ok := out.(*metav1.PartialObjectMetadata)
	require.True(t, ok)
	assert.Equal(t, namespaceType, m.TypeMeta)
	assert.Equal(t, metav1.ObjectMeta{Name: ns, ResourceVersion: "4711", Labels: labels}, m.ObjectMeta,
		"labels (for namespaceSelectors) and identity only")
}

func TestTrimPolicyObject(t *testing.T) {
	meta := func() metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: "web", UID: "u", ResourceVersion: "9", Generation: 2, Labels: map[string]string{"team": "payments"},
			Annotations: map[string]string{lastApplied: `{"spec":{}}`}, ManagedFields: managedFields()}
	}
	ia := &v1alpha1.IdentityAssociation{ObjectMeta: meta(), Spec: association("web", "web").Spec,
		Status: v1alpha1.IdentityAssociationStatus{ObservedGeneration: 2, Providers: "aws(IRSA)"}}
	ra := &v1alpha1.RegistryAttachment{ObjectMeta: meta(), Spec: v1alpha1.RegistryAttachmentSpec{
		Registry: "myacr.azurecr.io", Pull: v1alpha1.PullMethod{ImagePullSecret: &v1alpha1.SecretReference{Name: "acr-pull"}},
	}}
	tests := map[string]struct {
		in   any
		want any
	}{
		"IdentityAssociation keeps only identity, spec and the digest of its status": {
			in: ia.DeepCopy(),
			want: func() any {
				w := ia.DeepCopy()
				w.TypeMeta = associationType
				w.ManagedFields, w.Annotations, w.Labels, w.UID = nil, nil, nil, ""
				w.Status.Providers = StatusDigest(ia.Status)
				return w
			}(),
		},
		"RegistryAttachment keeps only identity and spec": {
			in: ra.DeepCopy(),
			want: func() any {
				w := ra.DeepCopy()
				w.TypeMeta = attachmentType
				w.ManagedFields, w.Annotations, w.Labels, w.UID = nil, nil, nil, ""
				return w
			}(),
		},
		"other objects pass through": {
			in:   &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", ManagedFields: managedFields()}},
			want: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", ManagedFields: managedFields()}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := TrimPolicyObject(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, out)
		})
	}
}

// TestTrimsPassThroughOtherTypes: a transform may see tombstones or other types; it must not fail.
func TestTrimsPassThroughOtherTypes(t *testing.T) {
	tests := map[string]struct {
		trim func(any) (any, error)
	}{
		"trimServiceAccount": {trim: trimServiceAccount},
		"trimNamespace":      {trim: trimNamespace},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "typed"}}
			out, err := tc.trim(in)
			require.NoError(t, err)
			assert.Same(t, in, out)
		})
	}
}

// With the EKS webhook's --annotation-prefix, the cache keeps its annotations under that prefix
// (and only the ones resolution reads).
func TestServiceAccountTrimmerKeepsThePrefixedEKSAnnotations(t *testing.T) {
	m := serviceAccountMeta()
	m.Name, m.Namespace = "app", "team-a"
	m.Annotations = map[string]string{
		"iam.example.com/role-arn": "arn:aws:iam::111122223333:role/r", "iam.example.com/audience": "aud",
		"iam.example.com/unrelated": "x", policy.EKSRoleARN: "arn:aws:iam::111122223333:role/default-prefix",
		policy.AzureClientID: "8b9f7a3c-1d2e-4f50-9a6b-7c8d9e0f1a2b",
	}
	out, err := serviceAccountTrimmer("iam.example.com")(m)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{
		"iam.example.com/role-arn": "arn:aws:iam::111122223333:role/r", "iam.example.com/audience": "aud",
		policy.AzureClientID: "8b9f7a3c-1d2e-4f50-9a6b-7c8d9e0f1a2b",
	}, out.(*metav1.PartialObjectMetadata).Annotations)
}

func TestCachedStatusIsADigestOfWhatLanyardWrites(t *testing.T) {
	earlier, now := metav1.NewTime(time.Unix(1_700_000_000, 0)), metav1.Now()
	ready := metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready",
		Message: "pods of ServiceAccount shop/web get aws(IRSA)", LastTransitionTime: earlier, ObservedGeneration: 2}
	unique := metav1.Condition{Type: v1alpha1.ConditionConflict, Status: metav1.ConditionFalse, Reason: "Unique",
		Message: "no other IdentityAssociation claims ServiceAccount shop/web", ObservedGeneration: 2}
	audited := metav1.Condition{Type: "example.com/Audited", Status: metav1.ConditionTrue, Reason: "Seen", Message: "written by another controller"}
	st := v1alpha1.IdentityAssociationStatus{ObservedGeneration: 2, Providers: "aws(IRSA)", MatchedServiceAccounts: 1,
		Conditions: []metav1.Condition{ready, unique, audited}}

	cached := CachedStatus(st)
	assert.Empty(t, cached.Conditions, "the conditions are not kept")
	assert.Equal(t, StatusDigest(st), cached.Providers)
	assert.True(t, IsCachedDigest(cached))
	assert.Len(t, cached.Providers, 9)
	assert.Equal(t, int64(2), cached.ObservedGeneration)
	assert.Equal(t, int32(1), cached.MatchedServiceAccounts)

	same := func(change func(*v1alpha1.IdentityAssociationStatus)) bool {
		other := *st.DeepCopy()
		change(&other)
		return StatusDigest(other) == cached.Providers
	}
	assert.True(t, same(func(s *v1alpha1.IdentityAssociationStatus) { s.Conditions[0].LastTransitionTime = now }), "transition times are not lanyard's to compare")
	assert.True(t, same(func(s *v1alpha1.IdentityAssociationStatus) { s.Conditions = s.Conditions[:2] }), "another controller's conditions are kept as they are")
	assert.True(t, same(func(s *v1alpha1.IdentityAssociationStatus) {
		s.Conditions[0], s.Conditions[1] = s.Conditions[1], s.Conditions[0]
	}), "order does not matter")
	for name, change := range map[string]func(*v1alpha1.IdentityAssociationStatus){
		"message":                func(s *v1alpha1.IdentityAssociationStatus) { s.Conditions[0].Message += "!" },
		"reason":                 func(s *v1alpha1.IdentityAssociationStatus) { s.Conditions[1].Reason = "Other" },
		"status":                 func(s *v1alpha1.IdentityAssociationStatus) { s.Conditions[0].Status = metav1.ConditionFalse },
		"condition's generation": func(s *v1alpha1.IdentityAssociationStatus) { s.Conditions[0].ObservedGeneration = 3 },
		"observed generation":    func(s *v1alpha1.IdentityAssociationStatus) { s.ObservedGeneration = 3 },
		"providers":              func(s *v1alpha1.IdentityAssociationStatus) { s.Providers = "aws(PodIdentity)" },
		"matched count":          func(s *v1alpha1.IdentityAssociationStatus) { s.MatchedServiceAccounts = 2 },
		"a condition gone":       func(s *v1alpha1.IdentityAssociationStatus) { s.Conditions = s.Conditions[1:] },
		"field boundaries": func(s *v1alpha1.IdentityAssociationStatus) {
			s.Conditions[1].Reason, s.Conditions[1].Message = "Uniqueno", " other IdentityAssociation claims ServiceAccount shop/web"
		},
	} {
		assert.False(t, same(change), "a changed %s changes the digest", name)
	}

	empty := v1alpha1.IdentityAssociationStatus{}
	assert.Equal(t, empty, CachedStatus(empty), "no status yet: kept empty, so a first status needs no live read")
	assert.False(t, IsCachedDigest(empty))
}

// client-go may run an informer's transform more than once on the same object (a watch-list's
// temporary store, then the queue): trimming a trimmed object changes nothing.
func TestTrimPolicyObjectIsIdempotent(t *testing.T) {
	ia := &v1alpha1.IdentityAssociation{Spec: association("web", "web").Spec, Status: v1alpha1.IdentityAssociationStatus{
		ObservedGeneration: 2, Providers: "aws(IRSA)", Conditions: []metav1.Condition{
			{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready", Message: "pods of ServiceAccount shop/web get aws(IRSA)"},
			{Type: v1alpha1.ConditionConflict, Status: metav1.ConditionFalse, Reason: "Unique", Message: "no other IdentityAssociation claims ServiceAccount shop/web"},
		}}}
	once, err := TrimPolicyObject(ia.DeepCopy())
	require.NoError(t, err)
	twice, err := TrimPolicyObject(once.(*v1alpha1.IdentityAssociation).DeepCopy())
	require.NoError(t, err)
	assert.Equal(t, once, twice)
	assert.Equal(t, StatusDigest(ia.Status), twice.(*v1alpha1.IdentityAssociation).Status.Providers)
}
