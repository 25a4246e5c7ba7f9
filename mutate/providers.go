package mutate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

type provider int

const (
	providerAWS provider = iota
	providerAzure
	providerGCP
)

func (p provider) String() string {
	switch p {
	case providerAWS:
		return "aws"
	case providerAzure:
		return "azure"
	default:
		return "gcp"
	}
}

// The injected names and paths; SPEC §5 is the contract and the single-cloud webhooks' values are
// kept so that SDKs and existing workloads find their files where they expect them.
const (
	AWSPodIdentityVolume     = "eks-pod-identity-token"
	AWSPodIdentityTokenPath  = "eks-pod-identity-token"
	AWSPodIdentityAudience   = "pods.eks.amazonaws.com"
	AWSPodIdentityMountPath  = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount"
	AWSPodIdentityEndpoint   = "http://169.254.170.23/v1/credentials"
	AWSPodIdentityEndpointV6 = "http://[fd00:ec2::23]/v1/credentials"

	AWSIRSAVolume    = "aws-iam-token"
	AWSIRSATokenPath = "token"
	AWSIRSAAudience  = "sts.amazonaws.com"
	AWSIRSAMountPath = "/var/run/secrets/eks.amazonaws.com/serviceaccount"

	AzureVolume    = "azure-identity-token"
	AzureTokenPath = "azure-identity-token"
	AzureAudience  = "api://AzureADTokenExchange"
	AzureMountPath = "/var/run/secrets/azure/tokens"

	GCPVolume             = "gcp-identity-token"
	GCPTokenPath          = "token"
	GCPCredentialFile     = "credential-configuration.json"
	GCPMountPath          = "/var/run/secrets/gcp"
	GCPAudiencePrefix     = "https://iam.googleapis.com/"
	GCPSTSAudiencePrefix  = "//iam.googleapis.com/"
	GCPTokenURL           = "https://sts.googleapis.com/v1/token"
	GCPSubjectTokenType   = "urn:ietf:params:oauth:token-type:jwt"
	GCPImpersonationURLFn = "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/%s:generateAccessToken"

	DefaultAWSExpiration   = 86400
	DefaultAzureExpiration = 3600
	DefaultGCPExpiration   = 3600
)

var azureAuthorityHosts = map[v1alpha1.AzureCloud]string{
	v1alpha1.AzurePublicCloud:       "https://login.microsoftonline.com/",
	v1alpha1.AzureChinaCloud:        "https://login.chinacloudapi.cn/",
	v1alpha1.AzureUSGovernmentCloud: "https://login.microsoftonline.us/",
}

// projectedTokenDefaultMode is the API server's default for projected volumes; setting it makes the
// offline output equal to what the API server stores.
var projectedTokenDefaultMode int32 = 0o644

// injection is everything one provider adds to a pod.
type injection struct {
	provider  provider
	volume    corev1.Volume
	tokenPath string // path of the ServiceAccount token inside the volume
	mount     corev1.VolumeMount
	env       []corev1.EnvVar
	// groups are credential variables that only work together: a container that sets any of a
	// group gets none of it from lanyard (as the EKS webhook does), never half of each.
	groups [][]string
	// annotation to set on the pod (GCP credential configuration); empty key when none.
	annotationKey, annotationValue string
}

// buildInjections turns the resolved identity into per-provider injections, applying the pod's
// token lifetime overrides. Order is fixed (aws, azure, gcp) so output is deterministic.
func buildInjections(id policy.Identity, c *controls, windows bool, opts Options) ([]injection, error) {
	var out []injection
	if a := id.AWS; a != nil {
		exp, err := expiration(c.expiration, c.awsExpiration, a.TokenExpirationSeconds, DefaultAWSExpiration,
			v1alpha1.MinTokenExpirationSeconds, providerAWS)
		if err != nil {
			return nil, err
		}
		out = append(out, awsInjection(a, exp, windows, opts))
	}
	if az := id.Azure; az != nil {
		exp, err := expiration(c.expiration, c.azureExpiration, az.TokenExpirationSeconds, DefaultAzureExpiration,
			v1alpha1.MinAzureTokenExpirationSeconds, providerAzure)
		if err != nil {
			return nil, err
		}
		out = append(out, azureInjection(az, exp, windows))
	}
	if g := id.GCP; g != nil {
		exp, err := expiration(c.expiration, 0, g.TokenExpirationSeconds, DefaultGCPExpiration,
			v1alpha1.MinTokenExpirationSeconds, providerGCP)
		if err != nil {
			return nil, err
		}
		inj, err := gcpInjection(g, exp, windows)
		if err != nil {
			return nil, err
		}
		out = append(out, inj)
	}
	return out, nil
}

// expiration picks the token lifetime: the pod's lanyard annotation, then the provider's
// compatibility pod annotation, then the policy, then the provider default. Only the pod's own
// lanyard annotation can fall outside a provider's range here (the others were checked against
// it), and that denies the pod.
func expiration(podValue, podCompat, policyValue, def, minSeconds int64, p provider) (int64, error) {
	switch {
	case podValue != 0:
		if podValue < minSeconds {
			return 0, podAnnotationError(policy.AnnotationTokenExpiration, fmt.Sprint(podValue),
				fmt.Sprintf("must be between %d and %d seconds for %s", minSeconds, v1alpha1.MaxTokenExpirationSeconds, p))
		}
		return podValue, nil
	case podCompat != 0:
		return podCompat, nil
	case policyValue != 0:
		if policyValue < minSeconds { // e.g. an association applied before the schema said so
			return minSeconds, nil
		}
		return policyValue, nil
	}
	return def, nil
}

// tokenVolumeParts holds every piece of a token volume, so building one allocates once.
type tokenVolumeParts struct {
	projected corev1.ProjectedVolumeSource
	sources   [2]corev1.VolumeProjection
	token     corev1.ServiceAccountTokenProjection
	mode      int32
	exp       int64
}

// tokenVolume is a projected volume with one ServiceAccount token source; withDownwardAPI leaves
// room for a second source.
func tokenVolume(name, audience string, exp int64, path string) corev1.Volume {
	p := &tokenVolumeParts{mode: projectedTokenDefaultMode, exp: exp}
	p.token = corev1.ServiceAccountTokenProjection{Audience: audience, ExpirationSeconds: &p.exp, Path: path}
	p.sources[0].ServiceAccountToken = &p.token
	p.projected = corev1.ProjectedVolumeSource{DefaultMode: &p.mode, Sources: p.sources[:1:2]}
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Projected: &p.projected}}
}

// filePath renders a file path for an environment variable: Windows containers read
// C:\var\run\secrets\..., mount paths stay in the / form the kubelet translates.
func filePath(windows bool, dir, file string) string {
	p := dir + "/" + file
	if windows {
		return `C:` + strings.ReplaceAll(p, "/", `\`)
	}
	return p
}

func awsInjection(a *policy.AWS, exp int64, windows bool, opts Options) injection {
	var inj injection
	inj.provider = providerAWS
	inj.env = make([]corev1.EnvVar, 0, 5)
	if a.Mode == v1alpha1.AWSModeIRSA {
		aud := a.Audience
		if aud == "" {
			aud = AWSIRSAAudience
		}
		inj.volume = tokenVolume(AWSIRSAVolume, aud, exp, AWSIRSATokenPath)
		inj.tokenPath = AWSIRSATokenPath
		inj.mount = corev1.VolumeMount{Name: AWSIRSAVolume, MountPath: AWSIRSAMountPath, ReadOnly: true}
		inj.env = append(inj.env,
			corev1.EnvVar{Name: "AWS_ROLE_ARN", Value: a.RoleARN},
			corev1.EnvVar{Name: "AWS_WEB_IDENTITY_TOKEN_FILE", Value: filePath(windows, AWSIRSAMountPath, AWSIRSATokenPath)},
		)
		inj.groups = [][]string{{"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"}}
		if a.STSRegionalEndpoints {
			inj.env = append(inj.env, corev1.EnvVar{Name: "AWS_STS_REGIONAL_ENDPOINTS", Value: "regional"})
		}
	} else {
		aud := a.Audience
		if aud == "" {
			aud = AWSPodIdentityAudience
		}
		endpoint := AWSPodIdentityEndpoint
		if opts.AWSPodIdentityIPv6 {
			endpoint = AWSPodIdentityEndpointV6
		}
		inj.volume = tokenVolume(AWSPodIdentityVolume, aud, exp, AWSPodIdentityTokenPath)
		inj.tokenPath = AWSPodIdentityTokenPath
		inj.mount = corev1.VolumeMount{Name: AWSPodIdentityVolume, MountPath: AWSPodIdentityMountPath, ReadOnly: true}
		inj.env = append(inj.env,
			corev1.EnvVar{Name: "AWS_CONTAINER_CREDENTIALS_FULL_URI", Value: endpoint},
			corev1.EnvVar{Name: "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", Value: filePath(windows, AWSPodIdentityMountPath, AWSPodIdentityTokenPath)},
		)
		inj.groups = [][]string{{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"}}
	}
	if a.Region != "" {
		inj.env = append(inj.env,
			corev1.EnvVar{Name: "AWS_REGION", Value: a.Region},
			corev1.EnvVar{Name: "AWS_DEFAULT_REGION", Value: a.Region},
		)
	}
	return inj
}

func azureInjection(az *policy.Azure, exp int64, windows bool) injection {
	authority := azureAuthorityHosts[az.Cloud]
	if authority == "" {
		authority = azureAuthorityHosts[v1alpha1.AzurePublicCloud]
	}
	inj := injection{
		provider:  providerAzure,
		volume:    tokenVolume(AzureVolume, AzureAudience, exp, AzureTokenPath),
		tokenPath: AzureTokenPath,
		mount:     corev1.VolumeMount{Name: AzureVolume, MountPath: AzureMountPath, ReadOnly: true},
		env: []corev1.EnvVar{
			{Name: "AZURE_CLIENT_ID", Value: az.ClientID},
			{Name: "AZURE_TENANT_ID", Value: az.TenantID},
			{Name: "AZURE_FEDERATED_TOKEN_FILE", Value: filePath(windows, AzureMountPath, AzureTokenPath)},
			{Name: "AZURE_AUTHORITY_HOST", Value: authority},
		},
	}
	if az.ClientID == "" {
		// A pod labelled azure.workload.identity/use=true whose ServiceAccount names no client id:
		// the workload sets AZURE_CLIENT_ID itself (one of several identities), as with the Azure webhook.
		inj.env = inj.env[1:]
	}
	return inj
}

// gcpCredentialConfig is an external_account credential configuration; field order is the order of
// the rendered JSON.
type gcpCredentialConfig struct {
	Type                           string              `json:"type"`
	Audience                       string              `json:"audience"`
	SubjectTokenType               string              `json:"subject_token_type"`
	TokenURL                       string              `json:"token_url"`
	CredentialSource               gcpCredentialSource `json:"credential_source"`
	ServiceAccountImpersonationURL string              `json:"service_account_impersonation_url,omitempty"`
}

type gcpCredentialSource struct {
	File   string `json:"file"`
	Format struct {
		Type string `json:"type"`
	} `json:"format"`
}

func gcpInjection(g *policy.GCP, exp int64, windows bool) (injection, error) {
	cfg := gcpCredentialConfig{
		Type:             "external_account",
		Audience:         GCPSTSAudiencePrefix + g.WorkloadIdentityProvider,
		SubjectTokenType: GCPSubjectTokenType,
		TokenURL:         GCPTokenURL,
	}
	cfg.CredentialSource.File = filePath(windows, GCPMountPath, GCPTokenPath)
	cfg.CredentialSource.Format.Type = "text"
	if g.ServiceAccountEmail != "" {
		cfg.ServiceAccountImpersonationURL = fmt.Sprintf(GCPImpersonationURLFn, g.ServiceAccountEmail)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(cfg); err != nil {
		return injection{}, fmt.Errorf("rendering GCP credential configuration: %w", err)
	}
	vol := tokenVolume(GCPVolume, GCPAudiencePrefix+g.WorkloadIdentityProvider, exp, GCPTokenPath)
	vol.Projected.Sources = append(vol.Projected.Sources, corev1.VolumeProjection{DownwardAPI: &corev1.DownwardAPIProjection{
		Items: []corev1.DownwardAPIVolumeFile{{
			Path:     GCPCredentialFile,
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.annotations['" + policy.AnnotationGCPCredentialConfig + "']"},
		}},
	}})
	return injection{
		provider:        providerGCP,
		volume:          vol,
		tokenPath:       GCPTokenPath,
		mount:           corev1.VolumeMount{Name: GCPVolume, MountPath: GCPMountPath, ReadOnly: true},
		env:             []corev1.EnvVar{{Name: "GOOGLE_APPLICATION_CREDENTIALS", Value: filePath(windows, GCPMountPath, GCPCredentialFile)}},
		annotationKey:   policy.AnnotationGCPCredentialConfig,
		annotationValue: strings.TrimSuffix(buf.String(), "\n"),
	}, nil
}
