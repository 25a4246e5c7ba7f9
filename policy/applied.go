package policy

import (
	"fmt"

	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// Applied is what applies to one pod: its identity, its registry grants, and what resolution noticed.
type Applied struct {
	Namespace          string
	ServiceAccountName string
	Identity           Identity
	Registries         []RegistryGrant
	Issues             []Issue
}

// Identity is the resolved set of cloud identities of a ServiceAccount; nil providers are absent.
type Identity struct {
	// Source names where the identity comes from, for reports and warnings.
	Source string
	AWS    *AWS
	Azure  *Azure
	GCP    *GCP
}

// Empty reports whether no provider applies.
func (i Identity) Empty() bool { return i.AWS == nil && i.Azure == nil && i.GCP == nil }

// AWS is a resolved AWS identity with defaults filled in.
type AWS struct {
	Mode                 v1alpha1.AWSMode
	RoleARN              string
	Region               string
	Audience             string // empty: the mode's default audience
	STSRegionalEndpoints bool
	// TokenExpirationSeconds is 0 when the provider default applies.
	TokenExpirationSeconds int64
}

// Azure is a resolved Azure workload identity.
type Azure struct {
	ClientID               string
	TenantID               string
	Cloud                  v1alpha1.AzureCloud
	TokenExpirationSeconds int64
}

// GCP is a resolved GCP workload identity federation.
type GCP struct {
	WorkloadIdentityProvider string
	ServiceAccountEmail      string
	TokenExpirationSeconds   int64
}

// PullPath is how the images of a registry grant are pulled.
type PullPath string

// Pull paths of a RegistryAttachment.
const (
	PullImagePullSecret     PullPath = "imagePullSecret"
	PullNodeIdentity        PullPath = "nodeIdentity"
	PullServiceAccountToken PullPath = "serviceAccountToken"
)

// RegistryGrant is a RegistryAttachment that applies to the pod: at least one of its images is
// hosted on the attached registry.
type RegistryGrant struct {
	Attachment string
	Registry   string
	// Path is the attachment's pull method.
	Path PullPath
	// PullSecret is the imagePullSecret to add; empty for the other pull paths.
	PullSecret string
	// Duplicate is set when an earlier grant already adds the same PullSecret.
	Duplicate bool
	// Images of the pod the registry serves.
	Images []string
}

// Severity of an Issue: errors are what `lanyard check` fails on; the webhook turns every issue into
// an admission warning (the pod itself is fine).
type Severity string

const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Issue codes, stable for machine-readable reports.
const (
	CodeConflictingAssociations = "ConflictingAssociations"
	CodeAnnotationsOverridden   = "AnnotationsOverridden"
	CodeAnnotationAdjusted      = "AnnotationAdjusted" // an anchor's annotation read leniently, as the anchor does
	CodeAzureTenantMissing      = "AzureTenantMissing"
	CodeUnattachedRegistry      = "UnattachedRegistry"
	CodeInvalidAttachment       = "InvalidAttachment"
	// CodeCredentialProviderAnnotations: a serviceAccountToken attachment applies, and the pod's
	// ServiceAccount lacks an annotation the registry's kubelet credential provider needs.
	CodeCredentialProviderAnnotations = "CredentialProviderAnnotations"
)

// Issue is something resolution noticed about a pod's policy.
type Issue struct {
	Severity Severity
	Code     string
	Message  string
}

func (a *Applied) addIssue(sev Severity, code, msg string) {
	a.Issues = append(a.Issues, Issue{Severity: sev, Code: code, Message: msg})
}

// InvalidError is configuration that cannot be applied: a malformed annotation value. It names the
// field and the accepted values; the webhook denies the pod with it.
type InvalidError struct {
	Field  string
	Value  string
	Reason string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("%s: invalid value %q: %s", e.Field, e.Value, e.Reason)
}

func (a *Applied) hasIssue(code string) bool {
	for _, is := range a.Issues {
		if is.Code == code {
			return true
		}
	}
	return false
}
