package cloudside

import (
	"fmt"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// MaxGCPSubjectBytes is the limit of Google's google.subject attribute: a workload identity pool
// provider refuses a token whose mapped subject is longer.
const MaxGCPSubjectBytes = 127

// Problems lists the reasons an association's cloud side cannot be right, whatever is done in the
// cloud: what lanyard injects and what the cloud accepts contradict each other. Each reason names
// the field to change.
func Problems(ia *v1alpha1.IdentityAssociation) []string {
	return IdentityProblems(ia.Spec.Namespace, ia.Spec.ServiceAccountName, identityOf(ia))
}

// IdentityProblems is Problems for a resolved identity (from an association or the single-cloud
// webhooks' annotations, with cluster-wide defaults such as --aws-default-region applied).
func IdentityProblems(namespace, serviceAccount string, id policy.Identity) []string {
	var out []string
	if a := id.AWS; a != nil {
		if arn, err := parseRoleARN(a.RoleARN); err == nil && a.Region != "" {
			if p := PartitionOfRegion(a.Region); p != arn.Partition {
				out = append(out, fmt.Sprintf(
					"role %s is in AWS partition %s but region %s (AWS_REGION) is in partition %s: %s",
					a.RoleARN, arn.Partition, a.Region, p, partitionConsequence(a.Mode)))
			}
		}
		if a.Mode == v1alpha1.AWSModePodIdentity && a.Audience != "" && a.Audience != AudiencePodIdentity {
			out = append(out, fmt.Sprintf(
				"mode PodIdentity with audience %q: the EKS Pod Identity agent accepts only tokens for %s; remove spec.aws.audience",
				a.Audience, AudiencePodIdentity))
		}
	}
	if id.GCP != nil {
		if sub := Subject(namespace, serviceAccount); len(sub) > MaxGCPSubjectBytes {
			out = append(out, fmt.Sprintf(
				"the token subject %s is %d bytes, over the %d bytes Google allows for google.subject: a provider mapping google.subject=assertion.sub refuses it; use shorter namespace and ServiceAccount names",
				sub, len(sub), MaxGCPSubjectBytes))
		}
	}
	return out
}

func partitionConsequence(mode v1alpha1.AWSMode) string {
	if mode == v1alpha1.AWSModeIRSA {
		return "that region's STS cannot assume the role; set spec.aws.region to a region of the role's partition"
	}
	return "an EKS cluster gets credentials only for roles of its own partition, and the SDK would send them to the other partition's endpoints; set spec.aws.region to a region of the role's partition"
}

// identityOf resolves an association's identity as the webhook does, without cluster-wide defaults.
func identityOf(ia *v1alpha1.IdentityAssociation) policy.Identity {
	id := policy.Identity{Source: associationRef(ia)}
	if a := ia.Spec.AWS; a != nil {
		id.AWS = &policy.AWS{Mode: awsMode(a), RoleARN: a.RoleARN, Region: a.Region, Audience: a.Audience}
	}
	if az := ia.Spec.Azure; az != nil {
		id.Azure = &policy.Azure{ClientID: az.ClientID, TenantID: az.TenantID, Cloud: az.Cloud}
	}
	if g := ia.Spec.GCP; g != nil {
		id.GCP = &policy.GCP{WorkloadIdentityProvider: g.WorkloadIdentityProvider, ServiceAccountEmail: g.ServiceAccountEmail}
	}
	return id
}
