package policy

// Labels and annotations that lanyard reads or writes.
const (
	// InjectLabel opts a namespace in ("enabled") or a pod out ("disabled").
	InjectLabel    = "lanyard.dev/inject"
	InjectEnabled  = "enabled"
	InjectDisabled = "disabled"

	// AnnotationSkipContainers lists containers (comma-separated) that get nothing.
	AnnotationSkipContainers = "lanyard.dev/skip-containers"
	// AnnotationContainers is an allow-list (comma-separated) of containers that get identity.
	AnnotationContainers = "lanyard.dev/containers"
	// AnnotationTokenExpiration overrides the token lifetime (seconds) for the pod.
	AnnotationTokenExpiration = "lanyard.dev/token-expiration"
	// AnnotationInjected records what lanyard did, e.g. "aws,azure,registry/myacr".
	AnnotationInjected = "lanyard.dev/injected"
	// AnnotationGCPCredentialConfig holds the GCP external_account credential configuration that a
	// downwardAPI volume item exposes to the containers.
	AnnotationGCPCredentialConfig = "lanyard.dev/gcp-credential-config"
)

// DefaultEKSAnnotationPrefix is the EKS webhook's default --annotation-prefix.
const DefaultEKSAnnotationPrefix = "eks.amazonaws.com"

// EKSKeys are the EKS webhook's annotation keys under one prefix (its --annotation-prefix).
type EKSKeys struct {
	RoleARN, Audience, STSRegionalEndpoints, TokenExpiration, SkipContainers string
}

// defaultEKSKeys are built once: the mutation asks for them on every admission.
var defaultEKSKeys = eksKeys(DefaultEKSAnnotationPrefix)

// EKSKeysFor returns the keys under prefix; empty means DefaultEKSAnnotationPrefix.
func EKSKeysFor(prefix string) EKSKeys {
	if prefix == "" || prefix == DefaultEKSAnnotationPrefix {
		return defaultEKSKeys
	}
	return eksKeys(prefix)
}

func eksKeys(prefix string) EKSKeys {
	return EKSKeys{RoleARN: prefix + "/role-arn", Audience: prefix + "/audience",
		STSRegionalEndpoints: prefix + "/sts-regional-endpoints", TokenExpiration: prefix + "/token-expiration",
		SkipContainers: prefix + "/skip-containers"}
}

// ServiceAccountKeys are the ServiceAccount annotations resolution reads.
func (k EKSKeys) ServiceAccountKeys() []string {
	return []string{k.RoleARN, k.Audience, k.STSRegionalEndpoints, k.TokenExpiration}
}

// Annotations of the single-cloud webhooks (with the EKS webhook's default prefix), honoured for
// drop-in compatibility.
const (
	// On ServiceAccounts (amazon-eks-pod-identity-webhook).
	EKSRoleARN              = "eks.amazonaws.com/role-arn"
	EKSAudience             = "eks.amazonaws.com/audience"
	EKSSTSRegionalEndpoints = "eks.amazonaws.com/sts-regional-endpoints"
	EKSTokenExpiration      = "eks.amazonaws.com/token-expiration" // also on pods
	EKSSkipContainers       = "eks.amazonaws.com/skip-containers"  // pods, comma-separated
	AzureClientID           = "azure.workload.identity/client-id"
	AzureTenantID           = "azure.workload.identity/tenant-id"
	AzureTokenExpiration    = "azure.workload.identity/service-account-token-expiration" // SA and pod
	AzureSkipContainers     = "azure.workload.identity/skip-containers"                  // pods, ';'-separated
	// AzureUseLabel "true" on a pod asks for the Azure token even when its ServiceAccount names no
	// client id (the workload sets AZURE_CLIENT_ID itself), as with the Azure webhook.
	AzureUseLabel = "azure.workload.identity/use"
)

// DefaultServiceAccountName is the ServiceAccount of a pod whose spec names none.
const DefaultServiceAccountName = "default"

// ServiceAccount annotations the kubelet image credential providers read when they pull with the
// pod's ServiceAccount token (KEP-4412), checked in the providers' sources:
//   - ACR, kubernetes-sigs/cloud-provider-azure pkg/credentialprovider/consts.go (clientIDAnnotation,
//     tenantIDAnnotation) and azure_credentials.go: both required, non-empty, or the pull fails;
//   - ECR, kubernetes/cloud-provider-aws cmd/ecr-credential-provider/main.go
//     (buildCredentialsProvider): the role to assume; without it the provider's AWS_ECR_ROLE_ARN
//     environment variable, else no ServiceAccount-token credentials;
//   - GCR and Artifact Registry, kubernetes/cloud-provider-gcp pkg/gcpcredential/gcpcredential.go
//     (EnableWIImagePullAnnotation): must be "true", otherwise the node's service account pulls.
const (
	ACRClientIDAnnotation           = "kubernetes.azure.com/acr-client-id"
	ACRTenantIDAnnotation           = "kubernetes.azure.com/acr-tenant-id"
	ECRRoleARNAnnotation            = "eks.amazonaws.com/ecr-role-arn"
	GCPEnableWIImagePullAnnotation  = "iam.gke.io/enable-wi-image-pull"
	gcpEnableWIImagePullAnnotationV = "true"
)

// CredentialProviderAnnotations are the ServiceAccount annotations of every credential provider
// above (what a cache of ServiceAccounts must keep).
var CredentialProviderAnnotations = []string{ACRClientIDAnnotation, ACRTenantIDAnnotation, ECRRoleARNAnnotation, GCPEnableWIImagePullAnnotation}

// SelectorWarning is said of an IdentityAssociation whose namespaceSelector reads labels users can
// set (admission warning, lanyard check).
const SelectorWarning = "spec.namespaceSelector selects namespaces by labels: whoever can label a namespace can obtain this identity for its ServiceAccounts; " +
	"prefer a namespace name or glob (spec.namespace: team-*), or select on kubernetes.io/metadata.name, which the API server sets"

// SystemNamespaces are never mutated, whatever their labels say.
var SystemNamespaces = []string{"kube-system", "kube-public", "kube-node-lease"}

// IsSystemNamespace reports whether pods in namespace must be left alone: the Kubernetes system
// namespaces and lanyard's own namespace (so lanyard can always restart itself).
func IsSystemNamespace(namespace, lanyardNamespace string) bool {
	if namespace == lanyardNamespace && namespace != "" {
		return true
	}
	for _, ns := range SystemNamespaces {
		if namespace == ns {
			return true
		}
	}
	return false
}

// OptedIn reports whether a namespace with these labels has opted in to injection.
func OptedIn(namespaceLabels map[string]string) bool {
	return namespaceLabels[InjectLabel] == InjectEnabled
}
