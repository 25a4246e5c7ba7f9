package cloudside

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// The eksctl ClusterConfig schema, as far as lanyard reads or writes it. The field names and the
// sets of allowed keys are eksctl's (pkg/apis/eksctl.io/v1alpha5, v0.215.0: ClusterConfig,
// ClusterMeta, ClusterIAM, PodIdentityAssociation, ClusterIAMServiceAccount — each with
// additionalProperties false in its JSON schema). eksctl's Go module is not imported: it pulls in the
// AWS SDK and most of eksctl. Sections lanyard does not read are kept opaque, but their names are
// checked, as eksctl's strict decoding does.
const (
	EksctlAPIVersion = "eksctl.io/v1alpha5"
	EksctlKind       = "ClusterConfig"
)

// EksctlClusterConfig is an eksctl ClusterConfig.
type EksctlClusterConfig struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Metadata   *EksctlClusterMeta `json:"metadata"`
	IAM        *EksctlClusterIAM  `json:"iam,omitempty"`

	AccessConfig            json.RawMessage `json:"accessConfig,omitempty"`
	Addons                  json.RawMessage `json:"addons,omitempty"`
	AddonsConfig            json.RawMessage `json:"addonsConfig,omitempty"`
	AutoModeConfig          json.RawMessage `json:"autoModeConfig,omitempty"`
	AvailabilityZones       json.RawMessage `json:"availabilityZones,omitempty"`
	CloudWatch              json.RawMessage `json:"cloudWatch,omitempty"`
	FargateProfiles         json.RawMessage `json:"fargateProfiles,omitempty"`
	GitOps                  json.RawMessage `json:"gitops,omitempty"`
	IAMIdentityMappings     json.RawMessage `json:"iamIdentityMappings,omitempty"`
	IdentityProviders       json.RawMessage `json:"identityProviders,omitempty"`
	Karpenter               json.RawMessage `json:"karpenter,omitempty"`
	KubernetesNetworkConfig json.RawMessage `json:"kubernetesNetworkConfig,omitempty"`
	LocalZones              json.RawMessage `json:"localZones,omitempty"`
	ManagedNodeGroups       json.RawMessage `json:"managedNodeGroups,omitempty"`
	NodeGroups              json.RawMessage `json:"nodeGroups,omitempty"`
	Outpost                 json.RawMessage `json:"outpost,omitempty"`
	PrivateCluster          json.RawMessage `json:"privateCluster,omitempty"`
	RemoteNetworkConfig     json.RawMessage `json:"remoteNetworkConfig,omitempty"`
	SecretsEncryption       json.RawMessage `json:"secretsEncryption,omitempty"`
	VPC                     json.RawMessage `json:"vpc,omitempty"`
	ZonalShiftConfig        json.RawMessage `json:"zonalShiftConfig,omitempty"`
}

// EksctlClusterMeta is eksctl's metadata: name and region are required.
type EksctlClusterMeta struct {
	Name               string            `json:"name"`
	Region             string            `json:"region"`
	Version            string            `json:"version,omitempty"`
	ForceUpdateVersion *bool             `json:"forceUpdateVersion,omitempty"`
	Tags               map[string]string `json:"tags,omitempty"`
	Annotations        map[string]string `json:"annotations,omitempty"`
}

// EksctlClusterIAM is eksctl's iam section.
type EksctlClusterIAM struct {
	PodIdentityAssociations []EksctlPodIdentityAssociation `json:"podIdentityAssociations,omitempty"`

	ServiceAccounts                            json.RawMessage `json:"serviceAccounts,omitempty"`
	ServiceRoleARN                             *string         `json:"serviceRoleARN,omitempty"`
	ServiceRolePermissionsBoundary             *string         `json:"serviceRolePermissionsBoundary,omitempty"`
	FargatePodExecutionRoleARN                 *string         `json:"fargatePodExecutionRoleARN,omitempty"`
	FargatePodExecutionRolePermissionsBoundary *string         `json:"fargatePodExecutionRolePermissionsBoundary,omitempty"`
	WithOIDC                                   *bool           `json:"withOIDC,omitempty"`
	VPCResourceControllerPolicy                *bool           `json:"vpcResourceControllerPolicy,omitempty"`
}

// EksctlPodIdentityAssociation is one entry of iam.podIdentityAssociations.
type EksctlPodIdentityAssociation struct {
	Namespace              string                   `json:"namespace"`
	ServiceAccountName     string                   `json:"serviceAccountName"`
	RoleARN                string                   `json:"roleARN"`
	CreateServiceAccount   bool                     `json:"createServiceAccount,omitempty"`
	RoleName               string                   `json:"roleName,omitempty"`
	PermissionsBoundaryARN string                   `json:"permissionsBoundaryARN,omitempty"`
	PermissionPolicyARNs   []string                 `json:"permissionPolicyARNs,omitempty"`
	PermissionPolicy       map[string]any           `json:"permissionPolicy,omitempty"`
	WellKnownPolicies      *EksctlWellKnownPolicies `json:"wellKnownPolicies,omitempty"`
	Tags                   map[string]string        `json:"tags,omitempty"`
	TargetRoleARN          *string                  `json:"targetRoleARN,omitempty"`
	DisableSessionTags     *bool                    `json:"disableSessionTags,omitempty"`
}

// EksctlWellKnownPolicies are the policies eksctl attaches to a role it creates.
type EksctlWellKnownPolicies struct {
	AutoScaler                bool `json:"autoScaler,omitempty"`
	AWSLoadBalancerController bool `json:"awsLoadBalancerController,omitempty"`
	CertManager               bool `json:"certManager,omitempty"`
	EBSCSIController          bool `json:"ebsCSIController,omitempty"`
	EFSCSIController          bool `json:"efsCSIController,omitempty"`
	ExternalDNS               bool `json:"externalDNS,omitempty"`
	ImageBuilder              bool `json:"imageBuilder,omitempty"`
}

func (p *EksctlPodIdentityAssociation) hasWellKnownPolicy() bool {
	w := p.WellKnownPolicies
	return w != nil && (w.AutoScaler || w.AWSLoadBalancerController || w.CertManager || w.EBSCSIController ||
		w.EFSCSIController || w.ExternalDNS || w.ImageBuilder)
}

// ParseEksctlConfig decodes an eksctl ClusterConfig (YAML or JSON) strictly: unknown and duplicate
// fields are errors naming the field, as with eksctl, and so are the rules eksctl applies to
// podIdentityAssociations before creating them (namespace and serviceAccountName set; roleARN or a
// policy to create the role from, not both).
func ParseEksctlConfig(data []byte) (*EksctlClusterConfig, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("malformed YAML: %w", err)
	}
	cfg := &EksctlClusterConfig{}
	strict, err := kjson.UnmarshalStrict(js, cfg, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(strict...); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Validate checks what eksctl requires of a ClusterConfig that creates pod identity associations.
func (c *EksctlClusterConfig) Validate() error {
	var errs []error
	if c.APIVersion != EksctlAPIVersion {
		errs = append(errs, fmt.Errorf("apiVersion: must be %s, not %q", EksctlAPIVersion, c.APIVersion))
	}
	if c.Kind != EksctlKind {
		errs = append(errs, fmt.Errorf("kind: must be %s, not %q", EksctlKind, c.Kind))
	}
	if c.Metadata == nil {
		errs = append(errs, errors.New("metadata: required (name and region of the cluster)"))
	} else {
		if c.Metadata.Name == "" {
			errs = append(errs, errors.New("metadata.name: required"))
		}
		if c.Metadata.Region == "" {
			errs = append(errs, errors.New("metadata.region: required"))
		} else if !v1alpha1.MatchesAWSRegion(c.Metadata.Region) {
			errs = append(errs, fmt.Errorf("metadata.region %q: must be an AWS region name such as us-west-2", c.Metadata.Region))
		}
	}
	if c.IAM != nil {
		for i := range c.IAM.PodIdentityAssociations {
			if err := c.IAM.PodIdentityAssociations[i].validate(i); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (p *EksctlPodIdentityAssociation) validate(i int) error {
	path := fmt.Sprintf("iam.podIdentityAssociations[%d]", i)
	var errs []error
	if p.Namespace == "" {
		errs = append(errs, fmt.Errorf("%s.namespace: required", path))
	}
	if p.ServiceAccountName == "" {
		errs = append(errs, fmt.Errorf("%s.serviceAccountName: required", path))
	}
	hasPolicy := len(p.PermissionPolicy) > 0 || len(p.PermissionPolicyARNs) > 0 || p.hasWellKnownPolicy()
	if p.RoleARN == "" && !hasPolicy {
		errs = append(errs, fmt.Errorf("%[1]s: at least one of %[1]s.roleARN, %[1]s.permissionPolicy, %[1]s.permissionPolicyARNs, %[1]s.wellKnownPolicies must be set", path))
	}
	if p.RoleARN != "" {
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"permissionPolicy", len(p.PermissionPolicy) > 0},
			{"permissionPolicyARNs", len(p.PermissionPolicyARNs) > 0},
			{"wellKnownPolicies", p.hasWellKnownPolicy()},
		} {
			if f.set {
				errs = append(errs, fmt.Errorf("%[1]s.%[2]s: cannot be set when %[1]s.roleARN is set", path, f.name))
			}
		}
		if !v1alpha1.MatchesRoleARN(p.RoleARN) {
			errs = append(errs, fmt.Errorf("%s.roleARN %q: must be an IAM role ARN: arn:<partition>:iam::<12-digit account>:role/<name>", path, p.RoleARN))
		}
	}
	return errors.Join(errs...)
}

// ExportEksctl writes an eksctl ClusterConfig whose iam.podIdentityAssociations hold one entry per
// PodIdentity-mode association, for eksctl create podidentityassociation -f. cluster and region
// fill metadata (both required by eksctl).
func ExportEksctl(associations []*v1alpha1.IdentityAssociation, cluster, region string) (*Result, error) {
	if cluster == "" {
		return nil, errors.New("--cluster: required with --format eksctl (the EKS cluster's name, metadata.name)")
	}
	if region == "" {
		return nil, errors.New("--region: required with --format eksctl (the EKS cluster's region, metadata.region)")
	}
	if !v1alpha1.MatchesAWSRegion(region) {
		return nil, fmt.Errorf("--region %q: must be an AWS region name such as us-west-2", region)
	}
	associations, notes := withoutConflicts(sortedAssociations(associations))
	var entries []EksctlPodIdentityAssociation
	var errs []error
	for _, ia := range associations {
		a := ia.Spec.AWS
		if a == nil {
			continue
		}
		if mode := awsMode(a); mode != v1alpha1.AWSModePodIdentity {
			notes = append(notes, Note{Severity: SeverityInfo, Object: associationRef(ia),
				Message: fmt.Sprintf("not exported: mode %s is not an EKS Pod Identity association (--format aws-iam gives its trust policy)", mode)})
			continue
		}
		arn, err := parseRoleARN(a.RoleARN)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: spec.aws.roleARN: %w", associationRef(ia), err))
			continue
		}
		if p := PartitionOfRegion(region); p != arn.Partition {
			errs = append(errs, fmt.Errorf("%s: spec.aws.roleARN %s is in partition %s, but --region %s is in partition %s: an EKS cluster can only use roles of its own partition",
				associationRef(ia), a.RoleARN, arn.Partition, region, p))
			continue
		}
		entries = append(entries, EksctlPodIdentityAssociation{
			Namespace: ia.Spec.Namespace, ServiceAccountName: ia.Spec.ServiceAccountName, RoleARN: a.RoleARN,
		})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		notes = append(notes, Note{Severity: SeverityInfo, Object: "input", Message: "no PodIdentity-mode AWS associations to export: nothing written"})
		return &Result{Notes: notes}, nil
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# lanyard export --format eksctl: %s.\n", plural(len(entries), "EKS Pod Identity association"))
	b.WriteString("# Create them with: eksctl create podidentityassociation -f <this file>\n")
	b.WriteString("# (the cluster needs the eks-pod-identity-agent addon; each role's trust policy must allow\n")
	b.WriteString("# pods.eks.amazonaws.com: lanyard export --format aws-iam prints it)\n")
	fmt.Fprintf(&b, "apiVersion: %s\nkind: %s\nmetadata:\n  name: %s\n  region: %s\niam:\n  podIdentityAssociations:\n",
		EksctlAPIVersion, EksctlKind, yamlScalar(cluster), yamlScalar(region))
	for _, e := range entries {
		fmt.Fprintf(&b, "  - namespace: %s\n    serviceAccountName: %s\n    roleARN: %s\n",
			yamlScalar(e.Namespace), yamlScalar(e.ServiceAccountName), yamlScalar(e.RoleARN))
	}
	return &Result{Content: b.Bytes(), Notes: notes}, nil
}

// yamlScalar renders a string as a YAML scalar, quoted only when YAML needs it.
func yamlScalar(s string) string {
	out, err := yaml.Marshal(s)
	if err != nil || bytes.Count(out, []byte("\n")) != 1 {
		js, _ := json.Marshal(s) // a JSON string is a valid YAML double-quoted scalar
		return string(js)
	}
	return strings.TrimSuffix(string(out), "\n")
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
