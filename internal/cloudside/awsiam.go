package cloudside

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode"

	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// IAMPolicyVersion is the current IAM policy language version.
const IAMPolicyVersion = "2012-10-17"

// IAMPolicyDocument is an IAM policy document (here: a role's trust policy).
type IAMPolicyDocument struct {
	Version   string         `json:"Version"`
	Statement []IAMStatement `json:"Statement"`
}

// IAMStatement is one statement of a trust policy. Action is a string or a list of strings.
type IAMStatement struct {
	Sid       string                       `json:"Sid,omitempty"`
	Effect    string                       `json:"Effect"`
	Principal map[string]string            `json:"Principal"`
	Action    any                          `json:"Action"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

// AWSIAMExport is the output of --format aws-iam: the trust policy each role needs.
type AWSIAMExport struct {
	Roles []AWSRoleTrust `json:"roles"`
}

// AWSRoleTrust is the trust policy of one role, for aws iam update-assume-role-policy.
type AWSRoleTrust struct {
	RoleARN string `json:"roleARN"`
	// RoleName is the name --role-name takes (the ARN's last segment, without the role's path).
	RoleName string `json:"roleName"`
	// Associations are the IdentityAssociations that use the role.
	Associations []string `json:"associations"`
	// OIDCProviderARN is the IAM OIDC identity provider IRSA statements trust; it must exist in the
	// role's account (aws iam create-open-id-connect-provider, or eksctl utils associate-iam-oidc-provider).
	OIDCProviderARN string            `json:"oidcProviderARN,omitempty"`
	TrustPolicy     IAMPolicyDocument `json:"trustPolicy"`
}

// Trust policy strings (AWS documentation: IRSA role trust policies; EKS Pod Identity role trust
// policy, whose session tags kubernetes-namespace and kubernetes-service-account scope the role).
const (
	actionAssumeRoleWithWebIdentity = "sts:AssumeRoleWithWebIdentity"
	actionAssumeRole                = "sts:AssumeRole"
	actionTagSession                = "sts:TagSession"
	tagNamespace                    = "aws:RequestTag/kubernetes-namespace"
	tagServiceAccount               = "aws:RequestTag/kubernetes-service-account"
	tagClusterName                  = "aws:RequestTag/eks-cluster-name"
	defaultTrustPolicyQuota         = 2048
)

// ExportAWSIAM builds the trust policy of every role the AWS associations name: for IRSA, a
// statement trusting the cluster's IAM OIDC provider with exact "<issuer>:sub" and "<issuer>:aud"
// conditions; for PodIdentity, the pods.eks.amazonaws.com statement (sts:AssumeRole,
// sts:TagSession) limited to the association's namespace and ServiceAccount (and cluster, when
// cluster is set) through the session tags EKS adds. issuer may be nil when no association is IRSA.
func ExportAWSIAM(associations []*v1alpha1.IdentityAssociation, issuer *Issuer, cluster string) (*Result, error) {
	associations, notes := withoutConflicts(sortedAssociations(associations))
	var irsa []string
	for _, ia := range associations {
		if ia.Spec.AWS != nil && awsMode(ia.Spec.AWS) == v1alpha1.AWSModeIRSA {
			irsa = append(irsa, ia.Name)
		}
	}
	if issuer == nil && len(irsa) > 0 {
		return nil, fmt.Errorf("--oidc-issuer: required with --format aws-iam for IRSA associations (IdentityAssociation %s): IRSA trust policies name the cluster's OIDC issuer",
			strings.Join(irsa, ", "))
	}

	byRole := map[string]*AWSRoleTrust{}
	var order []string
	var errs []error
	for _, ia := range associations {
		a := ia.Spec.AWS
		if a == nil {
			continue
		}
		arn, err := parseRoleARN(a.RoleARN)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: spec.aws.roleARN: %w", associationRef(ia), err))
			continue
		}
		role := byRole[a.RoleARN]
		if role == nil {
			role = &AWSRoleTrust{RoleARN: a.RoleARN, RoleName: arn.Name, TrustPolicy: IAMPolicyDocument{Version: IAMPolicyVersion}}
			byRole[a.RoleARN] = role
			order = append(order, a.RoleARN)
		}
		role.Associations = append(role.Associations, ia.Name)
		st := IAMStatement{Sid: sid(ia.Name), Effect: "Allow"}
		if awsMode(a) == v1alpha1.AWSModeIRSA {
			provider := fmt.Sprintf("arn:%s:iam::%s:oidc-provider/%s", arn.Partition, arn.Account, issuer.HostPath)
			role.OIDCProviderARN = provider
			audience := a.Audience
			if audience == "" {
				audience = AudienceIRSA
			}
			st.Principal = map[string]string{"Federated": provider}
			st.Action = actionAssumeRoleWithWebIdentity
			st.Condition = map[string]map[string]string{"StringEquals": {
				issuer.HostPath + ":sub": Subject(ia.Spec.Namespace, ia.Spec.ServiceAccountName),
				issuer.HostPath + ":aud": audience,
			}}
		} else {
			cond := map[string]string{tagNamespace: ia.Spec.Namespace, tagServiceAccount: ia.Spec.ServiceAccountName}
			if cluster != "" {
				cond[tagClusterName] = cluster
			}
			st.Principal = map[string]string{"Service": AudiencePodIdentity}
			st.Action = []string{actionAssumeRole, actionTagSession}
			st.Condition = map[string]map[string]string{"StringEquals": cond}
		}
		role.TrustPolicy.Statement = append(role.TrustPolicy.Statement, st)
		for _, msg := range Problems(ia) {
			notes = append(notes, Note{Severity: SeverityWarning, Object: associationRef(ia), Message: msg})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(order) == 0 {
		notes = append(notes, Note{Severity: SeverityInfo, Object: "input", Message: "no AWS associations to export: nothing written"})
		return &Result{Notes: notes}, nil
	}
	sort.Strings(order)
	out := AWSIAMExport{}
	for _, arn := range order {
		role := byRole[arn]
		uniqueSids(role.TrustPolicy.Statement)
		if n := compactSize(role.TrustPolicy); n > defaultTrustPolicyQuota {
			notes = append(notes, Note{Severity: SeverityWarning, Object: "role " + arn,
				Message: fmt.Sprintf("trust policy is %d characters without whitespace: over IAM's default quota of %d (Service Quotas can raise it to 4096); split the ServiceAccounts over more roles otherwise",
					n, defaultTrustPolicyQuota)})
		}
		out.Roles = append(out.Roles, *role)
	}
	js, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, err
	}
	return &Result{Content: append(js, '\n'), Notes: notes}, nil
}

// sid turns an association name into a statement ID (IAM allows only ASCII letters and digits):
// shop-s3-reader becomes LanyardShopS3Reader.
func sid(name string) string {
	var b strings.Builder
	b.WriteString("Lanyard")
	upper := true
	for _, r := range name {
		switch {
		case r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			if upper {
				r = unicode.ToUpper(r)
			}
			b.WriteRune(r)
			upper = false
		default:
			upper = true
		}
	}
	return b.String()
}

// uniqueSids numbers statement IDs that two association names map to (a.b and a-b).
func uniqueSids(statements []IAMStatement) {
	taken := map[string]bool{}
	for i := range statements {
		id := statements[i].Sid
		for n := 2; taken[id]; n++ {
			id = fmt.Sprintf("%s%d", statements[i].Sid, n)
		}
		statements[i].Sid = id
		taken[id] = true
	}
}

func compactSize(doc IAMPolicyDocument) int {
	js, err := json.Marshal(doc)
	if err != nil {
		return 0
	}
	return len(js)
}
