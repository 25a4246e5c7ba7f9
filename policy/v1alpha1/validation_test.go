package v1alpha1

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

const (
	testRoleARN  = "arn:aws:iam::111122223333:role/s3-reader"
	testGUID     = "00000000-0000-0000-0000-000000000000"
	testProvider = "projects/123456789/locations/global/workloadIdentityPools/my-pool/providers/my-provider"
	testIdentity = "/subscriptions/" + testGUID + "/resourceGroups/rg-apps/providers/Microsoft.ManagedIdentity/userAssignedIdentities/reports-api"
)

func ptr[T any](v T) *T { return &v }

// association returns a valid IdentityAssociation with only an AWS block, edited by mutate.
func association(mutate func(*IdentityAssociationSpec)) *IdentityAssociation {
	ia := &IdentityAssociation{
		ObjectMeta: metav1.ObjectMeta{Name: "test"},
		Spec: IdentityAssociationSpec{
			Namespace:          "default",
			ServiceAccountName: "app",
			AWS:                &AWSIdentity{RoleARN: testRoleARN},
		},
	}
	if mutate != nil {
		mutate(&ia.Spec)
	}
	return ia
}

// attachment returns a valid RegistryAttachment with a pull secret, edited by mutate.
func attachment(mutate func(*RegistryAttachmentSpec)) *RegistryAttachment {
	ra := &RegistryAttachment{
		ObjectMeta: metav1.ObjectMeta{Name: "test"},
		Spec: RegistryAttachmentSpec{
			Registry: "myacr.azurecr.io",
			Pull:     PullMethod{ImagePullSecret: &SecretReference{Name: "acr-pull"}},
		},
	}
	if mutate != nil {
		mutate(&ra.Spec)
	}
	return ra
}

func awsOnly(a *AWSIdentity) func(*IdentityAssociationSpec) {
	return func(s *IdentityAssociationSpec) { s.AWS = a }
}

func azureOnly(az *AzureIdentity) func(*IdentityAssociationSpec) {
	return func(s *IdentityAssociationSpec) { s.AWS, s.Azure = nil, az }
}

func gcpOnly(g *GCPIdentity) func(*IdentityAssociationSpec) {
	return func(s *IdentityAssociationSpec) { s.AWS, s.GCP = nil, g }
}

func TestIdentityAssociationValidateAccepts(t *testing.T) {
	tests := map[string]*IdentityAssociation{
		"aws with defaults":              association(nil),
		"namespace glob alone":           association(func(s *IdentityAssociationSpec) { s.Namespace = "*" }),
		"namespace prefix glob":          association(func(s *IdentityAssociationSpec) { s.Namespace = "ci-*" }),
		"namespace suffix glob":          association(func(s *IdentityAssociationSpec) { s.Namespace = "*-prod" }),
		"namespace infix glob":           association(func(s *IdentityAssociationSpec) { s.Namespace = "team-*-prod" }),
		"serviceAccountName glob alone":  association(func(s *IdentityAssociationSpec) { s.ServiceAccountName = "*" }),
		"serviceAccountName dotted glob": association(func(s *IdentityAssociationSpec) { s.ServiceAccountName = "runner.*" }),
		"namespaceSelector instead of namespace": association(func(s *IdentityAssociationSpec) {
			s.Namespace, s.NamespaceSelector = "", &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}
		}),
		"empty namespaceSelector selects every namespace": association(func(s *IdentityAssociationSpec) {
			s.Namespace, s.NamespaceSelector = "", &metav1.LabelSelector{}
		}),
		"aws PodIdentity with region":     association(awsOnly(&AWSIdentity{RoleARN: testRoleARN, Mode: AWSModePodIdentity, Region: "us-west-2"})),
		"aws IRSA with sts endpoints":     association(awsOnly(&AWSIdentity{RoleARN: testRoleARN, Mode: AWSModeIRSA, STSRegionalEndpoints: ptr(false)})),
		"aws IRSA with audience":          association(awsOnly(&AWSIdentity{RoleARN: testRoleARN, Mode: AWSModeIRSA, Audience: "custom"})),
		"aws-cn partition":                association(awsOnly(&AWSIdentity{RoleARN: "arn:aws-cn:iam::111122223333:role/reader", Region: "cn-north-1"})),
		"aws-us-gov partition":            association(awsOnly(&AWSIdentity{RoleARN: "arn:aws-us-gov:iam::111122223333:role/reader", Region: "us-gov-west-1"})),
		"role with one path segment":      association(awsOnly(&AWSIdentity{RoleARN: "arn:aws:iam::111122223333:role/team/reader"})),
		"role with a deep path":           association(awsOnly(&AWSIdentity{RoleARN: "arn:aws:iam::111122223333:role/a/b/c/reader"})),
		"role name with IAM punctuation":  association(awsOnly(&AWSIdentity{RoleARN: "arn:aws:iam::111122223333:role/r+=,.@-_1"})),
		"region with two-digit number":    association(awsOnly(&AWSIdentity{RoleARN: testRoleARN, Region: "ap-southeast-10"})),
		"azure without tenant or cloud":   association(azureOnly(&AzureIdentity{ClientID: testGUID})),
		"azure upper-case GUIDs":          association(azureOnly(&AzureIdentity{ClientID: "ABCDEF01-2345-6789-ABCD-EF0123456789", TenantID: "abcdef01-2345-6789-abcd-ef0123456789"})),
		"azure public cloud":              association(azureOnly(&AzureIdentity{ClientID: testGUID, Cloud: AzurePublicCloud})),
		"azure china cloud":               association(azureOnly(&AzureIdentity{ClientID: testGUID, Cloud: AzureChinaCloud})),
		"azure US government cloud":       association(azureOnly(&AzureIdentity{ClientID: testGUID, Cloud: AzureUSGovernmentCloud})),
		"azure with identity resource ID": association(azureOnly(&AzureIdentity{ClientID: testGUID, IdentityResourceID: testIdentity})),
		"identity resource ID as az prints it": association(azureOnly(&AzureIdentity{ClientID: testGUID,
			IdentityResourceID: "/subscriptions/" + testGUID + "/resourcegroups/RG_(prod).eu/providers/microsoft.managedidentity/userassignedidentities/id_1"})),
		"identity resource ID with a unicode group name": association(azureOnly(&AzureIdentity{ClientID: testGUID,
			IdentityResourceID: "/subscriptions/" + testGUID + "/resourceGroups/gruppe-müller/providers/Microsoft.ManagedIdentity/userAssignedIdentities/abc"})),
		"azure with expiration 3600": association(func(s *IdentityAssociationSpec) {
			azureOnly(&AzureIdentity{ClientID: testGUID})(s)
			s.TokenExpirationSeconds = ptr[int64](3600)
		}),
		"gcp without email":          association(gcpOnly(&GCPIdentity{WorkloadIdentityProvider: testProvider})),
		"gcp with email":             association(gcpOnly(&GCPIdentity{WorkloadIdentityProvider: testProvider, ServiceAccountEmail: "app@my-project.iam.gserviceaccount.com"})),
		"gcp pool and provider of 4": association(gcpOnly(&GCPIdentity{WorkloadIdentityProvider: "projects/1/locations/global/workloadIdentityPools/pool/providers/prov"})),
		"all three providers": association(func(s *IdentityAssociationSpec) {
			s.Azure = &AzureIdentity{ClientID: testGUID}
			s.GCP = &GCPIdentity{WorkloadIdentityProvider: testProvider}
		}),
		"expiration at minimum":          association(func(s *IdentityAssociationSpec) { s.TokenExpirationSeconds = ptr[int64](600) }),
		"expiration at maximum":          association(func(s *IdentityAssociationSpec) { s.TokenExpirationSeconds = ptr[int64](86400) }),
		"service account is a subdomain": association(func(s *IdentityAssociationSpec) { s.ServiceAccountName = "app.v1" }),
		"namespace of 63 characters":     association(func(s *IdentityAssociationSpec) { s.Namespace = strings.Repeat("a", 63) }),
		"single-character names":         association(func(s *IdentityAssociationSpec) { s.Namespace, s.ServiceAccountName = "a", "b" }),
		"aws expiration 600 without azure": association(func(s *IdentityAssociationSpec) {
			s.GCP = &GCPIdentity{WorkloadIdentityProvider: testProvider}
			s.TokenExpirationSeconds = ptr[int64](600)
		}),
	}
	for name, ia := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Empty(t, ia.Validate())
		})
	}
}

type invalidCase[T any] struct {
	obj       T
	wantField string
	wantType  field.ErrorType
	// wantDetail is a substring of the error's detail; empty when the type says it all.
	wantDetail string
}

func invalidIdentityAssociations() map[string]invalidCase[*IdentityAssociation] {
	const arnMsg = "roleARN must be an IAM role ARN"
	return map[string]invalidCase[*IdentityAssociation]{
		"roleARN with an 11-digit account": {
			obj:       association(awsOnly(&AWSIdentity{RoleARN: "arn:aws:iam::11112222333:role/x"})),
			wantField: "spec.aws.roleARN", wantType: field.ErrorTypeInvalid, wantDetail: arnMsg,
		},
		"roleARN naming a user": {
			obj:       association(awsOnly(&AWSIdentity{RoleARN: "arn:aws:iam::111122223333:user/x"})),
			wantField: "spec.aws.roleARN", wantType: field.ErrorTypeInvalid, wantDetail: arnMsg,
		},
		"roleARN of another service": {
			obj:       association(awsOnly(&AWSIdentity{RoleARN: "arn:aws:sts::111122223333:role/x"})),
			wantField: "spec.aws.roleARN", wantType: field.ErrorTypeInvalid, wantDetail: arnMsg,
		},
		"roleARN of an unknown partition": {
			obj:       association(awsOnly(&AWSIdentity{RoleARN: "arn:aws-mars:iam::111122223333:role/x"})),
			wantField: "spec.aws.roleARN", wantType: field.ErrorTypeInvalid, wantDetail: arnMsg,
		},
		"roleARN with a role name over 64 characters": {
			obj:       association(awsOnly(&AWSIdentity{RoleARN: "arn:aws:iam::111122223333:role/" + strings.Repeat("r", 65)})),
			wantField: "spec.aws.roleARN", wantType: field.ErrorTypeInvalid, wantDetail: arnMsg,
		},
		"roleARN with an empty role name": {
			obj:       association(awsOnly(&AWSIdentity{RoleARN: "arn:aws:iam::111122223333:role/"})),
			wantField: "spec.aws.roleARN", wantType: field.ErrorTypeInvalid, wantDetail: arnMsg,
		},
		"roleARN missing": {
			obj:       association(awsOnly(&AWSIdentity{})),
			wantField: "spec.aws.roleARN", wantType: field.ErrorTypeRequired,
		},
		"roleARN too long": {
			obj:       association(awsOnly(&AWSIdentity{RoleARN: "arn:aws:iam::111122223333:role/" + strings.Repeat("p/", 1010) + "x"})),
			wantField: "spec.aws.roleARN", wantType: field.ErrorTypeTooLong,
		},
		"unknown aws mode": {
			obj:       association(awsOnly(&AWSIdentity{RoleARN: testRoleARN, Mode: "irsa"})),
			wantField: "spec.aws.mode", wantType: field.ErrorTypeNotSupported, wantDetail: `"IRSA"`,
		},
		"region without number": {
			obj:       association(awsOnly(&AWSIdentity{RoleARN: testRoleARN, Region: "us-west"})),
			wantField: "spec.aws.region", wantType: field.ErrorTypeInvalid, wantDetail: "region must be an AWS region name such as us-west-2",
		},
		"region in upper case": {
			obj:       association(awsOnly(&AWSIdentity{RoleARN: testRoleARN, Region: "US-WEST-2"})),
			wantField: "spec.aws.region", wantType: field.ErrorTypeInvalid, wantDetail: "region must be an AWS region name",
		},
		"stsRegionalEndpoints with PodIdentity": {
			obj:       association(awsOnly(&AWSIdentity{RoleARN: testRoleARN, Mode: AWSModePodIdentity, STSRegionalEndpoints: ptr(true)})),
			wantField: "spec.aws.stsRegionalEndpoints", wantType: field.ErrorTypeInvalid, wantDetail: "stsRegionalEndpoints applies only to mode IRSA",
		},
		"stsRegionalEndpoints with the default mode": {
			obj:       association(awsOnly(&AWSIdentity{RoleARN: testRoleARN, STSRegionalEndpoints: ptr(false)})),
			wantField: "spec.aws.stsRegionalEndpoints", wantType: field.ErrorTypeInvalid, wantDetail: "applies only to mode IRSA",
		},
		"audience too long": {
			obj:       association(awsOnly(&AWSIdentity{RoleARN: testRoleARN, Audience: strings.Repeat("a", 257)})),
			wantField: "spec.aws.audience", wantType: field.ErrorTypeTooLong,
		},
		"clientID without dashes": {
			obj:       association(azureOnly(&AzureIdentity{ClientID: "00000000000000000000000000000000"})),
			wantField: "spec.azure.clientID", wantType: field.ErrorTypeInvalid, wantDetail: "clientID must be a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
		},
		"clientID with a non-hex digit": {
			obj:       association(azureOnly(&AzureIdentity{ClientID: "g0000000-0000-0000-0000-000000000000"})),
			wantField: "spec.azure.clientID", wantType: field.ErrorTypeInvalid, wantDetail: "clientID must be a GUID",
		},
		"clientID in braces is too long": {
			obj:       association(azureOnly(&AzureIdentity{ClientID: "{" + testGUID + "}"})),
			wantField: "spec.azure.clientID", wantType: field.ErrorTypeTooLong,
		},
		"clientID missing": {
			obj:       association(azureOnly(&AzureIdentity{TenantID: testGUID})),
			wantField: "spec.azure.clientID", wantType: field.ErrorTypeRequired,
		},
		"tenantID not a GUID": {
			obj:       association(azureOnly(&AzureIdentity{ClientID: testGUID, TenantID: "contoso.onmicrosoft.com"})),
			wantField: "spec.azure.tenantID", wantType: field.ErrorTypeInvalid, wantDetail: "tenantID must be a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
		},
		"identity resource ID of another resource type": {
			obj:       association(azureOnly(&AzureIdentity{ClientID: testGUID, IdentityResourceID: "/subscriptions/" + testGUID + "/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/abc"})),
			wantField: "spec.azure.identityResourceID", wantType: field.ErrorTypeInvalid,
			wantDetail: "identityResourceID must be the resource ID of a user-assigned managed identity: /subscriptions/<subscription GUID>/resourceGroups/<group>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>",
		},
		"identity resource ID with a subscription name": {
			obj:       association(azureOnly(&AzureIdentity{ClientID: testGUID, IdentityResourceID: "/subscriptions/prod/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/abc"})),
			wantField: "spec.azure.identityResourceID", wantType: field.ErrorTypeInvalid, wantDetail: "must be the resource ID of a user-assigned managed identity",
		},
		"identity resource ID without the leading slash": {
			obj:       association(azureOnly(&AzureIdentity{ClientID: testGUID, IdentityResourceID: strings.TrimPrefix(testIdentity, "/")})),
			wantField: "spec.azure.identityResourceID", wantType: field.ErrorTypeInvalid, wantDetail: "must be the resource ID",
		},
		"identity resource ID with a group ending in a period": {
			obj:       association(azureOnly(&AzureIdentity{ClientID: testGUID, IdentityResourceID: "/subscriptions/" + testGUID + "/resourceGroups/rg./providers/Microsoft.ManagedIdentity/userAssignedIdentities/abc"})),
			wantField: "spec.azure.identityResourceID", wantType: field.ErrorTypeInvalid, wantDetail: "must be the resource ID",
		},
		"identity resource ID with an identity name of two characters": {
			obj:       association(azureOnly(&AzureIdentity{ClientID: testGUID, IdentityResourceID: "/subscriptions/" + testGUID + "/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ab"})),
			wantField: "spec.azure.identityResourceID", wantType: field.ErrorTypeInvalid, wantDetail: "must be the resource ID",
		},
		"identity resource ID with an identity name starting with a hyphen": {
			obj:       association(azureOnly(&AzureIdentity{ClientID: testGUID, IdentityResourceID: "/subscriptions/" + testGUID + "/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/-abc"})),
			wantField: "spec.azure.identityResourceID", wantType: field.ErrorTypeInvalid, wantDetail: "must be the resource ID",
		},
		"identity resource ID with a trailing slash": {
			obj:       association(azureOnly(&AzureIdentity{ClientID: testGUID, IdentityResourceID: testIdentity + "/"})),
			wantField: "spec.azure.identityResourceID", wantType: field.ErrorTypeInvalid, wantDetail: "must be the resource ID",
		},
		"unknown azure cloud": {
			obj:       association(azureOnly(&AzureIdentity{ClientID: testGUID, Cloud: "AzureGermanCloud"})),
			wantField: "spec.azure.cloud", wantType: field.ErrorTypeNotSupported, wantDetail: `"AzureChinaCloud"`,
		},
		"provider location not global": {
			obj:       association(gcpOnly(&GCPIdentity{WorkloadIdentityProvider: "projects/123/locations/us-central1/workloadIdentityPools/pool/providers/prov"})),
			wantField: "spec.gcp.workloadIdentityProvider", wantType: field.ErrorTypeInvalid, wantDetail: "workloadIdentityProvider must be projects/<project number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>",
		},
		"provider pool id too short": {
			obj:       association(gcpOnly(&GCPIdentity{WorkloadIdentityProvider: "projects/123/locations/global/workloadIdentityPools/abc/providers/prov"})),
			wantField: "spec.gcp.workloadIdentityProvider", wantType: field.ErrorTypeInvalid, wantDetail: "workloadIdentityProvider must be",
		},
		"provider with a project id instead of a number": {
			obj:       association(gcpOnly(&GCPIdentity{WorkloadIdentityProvider: "projects/my-project/locations/global/workloadIdentityPools/pool/providers/prov"})),
			wantField: "spec.gcp.workloadIdentityProvider", wantType: field.ErrorTypeInvalid, wantDetail: "workloadIdentityProvider must be",
		},
		"provider with the iam.googleapis.com prefix": {
			obj:       association(gcpOnly(&GCPIdentity{WorkloadIdentityProvider: "//iam.googleapis.com/" + testProvider})),
			wantField: "spec.gcp.workloadIdentityProvider", wantType: field.ErrorTypeInvalid, wantDetail: "workloadIdentityProvider must be",
		},
		"provider missing": {
			obj:       association(gcpOnly(&GCPIdentity{})),
			wantField: "spec.gcp.workloadIdentityProvider", wantType: field.ErrorTypeRequired,
		},
		"email not of a service account": {
			obj:       association(gcpOnly(&GCPIdentity{WorkloadIdentityProvider: testProvider, ServiceAccountEmail: "me@gmail.com"})),
			wantField: "spec.gcp.serviceAccountEmail", wantType: field.ErrorTypeInvalid, wantDetail: "serviceAccountEmail must be a Google service account e-mail (name@project.iam.gserviceaccount.com)",
		},
		"expiration below the minimum": {
			obj:       association(func(s *IdentityAssociationSpec) { s.TokenExpirationSeconds = ptr[int64](599) }),
			wantField: "spec.tokenExpirationSeconds", wantType: field.ErrorTypeInvalid, wantDetail: "must be between 600 and 86400",
		},
		"expiration above the maximum": {
			obj:       association(func(s *IdentityAssociationSpec) { s.TokenExpirationSeconds = ptr[int64](86401) }),
			wantField: "spec.tokenExpirationSeconds", wantType: field.ErrorTypeInvalid, wantDetail: "must be between 600 and 86400",
		},
		"azure with expiration 600": {
			obj: association(func(s *IdentityAssociationSpec) {
				s.Azure = &AzureIdentity{ClientID: testGUID}
				s.TokenExpirationSeconds = ptr[int64](600)
			}),
			wantField: "spec.tokenExpirationSeconds", wantType: field.ErrorTypeInvalid,
			wantDetail: "tokenExpirationSeconds must be at least 3600 when azure is set (the Azure token exchange minimum)",
		},
		"azure with expiration 3599": {
			obj: association(func(s *IdentityAssociationSpec) {
				azureOnly(&AzureIdentity{ClientID: testGUID})(s)
				s.TokenExpirationSeconds = ptr[int64](3599)
			}),
			wantField: "spec.tokenExpirationSeconds", wantType: field.ErrorTypeInvalid, wantDetail: "at least 3600",
		},
		"no provider block": {
			obj:       association(func(s *IdentityAssociationSpec) { s.AWS = nil }),
			wantField: "spec", wantType: field.ErrorTypeRequired, wantDetail: "at least one of aws, azure or gcp must be set",
		},
		"namespace missing": {
			obj:       association(func(s *IdentityAssociationSpec) { s.Namespace = "" }),
			wantField: "spec.namespace", wantType: field.ErrorTypeRequired,
		},
		"namespace with two globs": {
			obj:       association(func(s *IdentityAssociationSpec) { s.Namespace = "ci-*-*" }),
			wantField: "spec.namespace", wantType: field.ErrorTypeInvalid, wantDetail: "namespace may contain at most one '*'",
		},
		"namespace glob with a dot": {
			obj:       association(func(s *IdentityAssociationSpec) { s.Namespace = "team.*" }),
			wantField: "spec.namespace", wantType: field.ErrorTypeInvalid, wantDetail: "namespace must be a DNS-1123 label (lower-case letters, digits and '-'), optionally with one '*' glob",
		},
		"namespace glob starting with a dash": {
			obj:       association(func(s *IdentityAssociationSpec) { s.Namespace = "-*" }),
			wantField: "spec.namespace", wantType: field.ErrorTypeInvalid, wantDetail: "optionally with one '*' glob",
		},
		"serviceAccountName with two globs": {
			obj:       association(func(s *IdentityAssociationSpec) { s.ServiceAccountName = "*-runner-*" }),
			wantField: "spec.serviceAccountName", wantType: field.ErrorTypeInvalid, wantDetail: "serviceAccountName may contain at most one '*'",
		},
		"serviceAccountName glob in upper case": {
			obj:       association(func(s *IdentityAssociationSpec) { s.ServiceAccountName = "Runner-*" }),
			wantField: "spec.serviceAccountName", wantType: field.ErrorTypeInvalid, wantDetail: "serviceAccountName must be a DNS-1123 subdomain (lower-case letters, digits, '-' and '.'), optionally with one '*' glob",
		},
		"namespace and namespaceSelector both set": {
			obj: association(func(s *IdentityAssociationSpec) {
				s.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}
			}),
			wantField: "spec.namespaceSelector", wantType: field.ErrorTypeInvalid, wantDetail: "namespace and namespaceSelector are mutually exclusive: set one of them",
		},
		"neither namespace nor namespaceSelector": {
			obj:       association(func(s *IdentityAssociationSpec) { s.Namespace = "" }),
			wantField: "spec.namespace", wantType: field.ErrorTypeRequired, wantDetail: "one of namespace or namespaceSelector must be set",
		},
		"namespaceSelector with an invalid operator": {
			obj: association(func(s *IdentityAssociationSpec) {
				s.Namespace = ""
				s.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: "Equals", Values: []string{"a"}}}}
			}),
			wantField: "spec.namespaceSelector", wantType: field.ErrorTypeInvalid, wantDetail: `"Equals" is not a valid label selector operator`,
		},
		"namespace with a dot": {
			obj:       association(func(s *IdentityAssociationSpec) { s.Namespace = "team.a" }),
			wantField: "spec.namespace", wantType: field.ErrorTypeInvalid, wantDetail: "namespace must be a DNS-1123 label (lower-case letters, digits and '-')",
		},
		"namespace over 63 characters": {
			obj:       association(func(s *IdentityAssociationSpec) { s.Namespace = strings.Repeat("a", 64) }),
			wantField: "spec.namespace", wantType: field.ErrorTypeTooLong,
		},
		"serviceAccountName missing": {
			obj:       association(func(s *IdentityAssociationSpec) { s.ServiceAccountName = "" }),
			wantField: "spec.serviceAccountName", wantType: field.ErrorTypeRequired,
		},
		"serviceAccountName in upper case": {
			obj:       association(func(s *IdentityAssociationSpec) { s.ServiceAccountName = "App" }),
			wantField: "spec.serviceAccountName", wantType: field.ErrorTypeInvalid, wantDetail: "serviceAccountName must be a DNS-1123 subdomain (lower-case letters, digits, '-' and '.')",
		},
	}
}

func invalidRegistryAttachments() map[string]invalidCase[*RegistryAttachment] {
	const registryMsg = "registry must be host[:port] with an optional leading '*.' label glob, without scheme, path, tag or digest"
	return map[string]invalidCase[*RegistryAttachment]{
		"registry with a scheme": {
			obj:       attachment(func(s *RegistryAttachmentSpec) { s.Registry = "https://myacr.azurecr.io" }),
			wantField: "spec.registry", wantType: field.ErrorTypeInvalid, wantDetail: registryMsg,
		},
		"registry with a path": {
			obj:       attachment(func(s *RegistryAttachmentSpec) { s.Registry = "gcr.io/my-project" }),
			wantField: "spec.registry", wantType: field.ErrorTypeInvalid, wantDetail: registryMsg,
		},
		"registry with a tag": {
			obj:       attachment(func(s *RegistryAttachmentSpec) { s.Registry = "myacr.azurecr.io:latest" }),
			wantField: "spec.registry", wantType: field.ErrorTypeInvalid, wantDetail: registryMsg,
		},
		"registry with a digest": {
			obj:       attachment(func(s *RegistryAttachmentSpec) { s.Registry = "myacr.azurecr.io@sha256:abc" }),
			wantField: "spec.registry", wantType: field.ErrorTypeInvalid, wantDetail: registryMsg,
		},
		"registry with a glob in the middle": {
			obj:       attachment(func(s *RegistryAttachmentSpec) { s.Registry = "a.*.example.com" }),
			wantField: "spec.registry", wantType: field.ErrorTypeInvalid, wantDetail: registryMsg,
		},
		"registry with a port of six digits": {
			obj:       attachment(func(s *RegistryAttachmentSpec) { s.Registry = "localhost:500000" }),
			wantField: "spec.registry", wantType: field.ErrorTypeInvalid, wantDetail: registryMsg,
		},
		"registry missing": {
			obj:       attachment(func(s *RegistryAttachmentSpec) { s.Registry = "" }),
			wantField: "spec.registry", wantType: field.ErrorTypeRequired,
		},
		"both pull methods": {
			obj:       attachment(func(s *RegistryAttachmentSpec) { s.Pull.NodeIdentity = &NodeIdentityPull{} }),
			wantField: "spec.pull", wantType: field.ErrorTypeInvalid, wantDetail: "exactly one of imagePullSecret, nodeIdentity or serviceAccountToken must be set",
		},
		"pull secret and service account token": {
			obj:       attachment(func(s *RegistryAttachmentSpec) { s.Pull.ServiceAccountToken = &ServiceAccountTokenPull{} }),
			wantField: "spec.pull", wantType: field.ErrorTypeInvalid, wantDetail: "exactly one of imagePullSecret, nodeIdentity or serviceAccountToken must be set",
		},
		"neither pull method": {
			obj:       attachment(func(s *RegistryAttachmentSpec) { s.Pull = PullMethod{} }),
			wantField: "spec.pull", wantType: field.ErrorTypeInvalid, wantDetail: "exactly one of imagePullSecret, nodeIdentity or serviceAccountToken must be set",
		},
		"pull secret name missing": {
			obj:       attachment(func(s *RegistryAttachmentSpec) { s.Pull.ImagePullSecret.Name = "" }),
			wantField: "spec.pull.imagePullSecret.name", wantType: field.ErrorTypeRequired,
		},
		"pull secret name not a subdomain": {
			obj:       attachment(func(s *RegistryAttachmentSpec) { s.Pull.ImagePullSecret.Name = "ACR_pull" }),
			wantField: "spec.pull.imagePullSecret.name", wantType: field.ErrorTypeInvalid, wantDetail: "name must be a DNS-1123 subdomain (lower-case letters, digits, '-' and '.')",
		},
		"duplicate serviceAccountNames": {
			obj:       attachment(func(s *RegistryAttachmentSpec) { s.ServiceAccountNames = []string{"a", "b", "a"} }),
			wantField: "spec.serviceAccountNames[2]", wantType: field.ErrorTypeDuplicate,
		},
		"too many serviceAccountNames": {
			obj: attachment(func(s *RegistryAttachmentSpec) {
				for i := range 257 {
					s.ServiceAccountNames = append(s.ServiceAccountNames, fmt.Sprintf("sa-%d", i))
				}
			}),
			wantField: "spec.serviceAccountNames", wantType: field.ErrorTypeTooMany,
		},
		"serviceAccountName too long": {
			obj:       attachment(func(s *RegistryAttachmentSpec) { s.ServiceAccountNames = []string{"a", strings.Repeat("b", 254)} }),
			wantField: "spec.serviceAccountNames[1]", wantType: field.ErrorTypeTooLong,
		},
		"namespaceSelector with an invalid operator": {
			obj: attachment(func(s *RegistryAttachmentSpec) {
				s.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "team", Operator: "Equals", Values: []string{"a"}},
				}}
			}),
			wantField: "spec.namespaceSelector", wantType: field.ErrorTypeInvalid, wantDetail: `"Equals" is not a valid label selector operator`,
		},
		"namespaceSelector In without values": {
			obj: attachment(func(s *RegistryAttachmentSpec) {
				s.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "team", Operator: metav1.LabelSelectorOpIn},
				}}
			}),
			wantField: "spec.namespaceSelector", wantType: field.ErrorTypeInvalid, wantDetail: "values set can't be empty",
		},
	}
}

func assertOneError(t *testing.T, errs field.ErrorList, wantField string, wantType field.ErrorType, wantDetail string) {
	t.Helper()
	require.Len(t, errs, 1, "errors: %v", errs)
	assert.Equal(t, wantField, errs[0].Field)
	assert.Equal(t, wantType, errs[0].Type)
	if wantDetail != "" {
		assert.Contains(t, errs[0].Detail, wantDetail)
	}
	assert.Contains(t, errs[0].Error(), wantField)
}

func TestIdentityAssociationValidateRejects(t *testing.T) {
	for name, tc := range invalidIdentityAssociations() {
		t.Run(name, func(t *testing.T) {
			assertOneError(t, tc.obj.Validate(), tc.wantField, tc.wantType, tc.wantDetail)
		})
	}
}

func TestIdentityAssociationValidateReportsEveryError(t *testing.T) {
	ia := association(func(s *IdentityAssociationSpec) {
		s.Namespace = "Bad"
		s.AWS.RoleARN = "arn:aws:iam::1:role/x"
		s.GCP = &GCPIdentity{WorkloadIdentityProvider: "projects/x"}
	})
	var fields []string
	for _, e := range ia.Validate() {
		fields = append(fields, e.Field)
	}
	assert.ElementsMatch(t, []string{"spec.namespace", "spec.aws.roleARN", "spec.gcp.workloadIdentityProvider"}, fields)
}

func TestRegistryAttachmentValidateAccepts(t *testing.T) {
	tests := map[string]*RegistryAttachment{
		"pull secret":   attachment(nil),
		"node identity": attachment(func(s *RegistryAttachmentSpec) { s.Pull = PullMethod{NodeIdentity: &NodeIdentityPull{}} }),
		"service account token": attachment(func(s *RegistryAttachmentSpec) {
			s.Pull = PullMethod{ServiceAccountToken: &ServiceAccountTokenPull{}}
		}),
		"glob over ECR hosts":      attachment(func(s *RegistryAttachmentSpec) { s.Registry = "*.dkr.ecr.us-west-2.amazonaws.com" }),
		"host with port":           attachment(func(s *RegistryAttachmentSpec) { s.Registry = "registry.example.com:5000" }),
		"glob with port":           attachment(func(s *RegistryAttachmentSpec) { s.Registry = "*.example.com:443" }),
		"localhost":                attachment(func(s *RegistryAttachmentSpec) { s.Registry = "localhost" }),
		"localhost with port":      attachment(func(s *RegistryAttachmentSpec) { s.Registry = "localhost:5000" }),
		"upper-case host":          attachment(func(s *RegistryAttachmentSpec) { s.Registry = "MyACR.AzureCR.io" }),
		"docker hub":               attachment(func(s *RegistryAttachmentSpec) { s.Registry = "docker.io" }),
		"service account names":    attachment(func(s *RegistryAttachmentSpec) { s.ServiceAccountNames = []string{"a", "b"} }),
		"empty namespace selector": attachment(func(s *RegistryAttachmentSpec) { s.NamespaceSelector = &metav1.LabelSelector{} }),
		"matchLabels selector": attachment(func(s *RegistryAttachmentSpec) {
			s.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}
		}),
		"matchExpressions selector": attachment(func(s *RegistryAttachmentSpec) {
			s.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: metav1.LabelSelectorOpExists}}}
		}),
		"pull secret with dotted name": attachment(func(s *RegistryAttachmentSpec) { s.Pull.ImagePullSecret.Name = "acr.pull-1" }),
	}
	for name, ra := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Empty(t, ra.Validate())
		})
	}
}

func TestRegistryAttachmentValidateRejects(t *testing.T) {
	for name, tc := range invalidRegistryAttachments() {
		t.Run(name, func(t *testing.T) {
			assertOneError(t, tc.obj.Validate(), tc.wantField, tc.wantType, tc.wantDetail)
		})
	}
}

func TestMatchesRoleARNAndGUID(t *testing.T) {
	tests := map[string]struct {
		fn   func(string) bool
		in   string
		want bool
	}{
		"role ARN":                   {fn: MatchesRoleARN, in: testRoleARN, want: true},
		"role ARN in aws-us-gov":     {fn: MatchesRoleARN, in: "arn:aws-us-gov:iam::111122223333:role/p/x", want: true},
		"user ARN is not a role ARN": {fn: MatchesRoleARN, in: "arn:aws:iam::111122223333:user/x", want: false},
		"role ARN over 2048 bytes":   {fn: MatchesRoleARN, in: "arn:aws:iam::111122223333:role/" + strings.Repeat("p/", 1010) + "x", want: false},
		"GUID":                       {fn: MatchesGUID, in: testGUID, want: true},
		"GUID with trailing newline": {fn: MatchesGUID, in: testGUID + "\n", want: false},
		"GUID without dashes":        {fn: MatchesGUID, in: strings.Repeat("0", 32), want: false},
		"empty string is not a GUID": {fn: MatchesGUID, in: "", want: false},
		"empty string is not an ARN": {fn: MatchesRoleARN, in: "", want: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.fn(tc.in))
		})
	}
}

// crdRule is one x-kubernetes-validations entry of a CRD schema.
type crdRule struct {
	file    string
	path    string // field path the API server reports, e.g. spec.aws.roleARN
	rule    string
	message string
}

// crdNode is the part of an OpenAPI schema node the walk needs.
type crdNode struct {
	Properties  map[string]crdNode `json:"properties"`
	Items       *crdNode           `json:"items"`
	Minimum     *int64             `json:"minimum"`
	MaxLength   *int               `json:"maxLength"`
	MaxItems    *int               `json:"maxItems"`
	Maximum     *int64             `json:"maximum"`
	Validations []struct {
		Rule      string `json:"rule"`
		Message   string `json:"message"`
		FieldPath string `json:"fieldPath"`
	} `json:"x-kubernetes-validations"`
}

type crdFile struct {
	Kind string `json:"kind"`
	Spec struct {
		Names struct {
			Kind string `json:"kind"`
		} `json:"names"`
		Versions []struct {
			Name   string `json:"name"`
			Schema struct {
				OpenAPIV3Schema crdNode `json:"openAPIV3Schema"`
			} `json:"schema"`
		} `json:"versions"`
	} `json:"spec"`
}

func walkCRD(file, path string, n crdNode, visit func(path string, n crdNode), rules *[]crdRule) {
	visit(path, n)
	for _, v := range n.Validations {
		p := path
		if v.FieldPath != "" {
			p += v.FieldPath
		}
		*rules = append(*rules, crdRule{file: file, path: strings.TrimPrefix(p, "."), rule: v.Rule, message: v.Message})
	}
	for name, child := range n.Properties {
		walkCRD(file, path+"."+name, child, visit, rules)
	}
	if n.Items != nil {
		walkCRD(file, path+"[*]", *n.Items, visit, rules)
	}
}

func loadCRDRules(t *testing.T) ([]crdRule, map[string]crdNode) {
	t.Helper()
	files, err := filepath.Glob("../../deploy/crds/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var rules []crdRule
	nodes := map[string]crdNode{} // "Kind:spec.aws.roleARN"
	kinds := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		var crd crdFile
		require.NoError(t, yaml.Unmarshal(data, &crd), f)
		if crd.Kind != "CustomResourceDefinition" {
			continue // e.g. kustomization.yaml
		}
		kind := crd.Spec.Names.Kind
		require.False(t, kinds[kind], "%s: a second CRD for %s", f, kind)
		kinds[kind] = true
		require.NotEmpty(t, crd.Spec.Versions, f)
		for _, v := range crd.Spec.Versions {
			require.Equal(t, GroupVersion.Version, v.Name, f)
			walkCRD(filepath.Base(f), "", v.Schema.OpenAPIV3Schema, func(path string, n crdNode) {
				nodes[kind+":"+strings.TrimPrefix(path, ".")] = n
			}, &rules)
		}
	}
	require.Equal(t, map[string]bool{"IdentityAssociation": true, "RegistryAttachment": true}, kinds)
	return rules, nodes
}

var celMatchesRule = regexp.MustCompile(`^self\.matches\('(.*)'\)$`)

// unquoteCELSingle undoes the escapes of a CEL single-quoted string body (only the ones
// controller-gen produces for a regex: \\ and \').
func unquoteCELSingle(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\'' {
			return "", fmt.Errorf("unescaped quote at %d in %q", i, s)
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i+1 == len(s) {
			return "", fmt.Errorf("trailing backslash in %q", s)
		}
		i++
		switch s[i] {
		case '\\', '\'', '"':
			b.WriteByte(s[i])
		default:
			return "", fmt.Errorf("unexpected escape \\%c in %q", s[i], s)
		}
	}
	return b.String(), nil
}

// validationGo is what validation.go says, read as source: the regexes it compiles (literal
// strings, and the names of the pattern constants it compiles) and every string literal.
type validationGo struct {
	literalRegexes []string
	constRegexes   []string
	strings        map[string]bool
}

func parseValidationGo(t *testing.T) validationGo {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "validation.go", nil, 0)
	require.NoError(t, err)
	out := validationGo{strings: map[string]bool{}}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BasicLit:
			if n.Kind == token.STRING {
				s, err := strconv.Unquote(n.Value)
				require.NoError(t, err)
				out.strings[s] = true
			}
		case *ast.CallExpr:
			sel, ok := n.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "MustCompile" || len(n.Args) != 1 {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "regexp" {
				return true
			}
			switch arg := n.Args[0].(type) {
			case *ast.BasicLit:
				s, err := strconv.Unquote(arg.Value)
				require.NoError(t, err)
				out.literalRegexes = append(out.literalRegexes, s)
			case *ast.Ident:
				out.constRegexes = append(out.constRegexes, arg.Name)
			default:
				t.Fatalf("validation.go compiles a regexp from %T; extend this test", arg)
			}
		}
		return true
	})
	return out
}

// TestCRDPatternsMatchGo keeps the CRD's CEL rules and Validate from drifting apart: every regex in
// the CRDs is one that Validate compiles and the other way round, and every CEL message is one that
// Validate reports for the same field.
func TestCRDPatternsMatchGo(t *testing.T) {
	rules, nodes := loadCRDRules(t)
	src := parseValidationGo(t)

	goConstants := map[string]string{
		"RoleARNPattern":                  RoleARNPattern,
		"GUIDPattern":                     GUIDPattern,
		"WorkloadIdentityProviderPattern": WorkloadIdentityProviderPattern,
		"GCPServiceAccountEmailPattern":   GCPServiceAccountEmailPattern,
		"AWSRegionPattern":                AWSRegionPattern,
		"RegistryPattern":                 RegistryPattern,
		"AzureIdentityResourceIDPattern":  AzureIdentityResourceIDPattern,
	}
	constNames := make([]string, 0, len(goConstants))
	for name := range goConstants {
		constNames = append(constNames, name)
	}
	sort.Strings(constNames)
	compiled := append([]string(nil), src.constRegexes...)
	sort.Strings(compiled)
	require.Equal(t, constNames, compiled, "validation.go must compile exactly the pattern constants of types.go")
	require.Len(t, src.literalRegexes, 4, "validation.go's DNS-1123 subdomain regex and the subject glob regexes")

	goPatterns := map[string]string{} // regex -> what names it
	for name, re := range goConstants {
		goPatterns[re] = name
	}
	for i, re := range src.literalRegexes {
		goPatterns[re] = fmt.Sprintf("validation.go literal regex %d", i+1)
	}

	crdPatterns := map[string]bool{}
	nRegexRules := 0
	for _, r := range rules {
		m := celMatchesRule.FindStringSubmatch(r.rule)
		if m == nil {
			continue
		}
		nRegexRules++
		re, err := unquoteCELSingle(m[1])
		require.NoError(t, err, "%s %s", r.file, r.path)
		_, err = regexp.Compile(re)
		require.NoError(t, err, "%s %s", r.file, r.path)
		crdPatterns[re] = true
		assert.Contains(t, goPatterns, re, "%s %s: CRD regex %q is none of the Go patterns", r.file, r.path, re)
	}
	assert.GreaterOrEqual(t, nRegexRules, 10, "self.matches rules found in the CRDs")
	for re, name := range goPatterns {
		assert.True(t, crdPatterns[re], "%s (%q) appears in no CRD rule", name, re)
	}

	// Messages: each is a string literal of validation.go, and Validate reports it at the rule's
	// field for one of the invalid objects of the table tests.
	reported := map[string]bool{} // "field|detail"
	for _, tc := range invalidIdentityAssociations() {
		for _, e := range tc.obj.Validate() {
			reported[e.Field+"|"+e.Detail] = true
		}
	}
	for _, tc := range invalidRegistryAttachments() {
		for _, e := range tc.obj.Validate() {
			reported[e.Field+"|"+e.Detail] = true
		}
	}
	for _, r := range rules {
		require.NotEmpty(t, r.message, "%s %s: rule %q has no message", r.file, r.path, r.rule)
		assert.True(t, src.strings[r.message], "%s %s: CEL message %q is not in validation.go", r.file, r.path, r.message)
		assert.True(t, reported[r.path+"|"+r.message], "%s: Validate does not report %q at %s", r.file, r.message, r.path)
	}

	// The numeric bounds of the token lifetime.
	exp, ok := nodes["IdentityAssociation:spec.tokenExpirationSeconds"]
	require.True(t, ok)
	require.NotNil(t, exp.Minimum)
	require.NotNil(t, exp.Maximum)
	assert.Equal(t, int64(MinTokenExpirationSeconds), *exp.Minimum)
	assert.Equal(t, int64(MaxTokenExpirationSeconds), *exp.Maximum)
}

func TestUnquoteCELSingle(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    string
		wantErr bool
	}{
		"plain":                 {in: "^a$", want: "^a$"},
		"escaped backslash":     {in: `\\w`, want: `\w`},
		"escaped quote":         {in: `\'`, want: `'`},
		"unknown escape":        {in: `\n`, wantErr: true},
		"trailing backslash":    {in: `a\`, wantErr: true},
		"bare quote ends early": {in: `a'b`, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := unquoteCELSingle(tc.in)
			if tc.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestCRDLengthLimitsMatchGo checks that every maxLength/maxItems of the CRD specs is enforced by
// Validate at the same field with the same limit (a value one longer is TooLong/TooMany there, a
// value of exactly the limit is not).
func TestCRDLengthLimitsMatchGo(t *testing.T) {
	_, nodes := loadCRDRules(t)
	type setter func(n int) field.ErrorList
	long := func(n int) string { return strings.Repeat("a", n) }
	iaWith := func(edit func(s *IdentityAssociationSpec, v string)) setter {
		return func(n int) field.ErrorList {
			return association(func(s *IdentityAssociationSpec) { edit(s, long(n)) }).Validate()
		}
	}
	raWith := func(edit func(s *RegistryAttachmentSpec, v string)) setter {
		return func(n int) field.ErrorList {
			return attachment(func(s *RegistryAttachmentSpec) { edit(s, long(n)) }).Validate()
		}
	}
	limits := map[string]struct {
		set       setter
		errorPath string
	}{
		"IdentityAssociation:spec.namespace":          {iaWith(func(s *IdentityAssociationSpec, v string) { s.Namespace = v }), "spec.namespace"},
		"IdentityAssociation:spec.serviceAccountName": {iaWith(func(s *IdentityAssociationSpec, v string) { s.ServiceAccountName = v }), "spec.serviceAccountName"},
		"IdentityAssociation:spec.aws.roleARN":        {iaWith(func(s *IdentityAssociationSpec, v string) { s.AWS.RoleARN = v }), "spec.aws.roleARN"},
		"IdentityAssociation:spec.aws.region":         {iaWith(func(s *IdentityAssociationSpec, v string) { s.AWS.Region = v }), "spec.aws.region"},
		"IdentityAssociation:spec.aws.audience":       {iaWith(func(s *IdentityAssociationSpec, v string) { s.AWS.Audience = v }), "spec.aws.audience"},
		"IdentityAssociation:spec.azure.clientID": {iaWith(func(s *IdentityAssociationSpec, v string) {
			s.Azure = &AzureIdentity{ClientID: v}
		}), "spec.azure.clientID"},
		"IdentityAssociation:spec.azure.tenantID": {iaWith(func(s *IdentityAssociationSpec, v string) {
			s.Azure = &AzureIdentity{ClientID: testGUID, TenantID: v}
		}), "spec.azure.tenantID"},
		"IdentityAssociation:spec.azure.identityResourceID": {iaWith(func(s *IdentityAssociationSpec, v string) {
			s.Azure = &AzureIdentity{ClientID: testGUID, IdentityResourceID: v}
		}), "spec.azure.identityResourceID"},
		"IdentityAssociation:spec.gcp.workloadIdentityProvider": {iaWith(func(s *IdentityAssociationSpec, v string) {
			s.GCP = &GCPIdentity{WorkloadIdentityProvider: v}
		}), "spec.gcp.workloadIdentityProvider"},
		"IdentityAssociation:spec.gcp.serviceAccountEmail": {iaWith(func(s *IdentityAssociationSpec, v string) {
			s.GCP = &GCPIdentity{WorkloadIdentityProvider: testProvider, ServiceAccountEmail: v}
		}), "spec.gcp.serviceAccountEmail"},
		"RegistryAttachment:spec.registry": {raWith(func(s *RegistryAttachmentSpec, v string) { s.Registry = v }), "spec.registry"},
		"RegistryAttachment:spec.pull.imagePullSecret.name": {raWith(func(s *RegistryAttachmentSpec, v string) {
			s.Pull.ImagePullSecret.Name = v
		}), "spec.pull.imagePullSecret.name"},
		"RegistryAttachment:spec.serviceAccountNames[*]": {raWith(func(s *RegistryAttachmentSpec, v string) {
			s.ServiceAccountNames = []string{v}
		}), "spec.serviceAccountNames[0]"},
	}
	hasErr := func(errs field.ErrorList, path string, typ field.ErrorType) bool {
		for _, e := range errs {
			if e.Field == path && e.Type == typ {
				return true
			}
		}
		return false
	}

	seen := 0
	for key, n := range nodes {
		kindPath := key[strings.Index(key, ":")+1:]
		if !strings.HasPrefix(kindPath, "spec.") {
			continue // status and metadata are not Validate's
		}
		if n.MaxLength != nil {
			seen++
			tc, ok := limits[key]
			if !assert.True(t, ok, "%s has maxLength %d in the CRD: add it to this test", key, *n.MaxLength) {
				continue
			}
			assert.True(t, hasErr(tc.set(*n.MaxLength+1), tc.errorPath, field.ErrorTypeTooLong), "%s: %d characters must be TooLong", key, *n.MaxLength+1)
			assert.False(t, hasErr(tc.set(*n.MaxLength), tc.errorPath, field.ErrorTypeTooLong), "%s: %d characters must not be TooLong", key, *n.MaxLength)
		}
		if n.MaxItems != nil {
			require.Equal(t, "RegistryAttachment:spec.serviceAccountNames", key, "unexpected maxItems: add it to this test")
			names := func(n int) []string {
				out := make([]string, n)
				for i := range out {
					out[i] = fmt.Sprintf("sa-%d", i)
				}
				return out
			}
			over := attachment(func(s *RegistryAttachmentSpec) { s.ServiceAccountNames = names(*n.MaxItems + 1) }).Validate()
			at := attachment(func(s *RegistryAttachmentSpec) { s.ServiceAccountNames = names(*n.MaxItems) }).Validate()
			assert.True(t, hasErr(over, "spec.serviceAccountNames", field.ErrorTypeTooMany))
			assert.Empty(t, at)
		}
	}
	assert.Equal(t, len(limits), seen, "every string limit of this test is in the CRDs")
}
