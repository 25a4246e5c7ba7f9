package cloudside

import (
	"fmt"
	"strings"

	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// GCPWorkloadIdentityUser is the role that lets a federated principal impersonate a service account.
const GCPWorkloadIdentityUser = "roles/iam.workloadIdentityUser"

// GCPPrincipal is the IAM principal of a ServiceAccount's tokens in the provider's pool, for a
// provider that maps google.subject=assertion.sub:
// principal://iam.googleapis.com/projects/<number>/locations/global/workloadIdentityPools/<pool>/subject/system:serviceaccount:<ns>:<sa>.
func GCPPrincipal(workloadIdentityProvider, namespace, serviceAccount string) (string, error) {
	pool, _, ok := strings.Cut(workloadIdentityProvider, "/providers/")
	if !ok || !strings.HasPrefix(pool, "projects/") {
		return "", fmt.Errorf("%q is not projects/<project number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>", workloadIdentityProvider)
	}
	return "principal://iam.googleapis.com/" + pool + "/subject/" + Subject(namespace, serviceAccount), nil
}

// ExportGCP writes, per GCP association, the federated principal and, when the association
// impersonates a service account, the gcloud command granting that principal
// roles/iam.workloadIdentityUser on it. Without impersonation the principal itself needs roles on
// the resources; which ones only the user knows, so the command is left as a comment.
func ExportGCP(associations []*v1alpha1.IdentityAssociation) (*Result, error) {
	associations, notes := withoutConflicts(sortedAssociations(associations))
	var b strings.Builder
	n := 0
	for _, ia := range associations {
		g := ia.Spec.GCP
		if g == nil {
			continue
		}
		principal, err := GCPPrincipal(g.WorkloadIdentityProvider, ia.Spec.Namespace, ia.Spec.ServiceAccountName)
		if err != nil {
			return nil, fmt.Errorf("%s: spec.gcp.workloadIdentityProvider: %w", associationRef(ia), err)
		}
		problems := Problems(ia)
		for _, msg := range problems {
			notes = append(notes, Note{Severity: SeverityError, Object: associationRef(ia), Message: msg})
		}
		n++
		fmt.Fprintf(&b, "\n# %s: ServiceAccount %s/%s, provider %s\n", associationRef(ia), ia.Spec.Namespace, ia.Spec.ServiceAccountName, g.WorkloadIdentityProvider)
		for _, msg := range problems {
			fmt.Fprintf(&b, "# CANNOT WORK: %s\n", msg)
		}
		fmt.Fprintf(&b, "# principal: %s\n", principal)
		if g.ServiceAccountEmail == "" {
			b.WriteString("# no impersonation: grant the principal the roles it needs on your resources, e.g.\n")
			fmt.Fprintf(&b, "#   gcloud projects add-iam-policy-binding <PROJECT_ID> --role=<ROLE> --member=%s\n", shellQuote(principal))
			continue
		}
		newCommand(&b, "gcloud", "iam", "service-accounts", "add-iam-policy-binding", shellQuote(g.ServiceAccountEmail)).
			flag("--role", GCPWorkloadIdentityUser).
			flag("--member", principal).
			end()
	}
	if n == 0 {
		notes = append(notes, Note{Severity: SeverityInfo, Object: "input", Message: "no GCP associations to export: nothing written"})
		return &Result{Notes: notes}, nil
	}
	var head strings.Builder
	fmt.Fprintf(&head, "#!/bin/sh\n# lanyard export --format gcp: %s.\n", plural(n, "workload identity principal"))
	head.WriteString("# These principals need a provider that maps google.subject=assertion.sub and accepts the audience\n")
	head.WriteString("# https://iam.googleapis.com/<provider> (a provider's default; lanyard's GCP token carries it).\n")
	head.WriteString("set -eu\n")
	return &Result{Content: []byte(head.String() + b.String()), Notes: notes}, nil
}
