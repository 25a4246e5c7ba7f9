package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/cluster"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// liveClient is the API server as the validator sees it: a fake client holding objs, with the
// IdentityAssociation CRD's selectable fields as field indexes (so client.MatchingFields works).
func liveClient(t *testing.T, funcs *interceptor.Funcs, objs ...client.Object) client.Client {
	t.Helper()
	scheme, err := cluster.Scheme()
	require.NoError(t, err)
	b := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
		WithIndex(&v1alpha1.IdentityAssociation{}, fieldSpecNamespace, func(o client.Object) []string {
			return []string{o.(*v1alpha1.IdentityAssociation).Spec.Namespace}
		}).
		WithIndex(&v1alpha1.IdentityAssociation{}, fieldSpecServiceAccount, func(o client.Object) []string {
			return []string{o.(*v1alpha1.IdentityAssociation).Spec.ServiceAccountName}
		})
	if funcs != nil {
		b = b.WithInterceptorFuncs(*funcs)
	}
	return b.Build()
}

func iaRequest(t *testing.T, op admissionv1.Operation, obj, old *v1alpha1.IdentityAssociation) admission.Request {
	t.Helper()
	raw := func(ia *v1alpha1.IdentityAssociation) runtime.RawExtension {
		if ia == nil {
			return runtime.RawExtension{}
		}
		b, err := json.Marshal(ia)
		require.NoError(t, err)
		return runtime.RawExtension{Raw: b}
	}
	name := ""
	switch {
	case obj != nil:
		name = obj.Name
	case old != nil:
		name = old.Name
	}
	gvk := metav1.GroupVersionKind{Group: "lanyard.dev", Version: "v1alpha1", Kind: "IdentityAssociation"}
	gvr := metav1.GroupVersionResource{Group: "lanyard.dev", Version: "v1alpha1", Resource: "identityassociations"}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "4b1d7f0e-9a2c-4e6b-8d3f-5c7a9e1b2d40", Kind: gvk, Resource: gvr, RequestKind: &gvk, RequestResource: &gvr,
		Name: name, Operation: op, Object: raw(obj), OldObject: raw(old),
	}}
}

func awsSpec(arn string) v1alpha1.IdentityAssociationSpec {
	return v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: arn, Mode: v1alpha1.AWSModeIRSA}}
}

func withSelector(ia *v1alpha1.IdentityAssociation, labels map[string]string) *v1alpha1.IdentityAssociation {
	ia.Spec.NamespaceSelector = &metav1.LabelSelector{MatchLabels: labels}
	return ia
}

func TestAssociationValidatorHandle(t *testing.T) {
	existing := association("web-aws", testNamespace, "web", awsSpec(irsaRoleARN))
	other := association("api-aws", testNamespace, "api", awsSpec(irsaRoleARN))
	listFails := &interceptor.Funcs{List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error {
		return errors.New("etcdserver: request timed out")
	}}
	withSAs := func() *policy.Static {
		s := policy.NewStatic()
		for _, sa := range []string{"web", "api", "worker"} {
			s.AddServiceAccount(&metav1.ObjectMeta{Namespace: testNamespace, Name: sa})
		}
		return s
	}

	tests := map[string]struct {
		live          []client.Object
		funcs         *interceptor.Funcs
		reader        policy.Reader // withSAs() when nil
		defaultTenant string
		op            admissionv1.Operation
		obj, old      *v1alpha1.IdentityAssociation

		wantAllowed  bool
		wantCode     int32
		wantMessage  []string
		wantWarnings []string // exact
	}{
		"a first association for a ServiceAccount is allowed": {
			live: []client.Object{existing}, op: admissionv1.Create,
			obj:         association("worker-aws", testNamespace, "worker", awsSpec(irsaRoleARN)),
			wantAllowed: true,
		},
		"a second association for a claimed ServiceAccount is rejected naming the first": {
			live: []client.Object{existing}, op: admissionv1.Create,
			obj:      association("web-aws-2", testNamespace, "web", awsSpec(podIdentityRoleARN)),
			wantCode: http.StatusForbidden,
			wantMessage: []string{"ServiceAccount team-a/web already has IdentityAssociation web-aws",
				"one association per ServiceAccount"},
		},
		"the same ServiceAccount name in another namespace is not a duplicate": {
			live: []client.Object{existing}, op: admissionv1.Create,
			obj:         association("web-aws-prod", "prod", "web", awsSpec(irsaRoleARN)),
			wantAllowed: true, wantWarnings: []string{"ServiceAccount prod/web does not exist (yet)"},
		},
		"an update of the same object is allowed": {
			live: []client.Object{existing}, op: admissionv1.Update,
			obj:         association("web-aws", testNamespace, "web", awsSpec(podIdentityRoleARN)),
			old:         existing,
			wantAllowed: true,
		},
		"an update without old object is checked against others, not itself": {
			live: []client.Object{existing}, op: admissionv1.Update,
			obj:         association("web-aws", testNamespace, "web", awsSpec(podIdentityRoleARN)),
			wantAllowed: true,
		},
		"an update moving onto a claimed ServiceAccount is rejected": {
			live: []client.Object{existing, other}, op: admissionv1.Update,
			obj:      association("api-aws", testNamespace, "web", awsSpec(irsaRoleARN)),
			old:      other,
			wantCode: http.StatusForbidden, wantMessage: []string{"already has IdentityAssociation web-aws"},
		},
		"an invalid spec is denied naming the field": {
			op:       admissionv1.Create,
			obj:      association("bad", testNamespace, "web", awsSpec("arn:aws:iam::1234:role/short-account")),
			wantCode: http.StatusForbidden,
			wantMessage: []string{"spec.aws.roleARN",
				"roleARN must be an IAM role ARN: arn:<partition>:iam::<12-digit account>:role/<name>"},
		},
		"an invalid spec is denied even on update of the same ServiceAccount": {
			live: []client.Object{existing}, op: admissionv1.Update,
			obj:      association("web-aws", testNamespace, "web", v1alpha1.IdentityAssociationSpec{}),
			old:      existing,
			wantCode: http.StatusForbidden, wantMessage: []string{"at least one of aws, azure or gcp must be set"},
		},
		"a second association with the same glob subject is rejected naming the first": {
			live: []client.Object{association("ci", "ci-*", "runner-*", awsSpec(irsaRoleARN))}, op: admissionv1.Create,
			obj:         association("ci-2", "ci-*", "runner-*", awsSpec(podIdentityRoleARN)),
			wantCode:    http.StatusForbidden,
			wantMessage: []string{"subject ci-*/runner-* already has IdentityAssociation ci", "one association per subject"},
		},
		"an overlapping subject of other specificity is allowed": {
			live: []client.Object{association("ci", "ci-*", "runner-*", awsSpec(irsaRoleARN))}, op: admissionv1.Create,
			obj:         association("ci-build", "ci-build", "runner-*", awsSpec(podIdentityRoleARN)),
			wantAllowed: true,
		},
		"a second association with the same selector subject is rejected": {
			live: []client.Object{withSelector(association("team-a", "", "*", awsSpec(irsaRoleARN)), map[string]string{"team": "a"})}, op: admissionv1.Create,
			obj:         withSelector(association("team-a-2", "", "*", awsSpec(podIdentityRoleARN)), map[string]string{"team": "a"}),
			wantCode:    http.StatusForbidden,
			wantMessage: []string{"subject (namespaces selected by team=a)/* already has IdentityAssociation team-a"},
		},
		"another selector is not a duplicate, and label selectors are warned about": {
			live: []client.Object{withSelector(association("team-a", "", "*", awsSpec(irsaRoleARN)), map[string]string{"team": "a"})}, op: admissionv1.Create,
			obj:          withSelector(association("team-b", "", "*", awsSpec(podIdentityRoleARN)), map[string]string{"team": "b"}),
			wantAllowed:  true,
			wantWarnings: []string{policy.SelectorWarning},
		},
		"a selector on kubernetes.io/metadata.name is not warned about": {
			op:          admissionv1.Create,
			obj:         withSelector(association("two", "", "*", awsSpec(irsaRoleARN)), map[string]string{v1alpha1.NamespaceNameLabel: "shop"}),
			wantAllowed: true,
		},
		"namespace and namespaceSelector together are denied naming the field": {
			op:          admissionv1.Create,
			obj:         withSelector(association("both", "shop", "*", awsSpec(irsaRoleARN)), map[string]string{"team": "a"}),
			wantCode:    http.StatusForbidden,
			wantMessage: []string{"spec.namespaceSelector", "namespace and namespaceSelector are mutually exclusive"},
		},
		"DELETE is allowed": {
			live: []client.Object{existing}, funcs: listFails, op: admissionv1.Delete, old: existing,
			wantAllowed: true,
		},
		"Azure without tenant and no default tenant is allowed with a warning": {
			op: admissionv1.Create,
			obj: association("web-azure", testNamespace, "worker", v1alpha1.IdentityAssociationSpec{
				Azure: &v1alpha1.AzureIdentity{ClientID: azureClientID},
			}),
			wantAllowed: true,
			wantWarnings: []string{
				"spec.azure.tenantID is empty and lanyard has no --azure-tenant-id: pods will not get the Azure identity",
			},
		},
		"Azure without tenant but with a default tenant is allowed silently": {
			op: admissionv1.Create, defaultTenant: azureTenantID,
			obj: association("web-azure", testNamespace, "worker", v1alpha1.IdentityAssociationSpec{
				Azure: &v1alpha1.AzureIdentity{ClientID: azureClientID},
			}),
			wantAllowed: true,
		},
		"a ServiceAccount that does not exist yet is allowed with a warning": {
			op: admissionv1.Create, reader: policy.NewStatic(),
			obj:          association("late", testNamespace, "not-yet", awsSpec(irsaRoleARN)),
			wantAllowed:  true,
			wantWarnings: []string{"ServiceAccount team-a/not-yet does not exist (yet)"},
		},
		"a ServiceAccount lookup error is not reported as absent": {
			op: admissionv1.Create, reader: failingReader{errLookup},
			obj:         association("worker-aws", testNamespace, "worker", awsSpec(irsaRoleARN)),
			wantAllowed: true,
		},
		"a failing live list is an error, not an admission": {
			live: []client.Object{existing}, funcs: listFails, op: admissionv1.Create,
			obj:      association("worker-aws", testNamespace, "worker", awsSpec(irsaRoleARN)),
			wantCode: http.StatusInternalServerError,
			wantMessage: []string{"checking for other IdentityAssociations of team-a/worker",
				"etcdserver: request timed out"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			reader := tc.reader
			if reader == nil {
				reader = withSAs()
			}
			v := &AssociationValidator{Live: liveClient(t, tc.funcs, tc.live...), Reader: reader, DefaultAzureTenantID: tc.defaultTenant}
			resp := v.Handle(t.Context(), iaRequest(t, tc.op, tc.obj, tc.old))

			assert.Equal(t, tc.wantAllowed, resp.Allowed, "result: %+v", resp.Result)
			if tc.wantCode != 0 {
				require.NotNil(t, resp.Result)
				assert.Equal(t, tc.wantCode, resp.Result.Code)
			}
			for _, msg := range tc.wantMessage {
				require.NotNil(t, resp.Result)
				assert.Contains(t, resp.Result.Message, msg)
			}
			if len(tc.wantWarnings) == 0 {
				assert.Empty(t, resp.Warnings)
			} else {
				assert.Equal(t, tc.wantWarnings, resp.Warnings)
			}
			assert.Empty(t, resp.Patches, "a validator never patches")
		})
	}
}

func TestAssociationValidatorMalformedObject(t *testing.T) {
	tests := map[string]struct {
		raw []byte
	}{
		"not JSON":           {raw: []byte(`{"spec":`)},
		"spec of wrong type": {raw: []byte(`{"apiVersion":"lanyard.dev/v1alpha1","kind":"IdentityAssociation","spec":"aws"}`)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v := &AssociationValidator{Live: liveClient(t, nil)}
			req := iaRequest(t, admissionv1.Create, nil, nil)
			req.Object.Raw = tc.raw
			resp := v.Handle(t.Context(), req)
			assert.False(t, resp.Allowed)
			require.NotNil(t, resp.Result)
			assert.Equal(t, int32(http.StatusBadRequest), resp.Result.Code)
			assert.Contains(t, resp.Result.Message, "decoding IdentityAssociation")
		})
	}
}
