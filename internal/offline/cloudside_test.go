package offline_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-dev/lanyard/internal/manifest"
	"github.com/lanyard-dev/lanyard/internal/offline"
	"github.com/lanyard-dev/lanyard/policy"
)

func awsAssociation(name, sa, aws string) string {
	return "---\napiVersion: lanyard.dev/v1alpha1\nkind: IdentityAssociation\nmetadata: {name: " + name + "}\n" +
		"spec:\n  namespace: apps\n  serviceAccountName: " + sa + "\n  aws: " + aws + "\n"
}

// An association whose cloud side cannot be right is a warning naming the association (or the
// annotated ServiceAccount), once, whether or not a workload uses it; cluster-wide defaults count.
func TestCheckCloudSideMismatch(t *testing.T) {
	long := strings.Repeat("s", 101) // system:serviceaccount:apps:<101> is 128 bytes
	tests := map[string]struct {
		policy        string
		input         string
		defaultRegion string
		want          []offline.Finding
	}{
		"role and region in one partition": {
			policy: appsNamespace + awsAssociation("ok", "app", "{roleARN: 'arn:aws-cn:iam::111122223333:role/r', mode: IRSA, region: cn-north-1}") + serviceAccountDoc("apps", "app"),
		},
		"IRSA role of aws-cn with a region of aws": {
			policy: appsNamespace + awsAssociation("cn-role", "app", "{roleARN: 'arn:aws-cn:iam::111122223333:role/r', mode: IRSA, region: us-west-2}") + serviceAccountDoc("apps", "app"),
			input: "apiVersion: v1\nkind: Pod\nmetadata: {name: p1, namespace: apps}\nspec: {serviceAccountName: app, containers: [{name: a, image: nginx}]}\n---\n" +
				"apiVersion: v1\nkind: Pod\nmetadata: {name: p2, namespace: apps}\nspec: {serviceAccountName: app, containers: [{name: a, image: nginx}]}\n",
			want: []offline.Finding{{Severity: policy.SeverityWarning, Code: offline.CodeCloudSideMismatch,
				Object: "IdentityAssociation cn-role", Source: "policy.yaml document 2 (IdentityAssociation cn-role)",
				Message: "role arn:aws-cn:iam::111122223333:role/r is in AWS partition aws-cn but region us-west-2 (AWS_REGION) is in partition aws: that region's STS cannot assume the role; set spec.aws.region to a region of the role's partition"}},
		},
		"region from --aws-default-region in another partition": {
			policy:        appsNamespace + awsAssociation("gov", "app", "{roleARN: 'arn:aws-us-gov:iam::111122223333:role/r'}") + serviceAccountDoc("apps", "app"),
			input:         "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: apps}\nspec: {serviceAccountName: app, containers: [{name: a, image: nginx}]}\n",
			defaultRegion: "eu-west-1",
			want: []offline.Finding{{Severity: policy.SeverityWarning, Code: offline.CodeCloudSideMismatch,
				Object: "IdentityAssociation gov", Source: "policy.yaml document 2 (IdentityAssociation gov)",
				Message: "role arn:aws-us-gov:iam::111122223333:role/r is in AWS partition aws-us-gov but region eu-west-1 (AWS_REGION) is in partition aws: an EKS cluster gets credentials only for roles of its own partition, and the SDK would send them to the other partition's endpoints; set spec.aws.region to a region of the role's partition"}},
		},
		"EKS webhook annotation with a default region of another partition": {
			policy:        appsNamespace + "---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: legacy\n  namespace: apps\n  annotations: {eks.amazonaws.com/role-arn: 'arn:aws-cn:iam::111122223333:role/r'}\n",
			input:         "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: apps}\nspec: {serviceAccountName: legacy, containers: [{name: a, image: nginx}]}\n",
			defaultRegion: "us-east-1",
			want: []offline.Finding{{Severity: policy.SeverityWarning, Code: offline.CodeCloudSideMismatch,
				Object: "ServiceAccount apps/legacy annotations", Source: "policy.yaml document 2 (ServiceAccount legacy)",
				Message: "role arn:aws-cn:iam::111122223333:role/r is in AWS partition aws-cn but region us-east-1 (AWS_REGION) is in partition aws: that region's STS cannot assume the role; set spec.aws.region to a region of the role's partition"}},
		},
		"PodIdentity with an audience the agent refuses": {
			policy: appsNamespace + awsAssociation("aud", "app", "{roleARN: 'arn:aws:iam::111122223333:role/r', audience: sts.amazonaws.com}") + serviceAccountDoc("apps", "app"),
			want: []offline.Finding{{Severity: policy.SeverityWarning, Code: offline.CodeCloudSideMismatch,
				Object: "IdentityAssociation aud", Source: "policy.yaml document 2 (IdentityAssociation aud)",
				Message: `mode PodIdentity with audience "sts.amazonaws.com": the EKS Pod Identity agent accepts only tokens for pods.eks.amazonaws.com; remove spec.aws.audience`}},
		},
		"GCP subject longer than google.subject allows": {
			policy: appsNamespace + "---\napiVersion: lanyard.dev/v1alpha1\nkind: IdentityAssociation\nmetadata: {name: long}\nspec:\n  namespace: apps\n  serviceAccountName: " + long +
				"\n  gcp: {workloadIdentityProvider: projects/1/locations/global/workloadIdentityPools/pool/providers/prov}\n" + serviceAccountDoc("apps", long),
			want: []offline.Finding{{Severity: policy.SeverityWarning, Code: offline.CodeCloudSideMismatch,
				Object: "IdentityAssociation long", Source: "policy.yaml document 2 (IdentityAssociation long)",
				Message: "the token subject system:serviceaccount:apps:" + long + " is 128 bytes, over the 127 bytes Google allows for google.subject: a provider mapping google.subject=assertion.sub refuses it; use shorter namespace and ServiceAccount names",
			}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := manifest.NewPolicy()
			docs, err := manifest.Split("policy.yaml", []byte(tc.policy))
			require.NoError(t, err)
			require.NoError(t, p.Add(docs, "defaultns"))
			e := &offline.Engine{Policy: p, Reader: p, DefaultNamespace: "defaultns",
				PolicyOptions: policy.Options{CompatAnnotations: true, DefaultAWSRegion: tc.defaultRegion}}
			in := tc.input
			if in == "" {
				in = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: apps}\n"
			}
			inDocs, err := manifest.Split("in.yaml", []byte(in))
			require.NoError(t, err)
			_, workloads, err := e.Process(context.Background(), inDocs)
			require.NoError(t, err)
			got := withCode(offline.Check(p, workloads), offline.CodeCloudSideMismatch)
			assert.Equal(t, tc.want, got)
		})
	}
}
