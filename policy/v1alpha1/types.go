package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Patterns shared by the CRD markers (CEL) and Validate. Keep the two in step: the tests compare them.
const (
	// RoleARNPattern is an IAM role ARN in any AWS partition, with an optional role path.
	RoleARNPattern = `^arn:aws(-cn|-us-gov|-iso|-iso-b|-iso-e|-iso-f|-eusc)?:iam::[0-9]{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$`
	// GUIDPattern is an Entra ID (Azure AD) client or tenant ID.
	GUIDPattern = `^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`
	// WorkloadIdentityProviderPattern is the resource path of a GCP workload identity pool provider.
	WorkloadIdentityProviderPattern = `^projects/[0-9]{1,20}/locations/global/workloadIdentityPools/[a-z0-9-]{4,32}/providers/[a-z0-9-]{4,32}$`
	// GCPServiceAccountEmailPattern is a Google service account e-mail address.
	GCPServiceAccountEmailPattern = `^[a-zA-Z0-9._%+-]{1,64}@[a-z0-9.-]+\.gserviceaccount\.com$`
	// AWSRegionPattern is an AWS region name such as us-west-2, us-gov-west-1 or cn-north-1.
	AWSRegionPattern = `^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`
	// AzureIdentityResourceIDPattern is the Azure Resource Manager ID of a user-assigned managed identity:
	// /subscriptions/<GUID>/resourceGroups/<group>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>.
	// ARM compares the fixed segments case-insensitively; group and identity names follow Azure's naming rules.
	AzureIdentityResourceIDPattern = `^/(?i:subscriptions)/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/(?i:resourceGroups)/[-\w().\p{L}]{0,89}[-\w()\p{L}]/(?i:providers/Microsoft\.ManagedIdentity/userAssignedIdentities)/[a-zA-Z0-9][-\w]{2,127}$`
	// RegistryPattern is host[:port] with an optional leading "*." label glob: no scheme, path, tag or digest.
	RegistryPattern = `^(\*\.)?([a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?\.)*[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?(:[0-9]{1,5})?$`
)

// Token lifetime bounds (seconds) accepted by the cloud token exchanges.
const (
	MinTokenExpirationSeconds      = 600
	MaxTokenExpirationSeconds      = 86400
	MinAzureTokenExpirationSeconds = 3600
)

// IdentityAssociation says: pods of ServiceAccount spec.serviceAccountName in namespace spec.namespace
// get these cloud identities. A subject may be broad: either name may hold one '*' glob, and
// spec.namespaceSelector may select namespaces by label instead of spec.namespace. The most specific
// association of a ServiceAccount applies: exact namespace and name, then exact namespace and name
// glob, then namespace glob or selector and exact name, then namespace glob or selector and name
// glob; two of equal specificity are a conflict and give no identity. At most one association may
// exist per subject.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=ia,categories=lanyard
// +kubebuilder:subresource:status
// +kubebuilder:selectablefield:JSONPath=`.spec.namespace`
// +kubebuilder:selectablefield:JSONPath=`.spec.serviceAccountName`
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=`.spec.namespace`
// +kubebuilder:printcolumn:name="ServiceAccount",type=string,JSONPath=`.spec.serviceAccountName`
// +kubebuilder:printcolumn:name="Providers",type=string,JSONPath=`.status.providers`
// +kubebuilder:printcolumn:name="Matched",type=integer,JSONPath=`.status.matchedServiceAccounts`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type IdentityAssociation struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   IdentityAssociationSpec   `json:"spec"`
	Status IdentityAssociationStatus `json:"status,omitempty"`
}

// IdentityAssociationSpec names the ServiceAccounts and the identities their pods receive.
//
// +kubebuilder:validation:XValidation:rule="has(self.aws) || has(self.azure) || has(self.gcp)",message="at least one of aws, azure or gcp must be set"
// +kubebuilder:validation:XValidation:rule="!has(self.azure) || !has(self.tokenExpirationSeconds) || self.tokenExpirationSeconds >= 3600",message="tokenExpirationSeconds must be at least 3600 when azure is set (the Azure token exchange minimum)",fieldPath=".tokenExpirationSeconds"
// +kubebuilder:validation:XValidation:rule="!(has(self.__namespace__) && has(self.namespaceSelector))",message="namespace and namespaceSelector are mutually exclusive: set one of them",fieldPath=".namespaceSelector"
// +kubebuilder:validation:XValidation:rule="has(self.__namespace__) || has(self.namespaceSelector)",message="one of namespace or namespaceSelector must be set",fieldPath=".namespace"
type IdentityAssociationSpec struct {
	// Namespace of the ServiceAccounts: a namespace name, or a pattern with one '*' that matches
	// any run of characters (ci-*, *-prod, *). Exactly one of namespace and namespaceSelector.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[^*]*[*]?[^*]*$')",message="namespace may contain at most one '*'"
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9*]([-a-z0-9*]*[a-z0-9*])?$')",message="namespace must be a DNS-1123 label (lower-case letters, digits and '-'), optionally with one '*' glob"
	Namespace string `json:"namespace,omitempty"`

	// NamespaceSelector selects the namespaces by label, instead of namespace; empty selects every
	// namespace. Security: whoever may label a namespace can then obtain this identity for its
	// ServiceAccounts. Prefer a namespace name or glob, or select on kubernetes.io/metadata.name,
	// which the API server sets and users cannot change.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// ServiceAccountName is the ServiceAccount whose pods get the identities: a name, or a pattern
	// with one '*' that matches any run of characters (runner-*, *).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[^*]*[*]?[^*]*$')",message="serviceAccountName may contain at most one '*'"
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9*]([-a-z0-9*]*[a-z0-9*])?(\\\\.[a-z0-9*]([-a-z0-9*]*[a-z0-9*])?)*$')",message="serviceAccountName must be a DNS-1123 subdomain (lower-case letters, digits, '-' and '.'), optionally with one '*' glob"
	ServiceAccountName string `json:"serviceAccountName"`

	// TokenExpirationSeconds is the lifetime of the projected ServiceAccount tokens; each provider's
	// default applies when unset. A pod may override it with the lanyard.dev/token-expiration annotation.
	// +optional
	// +kubebuilder:validation:Minimum=600
	// +kubebuilder:validation:Maximum=86400
	TokenExpirationSeconds *int64 `json:"tokenExpirationSeconds,omitempty"`

	// AWS identity: EKS Pod Identity or IAM Roles for Service Accounts (IRSA).
	// +optional
	AWS *AWSIdentity `json:"aws,omitempty"`
	// Azure Workload Identity.
	// +optional
	Azure *AzureIdentity `json:"azure,omitempty"`
	// GCP Workload Identity Federation.
	// +optional
	GCP *GCPIdentity `json:"gcp,omitempty"`
}

// AWSMode selects how AWS credentials reach the pod.
// +kubebuilder:validation:Enum=PodIdentity;IRSA
type AWSMode string

const (
	// AWSModePodIdentity uses the EKS Pod Identity agent (container credentials endpoint).
	AWSModePodIdentity AWSMode = "PodIdentity"
	// AWSModeIRSA uses sts:AssumeRoleWithWebIdentity with a projected token.
	AWSModeIRSA AWSMode = "IRSA"
)

// AWSIdentity is an IAM role for the pods.
//
// +kubebuilder:validation:XValidation:rule="!has(self.stsRegionalEndpoints) || self.mode == 'IRSA'",message="stsRegionalEndpoints applies only to mode IRSA",fieldPath=".stsRegionalEndpoints"
type AWSIdentity struct {
	// RoleARN is the IAM role, e.g. arn:aws:iam::111122223333:role/s3-reader.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.matches('^arn:aws(-cn|-us-gov|-iso|-iso-b|-iso-e|-iso-f|-eusc)?:iam::[0-9]{12}:role/([\\\\w+=,.@-]+/)*[\\\\w+=,.@-]{1,64}$')",message="roleARN must be an IAM role ARN: arn:<partition>:iam::<12-digit account>:role/<name>"
	RoleARN string `json:"roleARN"`

	// Mode is PodIdentity (default) or IRSA.
	// +optional
	// +kubebuilder:default=PodIdentity
	Mode AWSMode `json:"mode,omitempty"`

	// Region sets AWS_REGION and AWS_DEFAULT_REGION.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$')",message="region must be an AWS region name such as us-west-2"
	Region string `json:"region,omitempty"`

	// STSRegionalEndpoints sets AWS_STS_REGIONAL_ENDPOINTS=regional (IRSA only; default true).
	// +optional
	STSRegionalEndpoints *bool `json:"stsRegionalEndpoints,omitempty"`

	// Audience overrides the token audience (pods.eks.amazonaws.com for PodIdentity,
	// sts.amazonaws.com for IRSA).
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Audience string `json:"audience,omitempty"`
}

// AzureCloud is the Azure cloud whose Entra ID authority issues tokens.
// +kubebuilder:validation:Enum=AzurePublicCloud;AzureChinaCloud;AzureUSGovernmentCloud
type AzureCloud string

const (
	AzurePublicCloud       AzureCloud = "AzurePublicCloud"
	AzureChinaCloud        AzureCloud = "AzureChinaCloud"
	AzureUSGovernmentCloud AzureCloud = "AzureUSGovernmentCloud"
)

// AzureIdentity is an Entra ID application or user-assigned managed identity for the pods.
type AzureIdentity struct {
	// ClientID of the application or managed identity.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=36
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')",message="clientID must be a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
	ClientID string `json:"clientID"`

	// TenantID of the identity; lanyard's --azure-tenant-id applies when unset.
	// +optional
	// +kubebuilder:validation:MaxLength=36
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')",message="tenantID must be a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"
	TenantID string `json:"tenantID,omitempty"`

	// Cloud selects the authority host (default AzurePublicCloud).
	// +optional
	// +kubebuilder:default=AzurePublicCloud
	Cloud AzureCloud `json:"cloud,omitempty"`

	// IdentityResourceID is the Azure Resource Manager ID of the user-assigned managed identity whose
	// client ID is clientID. Nothing is injected from it: lanyard export --format azure reads the
	// subscription, resource group and identity name from it for the federated identity credential.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.matches('^/(?i:subscriptions)/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/(?i:resourceGroups)/[-\\\\w().\\\\p{L}]{0,89}[-\\\\w()\\\\p{L}]/(?i:providers/Microsoft\\\\.ManagedIdentity/userAssignedIdentities)/[a-zA-Z0-9][-\\\\w]{2,127}$')",message="identityResourceID must be the resource ID of a user-assigned managed identity: /subscriptions/<subscription GUID>/resourceGroups/<group>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>"
	IdentityResourceID string `json:"identityResourceID,omitempty"`
}

// GCPIdentity is a workload identity pool provider, optionally impersonating a service account.
type GCPIdentity struct {
	// WorkloadIdentityProvider is
	// projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.matches('^projects/[0-9]{1,20}/locations/global/workloadIdentityPools/[a-z0-9-]{4,32}/providers/[a-z0-9-]{4,32}$')",message="workloadIdentityProvider must be projects/<project number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>"
	WorkloadIdentityProvider string `json:"workloadIdentityProvider"`

	// ServiceAccountEmail, when set, is impersonated with the federated token.
	// +optional
	// +kubebuilder:validation:MaxLength=254
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-zA-Z0-9._%+-]{1,64}@[a-z0-9.-]+\\\\.gserviceaccount\\\\.com$')",message="serviceAccountEmail must be a Google service account e-mail (name@project.iam.gserviceaccount.com)"
	ServiceAccountEmail string `json:"serviceAccountEmail,omitempty"`
}

// Condition types of an IdentityAssociation.
const (
	ConditionReady               = "Ready"
	ConditionConflict            = "Conflict"
	ConditionServiceAccountFound = "ServiceAccountFound"
)

// IdentityAssociationStatus is observed state, written by lanyard's status reconciler.
type IdentityAssociationStatus struct {
	// ObservedGeneration is the spec generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Providers summarises the spec for kubectl get, e.g. "aws(IRSA),gcp".
	// +optional
	Providers string `json:"providers,omitempty"`
	// MatchedServiceAccounts is how many existing ServiceAccounts the subject matches (0 or 1 for
	// an exact subject), whether or not a more specific association overrides it for some of them.
	// +optional
	MatchedServiceAccounts int32 `json:"matchedServiceAccounts"`
	// Conditions: Ready, Conflict, ServiceAccountFound.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// IdentityAssociationList is a list of IdentityAssociations.
//
// +kubebuilder:object:root=true
type IdentityAssociationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IdentityAssociation `json:"items"`
}

// RegistryAttachment says: pods in the selected namespaces may pull from this registry, with this
// pull method.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=ra,categories=lanyard
// +kubebuilder:printcolumn:name="Registry",type=string,JSONPath=`.spec.registry`
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.spec.pull.imagePullSecret.name`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RegistryAttachment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec RegistryAttachmentSpec `json:"spec"`
}

// RegistryAttachmentSpec names a registry, which pods it is attached to, and how they pull.
type RegistryAttachmentSpec struct {
	// Registry is host[:port]; a leading "*." matches exactly one DNS label
	// (*.dkr.ecr.us-west-2.amazonaws.com).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^(\\\\*\\\\.)?([a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?\\\\.)*[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?(:[0-9]{1,5})?$')",message="registry must be host[:port] with an optional leading '*.' label glob, without scheme, path, tag or digest"
	Registry string `json:"registry"`

	// NamespaceSelector selects opted-in namespaces by label; empty or unset selects all of them.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// ServiceAccountNames narrows the attachment to pods of these ServiceAccounts.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=253
	ServiceAccountNames []string `json:"serviceAccountNames,omitempty"`

	// Pull is how pods authenticate to the registry.
	// +required
	Pull PullMethod `json:"pull"`
}

// PullMethod is exactly one way of pulling from a registry.
//
// +kubebuilder:validation:XValidation:rule="(has(self.imagePullSecret) ? 1 : 0) + (has(self.nodeIdentity) ? 1 : 0) + (has(self.serviceAccountToken) ? 1 : 0) == 1",message="exactly one of imagePullSecret, nodeIdentity or serviceAccountToken must be set"
type PullMethod struct {
	// ImagePullSecret is a kubernetes.io/dockerconfigjson Secret in the pod's namespace, added to
	// the pod's spec.imagePullSecrets.
	// +optional
	ImagePullSecret *SecretReference `json:"imagePullSecret,omitempty"`
	// NodeIdentity records that the kubelet's own identity pulls (AKS --attach-acr, ECR node role):
	// nothing is injected, and lanyard check knows the registry is reachable.
	// +optional
	NodeIdentity *NodeIdentityPull `json:"nodeIdentity,omitempty"`
	// ServiceAccountToken records that the kubelet's image credential provider pulls with a token
	// of the pod's ServiceAccount (Kubernetes 1.34+, KEP-4412): nothing is injected. The provider
	// reads ServiceAccount annotations (ACR: kubernetes.azure.com/acr-client-id and
	// kubernetes.azure.com/acr-tenant-id; ECR: eks.amazonaws.com/ecr-role-arn; Artifact Registry
	// and GCR: iam.gke.io/enable-wi-image-pull: "true"); lanyard warns when they are missing.
	// +optional
	ServiceAccountToken *ServiceAccountTokenPull `json:"serviceAccountToken,omitempty"`
}

// SecretReference names a Secret in the pod's namespace.
type SecretReference struct {
	// Name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="name must be a DNS-1123 subdomain (lower-case letters, digits, '-' and '.')"
	Name string `json:"name"`
}

// NodeIdentityPull has no settings: the node's kubelet credentials pull.
type NodeIdentityPull struct{}

// ServiceAccountTokenPull has no settings: the kubelet's credential provider pulls with the pod's
// ServiceAccount token.
type ServiceAccountTokenPull struct{}

// RegistryAttachmentList is a list of RegistryAttachments.
//
// +kubebuilder:object:root=true
type RegistryAttachmentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RegistryAttachment `json:"items"`
}
