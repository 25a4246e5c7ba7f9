package cloudside

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// Format is an export format.
type Format string

// Export formats.
const (
	FormatEksctl Format = "eksctl"
	FormatAWSIAM Format = "aws-iam"
	FormatAzure  Format = "azure"
	FormatGCP    Format = "gcp"
)

// Formats lists the export formats in the order the help text names them.
var Formats = []Format{FormatEksctl, FormatAWSIAM, FormatAzure, FormatGCP}

// ParseFormat reads a --format value.
func ParseFormat(s string) (Format, error) {
	if s == "" {
		return "", fmt.Errorf("--format: required: eksctl, aws-iam, azure or gcp")
	}
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("--format %q: must be one of eksctl, aws-iam, azure, gcp", s)
}

// Severity of a Note.
type Severity string

// Note severities: an error means part of the input could not be carried over (the caller exits
// non-zero); a warning is something to act on; info says what was left out and why.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityInfo    Severity = "info"
)

// Note is something an export or import has to tell about one object.
type Note struct {
	Severity Severity `json:"severity"`
	// Object names what the note is about: "IdentityAssociation s3-reader",
	// "iam.podIdentityAssociations[2] (shop/orders)", "ServiceAccount shop/legacy".
	Object  string `json:"object"`
	Message string `json:"message"`
}

func (n Note) String() string { return fmt.Sprintf("%s: %s: %s", n.Object, n.Severity, n.Message) }

// HasErrors reports whether any note is an error.
func HasErrors(notes []Note) bool {
	for _, n := range notes {
		if n.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Result is a complete output document and what to report about it.
type Result struct {
	// Content is the document for stdout; empty when there is nothing to write.
	Content []byte
	Notes   []Note
}

// Subject is the ServiceAccount token's sub claim for namespace/name: what every cloud matches.
func Subject(namespace, serviceAccount string) string {
	return "system:serviceaccount:" + namespace + ":" + serviceAccount
}

// Token audiences lanyard puts into the projected tokens (SPEC §5), which the cloud side must accept.
const (
	AudiencePodIdentity = "pods.eks.amazonaws.com"
	AudienceIRSA        = "sts.amazonaws.com"
	AudienceAzure       = "api://AzureADTokenExchange"
)

// Issuer is the cluster's ServiceAccount token issuer (the kube-apiserver's --service-account-issuer):
// the iss claim of every token lanyard projects.
type Issuer struct {
	// URL is the issuer exactly as given: Azure compares it with the token's iss claim byte for byte.
	URL string
	// HostPath is URL without its https:// scheme: the IAM OIDC provider's name and the prefix of
	// its condition keys (oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE).
	HostPath string
}

// ParseIssuer validates an --oidc-issuer value: an https URL without query, fragment or user info,
// as OIDC discovery requires.
func ParseIssuer(s string) (*Issuer, error) {
	bad := func(why string) error {
		return fmt.Errorf("--oidc-issuer %q: %s (the cluster's service account issuer, e.g. https://oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE; kubectl get --raw /.well-known/openid-configuration shows it)", s, why)
	}
	u, err := url.Parse(s)
	switch {
	case s == "":
		return nil, bad("required")
	case err != nil:
		return nil, bad("not a URL")
	case u.Scheme != "https":
		return nil, bad("must be an https:// URL")
	case u.Host == "" || u.Hostname() == "":
		return nil, bad("has no host")
	case u.User != nil, u.RawQuery != "", u.Fragment != "", strings.ContainsAny(s, "?#"):
		return nil, bad("must not have user info, a query or a fragment")
	case strings.ContainsAny(s, " \t\r\n\"'\\"):
		return nil, bad("must not contain spaces, quotes or backslashes")
	}
	return &Issuer{URL: s, HostPath: strings.TrimPrefix(s, "https://")}, nil
}

// sortedAssociations returns the associations ordered by namespace, ServiceAccount and name, so
// output does not depend on input order.
func sortedAssociations(in []*v1alpha1.IdentityAssociation) []*v1alpha1.IdentityAssociation {
	out := append([]*v1alpha1.IdentityAssociation(nil), in...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Spec, out[j].Spec
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.ServiceAccountName != b.ServiceAccountName {
			return a.ServiceAccountName < b.ServiceAccountName
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// withoutConflicts drops associations that claim a ServiceAccount another association claims too:
// lanyard gives such ServiceAccounts no identity, so their cloud side must not be set up either.
//
// Associations with a broad subject (a '*' glob or a namespaceSelector) are not exported: each
// cloud trusts one subject per entry (an EKS pod identity association, an Azure federated
// credential, a GCP principal), so they need one entry per ServiceAccount the subject covers —
// write those from lanyard check's "covers" list.
func withoutConflicts(in []*v1alpha1.IdentityAssociation) ([]*v1alpha1.IdentityAssociation, []Note) {
	var broad []Note
	exact := in[:0:0]
	for _, ia := range in {
		if ia.Spec.Exact() {
			exact = append(exact, ia)
			continue
		}
		broad = append(broad, Note{Severity: SeverityWarning, Object: "IdentityAssociation " + ia.Name,
			Message: fmt.Sprintf("not exported: subject %s is a pattern, and the cloud side needs one entry per ServiceAccount (see the ServiceAccounts it covers in lanyard check)",
				ia.Spec.Subject())})
	}
	out, notes := withoutExactConflicts(exact)
	return out, append(broad, notes...)
}

func withoutExactConflicts(in []*v1alpha1.IdentityAssociation) ([]*v1alpha1.IdentityAssociation, []Note) {
	claims := map[string][]string{}
	for _, ia := range in {
		k := ia.Spec.Namespace + "/" + ia.Spec.ServiceAccountName
		claims[k] = append(claims[k], ia.Name)
	}
	var out []*v1alpha1.IdentityAssociation
	var notes []Note
	for _, ia := range in {
		k := ia.Spec.Namespace + "/" + ia.Spec.ServiceAccountName
		if names := claims[k]; len(names) > 1 {
			sorted := append([]string(nil), names...)
			sort.Strings(sorted)
			notes = append(notes, Note{Severity: SeverityError, Object: "IdentityAssociation " + ia.Name,
				Message: fmt.Sprintf("not exported: IdentityAssociations %s claim the same ServiceAccount %s, and lanyard injects no identity while both exist",
					strings.Join(sorted, " and "), k)})
			continue
		}
		out = append(out, ia)
	}
	return out, notes
}

func associationRef(ia *v1alpha1.IdentityAssociation) string { return "IdentityAssociation " + ia.Name }

func awsMode(a *v1alpha1.AWSIdentity) v1alpha1.AWSMode {
	if a.Mode == "" {
		return v1alpha1.AWSModePodIdentity
	}
	return a.Mode
}
