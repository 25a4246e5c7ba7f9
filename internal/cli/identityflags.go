package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/lanyard-dev/lanyard/mutate"
	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// identityFlags are the cluster-wide settings of the mutation, the same on serve, inject and check
// so that the two doors agree. Most are the single-cloud webhooks' own flags under lanyard names
// (docs/migration.md maps them).
type identityFlags struct {
	compatAnnotations  bool
	azureTenantID      string
	azureCloud         string
	awsDefaultRegion   string
	awsPodIdentityIPv6 bool
	awsTokenAudience   string
	awsTokenExpiration int64
	awsRegionalSTS     bool
	// eksAnnotationPrefix is the EKS webhook's --annotation-prefix.
	eksAnnotationPrefix string
}

func (f *identityFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.compatAnnotations, "compat-annotations", true, "honour the EKS and Azure webhooks' ServiceAccount and pod annotations (and the azure.workload.identity/use pod label)")
	fs.StringVar(&f.azureTenantID, "azure-tenant-id", os.Getenv("AZURE_TENANT_ID"), "tenant of Azure identities that name none (default $AZURE_TENANT_ID, as the Azure webhook)")
	fs.StringVar(&f.azureCloud, "azure-cloud", os.Getenv("AZURE_ENVIRONMENT"), "cloud of Azure identities from annotations or the use label: AzurePublicCloud, AzureChinaCloud, AzureUSGovernmentCloud (default $AZURE_ENVIRONMENT, else AzurePublicCloud)")
	fs.StringVar(&f.awsDefaultRegion, "aws-default-region", "", "region (AWS_REGION, AWS_DEFAULT_REGION) of AWS identities that name none, as the EKS webhook's --aws-default-region")
	fs.BoolVar(&f.awsPodIdentityIPv6, "aws-pod-identity-ipv6", false, "use the EKS Pod Identity agent's IPv6 address")
	fs.StringVar(&f.awsTokenAudience, "aws-token-audience", "", "token audience of IRSA identities from eks.amazonaws.com annotations that name none (the EKS webhook's --token-audience; default sts.amazonaws.com)")
	fs.Int64Var(&f.awsTokenExpiration, "aws-token-expiration", 0, "token lifetime in seconds of IRSA identities from eks.amazonaws.com annotations that name none (the EKS webhook's --token-expiration; default 86400)")
	fs.StringVar(&f.eksAnnotationPrefix, "aws-annotation-prefix", policy.DefaultEKSAnnotationPrefix, "prefix of the EKS webhook's annotations (role-arn, audience, sts-regional-endpoints, token-expiration, skip-containers), as its --annotation-prefix")
	fs.BoolVar(&f.awsRegionalSTS, "aws-sts-regional-endpoints", true, "AWS_STS_REGIONAL_ENDPOINTS=regional for IRSA identities from eks.amazonaws.com annotations that do not say (the EKS webhook's --sts-regional-endpoint, whose default is false)")
}

// options validates the flags (errors name the flag) and returns the resolution and mutation options.
func (f *identityFlags) options() (policy.Options, mutate.Options, error) {
	var po policy.Options
	if f.awsDefaultRegion != "" && !v1alpha1.MatchesAWSRegion(f.awsDefaultRegion) {
		return po, mutate.Options{}, fmt.Errorf("--aws-default-region %q: must be an AWS region name such as us-west-2", f.awsDefaultRegion)
	}
	if f.azureTenantID != "" && !v1alpha1.MatchesGUID(f.azureTenantID) {
		return po, mutate.Options{}, fmt.Errorf("--azure-tenant-id %q: must be a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", f.azureTenantID)
	}
	cloud, err := azureCloud(f.azureCloud)
	if err != nil {
		return po, mutate.Options{}, err
	}
	if f.awsTokenExpiration != 0 && (f.awsTokenExpiration < v1alpha1.MinTokenExpirationSeconds || f.awsTokenExpiration > v1alpha1.MaxTokenExpirationSeconds) {
		return po, mutate.Options{}, fmt.Errorf("--aws-token-expiration %d: must be between %d and %d seconds",
			f.awsTokenExpiration, v1alpha1.MinTokenExpirationSeconds, v1alpha1.MaxTokenExpirationSeconds)
	}
	if msgs := validation.IsDNS1123Subdomain(f.eksAnnotationPrefix); len(msgs) > 0 {
		return po, mutate.Options{}, fmt.Errorf("--aws-annotation-prefix %q: %s", f.eksAnnotationPrefix, strings.Join(msgs, "; "))
	}
	po = policy.Options{
		CompatAnnotations: f.compatAnnotations, DefaultAzureTenantID: f.azureTenantID, DefaultAzureCloud: cloud,
		DefaultAWSRegion: f.awsDefaultRegion, CompatAWSAudience: f.awsTokenAudience,
		CompatAWSTokenExpiration: f.awsTokenExpiration, CompatAWSGlobalSTS: !f.awsRegionalSTS,
		EKSAnnotationPrefix: f.eksAnnotationPrefix,
	}
	return po, mutate.Options{AWSPodIdentityIPv6: f.awsPodIdentityIPv6, IgnoreCompatAnnotations: !f.compatAnnotations,
		EKSAnnotationPrefix: f.eksAnnotationPrefix}, nil
}

// azureCloud reads a cloud name as the Azure webhook reads AZURE_ENVIRONMENT (case-insensitive).
func azureCloud(name string) (v1alpha1.AzureCloud, error) {
	if name == "" {
		return v1alpha1.AzurePublicCloud, nil
	}
	for _, c := range []v1alpha1.AzureCloud{v1alpha1.AzurePublicCloud, v1alpha1.AzureChinaCloud, v1alpha1.AzureUSGovernmentCloud} {
		if strings.EqualFold(name, string(c)) {
			return c, nil
		}
	}
	return "", fmt.Errorf("--azure-cloud (or $AZURE_ENVIRONMENT) %q: must be AzurePublicCloud, AzureChinaCloud or AzureUSGovernmentCloud", name)
}
