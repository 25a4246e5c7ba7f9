package cli

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-dev/lanyard/internal/cloudside"
	"github.com/lanyard-dev/lanyard/internal/manifest"
)

const (
	cloudsideData = "internal/cli/testdata/cloudside/"
	eksIssuer     = "https://oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
	aksIssuer     = "https://eastus.oic.prod-aks.azure.com/b9d2c0e4-5a61-4c3f-8e27-6d4f1a0c93b5/4f1e2a3b-0c9d-4e8f-a7b6-5c4d3e2f1a0b/"
)

// TestExportAndImportGoldens pins every export format and import path: stdout, stderr, exit status.
func TestExportAndImportGoldens(t *testing.T) {
	tests := map[string]struct {
		args     []string
		wantCode int
	}{
		"export-eksctl": {args: []string{"export", "--format", "eksctl", "-f", cloudsideData + "policy.yaml", "--cluster", "prod", "--region", "us-west-2"}},
		"export-aws-iam": {args: []string{"export", "--format", "aws-iam", "--policy", cloudsideData + "policy.yaml",
			"--oidc-issuer", eksIssuer, "--cluster", "prod"}},
		"export-azure":    {args: []string{"export", "--format", "azure", "-f", cloudsideData + "policy.yaml", "--oidc-issuer", aksIssuer}},
		"export-gcp":      {args: []string{"export", "--format", "gcp", "-f", cloudsideData + "policy.yaml"}},
		"export-examples": {args: []string{"export", "--format", "aws-iam", "-f", "examples/policy", "--oidc-issuer", eksIssuer}},
		"export-conflict": {args: []string{"export", "--format", "eksctl", "-f", cloudsideData + "bad/conflict.yaml", "--cluster", "prod", "--region", "us-west-2"},
			wantCode: ExitFindings},
		"import-eksctl": {args: []string{"import", "--from", "eksctl", "-f", cloudsideData + "cluster.yaml"}, wantCode: ExitFindings},
		"import-annotations": {args: []string{"import", "--from", "annotations", "-f", cloudsideData + "serviceaccounts.yaml",
			"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47", "--aws-default-region", "us-west-2"}, wantCode: ExitFindings},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := run(t, "", tc.args...)
			require.Equal(t, tc.wantCode, r.code, "stderr: %s", r.stderr)
			golden(t, "cloudside/"+name+".stdout.golden", r.stdout)
			golden(t, "cloudside/"+name+".stderr.golden", r.stderr)
		})
	}
}

// TestEksctlRoundTrip: import --from eksctl, then export --format eksctl of the result, gives the
// same pod identity associations and cluster metadata.
func TestEksctlRoundTrip(t *testing.T) {
	in := run(t, "", "import", "--from", "eksctl", "-f", cloudsideData+"cluster-roundtrip.yaml")
	require.Equal(t, ExitOK, in.code, in.stderr)
	out := run(t, in.stdout, "export", "--format", "eksctl", "-f", "-", "--cluster", "staging", "--region", "eu-west-1")
	require.Equal(t, ExitOK, out.code, out.stderr)

	original := readEksctl(t, cloudsideData+"cluster-roundtrip.yaml")
	exported, err := cloudside.ParseEksctlConfig([]byte(out.stdout))
	require.NoError(t, err, "the export must be a valid eksctl ClusterConfig:\n%s", out.stdout)
	assert.Equal(t, original.Metadata.Name, exported.Metadata.Name)
	assert.Equal(t, original.Metadata.Region, exported.Metadata.Region)
	assert.Equal(t, sortedEntries(original.IAM.PodIdentityAssociations), sortedEntries(exported.IAM.PodIdentityAssociations))
}

func readEksctl(t *testing.T, path string) *cloudside.EksctlClusterConfig {
	t.Helper()
	docs, err := manifest.ReadPaths([]string{repoRoot + "/" + path}, nil)
	require.NoError(t, err)
	require.Len(t, docs, 1)
	cfg, err := cloudside.ParseEksctlConfig(docs[0].Raw)
	require.NoError(t, err)
	return cfg
}

func sortedEntries(in []cloudside.EksctlPodIdentityAssociation) []cloudside.EksctlPodIdentityAssociation {
	out := append([]cloudside.EksctlPodIdentityAssociation(nil), in...)
	sort.Slice(out, func(i, j int) bool {
		return out[i].Namespace+"/"+out[i].ServiceAccountName < out[j].Namespace+"/"+out[j].ServiceAccountName
	})
	return out
}

// TestExportedEksctlIsAValidClusterConfig: the eksctl export decodes strictly into eksctl's
// ClusterConfig schema and passes the checks eksctl makes before creating associations.
func TestExportedEksctlIsAValidClusterConfig(t *testing.T) {
	r := run(t, "", "export", "--format", "eksctl", "-f", cloudsideData+"policy.yaml", "--cluster", "prod", "--region", "us-west-2")
	require.Equal(t, ExitOK, r.code, r.stderr)
	cfg, err := cloudside.ParseEksctlConfig([]byte(r.stdout))
	require.NoError(t, err)
	assert.Equal(t, cloudside.EksctlAPIVersion, cfg.APIVersion)
	assert.Equal(t, cloudside.EksctlKind, cfg.Kind)
	assert.Len(t, cfg.IAM.PodIdentityAssociations, 2, "the PodIdentity-mode associations, not the IRSA ones")
}

// TestExportedTrustPoliciesAreValid: aws-iam output is JSON whose trust policies are IAM policy
// documents, and IRSA statements carry exactly the <issuer>:sub and <issuer>:aud condition keys.
func TestExportedTrustPoliciesAreValid(t *testing.T) {
	r := run(t, "", "export", "--format", "aws-iam", "-f", cloudsideData+"policy.yaml", "--oidc-issuer", eksIssuer)
	require.Equal(t, ExitOK, r.code, r.stderr)
	var out struct {
		Roles []struct {
			RoleARN     string          `json:"roleARN"`
			TrustPolicy json.RawMessage `json:"trustPolicy"`
		} `json:"roles"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	require.NotEmpty(t, out.Roles)
	host := strings.TrimPrefix(eksIssuer, "https://")
	irsa := 0
	for _, role := range out.Roles {
		var doc struct {
			Version   string
			Statement []struct {
				Sid       string
				Effect    string
				Principal map[string]string
				Action    json.RawMessage
				Condition map[string]map[string]string
			}
		}
		pd := json.NewDecoder(strings.NewReader(string(role.TrustPolicy)))
		pd.DisallowUnknownFields()
		require.NoError(t, pd.Decode(&doc), role.RoleARN)
		assert.Equal(t, "2012-10-17", doc.Version)
		require.NotEmpty(t, doc.Statement)
		for _, st := range doc.Statement {
			assert.Equal(t, "Allow", st.Effect)
			assert.Regexp(t, `^[A-Za-z0-9]+$`, st.Sid)
			if fed, ok := st.Principal["Federated"]; ok {
				irsa++
				assert.Regexp(t, `^arn:aws:iam::[0-9]{12}:oidc-provider/`+host+`$`, fed)
				assert.JSONEq(t, `"sts:AssumeRoleWithWebIdentity"`, string(st.Action))
				keys := make([]string, 0, len(st.Condition["StringEquals"]))
				for k := range st.Condition["StringEquals"] {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				assert.Equal(t, []string{host + ":aud", host + ":sub"}, keys)
				assert.Regexp(t, `^system:serviceaccount:[a-z0-9-]+:[a-z0-9.-]+$`, st.Condition["StringEquals"][host+":sub"])
			} else {
				assert.Equal(t, map[string]string{"Service": "pods.eks.amazonaws.com"}, st.Principal)
				assert.JSONEq(t, `["sts:AssumeRole","sts:TagSession"]`, string(st.Action))
			}
		}
	}
	assert.Equal(t, 2, irsa, "the two IRSA associations")
}

// TestExportAndImportErrors: bad flags and input exit 2 naming the flag or field, and nothing is
// written to stdout.
func TestExportAndImportErrors(t *testing.T) {
	tests := map[string]struct {
		args       []string
		stdin      string
		wantStderr []string
	}{
		"no format": {
			args: []string{"export", "-f", cloudsideData + "policy.yaml"}, wantStderr: []string{"--format: required"},
		},
		"unknown format": {
			args: []string{"export", "--format", "terraform", "-f", cloudsideData + "policy.yaml"}, wantStderr: []string{`--format "terraform": must be one of eksctl, aws-iam, azure, gcp`},
		},
		"no input": {
			args: []string{"export", "--format", "gcp"}, wantStderr: []string{"no input: pass -f FILE|DIR|-, --policy FILE|DIR or --from-cluster"},
		},
		"eksctl without cluster": {
			args: []string{"export", "--format", "eksctl", "-f", cloudsideData + "policy.yaml", "--region", "us-west-2"}, wantStderr: []string{"--cluster: required with --format eksctl"},
		},
		"eksctl without region": {
			args: []string{"export", "--format", "eksctl", "-f", cloudsideData + "policy.yaml", "--cluster", "prod"}, wantStderr: []string{"--region: required with --format eksctl"},
		},
		"eksctl region of another partition": {
			args:       []string{"export", "--format", "eksctl", "-f", cloudsideData + "policy.yaml", "--cluster", "prod", "--region", "cn-north-1"},
			wantStderr: []string{"IdentityAssociation shop-catalog: spec.aws.roleARN arn:aws:iam::111122223333:role/shop-s3-reader is in partition aws, but --region cn-north-1 is in partition aws-cn"},
		},
		"bad cluster name": {
			args: []string{"export", "--format", "eksctl", "-f", cloudsideData + "policy.yaml", "--cluster", "-prod", "--region", "us-west-2"}, wantStderr: []string{`--cluster "-prod": must be an EKS cluster name`},
		},
		"aws-iam with IRSA needs the issuer": {
			args:       []string{"export", "--format", "aws-iam", "-f", cloudsideData + "policy.yaml"},
			wantStderr: []string{"--oidc-issuer: required with --format aws-iam for IRSA associations (IdentityAssociation billing-exporter, shop-orders)"},
		},
		"azure needs the issuer": {
			args: []string{"export", "--format", "azure", "-f", cloudsideData + "policy.yaml"}, wantStderr: []string{"--oidc-issuer: required with --format azure"},
		},
		"issuer over http": {
			args:       []string{"export", "--format", "azure", "-f", cloudsideData + "policy.yaml", "--oidc-issuer", "http://issuer.example.com"},
			wantStderr: []string{`--oidc-issuer "http://issuer.example.com": must be an https:// URL`},
		},
		"invalid association in the input": {
			args:       []string{"export", "--format", "azure", "-f", "-", "--oidc-issuer", eksIssuer},
			stdin:      "apiVersion: lanyard.dev/v1alpha1\nkind: IdentityAssociation\nmetadata: {name: x}\nspec:\n  namespace: a\n  serviceAccountName: b\n  azure: {clientID: 00000000-0000-0000-0000-000000000000, identityResourceID: /subscriptions/x}\n",
			wantStderr: []string{"<stdin> document 1 (IdentityAssociation x)", "spec.azure.identityResourceID", "must be the resource ID of a user-assigned managed identity"},
		},
		"import without --from": {
			args: []string{"import", "-f", cloudsideData + "cluster.yaml"}, wantStderr: []string{"--from: required: eksctl or annotations"},
		},
		"import from an unknown source": {
			args: []string{"import", "--from", "terraform", "-f", cloudsideData + "cluster.yaml"}, wantStderr: []string{`--from "terraform": must be eksctl or annotations`},
		},
		"import eksctl from two files": {
			args: []string{"import", "--from", "eksctl", "-f", cloudsideData + "cluster.yaml", "-f", cloudsideData + "cluster-roundtrip.yaml"}, wantStderr: []string{"--from eksctl takes one -f"},
		},
		"import eksctl with an unknown field": {
			args:       []string{"import", "--from", "eksctl", "-f", cloudsideData + "bad/eksctl-unknown-field.yaml"},
			wantStderr: []string{cloudsideData + "bad/eksctl-unknown-field.yaml document 1: eksctl ClusterConfig", `unknown field "iam.podIdentityAssociations[0].roleArn"`},
		},
		"import eksctl with a role and policies": {
			args:       []string{"import", "--from", "eksctl", "-f", cloudsideData + "bad/eksctl-role-and-policy.yaml"},
			wantStderr: []string{"iam.podIdentityAssociations[0].permissionPolicyARNs: cannot be set when iam.podIdentityAssociations[0].roleARN is set"},
		},
		"import eksctl of a Kubernetes manifest": {
			args:       []string{"import", "--from", "eksctl", "-f", "-"},
			stdin:      "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x}\n",
			wantStderr: []string{"<stdin> document 1: eksctl ClusterConfig", "apiVersion: must be eksctl.io/v1alpha5"},
		},
		"import annotations without input": {
			args: []string{"import", "--from", "annotations"}, wantStderr: []string{"no input: pass -f FILE|DIR|- or --from-cluster"},
		},
		"import annotations with a bad tenant flag": {
			args: []string{"import", "--from", "annotations", "-f", cloudsideData + "serviceaccounts.yaml", "--azure-tenant-id", "contoso"}, wantStderr: []string{"--azure-tenant-id"},
		},
		"import annotations does not take compat-annotations": {
			args: []string{"import", "--from", "annotations", "-f", cloudsideData + "serviceaccounts.yaml", "--compat-annotations=false"}, wantStderr: []string{"unknown flag: --compat-annotations"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := run(t, tc.stdin, tc.args...)
			assert.Equal(t, ExitUsage, r.code, "stderr: %s", r.stderr)
			assert.Empty(t, r.stdout, "nothing is written on a usage error")
			for _, s := range tc.wantStderr {
				assert.Contains(t, r.stderr, s)
			}
			assert.NotContains(t, r.stderr, "panic")
		})
	}
}
