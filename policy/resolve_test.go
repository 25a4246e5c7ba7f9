package policy_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

const (
	roleARN  = "arn:aws:iam::111122223333:role/s3-reader"
	clientID = "11111111-1111-1111-1111-111111111111"
	tenantID = "22222222-2222-2222-2222-222222222222"
	tenant2  = "33333333-3333-3333-3333-333333333333"
	provider = "projects/123/locations/global/workloadIdentityPools/pool/providers/prov"
)

var errLookup = errors.New("informer not synced")

// testReader wraps a Static reader: it counts calls, can fail one method, and can return the
// attachments in an order of its choosing.
type testReader struct {
	*policy.Static
	failOn      string
	attachments []*v1alpha1.RegistryAttachment // when non-nil, returned instead of Static's
	calls       map[string][]string
}

func newTestReader() *testReader {
	return &testReader{Static: policy.NewStatic(), calls: map[string][]string{}}
}

func (r *testReader) Namespace(ctx context.Context, name string) (*metav1.ObjectMeta, error) {
	r.calls["Namespace"] = append(r.calls["Namespace"], name)
	if r.failOn == "Namespace" {
		return nil, errLookup
	}
	return r.Static.Namespace(ctx, name)
}

func (r *testReader) ServiceAccount(ctx context.Context, namespace, name string) (*metav1.ObjectMeta, []*v1alpha1.IdentityAssociation, error) {
	r.calls["ServiceAccount"] = append(r.calls["ServiceAccount"], namespace+"/"+name)
	if r.failOn == "ServiceAccount" {
		return nil, nil, errLookup
	}
	return r.Static.ServiceAccount(ctx, namespace, name)
}

func (r *testReader) BroadAssociations(ctx context.Context, namespace string) ([]*v1alpha1.IdentityAssociation, error) {
	r.calls["BroadAssociations"] = append(r.calls["BroadAssociations"], namespace)
	if r.failOn == "BroadAssociations" {
		return nil, errLookup
	}
	return r.Static.BroadAssociations(ctx, namespace)
}

func (r *testReader) RegistryAttachments(ctx context.Context) ([]*v1alpha1.RegistryAttachment, error) {
	r.calls["RegistryAttachments"] = append(r.calls["RegistryAttachments"], "")
	if r.failOn == "RegistryAttachments" {
		return nil, errLookup
	}
	if r.attachments != nil {
		return r.attachments, nil
	}
	return r.Static.RegistryAttachments(ctx)
}

func ptr[T any](v T) *T { return &v }

func ia(name, ns, sa string, spec v1alpha1.IdentityAssociationSpec) *v1alpha1.IdentityAssociation {
	spec.Namespace, spec.ServiceAccountName = ns, sa
	return &v1alpha1.IdentityAssociation{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
}

func secretAttachment(name, registry, secret string) *v1alpha1.RegistryAttachment {
	return &v1alpha1.RegistryAttachment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.RegistryAttachmentSpec{
			Registry: registry,
			Pull:     v1alpha1.PullMethod{ImagePullSecret: &v1alpha1.SecretReference{Name: secret}},
		},
	}
}

func tokenAttachment(name, registry string) *v1alpha1.RegistryAttachment {
	return &v1alpha1.RegistryAttachment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.RegistryAttachmentSpec{
			Registry: registry,
			Pull:     v1alpha1.PullMethod{ServiceAccountToken: &v1alpha1.ServiceAccountTokenPull{}},
		},
	}
}

func nodeAttachment(name, registry string) *v1alpha1.RegistryAttachment {
	return &v1alpha1.RegistryAttachment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.RegistryAttachmentSpec{
			Registry: registry,
			Pull:     v1alpha1.PullMethod{NodeIdentity: &v1alpha1.NodeIdentityPull{}},
		},
	}
}

func issueCodes(a *policy.Applied) []string {
	var codes []string
	for _, is := range a.Issues {
		codes = append(codes, is.Code)
	}
	return codes
}

func TestResolveLookupErrorsFailClosed(t *testing.T) {
	tests := map[string]struct {
		failOn  string
		compat  bool
		wantMsg string
	}{
		"ServiceAccount, compat off": {failOn: "ServiceAccount", wantMsg: "looking up ServiceAccount payments/api and its IdentityAssociations"},
		"ServiceAccount, compat on":  {failOn: "ServiceAccount", compat: true, wantMsg: "looking up ServiceAccount payments/api and its IdentityAssociations"},
		"RegistryAttachments":        {failOn: "RegistryAttachments", wantMsg: "listing RegistryAttachments"},
		"Namespace":                  {failOn: "Namespace", wantMsg: "looking up Namespace payments"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := newTestReader()
			r.AddIdentityAssociation(ia("api", "payments", "api", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}}))
			r.AddRegistryAttachment(secretAttachment("acr", "myacr.azurecr.io", "acr-pull"))
			r.failOn = tc.failOn
			res := policy.NewResolver(r, policy.Options{CompatAnnotations: tc.compat})

			applied, err := res.Resolve(context.Background(), policy.Subject{Namespace: "payments", ServiceAccountName: "api", Images: []string{"myacr.azurecr.io/api:v1"}})
			require.Error(t, err)
			assert.Nil(t, applied)
			var invalid *policy.InvalidError
			assert.False(t, errors.As(err, &invalid), "a lookup error must not deny the pod: %v", err)
			assert.ErrorIs(t, err, errLookup)
			assert.Contains(t, err.Error(), tc.wantMsg)
			assert.Len(t, r.calls[tc.failOn], 1)
		})
	}
}

func TestResolveAssociation(t *testing.T) {
	tests := map[string]struct {
		spec       v1alpha1.IdentityAssociationSpec
		opts       policy.Options
		want       policy.Identity
		wantIssues []string
	}{
		"aws defaults to PodIdentity without sts regional endpoints": {
			spec: v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}},
			want: policy.Identity{Source: "IdentityAssociation assoc", AWS: &policy.AWS{Mode: v1alpha1.AWSModePodIdentity, RoleARN: roleARN}},
		},
		"aws PodIdentity ignores stsRegionalEndpoints": {
			spec: v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN, Mode: v1alpha1.AWSModePodIdentity, STSRegionalEndpoints: ptr(true)}},
			want: policy.Identity{Source: "IdentityAssociation assoc", AWS: &policy.AWS{Mode: v1alpha1.AWSModePodIdentity, RoleARN: roleARN}},
		},
		"aws IRSA defaults to sts regional endpoints": {
			spec: v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN, Mode: v1alpha1.AWSModeIRSA}},
			want: policy.Identity{Source: "IdentityAssociation assoc", AWS: &policy.AWS{Mode: v1alpha1.AWSModeIRSA, RoleARN: roleARN, STSRegionalEndpoints: true}},
		},
		"aws IRSA with sts regional endpoints off": {
			spec: v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN, Mode: v1alpha1.AWSModeIRSA, STSRegionalEndpoints: ptr(false)}},
			want: policy.Identity{Source: "IdentityAssociation assoc", AWS: &policy.AWS{Mode: v1alpha1.AWSModeIRSA, RoleARN: roleARN}},
		},
		"aws region and audience pass through": {
			spec: v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN, Region: "eu-west-1", Audience: "aud"}},
			want: policy.Identity{Source: "IdentityAssociation assoc", AWS: &policy.AWS{Mode: v1alpha1.AWSModePodIdentity, RoleARN: roleARN, Region: "eu-west-1", Audience: "aud"}},
		},
		"azure defaults to the public cloud and the default tenant": {
			spec: v1alpha1.IdentityAssociationSpec{Azure: &v1alpha1.AzureIdentity{ClientID: clientID}},
			opts: policy.Options{DefaultAzureTenantID: tenantID},
			want: policy.Identity{Source: "IdentityAssociation assoc", Azure: &policy.Azure{ClientID: clientID, TenantID: tenantID, Cloud: v1alpha1.AzurePublicCloud}},
		},
		"azure tenant of the association beats the default": {
			spec: v1alpha1.IdentityAssociationSpec{Azure: &v1alpha1.AzureIdentity{ClientID: clientID, TenantID: tenant2, Cloud: v1alpha1.AzureChinaCloud}},
			opts: policy.Options{DefaultAzureTenantID: tenantID},
			want: policy.Identity{Source: "IdentityAssociation assoc", Azure: &policy.Azure{ClientID: clientID, TenantID: tenant2, Cloud: v1alpha1.AzureChinaCloud}},
		},
		"azure without any tenant is dropped with an error issue": {
			spec:       v1alpha1.IdentityAssociationSpec{Azure: &v1alpha1.AzureIdentity{ClientID: clientID}, GCP: &v1alpha1.GCPIdentity{WorkloadIdentityProvider: provider}},
			want:       policy.Identity{Source: "IdentityAssociation assoc", GCP: &policy.GCP{WorkloadIdentityProvider: provider}},
			wantIssues: []string{policy.CodeAzureTenantMissing},
		},
		"gcp with impersonation": {
			spec: v1alpha1.IdentityAssociationSpec{GCP: &v1alpha1.GCPIdentity{WorkloadIdentityProvider: provider, ServiceAccountEmail: "app@p.iam.gserviceaccount.com"}},
			want: policy.Identity{Source: "IdentityAssociation assoc", GCP: &policy.GCP{WorkloadIdentityProvider: provider, ServiceAccountEmail: "app@p.iam.gserviceaccount.com"}},
		},
		"expiration applies to every provider": {
			spec: v1alpha1.IdentityAssociationSpec{
				TokenExpirationSeconds: ptr[int64](7200),
				AWS:                    &v1alpha1.AWSIdentity{RoleARN: roleARN, Mode: v1alpha1.AWSModeIRSA},
				Azure:                  &v1alpha1.AzureIdentity{ClientID: clientID, TenantID: tenantID},
				GCP:                    &v1alpha1.GCPIdentity{WorkloadIdentityProvider: provider},
			},
			want: policy.Identity{
				Source: "IdentityAssociation assoc",
				AWS:    &policy.AWS{Mode: v1alpha1.AWSModeIRSA, RoleARN: roleARN, STSRegionalEndpoints: true, TokenExpirationSeconds: 7200},
				Azure:  &policy.Azure{ClientID: clientID, TenantID: tenantID, Cloud: v1alpha1.AzurePublicCloud, TokenExpirationSeconds: 7200},
				GCP:    &policy.GCP{WorkloadIdentityProvider: provider, TokenExpirationSeconds: 7200},
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := policy.NewStatic()
			s.AddIdentityAssociation(ia("assoc", "ns", "app", tc.spec))
			s.AddIdentityAssociation(ia("other", "ns", "other-sa", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}}))
			applied, err := policy.NewResolver(s, tc.opts).Resolve(context.Background(), policy.Subject{Namespace: "ns", ServiceAccountName: "app"})
			require.NoError(t, err)
			assert.Equal(t, "ns", applied.Namespace)
			assert.Equal(t, "app", applied.ServiceAccountName)
			assert.Equal(t, tc.want, applied.Identity)
			assert.Equal(t, tc.wantIssues, issueCodes(applied))
			assert.Empty(t, applied.Registries)
		})
	}
}

func TestResolveAzureTenantMissingNamesTheSource(t *testing.T) {
	s := policy.NewStatic()
	s.AddIdentityAssociation(ia("assoc", "ns", "app", v1alpha1.IdentityAssociationSpec{Azure: &v1alpha1.AzureIdentity{ClientID: clientID}}))
	applied, err := policy.NewResolver(s, policy.Options{}).Resolve(context.Background(), policy.Subject{Namespace: "ns", ServiceAccountName: "app"})
	require.NoError(t, err)
	assert.True(t, applied.Identity.Empty())
	require.Len(t, applied.Issues, 1)
	assert.Equal(t, policy.SeverityError, applied.Issues[0].Severity)
	assert.Contains(t, applied.Issues[0].Message, "IdentityAssociation assoc")
	assert.Contains(t, applied.Issues[0].Message, "--azure-tenant-id")
}

func TestResolveConflictingAssociations(t *testing.T) {
	s := policy.NewStatic()
	// Added out of order: the message names them sorted.
	s.AddIdentityAssociation(ia("zeta", "ns", "app", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}}))
	s.AddIdentityAssociation(ia("alpha", "ns", "app", v1alpha1.IdentityAssociationSpec{GCP: &v1alpha1.GCPIdentity{WorkloadIdentityProvider: provider}}))
	sa := &metav1.ObjectMeta{Namespace: "ns", Name: "app", Annotations: map[string]string{policy.EKSRoleARN: roleARN}}
	s.AddServiceAccount(sa)

	applied, err := policy.NewResolver(s, policy.Options{CompatAnnotations: true}).Resolve(context.Background(), policy.Subject{Namespace: "ns", ServiceAccountName: "app"})
	require.NoError(t, err)
	assert.True(t, applied.Identity.Empty(), "no identity is guessed, not even from annotations: %+v", applied.Identity)
	assert.Empty(t, applied.Identity.Source)
	require.Len(t, applied.Issues, 1)
	is := applied.Issues[0]
	assert.Equal(t, policy.SeverityError, is.Severity)
	assert.Equal(t, policy.CodeConflictingAssociations, is.Code)
	assert.Contains(t, is.Message, "IdentityAssociations alpha and zeta claim the same ServiceAccount ns/app")
}

func TestResolveCompatAnnotations(t *testing.T) {
	where := func(key string) string { return "ServiceAccount ns/app annotation " + key }
	tests := map[string]struct {
		annotations map[string]string
		opts        policy.Options
		want        policy.Identity
		wantIssues  []string
		// wantInvalidField is the InvalidError's field; the pod is denied.
		wantInvalidField string
		wantReason       string
	}{
		"role-arn means IRSA with regional sts endpoints": {
			annotations: map[string]string{policy.EKSRoleARN: roleARN},
			want: policy.Identity{Source: "ServiceAccount ns/app annotations",
				AWS: &policy.AWS{Mode: v1alpha1.AWSModeIRSA, RoleARN: roleARN, STSRegionalEndpoints: true}},
		},
		"audience, sts endpoints and expiration": {
			annotations: map[string]string{policy.EKSRoleARN: roleARN, policy.EKSAudience: "aud", policy.EKSSTSRegionalEndpoints: " false ", policy.EKSTokenExpiration: "3600"},
			want: policy.Identity{Source: "ServiceAccount ns/app annotations",
				AWS: &policy.AWS{Mode: v1alpha1.AWSModeIRSA, RoleARN: roleARN, Audience: "aud", TokenExpirationSeconds: 3600}},
		},
		"sts endpoints accepts strconv booleans": {
			annotations: map[string]string{policy.EKSRoleARN: roleARN, policy.EKSSTSRegionalEndpoints: "TRUE"},
			want: policy.Identity{Source: "ServiceAccount ns/app annotations",
				AWS: &policy.AWS{Mode: v1alpha1.AWSModeIRSA, RoleARN: roleARN, STSRegionalEndpoints: true}},
		},
		"aws annotations without role-arn give nothing": {
			annotations: map[string]string{policy.EKSAudience: "aud", policy.EKSTokenExpiration: "bogus"},
		},
		"client-id means Azure with the default tenant": {
			annotations: map[string]string{policy.AzureClientID: clientID},
			opts:        policy.Options{DefaultAzureTenantID: tenantID},
			want: policy.Identity{Source: "ServiceAccount ns/app annotations",
				Azure: &policy.Azure{ClientID: clientID, TenantID: tenantID, Cloud: v1alpha1.AzurePublicCloud}},
		},
		"tenant-id and expiration": {
			annotations: map[string]string{policy.AzureClientID: clientID, policy.AzureTenantID: tenant2, policy.AzureTokenExpiration: "86400"},
			opts:        policy.Options{DefaultAzureTenantID: tenantID},
			want: policy.Identity{Source: "ServiceAccount ns/app annotations",
				Azure: &policy.Azure{ClientID: clientID, TenantID: tenant2, Cloud: v1alpha1.AzurePublicCloud, TokenExpirationSeconds: 86400}},
		},
		"client-id without any tenant is dropped with an error issue": {
			annotations: map[string]string{policy.AzureClientID: clientID, policy.EKSRoleARN: roleARN},
			want: policy.Identity{Source: "ServiceAccount ns/app annotations",
				AWS: &policy.AWS{Mode: v1alpha1.AWSModeIRSA, RoleARN: roleARN, STSRegionalEndpoints: true}},
			wantIssues: []string{policy.CodeAzureTenantMissing},
		},
		"both clouds": {
			annotations: map[string]string{policy.AzureClientID: clientID, policy.AzureTenantID: tenantID, policy.EKSRoleARN: roleARN},
			want: policy.Identity{Source: "ServiceAccount ns/app annotations",
				AWS:   &policy.AWS{Mode: v1alpha1.AWSModeIRSA, RoleARN: roleARN, STSRegionalEndpoints: true},
				Azure: &policy.Azure{ClientID: clientID, TenantID: tenantID, Cloud: v1alpha1.AzurePublicCloud}},
		},
		"malformed role-arn": {
			annotations:      map[string]string{policy.EKSRoleARN: "arn:aws:iam::111122223333:user/x"},
			wantInvalidField: where(policy.EKSRoleARN), wantReason: "must be an IAM role ARN",
		},
		"sts-regional-endpoints that is not a boolean is ignored, as the EKS webhook does, with a warning": {
			annotations: map[string]string{policy.EKSRoleARN: roleARN, policy.EKSSTSRegionalEndpoints: "regional"},
			want: policy.Identity{Source: "ServiceAccount ns/app annotations",
				AWS: &policy.AWS{Mode: v1alpha1.AWSModeIRSA, RoleARN: roleARN, STSRegionalEndpoints: true}},
			wantIssues: []string{policy.CodeAnnotationAdjusted},
		},
		"an empty Azure token expiration is absent, as for the Azure webhook": {
			annotations: map[string]string{policy.AzureClientID: clientID, policy.AzureTenantID: tenantID, policy.AzureTokenExpiration: ""},
			want: policy.Identity{Source: "ServiceAccount ns/app annotations",
				Azure: &policy.Azure{ClientID: clientID, TenantID: tenantID, Cloud: v1alpha1.AzurePublicCloud}},
		},
		"aws token-expiration below 600 is raised to 600, as the EKS webhook does, with a warning": {
			annotations: map[string]string{policy.EKSRoleARN: roleARN, policy.EKSTokenExpiration: "599"},
			want: policy.Identity{Source: "ServiceAccount ns/app annotations",
				AWS: &policy.AWS{Mode: v1alpha1.AWSModeIRSA, RoleARN: roleARN, STSRegionalEndpoints: true, TokenExpirationSeconds: 600}},
			wantIssues: []string{policy.CodeAnnotationAdjusted},
		},
		"aws token-expiration above 86400 is lowered to 86400, with a warning": {
			annotations: map[string]string{policy.EKSRoleARN: roleARN, policy.EKSTokenExpiration: "172800"},
			want: policy.Identity{Source: "ServiceAccount ns/app annotations",
				AWS: &policy.AWS{Mode: v1alpha1.AWSModeIRSA, RoleARN: roleARN, STSRegionalEndpoints: true, TokenExpirationSeconds: 86400}},
			wantIssues: []string{policy.CodeAnnotationAdjusted},
		},
		"aws token-expiration not a number is ignored, as the EKS webhook does, with a warning": {
			annotations: map[string]string{policy.EKSRoleARN: roleARN, policy.EKSTokenExpiration: "1h"},
			want: policy.Identity{Source: "ServiceAccount ns/app annotations",
				AWS: &policy.AWS{Mode: v1alpha1.AWSModeIRSA, RoleARN: roleARN, STSRegionalEndpoints: true}},
			wantIssues: []string{policy.CodeAnnotationAdjusted},
		},
		"malformed client-id": {
			annotations:      map[string]string{policy.AzureClientID: "not-a-guid"},
			wantInvalidField: where(policy.AzureClientID), wantReason: "must be a GUID",
		},
		"malformed tenant-id": {
			annotations:      map[string]string{policy.AzureClientID: clientID, policy.AzureTenantID: "contoso"},
			wantInvalidField: where(policy.AzureTenantID), wantReason: "must be a GUID",
		},
		"azure token expiration below 3600": {
			annotations:      map[string]string{policy.AzureClientID: clientID, policy.AzureTenantID: tenantID, policy.AzureTokenExpiration: "600"},
			wantInvalidField: where(policy.AzureTokenExpiration), wantReason: "between 3600 and 86400",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := policy.NewStatic()
			s.AddServiceAccount(&metav1.ObjectMeta{Namespace: "ns", Name: "app", Annotations: tc.annotations})
			tc.opts.CompatAnnotations = true
			applied, err := policy.NewResolver(s, tc.opts).Resolve(context.Background(), policy.Subject{Namespace: "ns", ServiceAccountName: "app"})
			if tc.wantInvalidField != "" {
				var invalid *policy.InvalidError
				require.ErrorAs(t, err, &invalid)
				assert.Nil(t, applied)
				assert.Equal(t, tc.wantInvalidField, invalid.Field)
				assert.Equal(t, tc.annotations[invalid.Field[len("ServiceAccount ns/app annotation "):]], invalid.Value)
				assert.Contains(t, invalid.Reason, tc.wantReason)
				assert.Contains(t, err.Error(), tc.wantInvalidField)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, applied.Identity)
			assert.Equal(t, tc.wantIssues, issueCodes(applied))
		})
	}
}

func TestResolveCompatAnnotationsOff(t *testing.T) {
	r := newTestReader()
	r.AddServiceAccount(&metav1.ObjectMeta{Namespace: "ns", Name: "app", Annotations: map[string]string{
		policy.EKSRoleARN: roleARN, policy.AzureClientID: "not-a-guid",
	}})
	applied, err := policy.NewResolver(r, policy.Options{CompatAnnotations: false}).Resolve(context.Background(), policy.Subject{Namespace: "ns", ServiceAccountName: "app"})
	require.NoError(t, err, "malformed annotations are not even read")
	assert.True(t, applied.Identity.Empty())
	assert.Empty(t, applied.Issues)
	assert.Equal(t, []string{"ns/app"}, r.calls["ServiceAccount"], "one lookup, annotations ignored")
}

func TestResolveAssociationBeatsAnnotations(t *testing.T) {
	tests := map[string]struct {
		annotations map[string]string
		wantNamed   string
	}{
		"aws annotation": {
			annotations: map[string]string{policy.EKSRoleARN: "arn:aws:iam::999999999999:role/old"},
			wantNamed:   "annotation eks.amazonaws.com/role-arn of ServiceAccount ns/app",
		},
		"azure annotation": {
			annotations: map[string]string{policy.AzureClientID: clientID},
			wantNamed:   "annotation azure.workload.identity/client-id of ServiceAccount ns/app",
		},
		"both annotations": {
			annotations: map[string]string{policy.EKSRoleARN: roleARN, policy.AzureClientID: clientID},
			wantNamed:   "annotation eks.amazonaws.com/role-arn and azure.workload.identity/client-id of ServiceAccount ns/app",
		},
		"malformed annotation is not validated when an association wins": {
			annotations: map[string]string{policy.EKSRoleARN: "not-an-arn", policy.EKSTokenExpiration: "1"},
			wantNamed:   "annotation eks.amazonaws.com/role-arn of ServiceAccount ns/app",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := policy.NewStatic()
			s.AddServiceAccount(&metav1.ObjectMeta{Namespace: "ns", Name: "app", Annotations: tc.annotations})
			s.AddIdentityAssociation(ia("assoc", "ns", "app", v1alpha1.IdentityAssociationSpec{GCP: &v1alpha1.GCPIdentity{WorkloadIdentityProvider: provider}}))
			applied, err := policy.NewResolver(s, policy.Options{CompatAnnotations: true, DefaultAzureTenantID: tenantID}).
				Resolve(context.Background(), policy.Subject{Namespace: "ns", ServiceAccountName: "app"})
			require.NoError(t, err)
			assert.Equal(t, policy.Identity{Source: "IdentityAssociation assoc", GCP: &policy.GCP{WorkloadIdentityProvider: provider}}, applied.Identity)
			require.Len(t, applied.Issues, 1)
			assert.Equal(t, policy.SeverityWarning, applied.Issues[0].Severity)
			assert.Equal(t, policy.CodeAnnotationsOverridden, applied.Issues[0].Code)
			assert.Contains(t, applied.Issues[0].Message, "IdentityAssociation assoc takes precedence over "+tc.wantNamed)
		})
	}
}

func TestResolveEmptyServiceAccountIsDefault(t *testing.T) {
	r := newTestReader()
	r.AddIdentityAssociation(ia("assoc", "ns", "default", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}}))
	r.AddServiceAccount(&metav1.ObjectMeta{Namespace: "ns", Name: "default"})
	applied, err := policy.NewResolver(r, policy.Options{CompatAnnotations: true}).Resolve(context.Background(), policy.Subject{Namespace: "ns"})
	require.NoError(t, err)
	assert.Equal(t, "default", applied.ServiceAccountName)
	assert.Equal(t, "IdentityAssociation assoc", applied.Identity.Source)
	assert.Equal(t, []string{"ns/default"}, r.calls["ServiceAccount"])
	assert.Equal(t, []string{"ns/default"}, r.calls["ServiceAccount"])
}

func TestResolveRegistries(t *testing.T) {
	withSelector := func(ra *v1alpha1.RegistryAttachment, sel *metav1.LabelSelector) *v1alpha1.RegistryAttachment {
		ra.Spec.NamespaceSelector = sel
		return ra
	}
	withSAs := func(ra *v1alpha1.RegistryAttachment, names ...string) *v1alpha1.RegistryAttachment {
		ra.Spec.ServiceAccountNames = names
		return ra
	}
	const ecrImage = "111122223333.dkr.ecr.us-west-2.amazonaws.com/app:v1"
	tests := map[string]struct {
		nsLabels      map[string]string // nil: namespace not described
		saAnnotations map[string]string // nil: ServiceAccount not described
		attachments   []*v1alpha1.RegistryAttachment
		images        []string
		want          []policy.RegistryGrant
		wantIssues    []policy.Issue
	}{
		"namespace selector matches the namespace labels": {
			nsLabels:    map[string]string{"team": "payments"},
			attachments: []*v1alpha1.RegistryAttachment{withSelector(secretAttachment("acr", "myacr.azurecr.io", "acr-pull"), &metav1.LabelSelector{MatchLabels: map[string]string{"team": "payments"}})},
			images:      []string{"myacr.azurecr.io/api:v1"},
			want:        []policy.RegistryGrant{{Attachment: "acr", Registry: "myacr.azurecr.io", Path: policy.PullImagePullSecret, PullSecret: "acr-pull", Images: []string{"myacr.azurecr.io/api:v1"}}},
		},
		"namespace selector does not match": {
			nsLabels:    map[string]string{"team": "web"},
			attachments: []*v1alpha1.RegistryAttachment{withSelector(secretAttachment("acr", "myacr.azurecr.io", "acr-pull"), &metav1.LabelSelector{MatchLabels: map[string]string{"team": "payments"}})},
			images:      []string{"myacr.azurecr.io/api:v1"},
			wantIssues: []policy.Issue{{Severity: policy.SeverityError, Code: policy.CodeUnattachedRegistry,
				Message: "image myacr.azurecr.io/api:v1 is on azure registry myacr.azurecr.io and no RegistryAttachment covers it for ns/app: it would fail to pull (declare a nodeIdentity attachment if the kubelet pulls)"}},
		},
		"namespace selector over an undescribed namespace": {
			attachments: []*v1alpha1.RegistryAttachment{withSelector(secretAttachment("internal", "registry.example.com", "pull"), &metav1.LabelSelector{MatchLabels: map[string]string{"team": "payments"}})},
			images:      []string{"registry.example.com/api"},
		},
		"empty selector matches an undescribed namespace": {
			attachments: []*v1alpha1.RegistryAttachment{withSelector(secretAttachment("internal", "registry.example.com", "pull"), &metav1.LabelSelector{})},
			images:      []string{"registry.example.com/api"},
			want:        []policy.RegistryGrant{{Attachment: "internal", Registry: "registry.example.com", Path: policy.PullImagePullSecret, PullSecret: "pull", Images: []string{"registry.example.com/api"}}},
		},
		"serviceAccountNames includes the pod's": {
			attachments: []*v1alpha1.RegistryAttachment{withSAs(secretAttachment("internal", "registry.example.com", "pull"), "other", "app")},
			images:      []string{"registry.example.com/api"},
			want:        []policy.RegistryGrant{{Attachment: "internal", Registry: "registry.example.com", Path: policy.PullImagePullSecret, PullSecret: "pull", Images: []string{"registry.example.com/api"}}},
		},
		"serviceAccountNames excludes the pod's": {
			attachments: []*v1alpha1.RegistryAttachment{withSAs(secretAttachment("internal", "registry.example.com", "pull"), "other")},
			images:      []string{"registry.example.com/api"},
		},
		"glob over ECR hosts": {
			attachments: []*v1alpha1.RegistryAttachment{secretAttachment("ecr", "*.dkr.ecr.us-west-2.amazonaws.com", "ecr-pull")},
			images:      []string{ecrImage, "docker.io/library/nginx"},
			want:        []policy.RegistryGrant{{Attachment: "ecr", Registry: "*.dkr.ecr.us-west-2.amazonaws.com", Path: policy.PullImagePullSecret, PullSecret: "ecr-pull", Images: []string{ecrImage}}},
		},
		"the same secret from two attachments is added once": {
			attachments: []*v1alpha1.RegistryAttachment{
				secretAttachment("b-second", "two.example.com", "shared"),
				secretAttachment("a-first", "one.example.com", "shared"),
			},
			images: []string{"two.example.com/x", "one.example.com/y"},
			want: []policy.RegistryGrant{
				{Attachment: "a-first", Registry: "one.example.com", Path: policy.PullImagePullSecret, PullSecret: "shared", Images: []string{"one.example.com/y"}},
				{Attachment: "b-second", Registry: "two.example.com", Path: policy.PullImagePullSecret, PullSecret: "shared", Duplicate: true, Images: []string{"two.example.com/x"}},
			},
		},
		"node identity grant has no pull secret": {
			attachments: []*v1alpha1.RegistryAttachment{nodeAttachment("acr", "myacr.azurecr.io")},
			images:      []string{"myacr.azurecr.io/api:v1", "myacr.azurecr.io/worker@sha256:abcdef"},
			want:        []policy.RegistryGrant{{Attachment: "acr", Registry: "myacr.azurecr.io", Path: policy.PullNodeIdentity, Images: []string{"myacr.azurecr.io/api:v1", "myacr.azurecr.io/worker@sha256:abcdef"}}},
		},
		"unparseable images are ignored": {
			attachments: []*v1alpha1.RegistryAttachment{secretAttachment("acr", "myacr.azurecr.io", "acr-pull")},
			images:      []string{"", "myacr.azurecr.io/api v1", "https://gcr.io/x", "myacr.azurecr.io/api:v1"},
			want:        []policy.RegistryGrant{{Attachment: "acr", Registry: "myacr.azurecr.io", Path: policy.PullImagePullSecret, PullSecret: "acr-pull", Images: []string{"myacr.azurecr.io/api:v1"}}},
		},
		"an unattached cloud image is reported once": {
			images: []string{"gcr.io/p/app:v1", "gcr.io/p/app:v1", "nginx", "quay.io/x/y"},
			wantIssues: []policy.Issue{{Severity: policy.SeverityError, Code: policy.CodeUnattachedRegistry,
				Message: "image gcr.io/p/app:v1 is on gcp registry gcr.io and no RegistryAttachment covers it for ns/app: it would fail to pull (declare a nodeIdentity attachment if the kubelet pulls)"}},
		},
		"each unattached cloud image is reported": {
			images: []string{"gcr.io/p/app:v1", ecrImage},
			wantIssues: []policy.Issue{
				{Severity: policy.SeverityError, Code: policy.CodeUnattachedRegistry,
					Message: "image gcr.io/p/app:v1 is on gcp registry gcr.io and no RegistryAttachment covers it for ns/app: it would fail to pull (declare a nodeIdentity attachment if the kubelet pulls)"},
				{Severity: policy.SeverityError, Code: policy.CodeUnattachedRegistry,
					Message: "image " + ecrImage + " is on aws registry 111122223333.dkr.ecr.us-west-2.amazonaws.com and no RegistryAttachment covers it for ns/app: it would fail to pull (declare a nodeIdentity attachment if the kubelet pulls)"},
			},
		},
		"an attachment whose registry does not parse is ignored with a warning": {
			attachments: []*v1alpha1.RegistryAttachment{secretAttachment("broken", "https://registry.example.com", "pull")},
			images:      []string{"registry.example.com/api"},
			wantIssues: []policy.Issue{{Severity: policy.SeverityWarning, Code: policy.CodeInvalidAttachment,
				Message: `RegistryAttachment broken: spec.registry "https://registry.example.com": `}},
		},
		"service account token grant for ACR with both annotations": {
			saAnnotations: map[string]string{policy.ACRClientIDAnnotation: clientID, policy.ACRTenantIDAnnotation: tenantID},
			attachments:   []*v1alpha1.RegistryAttachment{tokenAttachment("acr", "myacr.azurecr.io")},
			images:        []string{"myacr.azurecr.io/api:v1"},
			want:          []policy.RegistryGrant{{Attachment: "acr", Registry: "myacr.azurecr.io", Path: policy.PullServiceAccountToken, Images: []string{"myacr.azurecr.io/api:v1"}}},
		},
		"service account token grant for ACR without the tenant annotation warns": {
			saAnnotations: map[string]string{policy.ACRClientIDAnnotation: clientID},
			attachments:   []*v1alpha1.RegistryAttachment{tokenAttachment("acr", "myacr.azurecr.io")},
			images:        []string{"myacr.azurecr.io/api:v1"},
			want:          []policy.RegistryGrant{{Attachment: "acr", Registry: "myacr.azurecr.io", Path: policy.PullServiceAccountToken, Images: []string{"myacr.azurecr.io/api:v1"}}},
			wantIssues: []policy.Issue{{Severity: policy.SeverityWarning, Code: policy.CodeCredentialProviderAnnotations,
				Message: "RegistryAttachment acr pulls myacr.azurecr.io/api:v1 with the pod's ServiceAccount token, but ServiceAccount ns/app lacks annotation kubernetes.azure.com/acr-tenant-id: the ACR credential provider fails the pull"}},
		},
		"service account token grant for ECR without a role warns": {
			attachments: []*v1alpha1.RegistryAttachment{tokenAttachment("ecr", "*.dkr.ecr.us-west-2.amazonaws.com")},
			images:      []string{ecrImage},
			want:        []policy.RegistryGrant{{Attachment: "ecr", Registry: "*.dkr.ecr.us-west-2.amazonaws.com", Path: policy.PullServiceAccountToken, Images: []string{ecrImage}}},
			wantIssues: []policy.Issue{{Severity: policy.SeverityWarning, Code: policy.CodeCredentialProviderAnnotations,
				Message: "lacks annotation eks.amazonaws.com/ecr-role-arn: the ECR credential provider has no role to assume unless it is configured with AWS_ECR_ROLE_ARN"}},
		},
		"service account token grant for ECR with a role": {
			saAnnotations: map[string]string{policy.ECRRoleARNAnnotation: "arn:aws:iam::111122223333:role/pull"},
			attachments:   []*v1alpha1.RegistryAttachment{tokenAttachment("ecr", "*.dkr.ecr.us-west-2.amazonaws.com")},
			images:        []string{ecrImage},
			want:          []policy.RegistryGrant{{Attachment: "ecr", Registry: "*.dkr.ecr.us-west-2.amazonaws.com", Path: policy.PullServiceAccountToken, Images: []string{ecrImage}}},
		},
		"service account token grant for Artifact Registry needs the opt-in set to true": {
			saAnnotations: map[string]string{policy.GCPEnableWIImagePullAnnotation: "yes"},
			attachments:   []*v1alpha1.RegistryAttachment{tokenAttachment("gar", "us-docker.pkg.dev")},
			images:        []string{"us-docker.pkg.dev/p/r/app:v1"},
			want:          []policy.RegistryGrant{{Attachment: "gar", Registry: "us-docker.pkg.dev", Path: policy.PullServiceAccountToken, Images: []string{"us-docker.pkg.dev/p/r/app:v1"}}},
			wantIssues: []policy.Issue{{Severity: policy.SeverityWarning, Code: policy.CodeCredentialProviderAnnotations,
				Message: `lacks annotation iam.gke.io/enable-wi-image-pull: "true": the GCP credential provider pulls with the node's service account instead`}},
		},
		"service account token grant for Artifact Registry with the opt-in": {
			saAnnotations: map[string]string{policy.GCPEnableWIImagePullAnnotation: "true"},
			attachments:   []*v1alpha1.RegistryAttachment{tokenAttachment("gar", "us-docker.pkg.dev")},
			images:        []string{"us-docker.pkg.dev/p/r/app:v1"},
			want:          []policy.RegistryGrant{{Attachment: "gar", Registry: "us-docker.pkg.dev", Path: policy.PullServiceAccountToken, Images: []string{"us-docker.pkg.dev/p/r/app:v1"}}},
		},
		"service account token grant for a registry of no known cloud is not checked": {
			attachments: []*v1alpha1.RegistryAttachment{tokenAttachment("internal", "registry.example.com")},
			images:      []string{"registry.example.com/api"},
			want:        []policy.RegistryGrant{{Attachment: "internal", Registry: "registry.example.com", Path: policy.PullServiceAccountToken, Images: []string{"registry.example.com/api"}}},
		},
		"an attachment serving none of the images gives no grant": {
			attachments: []*v1alpha1.RegistryAttachment{secretAttachment("acr", "myacr.azurecr.io", "acr-pull")},
			images:      []string{"other.azurecr.io/api"},
			wantIssues: []policy.Issue{{Severity: policy.SeverityError, Code: policy.CodeUnattachedRegistry,
				Message: "image other.azurecr.io/api is on azure registry other.azurecr.io and no RegistryAttachment covers it for ns/app: it would fail to pull (declare a nodeIdentity attachment if the kubelet pulls)"}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := policy.NewStatic()
			if tc.nsLabels != nil {
				s.AddNamespace(&metav1.ObjectMeta{Name: "ns", Labels: tc.nsLabels})
			}
			for _, ra := range tc.attachments {
				s.AddRegistryAttachment(ra)
			}
			if tc.saAnnotations != nil {
				s.AddServiceAccount(&metav1.ObjectMeta{Namespace: "ns", Name: "app", Annotations: tc.saAnnotations})
			}
			applied, err := policy.NewResolver(s, policy.Options{}).Resolve(context.Background(), policy.Subject{Namespace: "ns", ServiceAccountName: "app", Images: tc.images})
			require.NoError(t, err)
			assert.Equal(t, tc.want, applied.Registries)
			require.Len(t, applied.Issues, len(tc.wantIssues), "issues: %+v", applied.Issues)
			for i, want := range tc.wantIssues {
				assert.Equal(t, want.Severity, applied.Issues[i].Severity)
				assert.Equal(t, want.Code, applied.Issues[i].Code)
				assert.Contains(t, applied.Issues[i].Message, want.Message)
			}
		})
	}
}

func TestResolveRegistriesOrderIsByAttachmentName(t *testing.T) {
	a := secretAttachment("a", "one.example.com", "a-pull")
	b := nodeAttachment("b", "*.example.com")
	c := secretAttachment("c", "two.example.com", "c-pull")
	subject := policy.Subject{Namespace: "ns", ServiceAccountName: "app", Images: []string{"two.example.com/x", "one.example.com/y"}}
	want := []string{"a", "b", "c"}
	orders := map[string][]*v1alpha1.RegistryAttachment{
		"sorted":   {a, b, c},
		"reversed": {c, b, a},
		"shuffled": {b, c, a},
	}
	for name, order := range orders {
		t.Run(name, func(t *testing.T) {
			r := newTestReader()
			r.attachments = order
			applied, err := policy.NewResolver(r, policy.Options{}).Resolve(context.Background(), subject)
			require.NoError(t, err)
			var got []string
			for _, g := range applied.Registries {
				got = append(got, g.Attachment)
			}
			assert.Equal(t, want, got)
			assert.Equal(t, []*v1alpha1.RegistryAttachment{order[0], order[1], order[2]}, r.attachments, "the reader's slice is not reordered")
		})
	}
}

func TestResolveLooksUpNamespaceOnlyForAttachments(t *testing.T) {
	tests := map[string]struct {
		attachments    []*v1alpha1.RegistryAttachment
		wantNamespaces []string
	}{
		"no attachments":  {},
		"one attachment":  {attachments: []*v1alpha1.RegistryAttachment{secretAttachment("a", "one.example.com", "p")}, wantNamespaces: []string{"ns"}},
		"two attachments": {attachments: []*v1alpha1.RegistryAttachment{secretAttachment("a", "one.example.com", "p"), nodeAttachment("b", "two.example.com")}, wantNamespaces: []string{"ns"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := newTestReader()
			r.attachments = tc.attachments
			_, err := policy.NewResolver(r, policy.Options{}).Resolve(context.Background(), policy.Subject{Namespace: "ns", Images: []string{"nginx"}})
			require.NoError(t, err)
			assert.Equal(t, tc.wantNamespaces, r.calls["Namespace"])
		})
	}
}

func TestSubjectOf(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ignored"},
		Spec: corev1.PodSpec{
			ServiceAccountName: "app",
			InitContainers:     []corev1.Container{{Name: "init", Image: "init:1"}, {Name: "sidecar", Image: "sidecar:1"}},
			Containers:         []corev1.Container{{Name: "main", Image: "main:1"}},
		},
	}
	assert.Equal(t, policy.Subject{Namespace: "ns", ServiceAccountName: "app", Images: []string{"init:1", "sidecar:1", "main:1"}},
		policy.SubjectOf("ns", pod))
}

func TestIsSystemNamespace(t *testing.T) {
	tests := map[string]struct {
		namespace, lanyard string
		want               bool
	}{
		"kube-system":                        {namespace: "kube-system", want: true},
		"kube-public":                        {namespace: "kube-public", want: true},
		"kube-node-lease":                    {namespace: "kube-node-lease", want: true},
		"lanyard's own namespace":            {namespace: "lanyard-system", lanyard: "lanyard-system", want: true},
		"an ordinary namespace":              {namespace: "default", lanyard: "lanyard-system", want: false},
		"lanyard's namespace when not given": {namespace: "lanyard-system", want: false},
		"empty namespace, empty lanyard ns":  {namespace: "", lanyard: "", want: false},
		"prefix of a system namespace":       {namespace: "kube-systems", want: false},
		"case matters":                       {namespace: "Kube-System", want: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, policy.IsSystemNamespace(tc.namespace, tc.lanyard))
		})
	}
}

func TestOptedIn(t *testing.T) {
	tests := map[string]struct {
		labels map[string]string
		want   bool
	}{
		"enabled":             {labels: map[string]string{policy.InjectLabel: "enabled"}, want: true},
		"disabled":            {labels: map[string]string{policy.InjectLabel: "disabled"}, want: false},
		"upper case value":    {labels: map[string]string{policy.InjectLabel: "Enabled"}, want: false},
		"true is not enabled": {labels: map[string]string{policy.InjectLabel: "true"}, want: false},
		"no label":            {labels: map[string]string{"team": "a"}, want: false},
		"nil labels":          {labels: nil, want: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, policy.OptedIn(tc.labels))
		})
	}
}

func TestParseExpiration(t *testing.T) {
	tests := map[string]struct {
		value    string
		min, max int64
		want     int64
		wantErr  string
	}{
		"in range":           {value: "3600", min: 600, max: 86400, want: 3600},
		"at minimum":         {value: "600", min: 600, max: 86400, want: 600},
		"at maximum":         {value: "86400", min: 600, max: 86400, want: 86400},
		"surrounding spaces": {value: " 7200 ", min: 600, max: 86400, want: 7200},
		"below minimum":      {value: "599", min: 600, max: 86400, wantErr: "must be between 600 and 86400 seconds"},
		"above maximum":      {value: "86401", min: 600, max: 86400, wantErr: "must be between 600 and 86400 seconds"},
		"azure bounds":       {value: "1800", min: 3600, max: 86400, wantErr: "must be between 3600 and 86400 seconds"},
		"negative":           {value: "-1", min: 600, max: 86400, wantErr: "must be between 600 and 86400 seconds"},
		"empty":              {value: "", min: 600, max: 86400, wantErr: "must be a whole number of seconds between 600 and 86400"},
		"duration string":    {value: "1h", min: 600, max: 86400, wantErr: "must be a whole number of seconds"},
		"fraction":           {value: "600.5", min: 600, max: 86400, wantErr: "must be a whole number of seconds"},
		"overflows int64":    {value: "99999999999999999999", min: 600, max: 86400, wantErr: "must be a whole number of seconds"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := policy.ParseExpiration(tc.value, tc.min, tc.max)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.Zero(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
