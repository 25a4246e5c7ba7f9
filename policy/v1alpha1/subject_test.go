package v1alpha1

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func TestGlobMatch(t *testing.T) {
	tests := map[string]struct {
		pattern, s string
		want       bool
	}{
		"exact name matches itself":          {pattern: "shop", s: "shop", want: true},
		"exact name matches nothing else":    {pattern: "shop", s: "shop2"},
		"star alone matches anything":        {pattern: "*", s: "anything", want: true},
		"prefix glob":                        {pattern: "ci-*", s: "ci-build", want: true},
		"prefix glob matches the empty rest": {pattern: "ci-*", s: "ci-", want: true},
		"prefix glob needs the prefix":       {pattern: "ci-*", s: "cd-build"},
		"suffix glob":                        {pattern: "*-prod", s: "shop-prod", want: true},
		"suffix glob needs the suffix":       {pattern: "*-prod", s: "shop-dev"},
		"infix glob":                         {pattern: "team-*-prod", s: "team-a-prod", want: true},
		"infix glob does not overlap":        {pattern: "ab*ba", s: "aba"},
		"case matters":                       {pattern: "ci-*", s: "CI-build"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, GlobMatch(tc.pattern, tc.s))
		})
	}
}

// TestSelectorMatchesNamespaceAgreesWithLabels: the allocation-free matcher says what
// labels.Selector says, with kubernetes.io/metadata.name set to the namespace's name.
func TestSelectorMatchesNamespaceAgreesWithLabels(t *testing.T) {
	selectors := map[string]*metav1.LabelSelector{
		"empty":           {},
		"matchLabels":     {MatchLabels: map[string]string{"team": "a"}},
		"two matchLabels": {MatchLabels: map[string]string{"team": "a", "env": "prod"}},
		"In":              {MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "b"}}}},
		"NotIn":           {MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"a"}}}},
		"Exists":          {MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: metav1.LabelSelectorOpExists}}},
		"DoesNotExist":    {MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "env", Operator: metav1.LabelSelectorOpDoesNotExist}}},
		"metadata name":   {MatchLabels: map[string]string{NamespaceNameLabel: "shop"}},
		"metadata name In": {MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: NamespaceNameLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{"shop", "web"}}}},
	}
	namespaces := map[string]map[string]string{
		"shop": {"team": "a", "env": "prod"},
		"web":  {"team": "b"},
		"ci":   {"team": "c", "env": "dev"},
		"bare": nil,
	}
	for selName, sel := range selectors {
		s, err := LabelSelectorAsSelector(sel)
		require.NoError(t, err)
		for ns, nsLabels := range namespaces {
			withName := labels.Set{NamespaceNameLabel: ns}
			for k, v := range nsLabels {
				withName[k] = v
			}
			assert.Equal(t, s.Matches(withName), SelectorMatchesNamespace(sel, ns, nsLabels), "selector %s, namespace %s", selName, ns)
		}
	}
}

func TestMatchSpecificity(t *testing.T) {
	team := &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}
	tests := map[string]struct {
		spec     IdentityAssociationSpec
		nsLabels map[string]string
		want     Specificity
	}{
		"exact subject":                         {spec: IdentityAssociationSpec{Namespace: "shop", ServiceAccountName: "web"}, want: ExactSubject},
		"exact namespace, name glob":            {spec: IdentityAssociationSpec{Namespace: "shop", ServiceAccountName: "w*"}, want: ExactNamespacePatternName},
		"namespace glob, exact name":            {spec: IdentityAssociationSpec{Namespace: "sh*", ServiceAccountName: "web"}, want: PatternNamespaceExactName},
		"namespace selector, exact name":        {spec: IdentityAssociationSpec{NamespaceSelector: team, ServiceAccountName: "web"}, nsLabels: map[string]string{"team": "a"}, want: PatternNamespaceExactName},
		"namespace glob and name glob":          {spec: IdentityAssociationSpec{Namespace: "*", ServiceAccountName: "*"}, want: PatternNamespacePatternName},
		"selector and name glob":                {spec: IdentityAssociationSpec{NamespaceSelector: team, ServiceAccountName: "*"}, nsLabels: map[string]string{"team": "a"}, want: PatternNamespacePatternName},
		"selector without the label":            {spec: IdentityAssociationSpec{NamespaceSelector: team, ServiceAccountName: "*"}, nsLabels: map[string]string{"team": "b"}, want: NoMatch},
		"other namespace":                       {spec: IdentityAssociationSpec{Namespace: "web", ServiceAccountName: "web"}, want: NoMatch},
		"name glob that does not match":         {spec: IdentityAssociationSpec{Namespace: "shop", ServiceAccountName: "api-*"}, want: NoMatch},
		"namespace and selector both set never": {spec: IdentityAssociationSpec{Namespace: "shop", NamespaceSelector: &metav1.LabelSelector{}, ServiceAccountName: "web"}, want: NoMatch},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.spec.Match("shop", tc.nsLabels, "web"))
		})
	}
}

func TestSubjectKeyIdentifiesIdenticalSubjects(t *testing.T) {
	a := IdentityAssociationSpec{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a", "env": "prod"}}, ServiceAccountName: "*"}
	b := IdentityAssociationSpec{NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "team", Operator: metav1.LabelSelectorOpIn, Values: []string{"a"}}, {Key: "env", Operator: metav1.LabelSelectorOpIn, Values: []string{"prod"}}}}, ServiceAccountName: "*"}
	b2 := IdentityAssociationSpec{NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "env", Operator: metav1.LabelSelectorOpIn, Values: []string{"prod"}}, {Key: "team", Operator: metav1.LabelSelectorOpIn, Values: []string{"a"}}}}, ServiceAccountName: "*"}
	assert.Equal(t, b.SubjectKey(), b2.SubjectKey(), "requirements in another order")
	c := IdentityAssociationSpec{Namespace: "ci-*", ServiceAccountName: "*"}
	d := IdentityAssociationSpec{Namespace: "*", ServiceAccountName: "*"}
	assert.NotEqual(t, c.SubjectKey(), d.SubjectKey())
	assert.NotEqual(t, a.SubjectKey(), d.SubjectKey())
	assert.Equal(t, "(namespaces selected by env=prod,team=a)/*", a.Subject())
}
