package cli

import (
	"fmt"
	"strings"

	"github.com/lanyard-dev/lanyard/internal/offline"
	"github.com/lanyard-dev/lanyard/policy"
)

// receives describes what a processed workload gets, one item per provider or registry, e.g.
// "aws IRSA arn:aws:iam::111122223333:role/s3 (IdentityAssociation s3)".
func receives(w *offline.Workload) []string {
	if w.Applied == nil || w.Changes == nil {
		return nil
	}
	injected := map[string]bool{}
	for _, s := range w.Changes.Injected {
		injected[s] = true
	}
	var out []string
	id := w.Applied.Identity
	if a := id.AWS; a != nil && injected["aws"] {
		out = append(out, fmt.Sprintf("aws %s %s (%s)", a.Mode, a.RoleARN, id.Source))
	}
	if az := id.Azure; az != nil && injected["azure"] {
		out = append(out, fmt.Sprintf("azure client %s tenant %s (%s)", az.ClientID, az.TenantID, id.Source))
	}
	if g := id.GCP; g != nil && injected["gcp"] {
		s := "gcp " + g.WorkloadIdentityProvider
		if g.ServiceAccountEmail != "" {
			s += " as " + g.ServiceAccountEmail
		}
		out = append(out, s+" ("+id.Source+")")
	}
	for _, g := range w.Applied.Registries {
		switch g.Path {
		case policy.PullImagePullSecret:
			out = append(out, fmt.Sprintf("registry %s: pull secret %s (RegistryAttachment %s)", g.Registry, g.PullSecret, g.Attachment))
		case policy.PullServiceAccountToken:
			out = append(out, fmt.Sprintf("registry %s: the kubelet pulls with the pod's ServiceAccount token (RegistryAttachment %s)", g.Registry, g.Attachment))
		default:
			out = append(out, fmt.Sprintf("registry %s: node identity pulls (RegistryAttachment %s)", g.Registry, g.Attachment))
		}
	}
	return out
}

// status is a one-line summary of a workload for the inject report.
func status(w *offline.Workload) string {
	switch {
	case w.Skipped != "":
		return "skipped: " + w.Skipped
	case w.Denied != nil:
		return "DENIED: " + w.Denied.Error()
	case w.Changes != nil && len(w.Changes.Injected) > 0:
		if w.Changes.Empty() {
			return "already injected: " + strings.Join(w.Changes.Injected, ", ")
		}
		return "injected: " + strings.Join(w.Changes.Injected, ", ")
	}
	return "nothing applies"
}

func countSeverity(findings []offline.Finding, sev policy.Severity) int {
	n := 0
	for _, f := range findings {
		if f.Severity == sev {
			n++
		}
	}
	return n
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
