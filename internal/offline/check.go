package offline

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lanyard-dev/lanyard/internal/cloudside"
	"github.com/lanyard-dev/lanyard/internal/manifest"
	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/cluster"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// Finding codes of lanyard check, beyond the policy.Code* of resolution.
const (
	CodeDenied                 = "Denied"
	CodeMutationWarning        = "LeftAlone"
	CodeAssumedNamespace       = "AssumedNamespace"
	CodeManualCloudCredentials = "ManualCloudCredentials"
	CodeServiceAccountMissing  = "ServiceAccountNotFound"
	CodeMissingRegion          = "MissingRegion"
	// CodeCloudSideMismatch: what lanyard injects and what the cloud accepts contradict each other
	// (cloudside.Problems), so no cloud-side setup can make the identity work.
	CodeCloudSideMismatch = "CloudSideMismatch"
	// CodeLabelSelectedNamespaces: an IdentityAssociation selects namespaces by labels users can
	// set, so whoever can label a namespace can obtain its identity.
	CodeLabelSelectedNamespaces = "LabelSelectedNamespaces"
)

// Finding is one result of lanyard check.
type Finding struct {
	Severity policy.Severity `json:"severity"`
	Code     string          `json:"code"`
	// Object is what the finding is about: "Deployment default/web", "IdentityAssociation s3".
	Object string `json:"object"`
	// Source is the document that describes Object, when known.
	Source  string `json:"source,omitempty"`
	Message string `json:"message"`
}

// cloudCredentialEnv are variables that mean "this container brings its own cloud credentials".
var cloudCredentialEnv = []string{
	"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ACCESS_KEY_ID", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
	"AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_SECRET",
	"GOOGLE_APPLICATION_CREDENTIALS",
}

// Check turns what processing found into findings: errors are what the webhook would deny or what
// would keep a pod from starting; warnings are likely mistakes.
func Check(p *manifest.Policy, workloads []*Workload) []Finding {
	var out []Finding
	seen := map[string]bool{}
	conflictReported := map[string]bool{}
	add := func(f Finding) {
		key := string(f.Severity) + "|" + f.Code + "|" + f.Object + "|" + f.Message
		if !seen[key] {
			seen[key] = true
			out = append(out, f)
		}
	}
	for _, w := range workloads {
		base := Finding{Object: w.Ref(), Source: w.Doc.Ref()}
		if w.Skipped != "" {
			continue
		}
		if w.AssumedNamespace {
			f := base
			f.Severity, f.Code = policy.SeverityWarning, CodeAssumedNamespace
			f.Message = fmt.Sprintf("namespace %s is not described in the input; assumed opted in (label %s=%s)",
				w.Namespace, policy.InjectLabel, policy.InjectEnabled)
			add(f)
		}
		if w.Denied != nil {
			f := base
			f.Severity, f.Code, f.Message = policy.SeverityError, CodeDenied, "the webhook would deny this pod: "+w.Denied.Error()
			add(f)
			continue
		}
		if w.Applied != nil {
			for _, is := range w.Applied.Issues {
				if is.Code == policy.CodeConflictingAssociations {
					conflictReported[w.Namespace+"/"+w.Applied.ServiceAccountName] = true
				}
				f := base
				f.Severity, f.Code, f.Message = is.Severity, is.Code, is.Message
				add(f)
			}
		}
		if w.Changes != nil {
			for _, msg := range w.Changes.Warnings {
				f := base
				f.Severity, f.Code, f.Message = policy.SeverityWarning, CodeMutationWarning, msg
				add(f)
			}
		}
		if w.Applied != nil && w.Pod != nil {
			if c := irsaWithoutRegion(w.Applied, w.Pod); c != "" {
				f := base
				f.Severity, f.Code = policy.SeverityWarning, CodeMissingRegion
				f.Message = fmt.Sprintf("container %q gets the IRSA identity of %s but no AWS_REGION: the AWS SDK for Go v2 (and others) fail with \"Missing Region\" before calling STS; set region: in the IdentityAssociation or --aws-default-region",
					c, w.Applied.Identity.Source)
				add(f)
			}
		}
		if w.Applied != nil {
			// The identity as resolved for this pod: annotations and cluster-wide defaults included.
			id := w.Applied.Identity
			for _, msg := range cloudside.IdentityProblems(w.Namespace, w.Applied.ServiceAccountName, id) {
				f := Finding{Severity: policy.SeverityWarning, Code: CodeCloudSideMismatch, Object: id.Source,
					Source: identitySource(p, id.Source, w.Namespace, w.Applied.ServiceAccountName), Message: msg}
				add(f)
			}
		}
		if w.Applied != nil && w.Applied.Identity.Empty() && w.Pod != nil {
			if c, name := manualCredentials(w.Pod); c != "" {
				f := base
				f.Severity, f.Code = policy.SeverityWarning, CodeManualCloudCredentials
				f.Message = fmt.Sprintf("container %q sets %s by hand but ServiceAccount %s/%s gets no identity from lanyard",
					c, name, w.Namespace, w.Applied.ServiceAccountName)
				add(f)
			}
		}
	}
	for _, c := range p.Conflicts() {
		if c.Exact && conflictReported[c.Namespace+"/"+c.ServiceAccountName] {
			continue // already reported on the workloads it affects
		}
		names := c.Associations
		first := p.Origin["IdentityAssociation/"+names[0]]
		f := Finding{Severity: policy.SeverityError, Code: policy.CodeConflictingAssociations,
			Object: "IdentityAssociation " + strings.Join(names, ", ")}
		if c.Exact {
			f.Message = fmt.Sprintf("IdentityAssociations %s claim the same ServiceAccount %s/%s; the webhook rejects the second one, and pods of that ServiceAccount get no identity while both exist",
				strings.Join(names, " and "), c.Namespace, c.ServiceAccountName)
		} else {
			f.Message = fmt.Sprintf("IdentityAssociations %s have the same subject %s; the webhook rejects the second one, and the ServiceAccounts they would decide get no identity while both exist",
				strings.Join(names, " and "), c.Subject)
		}
		if first != nil {
			f.Source = first.Ref()
		}
		add(f)
	}
	// Overlapping subjects of equal specificity, for ServiceAccounts of the input no workload
	// showed (a workload's own conflict is reported on it).
	_, ties := coverage(p, workloads)
	for _, t := range ties {
		if conflictReported[t.namespace+"/"+t.serviceAccount] {
			continue
		}
		f := Finding{Severity: policy.SeverityError, Code: policy.CodeConflictingAssociations,
			Object: "IdentityAssociation " + strings.Join(t.associations, ", "),
			Message: fmt.Sprintf("IdentityAssociations %s match ServiceAccount %s/%s equally specifically (%s): its pods get no identity until one is more specific or only one remains",
				strings.Join(t.associations, " and "), t.namespace, t.serviceAccount, t.level)}
		if d := p.Origin["IdentityAssociation/"+t.associations[0]]; d != nil {
			f.Source = d.Ref()
		}
		add(f)
	}
	for _, ia := range p.AllIdentityAssociations() {
		if sel := ia.Spec.NamespaceSelector; sel != nil && !v1alpha1.SelectorOnlyOnNames(sel) {
			f := Finding{Severity: policy.SeverityWarning, Code: CodeLabelSelectedNamespaces, Object: "IdentityAssociation " + ia.Name,
				Message: policy.SelectorWarning}
			if d := p.Origin["IdentityAssociation/"+ia.Name]; d != nil {
				f.Source = d.Ref()
			}
			add(f)
		}
	}
	for _, ia := range p.AllIdentityAssociations() {
		if !ia.Spec.Exact() {
			continue // its ServiceAccounts' identities are checked on the workloads that run as them
		}
		for _, msg := range cloudside.Problems(ia) {
			object := "IdentityAssociation " + ia.Name
			add(Finding{Severity: policy.SeverityWarning, Code: CodeCloudSideMismatch, Object: object,
				Source: identitySource(p, object, "", ""), Message: msg})
		}
	}
	covered := map[string]bool{}
	for _, c := range Coverages(p, workloads) {
		covered[c.Association] = len(c.Covers)+len(c.Overridden) > 0
	}
	for _, ia := range p.AllIdentityAssociations() {
		if !ia.Spec.Exact() {
			if !covered[ia.Name] {
				f := Finding{Severity: policy.SeverityWarning, Code: CodeServiceAccountMissing, Object: "IdentityAssociation " + ia.Name,
					Message: fmt.Sprintf("no ServiceAccount in the input matches subject %s", ia.Spec.Subject())}
				if d := p.Origin["IdentityAssociation/"+ia.Name]; d != nil {
					f.Source = d.Ref()
				}
				add(f)
			}
			continue
		}
		if ia.Spec.ServiceAccountName == policy.DefaultServiceAccountName || p.HasServiceAccount(ia.Spec.Namespace, ia.Spec.ServiceAccountName) {
			continue
		}
		f := Finding{Severity: policy.SeverityWarning, Code: CodeServiceAccountMissing, Object: "IdentityAssociation " + ia.Name,
			Message: fmt.Sprintf("ServiceAccount %s/%s is not in the input", ia.Spec.Namespace, ia.Spec.ServiceAccountName)}
		if d := p.Origin["IdentityAssociation/"+ia.Name]; d != nil {
			f.Source = d.Ref()
		}
		add(f)
	}
	return out
}

// identitySource is the document describing an identity's source: the IdentityAssociation, or the
// ServiceAccount whose annotations gave it; empty when unknown (e.g. read from the cluster).
func identitySource(p *manifest.Policy, source, namespace, serviceAccount string) string {
	key := ""
	switch {
	case strings.HasPrefix(source, "IdentityAssociation "):
		key = "IdentityAssociation/" + strings.TrimPrefix(source, "IdentityAssociation ")
	case strings.HasPrefix(source, "ServiceAccount "):
		key = "ServiceAccount/" + namespace + "/" + serviceAccount
	}
	if d := p.Origin[key]; d != nil {
		return d.Ref()
	}
	return ""
}

// irsaWithoutRegion names the first container that gets an IRSA identity and ends up with no
// AWS_REGION or AWS_DEFAULT_REGION at all (pod is the mutated template).
func irsaWithoutRegion(applied *policy.Applied, pod *corev1.Pod) string {
	aws := applied.Identity.AWS
	if aws == nil || aws.Mode != v1alpha1.AWSModeIRSA || aws.Region != "" {
		return ""
	}
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			hasRole, hasRegion := false, false
			for _, e := range c.Env {
				switch e.Name {
				case "AWS_ROLE_ARN":
					hasRole = true
				case "AWS_REGION", "AWS_DEFAULT_REGION":
					hasRegion = true
				}
			}
			if hasRole && !hasRegion {
				return c.Name
			}
		}
	}
	return ""
}

func manualCredentials(pod *corev1.Pod) (container, variable string) {
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			for _, e := range c.Env {
				for _, name := range cloudCredentialEnv {
					if e.Name == name {
						return c.Name, name
					}
				}
			}
		}
	}
	return "", ""
}

// CodePullSecretNotFound: a RegistryAttachment adds a pull secret the pod's namespace lacks.
const CodePullSecretNotFound = "PullSecretNotFound"

// CheckPullSecrets verifies, with the caller's credentials, that the pull secrets the workloads
// would receive exist in their namespaces (lanyard itself never reads Secrets).
func CheckPullSecrets(ctx context.Context, c client.Reader, workloads []*Workload) ([]Finding, error) {
	var out []Finding
	known := map[string]bool{}
	for _, w := range workloads {
		if w.Applied == nil || w.Skipped != "" || w.Denied != nil {
			continue
		}
		for _, g := range w.Applied.Registries {
			if g.PullSecret == "" {
				continue
			}
			key := w.Namespace + "/" + g.PullSecret
			exists, seen := known[key]
			if !seen {
				var err error
				if exists, err = cluster.SecretExists(ctx, c, w.Namespace, g.PullSecret); err != nil {
					return nil, fmt.Errorf("checking Secret %s: %w", key, err)
				}
				known[key] = exists
			}
			if !exists {
				out = append(out, Finding{Severity: policy.SeverityError, Code: CodePullSecretNotFound, Object: w.Ref(), Source: w.Doc.Ref(),
					Message: fmt.Sprintf("RegistryAttachment %s adds imagePullSecret %s, which does not exist in namespace %s: pulls from %s would fail",
						g.Attachment, g.PullSecret, w.Namespace, g.Registry)})
			}
		}
	}
	return out, nil
}
