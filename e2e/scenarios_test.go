package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

const (
	roleARN  = "arn:aws:iam::111122223333:role/e2e"
	clientID = "8b9f7a3c-1d2e-4f50-9a6b-7c8d9e0f1a2b"
	tenantID = "0c2f6d4e-1b3a-4c5d-9e8f-7a6b5c4d3e2f"
	provider = "projects/123456789012/locations/global/workloadIdentityPools/e2e-pool/providers/e2e-prov"
)

func tokenSource(v *corev1.Volume) *corev1.ServiceAccountTokenProjection {
	if v == nil || v.Projected == nil || len(v.Projected.Sources) == 0 {
		return nil
	}
	return v.Projected.Sources[0].ServiceAccountToken
}

// Scenario 1: each provider/mode; the stored pod has the exact env, mount and projected volume.
func TestInjectionPerProvider(t *testing.T) {
	tests := map[string]struct {
		spec      v1alpha1.IdentityAssociationSpec
		volume    string
		audience  string
		tokenPath string
		expSecs   int64
		mountPath string
		env       []corev1.EnvVar
	}{
		"aws pod identity": {
			spec:   v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN, Region: "us-west-2"}},
			volume: "eks-pod-identity-token", audience: "pods.eks.amazonaws.com", tokenPath: "eks-pod-identity-token", expSecs: 86400,
			mountPath: "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount",
			env: []corev1.EnvVar{
				{Name: "AWS_CONTAINER_CREDENTIALS_FULL_URI", Value: "http://169.254.170.23/v1/credentials"},
				{Name: "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", Value: "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"},
				{Name: "AWS_REGION", Value: "us-west-2"},
				{Name: "AWS_DEFAULT_REGION", Value: "us-west-2"},
			},
		},
		"aws irsa": {
			spec:   v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN, Mode: v1alpha1.AWSModeIRSA}},
			volume: "aws-iam-token", audience: "sts.amazonaws.com", tokenPath: "token", expSecs: 86400,
			mountPath: "/var/run/secrets/eks.amazonaws.com/serviceaccount",
			env: []corev1.EnvVar{
				{Name: "AWS_ROLE_ARN", Value: roleARN},
				{Name: "AWS_WEB_IDENTITY_TOKEN_FILE", Value: "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"},
				{Name: "AWS_STS_REGIONAL_ENDPOINTS", Value: "regional"},
			},
		},
		"azure": {
			spec:   v1alpha1.IdentityAssociationSpec{Azure: &v1alpha1.AzureIdentity{ClientID: clientID, TenantID: tenantID}},
			volume: "azure-identity-token", audience: "api://AzureADTokenExchange", tokenPath: "azure-identity-token", expSecs: 3600,
			mountPath: "/var/run/secrets/azure/tokens",
			env: []corev1.EnvVar{
				{Name: "AZURE_CLIENT_ID", Value: clientID},
				{Name: "AZURE_TENANT_ID", Value: tenantID},
				{Name: "AZURE_FEDERATED_TOKEN_FILE", Value: "/var/run/secrets/azure/tokens/azure-identity-token"},
				{Name: "AZURE_AUTHORITY_HOST", Value: "https://login.microsoftonline.com/"},
			},
		},
		"gcp": {
			spec:   v1alpha1.IdentityAssociationSpec{GCP: &v1alpha1.GCPIdentity{WorkloadIdentityProvider: provider}},
			volume: "gcp-identity-token", audience: "https://iam.googleapis.com/" + provider, tokenPath: "token", expSecs: 3600,
			mountPath: "/var/run/secrets/gcp",
			env:       []corev1.EnvVar{{Name: "GOOGLE_APPLICATION_CREDENTIALS", Value: "/var/run/secrets/gcp/credential-configuration.json"}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ns := namespace(t, true)
			serviceAccount(t, ns, "app", nil)
			association(t, ns, "app", tc.spec)
			mustCreate(t, newPod(ns, "p", "app"))
			p := stored(t, ns, "p")

			c := p.Spec.Containers[0]
			assert.Equal(t, tc.env, c.Env)
			m := mountAt(c, tc.mountPath)
			require.NotNil(t, m, "mount at %s", tc.mountPath)
			assert.Equal(t, tc.volume, m.Name)
			assert.True(t, m.ReadOnly)
			tok := tokenSource(volumeNamed(p, tc.volume))
			require.NotNil(t, tok, "projected token volume %s", tc.volume)
			assert.Equal(t, tc.audience, tok.Audience)
			assert.Equal(t, tc.tokenPath, tok.Path)
			assert.Equal(t, tc.expSecs, *tok.ExpirationSeconds)
			assert.NotEmpty(t, p.Annotations[policy.AnnotationInjected])
			if tc.spec.GCP != nil {
				assert.Equal(t, `{"type":"external_account","audience":"//iam.googleapis.com/`+provider+
					`","subject_token_type":"urn:ietf:params:oauth:token-type:jwt","token_url":"https://sts.googleapis.com/v1/token",`+
					`"credential_source":{"file":"/var/run/secrets/gcp/token","format":{"type":"text"}}}`,
					p.Annotations[policy.AnnotationGCPCredentialConfig])
				d := volumeNamed(p, tc.volume).Projected.Sources[1].DownwardAPI
				require.NotNil(t, d)
				assert.Equal(t, "credential-configuration.json", d.Items[0].Path)
				assert.Equal(t, "metadata.annotations['lanyard.dev/gcp-credential-config']", d.Items[0].FieldRef.FieldPath)
			}
		})
	}
}

// Scenario 2: no opt-in label, pod opt-out label, kube-system: stored pods are untouched.
func TestNotMutated(t *testing.T) {
	t.Run("namespace without the opt-in label", func(t *testing.T) {
		ns := namespace(t, false)
		serviceAccount(t, ns, "app", nil)
		association(t, ns, "app", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}})
		mustCreate(t, newPod(ns, "p", "app"))
		untouched(t, stored(t, ns, "p"))
	})
	t.Run("pod with the opt-out label", func(t *testing.T) {
		ns := namespace(t, true)
		serviceAccount(t, ns, "app", nil)
		association(t, ns, "app", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}})
		p := newPod(ns, "p", "app")
		p.Labels = map[string]string{policy.InjectLabel: policy.InjectDisabled}
		mustCreate(t, p)
		untouched(t, stored(t, ns, "p"))
	})
	t.Run("kube-system even when labelled", func(t *testing.T) {
		ks := &corev1.Namespace{}
		require.NoError(t, k8s.Get(ctx(t), types.NamespacedName{Name: "kube-system"}, ks))
		patch := client.MergeFrom(ks.DeepCopy())
		if ks.Labels == nil {
			ks.Labels = map[string]string{}
		}
		ks.Labels[policy.InjectLabel] = policy.InjectEnabled
		require.NoError(t, k8s.Patch(ctx(t), ks, patch))
		association(t, "kube-system", "default", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}})
		p := newPod("kube-system", "e2e-system-pod", "")
		mustCreate(t, p)
		t.Cleanup(func() { _ = k8s.Delete(ctx(t), p) })
		untouched(t, stored(t, "kube-system", "e2e-system-pod"))
	})
}

// Scenario 3: an IdentityAssociation and a ServiceAccount created immediately before the pod (no
// sleep): the pod is injected, every time.
func TestRaceAssociationCreatedJustBeforePod(t *testing.T) {
	ns := namespace(t, true)
	for i := range 50 {
		sa := fmt.Sprintf("race-%d", i)
		serviceAccount(t, ns, sa, nil)
		association(t, ns, sa, v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN, Mode: v1alpha1.AWSModeIRSA}})
		mustCreate(t, newPod(ns, sa, sa))
		p := stored(t, ns, sa)
		require.Equal(t, "aws", p.Annotations[policy.AnnotationInjected], "iteration %d", i)
		require.Equal(t, roleARN, envMap(p.Spec.Containers[0])["AWS_ROLE_ARN"], "iteration %d", i)
	}
}

// Scenario 4: a second association for the same ServiceAccount is rejected with lanyard's message.
func TestDuplicateAssociationRejected(t *testing.T) {
	ns := namespace(t, true)
	first := association(t, ns, "app", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}})
	second := &v1alpha1.IdentityAssociation{ObjectMeta: metav1.ObjectMeta{Name: ns + "-second"},
		Spec: v1alpha1.IdentityAssociationSpec{Namespace: ns, ServiceAccountName: "app", Azure: &v1alpha1.AzureIdentity{ClientID: clientID}}}
	err := k8s.Create(ctx(t), second)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "identityassociations.lanyard.dev")
	assert.Contains(t, err.Error(), fmt.Sprintf("ServiceAccount %s/app already has IdentityAssociation %s", ns, first.Name))

	// Updating the existing one is fine.
	patch := client.MergeFrom(first.DeepCopy())
	first.Spec.AWS.Region = "eu-west-1"
	require.NoError(t, k8s.Patch(ctx(t), first, patch))
}

// The CRD schema (CEL) rejects malformed values before lanyard's webhook sees them.
func TestSchemaRejectsMalformedAssociations(t *testing.T) {
	tests := map[string]struct {
		spec v1alpha1.IdentityAssociationSpec
		want string
	}{
		"malformed role ARN":   {v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: "arn:aws:iam::1:role/x"}}, "roleARN must be an IAM role ARN"},
		"malformed client ID":  {v1alpha1.IdentityAssociationSpec{Azure: &v1alpha1.AzureIdentity{ClientID: "nope"}}, "clientID must be a GUID"},
		"malformed provider":   {v1alpha1.IdentityAssociationSpec{GCP: &v1alpha1.GCPIdentity{WorkloadIdentityProvider: "projects/x"}}, "workloadIdentityProvider must be projects/"},
		"no provider":          {v1alpha1.IdentityAssociationSpec{}, "at least one of aws, azure or gcp must be set"},
		"expiration too short": {v1alpha1.IdentityAssociationSpec{TokenExpirationSeconds: ptr.To[int64](60), GCP: &v1alpha1.GCPIdentity{WorkloadIdentityProvider: provider}}, "should be greater than or equal to 600"},
		"azure expiration":     {v1alpha1.IdentityAssociationSpec{TokenExpirationSeconds: ptr.To[int64](600), Azure: &v1alpha1.AzureIdentity{ClientID: clientID}}, "at least 3600 when azure is set"},
		"azure identity that is not a managed identity": {v1alpha1.IdentityAssociationSpec{Azure: &v1alpha1.AzureIdentity{ClientID: clientID,
			IdentityResourceID: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"}},
			"identityResourceID must be the resource ID of a user-assigned managed identity"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.spec.Namespace, tc.spec.ServiceAccountName = "default", "schema"
			ia := &v1alpha1.IdentityAssociation{ObjectMeta: metav1.ObjectMeta{GenerateName: "schema-"}, Spec: tc.spec}
			err := k8s.Create(ctx(t), ia)
			require.Error(t, err)
			assert.True(t, apierrors.IsInvalid(err), "want a schema rejection, got %v", err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	t.Run("azure identity resource ID accepted as Azure writes it", func(t *testing.T) {
		ia := &v1alpha1.IdentityAssociation{ObjectMeta: metav1.ObjectMeta{GenerateName: "schema-"}, Spec: v1alpha1.IdentityAssociationSpec{
			Namespace: "default", ServiceAccountName: "schema-ok",
			Azure: &v1alpha1.AzureIdentity{ClientID: clientID, TenantID: tenantID,
				IdentityResourceID: "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg-prod.(eu)/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-payments"}}}
		require.NoError(t, k8s.Create(ctx(t), ia, client.DryRunAll))
	})
	t.Run("registry attachment with both pull methods", func(t *testing.T) {
		ra := &v1alpha1.RegistryAttachment{ObjectMeta: metav1.ObjectMeta{GenerateName: "schema-"}, Spec: v1alpha1.RegistryAttachmentSpec{
			Registry: "myacr.azurecr.io",
			Pull:     v1alpha1.PullMethod{ImagePullSecret: &v1alpha1.SecretReference{Name: "s"}, NodeIdentity: &v1alpha1.NodeIdentityPull{}}}}
		err := k8s.Create(ctx(t), ra)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "exactly one of imagePullSecret, nodeIdentity or serviceAccountToken must be set")
	})
}

// Scenario 5: server-side dry-run returns the mutated pod and stores nothing.
func TestDryRun(t *testing.T) {
	ns := namespace(t, true)
	serviceAccount(t, ns, "app", nil)
	association(t, ns, "app", v1alpha1.IdentityAssociationSpec{Azure: &v1alpha1.AzureIdentity{ClientID: clientID, TenantID: tenantID}})
	p := newPod(ns, "dry", "app")
	require.NoError(t, k8s.Create(ctx(t), p, client.DryRunAll))
	assert.Equal(t, "azure", p.Annotations[policy.AnnotationInjected])
	assert.Equal(t, clientID, envMap(p.Spec.Containers[0])["AZURE_CLIENT_ID"])
	err := k8s.Get(ctx(t), types.NamespacedName{Namespace: ns, Name: "dry"}, &corev1.Pod{})
	assert.True(t, apierrors.IsNotFound(err), "dry-run must store nothing, got %v", err)
}

// Scenario 7: imagePullSecrets only for images on the attached registry, merged, never duplicated.
func TestRegistryAttachment(t *testing.T) {
	ns := namespace(t, true)
	attachment(t, ns+"-acr", v1alpha1.RegistryAttachmentSpec{
		Registry:          "*.azurecr.io",
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
		Pull:              v1alpha1.PullMethod{ImagePullSecret: &v1alpha1.SecretReference{Name: "acr-pull"}},
	})
	secrets := func(p *corev1.Pod) []string {
		var out []string
		for _, s := range p.Spec.ImagePullSecrets {
			out = append(out, s.Name)
		}
		return out
	}

	on := newPod(ns, "on-registry", "default", "nginx:1.27", "myacr.azurecr.io/app@sha256:"+strings.Repeat("a", 64))
	on.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "other"}}
	mustCreate(t, on)
	assert.Equal(t, []string{"other", "acr-pull"}, secrets(stored(t, ns, "on-registry")))

	already := newPod(ns, "already", "default", "myacr.azurecr.io/app:1")
	already.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "acr-pull"}}
	mustCreate(t, already)
	assert.Equal(t, []string{"acr-pull"}, secrets(stored(t, ns, "already")))

	off := newPod(ns, "off-registry", "default", "quay.io/team/app:1")
	mustCreate(t, off)
	assert.Empty(t, secrets(stored(t, ns, "off-registry")))
}

// Scenario 10: an invalid pod annotation denies creation with the annotation and the range.
func TestInvalidAnnotationDenied(t *testing.T) {
	ns := namespace(t, true)
	serviceAccount(t, ns, "app", nil)
	association(t, ns, "app", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}})
	p := newPod(ns, "bad", "app")
	p.Annotations = map[string]string{policy.AnnotationTokenExpiration: "100000"}
	err := k8s.Create(ctx(t), p)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `admission webhook "pods.lanyard.dev" denied the request`)
	assert.Contains(t, err.Error(), "lanyard.dev/token-expiration")
	assert.Contains(t, err.Error(), "between 600 and 86400")
}

// The status reconciler reports each association's state for kubectl get.
func TestAssociationStatus(t *testing.T) {
	ns := namespace(t, true)
	ready := association(t, ns, "app", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN, Mode: v1alpha1.AWSModeIRSA}})
	serviceAccount(t, ns, "app", nil)
	orphan := association(t, ns, "ghost", v1alpha1.IdentityAssociationSpec{GCP: &v1alpha1.GCPIdentity{WorkloadIdentityProvider: provider}})

	condition := func(name, cond string) (string, string) {
		ia := &v1alpha1.IdentityAssociation{}
		if err := k8s.Get(ctx(t), types.NamespacedName{Name: name}, ia); err != nil {
			return "", ""
		}
		for _, c := range ia.Status.Conditions {
			if c.Type == cond {
				return string(c.Status), ia.Status.Providers
			}
		}
		return "", ia.Status.Providers
	}
	require.Eventually(t, func() bool {
		s, p := condition(ready.Name, v1alpha1.ConditionReady)
		return s == "True" && p == "aws(IRSA)"
	}, 30*time.Second, 100*time.Millisecond, "the association whose ServiceAccount exists becomes Ready")
	require.Eventually(t, func() bool {
		s, _ := condition(orphan.Name, v1alpha1.ConditionServiceAccountFound)
		return s == "False"
	}, 30*time.Second, 100*time.Millisecond, "the one without a ServiceAccount says so")

	// A status that changes is written from the association read live (the cache keeps only a
	// digest of statuses): the conditions that do not change keep their transition times.
	before := &v1alpha1.IdentityAssociation{}
	require.NoError(t, k8s.Get(ctx(t), types.NamespacedName{Name: ready.Name}, before))
	unique := meta.FindStatusCondition(before.Status.Conditions, v1alpha1.ConditionConflict)
	require.NotNil(t, unique)
	time.Sleep(1100 * time.Millisecond) // transition times are kept to the second
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		changed := &v1alpha1.IdentityAssociation{}
		if err := k8s.Get(ctx(t), types.NamespacedName{Name: ready.Name}, changed); err != nil {
			return err
		}
		changed.Spec.AWS.Mode = v1alpha1.AWSModePodIdentity
		return k8s.Update(ctx(t), changed)
	}))
	after := &v1alpha1.IdentityAssociation{}
	require.Eventually(t, func() bool {
		return k8s.Get(ctx(t), types.NamespacedName{Name: ready.Name}, after) == nil &&
			after.Status.Providers == "aws(PodIdentity)" && after.Status.ObservedGeneration == after.Generation
	}, 30*time.Second, 100*time.Millisecond, "the new spec's status is written")
	assert.True(t, meta.IsStatusConditionTrue(after.Status.Conditions, v1alpha1.ConditionReady))
	kept := meta.FindStatusCondition(after.Status.Conditions, v1alpha1.ConditionConflict)
	require.NotNil(t, kept)
	assert.Equal(t, unique.LastTransitionTime, kept.LastTransitionTime, "an unchanged condition keeps its transition time")
	assert.Equal(t, after.Generation, kept.ObservedGeneration)
}
