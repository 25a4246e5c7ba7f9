package policy_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

func selectorIA(name string, sel *metav1.LabelSelector, sa string, spec v1alpha1.IdentityAssociationSpec) *v1alpha1.IdentityAssociation {
	a := ia(name, "", sa, spec)
	a.Spec.NamespaceSelector = sel
	return a
}

// The exact association answers from one lookup: broad subjects are not read, and no namespace
// is looked up for them.
func TestResolveExactSubjectSkipsBroadAssociations(t *testing.T) {
	aws := v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}}
	r := newTestReader()
	r.AddIdentityAssociation(ia("exact", "shop", "web", aws))
	r.AddIdentityAssociation(selectorIA("team", &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}, "*", aws))
	applied, err := policy.NewResolver(r, policy.Options{}).Resolve(context.Background(), policy.Subject{Namespace: "shop", ServiceAccountName: "web"})
	require.NoError(t, err)
	assert.Equal(t, "IdentityAssociation exact", applied.Identity.Source)
	assert.Empty(t, r.calls["BroadAssociations"])
	assert.Empty(t, r.calls["Namespace"])
}

func TestResolveBroadSubjects(t *testing.T) {
	aws := v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}}
	teamA := &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}
	tests := map[string]struct {
		associations   []*v1alpha1.IdentityAssociation
		nsLabels       map[string]string
		wantSource     string
		wantConflict   string
		wantNamespaces int // Namespace lookups
	}{
		"exact namespace and name glob":   {associations: []*v1alpha1.IdentityAssociation{ia("shop-all", "shop", "*", aws)}, wantSource: "IdentityAssociation shop-all"},
		"name glob beats namespace glob":  {associations: []*v1alpha1.IdentityAssociation{ia("sh", "sh*", "web", aws), ia("shop-all", "shop", "w*", aws)}, wantSource: "IdentityAssociation shop-all"},
		"namespace glob beats two globs":  {associations: []*v1alpha1.IdentityAssociation{ia("all", "*", "*", aws), ia("sh", "sh*", "web", aws)}, wantSource: "IdentityAssociation sh"},
		"selector beats two globs":        {associations: []*v1alpha1.IdentityAssociation{ia("all", "*", "*", aws), selectorIA("team", teamA, "web", aws)}, nsLabels: map[string]string{"team": "a"}, wantSource: "IdentityAssociation team", wantNamespaces: 1},
		"selector without the label":      {associations: []*v1alpha1.IdentityAssociation{selectorIA("team", teamA, "web", aws)}, nsLabels: map[string]string{"team": "b"}, wantNamespaces: 1},
		"globs read no namespace":         {associations: []*v1alpha1.IdentityAssociation{ia("all", "*", "*", aws)}, wantSource: "IdentityAssociation all"},
		"equal specificity is a conflict": {associations: []*v1alpha1.IdentityAssociation{ia("sh", "sh*", "web", aws), ia("op", "*op", "web", aws)}, wantConflict: "IdentityAssociations op and sh match ServiceAccount shop/web equally specifically (namespace glob or selector, exact name)"},
		"no match":                        {associations: []*v1alpha1.IdentityAssociation{ia("ci", "ci-*", "*", aws)}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := newTestReader()
			r.AddNamespace(&metav1.ObjectMeta{Name: "shop", Labels: tc.nsLabels})
			for _, a := range tc.associations {
				r.AddIdentityAssociation(a)
			}
			applied, err := policy.NewResolver(r, policy.Options{}).Resolve(context.Background(), policy.Subject{Namespace: "shop", ServiceAccountName: "web"})
			require.NoError(t, err)
			assert.Equal(t, tc.wantSource, applied.Identity.Source)
			assert.Equal(t, []string{"shop"}, r.calls["BroadAssociations"])
			assert.Len(t, r.calls["Namespace"], tc.wantNamespaces)
			if tc.wantConflict != "" {
				require.Len(t, applied.Issues, 1)
				assert.Equal(t, policy.CodeConflictingAssociations, applied.Issues[0].Code)
				assert.Contains(t, applied.Issues[0].Message, tc.wantConflict)
				assert.True(t, applied.Identity.Empty())
			}
		})
	}
}

func TestResolveBroadLookupErrorsFailClosed(t *testing.T) {
	r := newTestReader()
	r.AddIdentityAssociation(ia("all", "*", "*", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}}))
	r.failOn = "BroadAssociations"
	_, err := policy.NewResolver(r, policy.Options{}).Resolve(context.Background(), policy.Subject{Namespace: "shop", ServiceAccountName: "web"})
	require.ErrorIs(t, err, errLookup)
	assert.Contains(t, err.Error(), "looking up IdentityAssociations with broad subjects for namespace shop")
}
