package v1alpha1

import (
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NamespaceNameLabel is set on every namespace by the API server to the namespace's name; users
// cannot change it, so a namespaceSelector on it is as safe as a namespace name.
const NamespaceNameLabel = "kubernetes.io/metadata.name"

// Specificity ranks how precisely an association's subject names a ServiceAccount: the highest
// matching one applies, and two matches of equal specificity are a conflict.
type Specificity int

const (
	// NoMatch: the subject does not match the ServiceAccount.
	NoMatch Specificity = iota
	// PatternNamespacePatternName: namespace glob or selector, and name glob.
	PatternNamespacePatternName
	// PatternNamespaceExactName: namespace glob or selector, and exact name.
	PatternNamespaceExactName
	// ExactNamespacePatternName: exact namespace, and name glob.
	ExactNamespacePatternName
	// ExactSubject: exact namespace and exact name.
	ExactSubject
)

// String describes the specificity for messages.
func (s Specificity) String() string {
	switch s {
	case ExactSubject:
		return "exact namespace and name"
	case ExactNamespacePatternName:
		return "exact namespace, name glob"
	case PatternNamespaceExactName:
		return "namespace glob or selector, exact name"
	case PatternNamespacePatternName:
		return "namespace glob or selector, name glob"
	}
	return "no match"
}

// IsGlob reports whether a subject name is a pattern.
func IsGlob(name string) bool { return strings.IndexByte(name, '*') >= 0 }

// GlobMatch reports whether s matches pattern, in which one '*' stands for any run of characters
// (the empty one included); a pattern without '*' matches only itself.
func GlobMatch(pattern, s string) bool {
	i := strings.IndexByte(pattern, '*')
	if i < 0 {
		return pattern == s
	}
	prefix, suffix := pattern[:i], pattern[i+1:]
	return len(s) >= len(prefix)+len(suffix) && strings.HasPrefix(s, prefix) && strings.HasSuffix(s, suffix)
}

// NamespacePattern reports whether the subject's namespace is a glob or a selector.
func (s *IdentityAssociationSpec) NamespacePattern() bool {
	return s.NamespaceSelector != nil || IsGlob(s.Namespace)
}

// Exact reports whether the subject names exactly one ServiceAccount.
func (s *IdentityAssociationSpec) Exact() bool {
	return !s.NamespacePattern() && !IsGlob(s.ServiceAccountName)
}

// Specificity is the rank of the subject if it matches.
func (s *IdentityAssociationSpec) Specificity() Specificity {
	switch nsPattern, namePattern := s.NamespacePattern(), IsGlob(s.ServiceAccountName); {
	case !nsPattern && !namePattern:
		return ExactSubject
	case !nsPattern:
		return ExactNamespacePatternName
	case !namePattern:
		return PatternNamespaceExactName
	}
	return PatternNamespacePatternName
}

// Match returns how specifically the subject matches ServiceAccount serviceAccount of namespace
// (whose labels are nsLabels; nil when unknown), or NoMatch.
func (s *IdentityAssociationSpec) Match(namespace string, nsLabels map[string]string, serviceAccount string) Specificity {
	if !GlobMatch(s.ServiceAccountName, serviceAccount) {
		return NoMatch
	}
	if s.NamespaceSelector != nil {
		if s.Namespace != "" || !SelectorMatchesNamespace(s.NamespaceSelector, namespace, nsLabels) {
			return NoMatch // both set is invalid: it matches nothing
		}
	} else if !GlobMatch(s.Namespace, namespace) {
		return NoMatch
	}
	return s.Specificity()
}

// SubjectKey is equal for two associations exactly when their subjects are identical (the same
// namespace or the same selector, and the same name): the validating webhook lets one exist.
func (s *IdentityAssociationSpec) SubjectKey() string {
	if s.NamespaceSelector == nil {
		return s.Namespace + "/" + s.ServiceAccountName
	}
	sel, err := LabelSelectorAsSelector(s.NamespaceSelector)
	if err != nil {
		return "selector(invalid)/" + s.ServiceAccountName
	}
	return "selector(" + sel.String() + ")/" + s.ServiceAccountName
}

// Subject describes the subject for messages: "shop/storefront", "ci-*/*",
// "namespaces selected by team=a/runner".
func (s *IdentityAssociationSpec) Subject() string {
	if s.NamespaceSelector == nil {
		return s.Namespace + "/" + s.ServiceAccountName
	}
	sel, err := LabelSelectorAsSelector(s.NamespaceSelector)
	desc := "every namespace"
	if err != nil {
		desc = "an invalid namespaceSelector"
	} else if str := sel.String(); str != "" {
		desc = "namespaces selected by " + str
	}
	return "(" + desc + ")/" + s.ServiceAccountName
}

// SelectorOnlyOnNames reports whether a namespaceSelector reads no label but
// kubernetes.io/metadata.name, which users cannot set: it grants nothing to whoever labels a
// namespace.
func SelectorOnlyOnNames(sel *metav1.LabelSelector) bool {
	if sel == nil {
		return true
	}
	if len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 {
		return false // selects every namespace
	}
	for k := range sel.MatchLabels {
		if k != NamespaceNameLabel {
			return false
		}
	}
	for _, r := range sel.MatchExpressions {
		if r.Key != NamespaceNameLabel {
			return false
		}
	}
	return true
}

// SelectorMatchesNamespace evaluates a namespaceSelector against a namespace's labels without
// building a labels.Selector (no allocation on the admission path). The namespace's
// kubernetes.io/metadata.name label is taken to be its name, as the API server guarantees, also
// when the labels are unknown (a namespace not described in lanyard check's input). An invalid
// selector matches nothing.
func SelectorMatchesNamespace(sel *metav1.LabelSelector, namespace string, nsLabels map[string]string) bool {
	if sel == nil {
		return true
	}
	get := func(key string) (string, bool) {
		if key == NamespaceNameLabel {
			return namespace, true
		}
		v, ok := nsLabels[key]
		return v, ok
	}
	for k, want := range sel.MatchLabels {
		if v, ok := get(k); !ok || v != want {
			return false
		}
	}
	for _, r := range sel.MatchExpressions {
		v, ok := get(r.Key)
		switch r.Operator {
		case metav1.LabelSelectorOpIn:
			if len(r.Values) == 0 || !ok || !slices.Contains(r.Values, v) {
				return false
			}
		case metav1.LabelSelectorOpNotIn:
			if len(r.Values) == 0 || (ok && slices.Contains(r.Values, v)) {
				return false
			}
		case metav1.LabelSelectorOpExists:
			if len(r.Values) != 0 || !ok {
				return false
			}
		case metav1.LabelSelectorOpDoesNotExist:
			if len(r.Values) != 0 || ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}
