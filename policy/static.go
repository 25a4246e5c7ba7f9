package policy

import (
	"context"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// Static is a Reader over objects held in memory: policy files and manifests for lanyard
// inject/check, and tests. It is not safe for concurrent modification.
type Static struct {
	namespaces      map[string]*metav1.ObjectMeta
	serviceAccounts map[string]*metav1.ObjectMeta // "namespace/name"
	associations    []*v1alpha1.IdentityAssociation
	attachments     []*v1alpha1.RegistryAttachment
}

var _ Reader = (*Static)(nil)

// NewStatic returns an empty Static reader.
func NewStatic() *Static {
	return &Static{namespaces: map[string]*metav1.ObjectMeta{}, serviceAccounts: map[string]*metav1.ObjectMeta{}}
}

// AddNamespace records a namespace's metadata.
func (s *Static) AddNamespace(meta *metav1.ObjectMeta) { s.namespaces[meta.Name] = meta }

// AddServiceAccount records a ServiceAccount's metadata.
func (s *Static) AddServiceAccount(meta *metav1.ObjectMeta) {
	s.serviceAccounts[meta.Namespace+"/"+meta.Name] = meta
}

// AddIdentityAssociation records an association. Associations with the same name replace each
// other, as applying both files to a cluster would.
func (s *Static) AddIdentityAssociation(ia *v1alpha1.IdentityAssociation) {
	for i, existing := range s.associations {
		if existing.Name == ia.Name {
			s.associations[i] = ia
			return
		}
	}
	s.associations = append(s.associations, ia)
}

// AddRegistryAttachment records an attachment (same-name replaces).
func (s *Static) AddRegistryAttachment(ra *v1alpha1.RegistryAttachment) {
	for i, existing := range s.attachments {
		if existing.Name == ra.Name {
			s.attachments[i] = ra
			return
		}
	}
	s.attachments = append(s.attachments, ra)
}

// Namespace implements Reader.
func (s *Static) Namespace(_ context.Context, name string) (*metav1.ObjectMeta, error) {
	return s.namespaces[name], nil
}

// ServiceAccount implements Reader.
func (s *Static) ServiceAccount(_ context.Context, namespace, name string) (*metav1.ObjectMeta, []*v1alpha1.IdentityAssociation, error) {
	return s.serviceAccounts[namespace+"/"+name], s.AssociationsFor(namespace, name), nil
}

// AssociationsFor returns the associations naming namespace/serviceAccount exactly.
func (s *Static) AssociationsFor(namespace, serviceAccount string) []*v1alpha1.IdentityAssociation {
	var out []*v1alpha1.IdentityAssociation
	for _, ia := range s.associations {
		if ia.Spec.Exact() && ia.Spec.Namespace == namespace && ia.Spec.ServiceAccountName == serviceAccount {
			out = append(out, ia)
		}
	}
	return out
}

// BroadAssociations implements Reader: every association with a broad subject.
func (s *Static) BroadAssociations(context.Context, string) ([]*v1alpha1.IdentityAssociation, error) {
	var out []*v1alpha1.IdentityAssociation
	for _, ia := range s.associations {
		if !ia.Spec.Exact() {
			out = append(out, ia)
		}
	}
	return out, nil
}

// NamespaceLabels returns a described namespace's labels (nil when not described).
func (s *Static) NamespaceLabels(name string) map[string]string {
	if m := s.namespaces[name]; m != nil {
		return m.Labels
	}
	return nil
}

// ServiceAccountRef names a described ServiceAccount.
type ServiceAccountRef struct{ Namespace, Name string }

// AllServiceAccounts returns every described ServiceAccount, sorted by namespace and name.
func (s *Static) AllServiceAccounts() []ServiceAccountRef {
	out := make([]ServiceAccountRef, 0, len(s.serviceAccounts))
	for _, m := range s.serviceAccounts {
		out = append(out, ServiceAccountRef{m.Namespace, m.Name})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// RegistryAttachments implements Reader.
func (s *Static) RegistryAttachments(context.Context) ([]*v1alpha1.RegistryAttachment, error) {
	return s.attachments, nil
}

// AllIdentityAssociations returns every association, sorted by name.
func (s *Static) AllIdentityAssociations() []*v1alpha1.IdentityAssociation {
	out := append([]*v1alpha1.IdentityAssociation(nil), s.associations...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// HasNamespace reports whether the namespace was described.
func (s *Static) HasNamespace(name string) bool { return s.namespaces[name] != nil }

// HasServiceAccount reports whether the ServiceAccount was described.
func (s *Static) HasServiceAccount(namespace, name string) bool {
	return s.serviceAccounts[namespace+"/"+name] != nil
}

// Conflict is a subject claimed by more than one IdentityAssociation (identical subjects: what
// the validating webhook rejects).
type Conflict struct {
	Namespace, ServiceAccountName string
	// Subject describes the subject ("shop/web", "ci-*/*", "(namespaces selected by team=a)/*").
	Subject string
	// Exact is set when the subject names one ServiceAccount (Namespace/ServiceAccountName).
	Exact bool
	// Associations are the names of the claiming associations, sorted.
	Associations []string
}

// Conflicts lists the subjects claimed by more than one association, sorted.
func (s *Static) Conflicts() []Conflict {
	byKey := map[string]*Conflict{}
	var keys []string
	for _, ia := range s.associations {
		k := ia.Spec.SubjectKey()
		if byKey[k] == nil {
			keys = append(keys, k)
			byKey[k] = &Conflict{Namespace: ia.Spec.Namespace, ServiceAccountName: ia.Spec.ServiceAccountName,
				Subject: ia.Spec.Subject(), Exact: ia.Spec.Exact()}
		}
		byKey[k].Associations = append(byKey[k].Associations, ia.Name)
	}
	sort.Strings(keys)
	var out []Conflict
	for _, k := range keys {
		if c := byKey[k]; len(c.Associations) > 1 {
			sort.Strings(c.Associations)
			out = append(out, *c)
		}
	}
	return out
}
