package cloudside

import (
	"fmt"
	"strings"

	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// roleARN is the parts of an IAM role ARN that the cloud side needs.
type roleARN struct {
	Partition string // aws, aws-cn, aws-us-gov, ...
	Account   string
	// Name is the role's name without its path: what aws iam update-assume-role-policy --role-name takes.
	Name string
}

// parseRoleARN splits an ARN that v1alpha1.MatchesRoleARN accepts.
func parseRoleARN(arn string) (roleARN, error) {
	if !v1alpha1.MatchesRoleARN(arn) {
		return roleARN{}, fmt.Errorf("%q is not an IAM role ARN: arn:<partition>:iam::<12-digit account>:role/<name>", arn)
	}
	parts := strings.SplitN(arn, ":", 6) // arn, partition, iam, "", account, role/path/name
	resource := parts[5]
	return roleARN{Partition: parts[1], Account: parts[4], Name: resource[strings.LastIndex(resource, "/")+1:]}, nil
}

// regionPartitions maps region name prefixes to the partition their endpoints and ARNs belong to;
// the first match wins, and any other region is in the aws partition.
var regionPartitions = []struct{ prefix, partition string }{
	{"cn-", "aws-cn"},
	{"us-gov-", "aws-us-gov"},
	{"us-isob-", "aws-iso-b"},
	{"us-isof-", "aws-iso-f"},
	{"us-iso-", "aws-iso"},
	{"eu-isoe-", "aws-iso-e"},
	{"eusc-", "aws-eusc"},
}

// PartitionOfRegion is the AWS partition of a region: cn-north-1 is in aws-cn, us-gov-west-1 in
// aws-us-gov, us-west-2 in aws.
func PartitionOfRegion(region string) string {
	for _, p := range regionPartitions {
		if strings.HasPrefix(region, p.prefix) {
			return p.partition
		}
	}
	return "aws"
}
