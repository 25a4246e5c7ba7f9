package policy

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/lanyard-dev/lanyard/policy/imagehost"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// Reader is read access to the objects resolution needs. Implementations return objects the caller
// must not modify (they may be shared cache entries), and nil (no error) for an object that does not
// exist. An error means the answer is unknown; callers must not treat it as "not found".
type Reader interface {
	// Namespace returns a namespace's metadata.
	Namespace(ctx context.Context, name string) (*metav1.ObjectMeta, error)
	// ServiceAccount returns a ServiceAccount's metadata (nil when it does not exist; lanyard never
	// needs its secrets) and every IdentityAssociation naming it exactly (exact namespace and
	// name). Both come from one call so that a reader that must go to the API server on a cache
	// miss does so once.
	ServiceAccount(ctx context.Context, namespace, name string) (*metav1.ObjectMeta, []*v1alpha1.IdentityAssociation, error)
	// BroadAssociations returns the IdentityAssociations with a broad subject (a '*' in either
	// name, or a namespaceSelector) that may match ServiceAccounts of the namespace: at least
	// every one that does; the resolver matches them. It is called only for ServiceAccounts no
	// association names exactly.
	BroadAssociations(ctx context.Context, namespace string) ([]*v1alpha1.IdentityAssociation, error)
	// RegistryAttachments returns every registry attachment.
	RegistryAttachments(ctx context.Context) ([]*v1alpha1.RegistryAttachment, error)
}

// Options are cluster-wide settings of resolution.
type Options struct {
	// CompatAnnotations honours the single-cloud webhooks' ServiceAccount annotations.
	CompatAnnotations bool
	// DefaultAzureTenantID applies to Azure identities that name no tenant.
	DefaultAzureTenantID string
	// DefaultAWSRegion applies to AWS identities that name no region (as the EKS webhook's
	// --aws-default-region does for IRSA), so migrated workloads keep AWS_REGION.
	DefaultAWSRegion string
	// DefaultAzureCloud applies to Azure identities from annotations or the use label (the Azure
	// webhook's AZURE_ENVIRONMENT); empty means AzurePublicCloud. IdentityAssociations carry their
	// own (the CRD defaults it).
	DefaultAzureCloud v1alpha1.AzureCloud
	// The EKS webhook's --token-audience, --token-expiration and --sts-regional-endpoint=false,
	// for IRSA identities from eks.amazonaws.com annotations that do not say: "" means
	// sts.amazonaws.com, 0 means 86400, false means regional endpoints (lanyard's default).
	CompatAWSAudience        string
	CompatAWSTokenExpiration int64
	CompatAWSGlobalSTS       bool
	// EKSAnnotationPrefix replaces eks.amazonaws.com in the EKS webhook's annotation keys (its
	// --annotation-prefix); empty means eks.amazonaws.com.
	EKSAnnotationPrefix string
}

// Subject is what resolution needs to know about a pod.
type Subject struct {
	Namespace string
	// ServiceAccountName is spec.serviceAccountName; empty means "default".
	ServiceAccountName string
	// Images of every container, init container and native sidecar.
	Images []string
	// AzureUseLabel: the pod is labelled azure.workload.identity/use=true (read only with
	// compat annotations on).
	AzureUseLabel bool
}

// Resolver answers which identities and registry attachments apply to a pod.
type Resolver struct {
	reader Reader
	opts   Options
	eks    EKSKeys
}

// NewResolver returns a Resolver reading from reader.
func NewResolver(reader Reader, opts Options) *Resolver {
	return &Resolver{reader: reader, opts: opts, eks: EKSKeysFor(opts.EKSAnnotationPrefix)}
}

// Resolve returns what applies to the subject. An error is either a lookup that could not complete
// (the caller must not guess) or an *InvalidError (the configuration is wrong; deny, naming it).
func (r *Resolver) Resolve(ctx context.Context, s Subject) (*Applied, error) {
	sa := s.ServiceAccountName
	if sa == "" {
		sa = DefaultServiceAccountName
	}
	out := &Applied{Namespace: s.Namespace, ServiceAccountName: sa}

	saMeta, associations, err := r.reader.ServiceAccount(ctx, s.Namespace, sa)
	if err != nil {
		return nil, fmt.Errorf("looking up ServiceAccount %s/%s and its IdentityAssociations: %w", s.Namespace, sa, err)
	}
	// The namespace is read at most once, and only when something needs its labels.
	var (
		nsMeta   *metav1.ObjectMeta
		nsLoaded bool
	)
	namespaceLabels := func() (map[string]string, error) {
		if !nsLoaded {
			if nsMeta, err = r.reader.Namespace(ctx, s.Namespace); err != nil {
				return nil, fmt.Errorf("looking up Namespace %s: %w", s.Namespace, err)
			}
			nsLoaded = true
		}
		if nsMeta == nil {
			return nil, nil
		}
		return nsMeta.Labels, nil
	}
	level := v1alpha1.ExactSubject
	if len(associations) == 0 {
		// Broad subjects are looked at only when no association names the ServiceAccount exactly:
		// the common case stays one map lookup.
		broad, err := r.reader.BroadAssociations(ctx, s.Namespace)
		if err != nil {
			return nil, fmt.Errorf("looking up IdentityAssociations with broad subjects for namespace %s: %w", s.Namespace, err)
		}
		if len(broad) > 0 {
			var nsLabels map[string]string
			if needsLabels(broad) {
				if nsLabels, err = namespaceLabels(); err != nil {
					return nil, err
				}
			}
			associations, level = MostSpecific(broad, s.Namespace, nsLabels, sa)
		}
	}
	saAnnotations := saMeta
	if !r.opts.CompatAnnotations {
		saMeta = nil // its annotations mean nothing then
	}
	if err := r.resolveIdentity(out, associations, level, saMeta); err != nil {
		return nil, err
	}
	if r.opts.CompatAnnotations && s.AzureUseLabel && out.Identity.Azure == nil && !out.hasIssue(CodeConflictingAssociations) {
		if err := r.azureFromUseLabel(out, saMeta); err != nil {
			return nil, err
		}
	}

	attachments, err := r.reader.RegistryAttachments(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing RegistryAttachments: %w", err)
	}
	if len(attachments) > 0 || len(s.Images) > 0 {
		var nsLabels map[string]string
		if len(attachments) > 0 {
			if nsLabels, err = namespaceLabels(); err != nil {
				return nil, err
			}
		}
		if err := resolveRegistries(out, attachments, nsLabels, s.Images, saAnnotations); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// needsLabels reports whether any association selects namespaces by label.
func needsLabels(ias []*v1alpha1.IdentityAssociation) bool {
	for _, ia := range ias {
		if ia.Spec.NamespaceSelector != nil {
			return true
		}
	}
	return false
}

// MostSpecific returns the associations among ias that match ServiceAccount serviceAccount of
// namespace (labels nsLabels) with the highest specificity, and that specificity; more than one
// is a conflict. None match: nil, NoMatch.
func MostSpecific(ias []*v1alpha1.IdentityAssociation, namespace string, nsLabels map[string]string, serviceAccount string) ([]*v1alpha1.IdentityAssociation, v1alpha1.Specificity) {
	var (
		best  []*v1alpha1.IdentityAssociation
		level = v1alpha1.NoMatch
	)
	for _, ia := range ias {
		switch m := ia.Spec.Match(namespace, nsLabels, serviceAccount); {
		case m == v1alpha1.NoMatch || m < level:
		case m > level:
			best, level = append(best[:0:0], ia), m
		default:
			best = append(best, ia)
		}
	}
	return best, level
}

func (r *Resolver) resolveIdentity(out *Applied, associations []*v1alpha1.IdentityAssociation, level v1alpha1.Specificity, sa *metav1.ObjectMeta) error {
	hasCompat := sa != nil && (sa.Annotations[r.eks.RoleARN] != "" || sa.Annotations[AzureClientID] != "")
	switch len(associations) {
	case 0:
		if hasCompat {
			return r.identityFromAnnotations(out, sa)
		}
		return nil
	case 1:
		ia := associations[0]
		out.Identity = identityFromAssociation(ia, r.opts.DefaultAzureTenantID)
		if a := out.Identity.AWS; a != nil && a.Region == "" {
			a.Region = r.opts.DefaultAWSRegion
		}
		if hasCompat {
			var present []string
			for _, key := range []string{r.eks.RoleARN, AzureClientID} {
				if sa.Annotations[key] != "" {
					present = append(present, key)
				}
			}
			out.addIssue(SeverityWarning, CodeAnnotationsOverridden, fmt.Sprintf(
				"IdentityAssociation %s takes precedence over annotation %s of ServiceAccount %s/%s",
				ia.Name, strings.Join(present, " and "), out.Namespace, out.ServiceAccountName))
		}
	default:
		names := make([]string, len(associations))
		for i, ia := range associations {
			names[i] = ia.Name
		}
		sort.Strings(names)
		if level == v1alpha1.ExactSubject {
			out.addIssue(SeverityError, CodeConflictingAssociations, fmt.Sprintf(
				"IdentityAssociations %s claim the same ServiceAccount %s/%s: no identity is injected until only one remains",
				strings.Join(names, " and "), out.Namespace, out.ServiceAccountName))
			return nil
		}
		out.addIssue(SeverityError, CodeConflictingAssociations, fmt.Sprintf(
			"IdentityAssociations %s match ServiceAccount %s/%s equally specifically (%s): no identity is injected until one is more specific or only one remains",
			strings.Join(names, " and "), out.Namespace, out.ServiceAccountName, level))
		return nil
	}
	if az := out.Identity.Azure; az != nil && az.TenantID == "" {
		out.addIssue(SeverityError, CodeAzureTenantMissing, fmt.Sprintf(
			"%s has an Azure identity without tenantID and no default tenant is configured (--azure-tenant-id): Azure identity not injected",
			out.Identity.Source))
		out.Identity.Azure = nil
	}
	return nil
}

// azureFromUseLabel gives a pod labelled azure.workload.identity/use=true the Azure token, tenant,
// authority host and token file without a client id, as the Azure webhook does when the
// ServiceAccount names none: the workload picks its identity itself (AZURE_CLIENT_ID). The
// ServiceAccount's tenant-id and token lifetime annotations apply as they do with a client id.
func (r *Resolver) azureFromUseLabel(out *Applied, sa *metav1.ObjectMeta) error {
	az := &Azure{TenantID: r.opts.DefaultAzureTenantID, Cloud: r.defaultAzureCloud()}
	if sa != nil {
		where := func(key string) string {
			return fmt.Sprintf("ServiceAccount %s/%s annotation %s", out.Namespace, out.ServiceAccountName, key)
		}
		if t := sa.Annotations[AzureTenantID]; t != "" {
			if !v1alpha1.MatchesGUID(t) {
				return &InvalidError{Field: where(AzureTenantID), Value: t, Reason: "must be a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"}
			}
			az.TenantID = t
		}
		if v := sa.Annotations[AzureTokenExpiration]; v != "" {
			secs, err := ParseExpiration(v, v1alpha1.MinAzureTokenExpirationSeconds, v1alpha1.MaxTokenExpirationSeconds)
			if err != nil {
				return &InvalidError{Field: where(AzureTokenExpiration), Value: v, Reason: err.Error()}
			}
			az.TokenExpirationSeconds = secs
		}
	}
	if az.TenantID == "" {
		out.addIssue(SeverityError, CodeAzureTenantMissing, fmt.Sprintf(
			"pod label %s=true asks for the Azure token but neither the ServiceAccount (%s) nor --azure-tenant-id names a tenant: Azure identity not injected",
			AzureUseLabel, AzureTenantID))
		return nil
	}
	if out.Identity.Source == "" {
		out.Identity.Source = "pod label " + AzureUseLabel
	}
	out.Identity.Azure = az
	return nil
}

func (r *Resolver) defaultAzureCloud() v1alpha1.AzureCloud {
	if r.opts.DefaultAzureCloud != "" {
		return r.opts.DefaultAzureCloud
	}
	return v1alpha1.AzurePublicCloud
}

func identityFromAssociation(ia *v1alpha1.IdentityAssociation, defaultTenant string) Identity {
	id := Identity{Source: "IdentityAssociation " + ia.Name}
	var expiration int64
	if ia.Spec.TokenExpirationSeconds != nil {
		expiration = *ia.Spec.TokenExpirationSeconds
	}
	if a := ia.Spec.AWS; a != nil {
		mode := a.Mode
		if mode == "" {
			mode = v1alpha1.AWSModePodIdentity
		}
		id.AWS = &AWS{
			Mode:                   mode,
			RoleARN:                a.RoleARN,
			Region:                 a.Region,
			Audience:               a.Audience,
			STSRegionalEndpoints:   mode == v1alpha1.AWSModeIRSA && (a.STSRegionalEndpoints == nil || *a.STSRegionalEndpoints),
			TokenExpirationSeconds: expiration,
		}
	}
	if az := ia.Spec.Azure; az != nil {
		tenant := az.TenantID
		if tenant == "" {
			tenant = defaultTenant
		}
		cloud := az.Cloud
		if cloud == "" {
			cloud = v1alpha1.AzurePublicCloud
		}
		id.Azure = &Azure{ClientID: az.ClientID, TenantID: tenant, Cloud: cloud, TokenExpirationSeconds: expiration}
	}
	if g := ia.Spec.GCP; g != nil {
		id.GCP = &GCP{
			WorkloadIdentityProvider: g.WorkloadIdentityProvider,
			ServiceAccountEmail:      g.ServiceAccountEmail,
			TokenExpirationSeconds:   expiration,
		}
	}
	return id
}

// identityFromAnnotations reads the amazon-eks-pod-identity-webhook and azure-workload-identity
// ServiceAccount annotations. A malformed value is an *InvalidError: guessing would hand out the
// wrong identity or a token the cloud refuses.
func (r *Resolver) identityFromAnnotations(out *Applied, sa *metav1.ObjectMeta) error {
	ann := sa.Annotations
	id := Identity{Source: fmt.Sprintf("ServiceAccount %s/%s annotations", sa.Namespace, sa.Name)}
	where := func(key string) string {
		return fmt.Sprintf("ServiceAccount %s/%s annotation %s", out.Namespace, out.ServiceAccountName, key)
	}
	if arn := ann[r.eks.RoleARN]; arn != "" {
		if !v1alpha1.MatchesRoleARN(arn) {
			return &InvalidError{Field: where(r.eks.RoleARN), Value: arn,
				Reason: "must be an IAM role ARN: arn:<partition>:iam::<12-digit account>:role/<name>"}
		}
		aws := &AWS{Mode: v1alpha1.AWSModeIRSA, RoleARN: arn, Audience: ann[r.eks.Audience], STSRegionalEndpoints: !r.opts.CompatAWSGlobalSTS,
			Region: r.opts.DefaultAWSRegion, TokenExpirationSeconds: r.opts.CompatAWSTokenExpiration}
		if aws.Audience == "" {
			aws.Audience = r.opts.CompatAWSAudience
		}
		if v, ok := ann[r.eks.STSRegionalEndpoints]; ok {
			// As the EKS webhook: a value that is not a boolean is ignored (the default applies).
			if b, err := strconv.ParseBool(strings.TrimSpace(v)); err == nil {
				aws.STSRegionalEndpoints = b
			} else {
				out.addIssue(SeverityWarning, CodeAnnotationAdjusted, fmt.Sprintf(
					"%s %q is not true or false: ignored, the default applies (as the EKS webhook does)", where(r.eks.STSRegionalEndpoints), v))
			}
		}
		if v, ok := ann[r.eks.TokenExpiration]; ok {
			secs, warning := LenientEKSExpiration(where(r.eks.TokenExpiration), v)
			if warning != "" {
				out.addIssue(SeverityWarning, CodeAnnotationAdjusted, warning)
			}
			aws.TokenExpirationSeconds = secs
		}
		id.AWS = aws
	}
	if clientID := ann[AzureClientID]; clientID != "" {
		if !v1alpha1.MatchesGUID(clientID) {
			return &InvalidError{Field: where(AzureClientID), Value: clientID, Reason: "must be a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"}
		}
		az := &Azure{ClientID: clientID, TenantID: ann[AzureTenantID], Cloud: r.defaultAzureCloud()}
		if az.TenantID != "" && !v1alpha1.MatchesGUID(az.TenantID) {
			return &InvalidError{Field: where(AzureTenantID), Value: az.TenantID, Reason: "must be a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"}
		}
		if az.TenantID == "" {
			az.TenantID = r.opts.DefaultAzureTenantID
		}
		if v, ok := ann[AzureTokenExpiration]; ok && v != "" { // empty: absent, as for the Azure webhook
			secs, err := ParseExpiration(v, v1alpha1.MinAzureTokenExpirationSeconds, v1alpha1.MaxTokenExpirationSeconds)
			if err != nil {
				return &InvalidError{Field: where(AzureTokenExpiration), Value: v, Reason: err.Error()}
			}
			az.TokenExpirationSeconds = secs
		}
		id.Azure = az
	}
	out.Identity = id
	if az := out.Identity.Azure; az != nil && az.TenantID == "" {
		out.addIssue(SeverityError, CodeAzureTenantMissing, fmt.Sprintf(
			"%s give an Azure client ID but no %s, and no default tenant is configured (--azure-tenant-id): Azure identity not injected",
			id.Source, AzureTenantID))
		out.Identity.Azure = nil
	}
	return nil
}

// ParseExpiration parses a token lifetime in seconds and checks it against [min, max].
func ParseExpiration(value string, minSeconds, maxSeconds int64) (int64, error) {
	secs, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("must be a whole number of seconds between %d and %d", minSeconds, maxSeconds)
	}
	if secs < minSeconds || secs > maxSeconds {
		return 0, fmt.Errorf("must be between %d and %d seconds", minSeconds, maxSeconds)
	}
	return secs, nil
}

// LenientEKSExpiration reads eks.amazonaws.com/token-expiration as the EKS webhook does: a value
// below 600 is raised to 600 and an unparseable one is ignored (the default applies); lanyard also
// lowers one above 86400 to 86400, its own bound. 0 means "use the default". The warning (empty
// when the value was used as is) says which value was used, for an admission warning.
func LenientEKSExpiration(where, value string) (int64, string) {
	secs, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
	switch {
	case err != nil:
		return 0, fmt.Sprintf("%s %q is not a number of seconds: ignored, the default lifetime is used (as the EKS webhook does)", where, value)
	case secs < v1alpha1.MinTokenExpirationSeconds:
		return v1alpha1.MinTokenExpirationSeconds, fmt.Sprintf("%s %d is below %d: %d is used (as the EKS webhook does)",
			where, secs, v1alpha1.MinTokenExpirationSeconds, v1alpha1.MinTokenExpirationSeconds)
	case secs > v1alpha1.MaxTokenExpirationSeconds:
		return v1alpha1.MaxTokenExpirationSeconds, fmt.Sprintf("%s %d is above %d: %d is used",
			where, secs, v1alpha1.MaxTokenExpirationSeconds, v1alpha1.MaxTokenExpirationSeconds)
	}
	return secs, ""
}

func resolveRegistries(out *Applied, attachments []*v1alpha1.RegistryAttachment, nsLabels map[string]string, images []string, sa *metav1.ObjectMeta) error {
	type imageHost struct {
		host    string // "" when the reference does not parse
		covered bool
	}
	hosts := make([]imageHost, len(images))
	for i, image := range images {
		// The API server validates images only loosely; an unparseable one cannot match any
		// registry, and the kubelet will report it. Keep going for the others.
		hosts[i].host, _ = imagehost.Host(image)
	}
	// Deterministic order, whatever order the reader returns (readers usually return them sorted).
	sorted := attachments
	if !sort.SliceIsSorted(attachments, func(i, j int) bool { return attachments[i].Name < attachments[j].Name }) {
		sorted = make([]*v1alpha1.RegistryAttachment, len(attachments))
		copy(sorted, attachments)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	}

	for _, ra := range sorted {
		if !appliesTo(ra, nsLabels, out.ServiceAccountName) {
			continue
		}
		pattern, err := imagehost.ParsePattern(ra.Spec.Registry)
		if err != nil {
			out.addIssue(SeverityWarning, CodeInvalidAttachment, fmt.Sprintf(
				"RegistryAttachment %s: spec.registry %q: %v; attachment ignored", ra.Name, ra.Spec.Registry, err))
			continue
		}
		var served []string
		for i := range hosts {
			if hosts[i].host != "" && pattern.Matches(hosts[i].host) {
				served = append(served, images[i])
				hosts[i].covered = true
			}
		}
		if len(served) == 0 {
			continue
		}
		grant := RegistryGrant{Attachment: ra.Name, Registry: ra.Spec.Registry, Images: served, Path: PullNodeIdentity}
		if ra.Spec.Pull.ServiceAccountToken != nil {
			grant.Path = PullServiceAccountToken
			checkProviderAnnotations(out, ra.Name, served, sa)
		}
		if s := ra.Spec.Pull.ImagePullSecret; s != nil {
			grant.Path = PullImagePullSecret
			grant.PullSecret = s.Name
			for _, earlier := range out.Registries {
				if earlier.PullSecret == s.Name {
					// Another attachment already adds this secret; record the grant, add it once.
					grant.Duplicate = true
					break
				}
			}
		}
		out.Registries = append(out.Registries, grant)
	}
	var reported map[string]bool // one issue per image, however many containers run it
	for i, h := range hosts {
		if h.covered || h.host == "" {
			continue
		}
		cloud := imagehost.CloudRegistry(h.host)
		if cloud == imagehost.CloudNone || reported[images[i]] {
			continue
		}
		if reported == nil {
			reported = map[string]bool{}
		}
		reported[images[i]] = true
		out.addIssue(SeverityError, CodeUnattachedRegistry, fmt.Sprintf(
			"image %s is on %s registry %s and no RegistryAttachment covers it for %s/%s: it would fail to pull (declare a nodeIdentity attachment if the kubelet pulls)",
			images[i], cloud, h.host, out.Namespace, out.ServiceAccountName))
	}
	return nil
}

// checkProviderAnnotations warns when the pod's ServiceAccount lacks an annotation the kubelet
// credential provider of the served images' cloud needs to pull with its token (see
// ACRClientIDAnnotation for where the keys come from). Images on no known cloud registry are not
// checked: their provider is unknown.
func checkProviderAnnotations(out *Applied, attachment string, images []string, sa *metav1.ObjectMeta) {
	var ann map[string]string
	if sa != nil {
		ann = sa.Annotations
	}
	seen := map[imagehost.Cloud]bool{}
	for _, image := range images {
		host, err := imagehost.Host(image)
		if err != nil {
			continue
		}
		cloud := imagehost.CloudRegistry(host)
		if cloud == imagehost.CloudNone || seen[cloud] {
			continue
		}
		seen[cloud] = true
		var missing []string
		consequence := ""
		switch cloud {
		case imagehost.CloudAzure:
			for _, k := range []string{ACRClientIDAnnotation, ACRTenantIDAnnotation} {
				if ann[k] == "" {
					missing = append(missing, k)
				}
			}
			consequence = "the ACR credential provider fails the pull"
		case imagehost.CloudAWS:
			if ann[ECRRoleARNAnnotation] == "" {
				missing = append(missing, ECRRoleARNAnnotation)
			}
			consequence = "the ECR credential provider has no role to assume unless it is configured with AWS_ECR_ROLE_ARN"
		case imagehost.CloudGCP:
			if ann[GCPEnableWIImagePullAnnotation] != gcpEnableWIImagePullAnnotationV {
				missing = append(missing, GCPEnableWIImagePullAnnotation+`: "true"`)
			}
			consequence = "the GCP credential provider pulls with the node's service account instead"
		}
		if len(missing) == 0 {
			continue
		}
		out.addIssue(SeverityWarning, CodeCredentialProviderAnnotations, fmt.Sprintf(
			"RegistryAttachment %s pulls %s with the pod's ServiceAccount token, but ServiceAccount %s/%s lacks annotation %s: %s",
			attachment, image, out.Namespace, out.ServiceAccountName, strings.Join(missing, " and "), consequence))
	}
}

func appliesTo(ra *v1alpha1.RegistryAttachment, nsLabels map[string]string, serviceAccount string) bool {
	if names := ra.Spec.ServiceAccountNames; len(names) > 0 {
		found := false
		for _, n := range names {
			if n == serviceAccount {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	sel, err := v1alpha1.LabelSelectorAsSelector(ra.Spec.NamespaceSelector)
	if err != nil {
		return false
	}
	return sel.Matches(labels.Set(nsLabels))
}
