package offline

import (
	"fmt"
	"sort"
	"strings"

	"github.com/lanyard-dev/lanyard/internal/manifest"
	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// Coverage is what one IdentityAssociation decides in the input: the ServiceAccounts whose pods
// get its identity, and those it matches but a more specific association (or a tie) decides.
type Coverage struct {
	Association string `json:"association"`
	Source      string `json:"source,omitempty"`
	// Location is where the document is, for text reports.
	Location string `json:"-"`
	// Subject is the association's subject: "shop/web", "ci-*/*", "(namespaces selected by team=a)/*".
	Subject string `json:"subject"`
	// Covers are "namespace/name" of the ServiceAccounts it gives its identity to.
	Covers []string `json:"covers"`
	// Overridden are the matched ServiceAccounts it does not decide, with the reason.
	Overridden []string `json:"overridden,omitempty"`
}

// tie is a ServiceAccount matched by several associations of equal, highest specificity.
type tie struct {
	namespace, serviceAccount string
	level                     v1alpha1.Specificity
	associations              []string
}

// serviceAccountsInInput are the ServiceAccounts described in the input and those the processed
// workloads run as, sorted.
func serviceAccountsInInput(p *manifest.Policy, workloads []*Workload) []policy.ServiceAccountRef {
	seen := map[policy.ServiceAccountRef]bool{}
	var out []policy.ServiceAccountRef
	add := func(ref policy.ServiceAccountRef) {
		if !seen[ref] {
			seen[ref] = true
			out = append(out, ref)
		}
	}
	for _, ref := range p.AllServiceAccounts() {
		add(ref)
	}
	for _, w := range workloads {
		if w.Skipped == "" && w.Applied != nil {
			add(policy.ServiceAccountRef{Namespace: w.Namespace, Name: w.Applied.ServiceAccountName})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Coverages lists, per IdentityAssociation (sorted by name), the ServiceAccounts of the input it
// covers, resolving precedence as the webhook does.
func Coverages(p *manifest.Policy, workloads []*Workload) []Coverage {
	cov, _ := coverage(p, workloads)
	return cov
}

func coverage(p *manifest.Policy, workloads []*Workload) ([]Coverage, []tie) {
	all := p.AllIdentityAssociations()
	byName := map[string]*Coverage{}
	out := make([]Coverage, len(all))
	for i, ia := range all {
		out[i] = Coverage{Association: ia.Name, Subject: ia.Spec.Subject(), Covers: []string{}}
		if d := p.Origin["IdentityAssociation/"+ia.Name]; d != nil {
			out[i].Source, out[i].Location = d.Ref(), d.Location()
		}
		byName[ia.Name] = &out[i]
	}
	var ties []tie
	for _, ref := range serviceAccountsInInput(p, workloads) {
		nsLabels := p.NamespaceLabels(ref.Namespace)
		var matching []*v1alpha1.IdentityAssociation
		for _, ia := range all {
			if ia.Spec.Match(ref.Namespace, nsLabels, ref.Name) != v1alpha1.NoMatch {
				matching = append(matching, ia)
			}
		}
		if len(matching) == 0 {
			continue
		}
		winners, level := policy.MostSpecific(matching, ref.Namespace, nsLabels, ref.Name)
		sa := ref.Namespace + "/" + ref.Name
		names := make([]string, len(winners))
		for i, w := range winners {
			names[i] = w.Name
		}
		sort.Strings(names)
		if len(winners) == 1 {
			byName[winners[0].Name].Covers = append(byName[winners[0].Name].Covers, sa)
		} else if !sameSubject(winners) { // identical subjects are reported as such (Static.Conflicts)
			ties = append(ties, tie{namespace: ref.Namespace, serviceAccount: ref.Name, level: level, associations: names})
		}
		for _, ia := range matching {
			switch {
			case len(winners) == 1 && ia == winners[0]:
			case len(winners) == 1:
				byName[ia.Name].Overridden = append(byName[ia.Name].Overridden, fmt.Sprintf("%s (IdentityAssociation %s is more specific)", sa, names[0]))
			default:
				byName[ia.Name].Overridden = append(byName[ia.Name].Overridden, fmt.Sprintf("%s (conflict: %s match equally specifically)", sa, strings.Join(names, " and ")))
			}
		}
	}
	return out, ties
}

func sameSubject(ias []*v1alpha1.IdentityAssociation) bool {
	for _, ia := range ias[1:] {
		if ia.Spec.SubjectKey() != ias[0].Spec.SubjectKey() {
			return false
		}
	}
	return true
}
