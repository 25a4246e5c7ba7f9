package cloudside

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

const (
	testIssuer   = "https://oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
	testGUID     = "3f1c2b7e-9d4a-4e8b-a6c5-0b7d21e4f9a3"
	testProvider = "projects/123456789012/locations/global/workloadIdentityPools/eks-prod-pool/providers/eks-prod-oidc"
)

func association(name, namespace, sa string, edit func(*v1alpha1.IdentityAssociationSpec)) *v1alpha1.IdentityAssociation {
	ia := &v1alpha1.IdentityAssociation{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.IdentityAssociationSpec{Namespace: namespace, ServiceAccountName: sa}}
	edit(&ia.Spec)
	return ia
}

func TestParseIssuer(t *testing.T) {
	tests := map[string]struct {
		in           string
		wantHostPath string
		wantErr      string
	}{
		"EKS issuer":                          {in: testIssuer, wantHostPath: strings.TrimPrefix(testIssuer, "https://")},
		"AKS issuer keeps its trailing slash": {in: "https://eastus.oic.prod-aks.azure.com/t/c/", wantHostPath: "eastus.oic.prod-aks.azure.com/t/c/"},
		"issuer with a port":                  {in: "https://kubernetes.example.com:8443", wantHostPath: "kubernetes.example.com:8443"},
		"empty":                               {in: "", wantErr: "required"},
		"plain http":                          {in: "http://issuer.example.com", wantErr: "must be an https:// URL"},
		"no scheme":                           {in: "oidc.eks.us-west-2.amazonaws.com/id/X", wantErr: "must be an https:// URL"},
		"no host":                             {in: "https:///id/X", wantErr: "has no host"},
		"query":                               {in: "https://issuer.example.com/?a=b", wantErr: "must not have user info, a query or a fragment"},
		"fragment":                            {in: "https://issuer.example.com/#x", wantErr: "must not have user info, a query or a fragment"},
		"user info":                           {in: "https://me@issuer.example.com", wantErr: "must not have user info"},
		"quote":                               {in: "https://issuer.example.com/a'b", wantErr: "must not contain spaces, quotes or backslashes"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseIssuer(tc.in)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "--oidc-issuer")
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.in, got.URL)
			assert.Equal(t, tc.wantHostPath, got.HostPath)
		})
	}
}

func TestPartitionOfRegion(t *testing.T) {
	for region, want := range map[string]string{
		"us-west-2": "aws", "eu-central-1": "aws", "cn-north-1": "aws-cn", "cn-northwest-1": "aws-cn",
		"us-gov-west-1": "aws-us-gov", "us-iso-east-1": "aws-iso", "us-isob-east-1": "aws-iso-b",
		"us-isof-south-1": "aws-iso-f", "eu-isoe-west-1": "aws-iso-e", "eusc-de-east-1": "aws-eusc",
	} {
		assert.Equal(t, want, PartitionOfRegion(region), region)
	}
}

func TestParseRoleARN(t *testing.T) {
	got, err := parseRoleARN("arn:aws-us-gov:iam::111122223333:role/team/a/reader")
	require.NoError(t, err)
	assert.Equal(t, roleARN{Partition: "aws-us-gov", Account: "111122223333", Name: "reader"}, got)
	_, err = parseRoleARN("arn:aws:iam::111122223333:user/x")
	assert.ErrorContains(t, err, "is not an IAM role ARN")
}

// Shell words must come back exactly as they went in, whatever they hold.
func TestShellQuoteRoundTrips(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	for _, s := range []string{"plain", "system:serviceaccount:a:b", "https://x/y/", "<RESOURCE_GROUP>", "it's", "a b", "$HOME", "`x`", `back\slash`, ""} {
		out, err := exec.Command(sh, "-c", "printf %s "+shellQuote(s)).Output()
		require.NoError(t, err, s)
		assert.Equal(t, s, string(out))
	}
}

func TestGCPPrincipal(t *testing.T) {
	got, err := GCPPrincipal(testProvider, "analytics", "reports")
	require.NoError(t, err)
	assert.Equal(t, "principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/eks-prod-pool/subject/system:serviceaccount:analytics:reports", got)
	_, err = GCPPrincipal("projects/1/locations/global/workloadIdentityPools/pool", "a", "b")
	assert.Error(t, err)
}

func TestParseAzureIdentityResourceID(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    AzureIdentityRef
		wantErr bool
	}{
		"as the portal shows it": {
			in:   "/subscriptions/" + testGUID + "/resourceGroups/rg-apps/providers/Microsoft.ManagedIdentity/userAssignedIdentities/reports",
			want: AzureIdentityRef{Subscription: testGUID, ResourceGroup: "rg-apps", Name: "reports"},
		},
		"as az prints it": {
			in:   "/subscriptions/" + testGUID + "/resourcegroups/RG_1/providers/microsoft.managedidentity/userassignedidentities/id-1",
			want: AzureIdentityRef{Subscription: testGUID, ResourceGroup: "RG_1", Name: "id-1"},
		},
		"another resource type": {in: "/subscriptions/" + testGUID + "/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/abc", wantErr: true},
		"empty":                 {in: "", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseAzureIdentityResourceID(tc.in)
			if tc.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestFederatedCredentialNameFitsAzure(t *testing.T) {
	assert.Equal(t, "lanyard-billing-exporter-v2", federatedCredentialName("billing", "exporter.v2"))
	long := federatedCredentialName(strings.Repeat("n", 63), strings.Repeat("s", 253))
	assert.Regexp(t, `^[a-zA-Z0-9][a-zA-Z0-9-_]{2,119}$`, long)
}

func TestStatementIDs(t *testing.T) {
	assert.Equal(t, "LanyardShopS3Reader", sid("shop-s3-reader"))
	assert.Equal(t, "LanyardAppV1", sid("app.v1"))
	statements := []IAMStatement{{Sid: sid("a-b")}, {Sid: sid("a.b")}, {Sid: "LanyardAB2"}, {Sid: sid("ab")}}
	uniqueSids(statements)
	var got []string
	for _, s := range statements {
		got = append(got, s.Sid)
	}
	assert.Equal(t, []string{"LanyardAB", "LanyardAB2", "LanyardAB22", "LanyardAb"}, got)
}

func TestAssociationNamesAreUniqueAndValid(t *testing.T) {
	n := newAssociationNamer([]*v1alpha1.IdentityAssociation{{ObjectMeta: metav1.ObjectMeta{Name: "shop-web"}}})
	taken := n.name("shop", "web")
	assert.Regexp(t, `^shop-web-[0-9a-f]{8}$`, taken, "a name already in use gets a hash")
	assert.Equal(t, "a-b-c", n.name("a-b", "c"))
	assert.NotEqual(t, "a-b-c", n.name("a", "b-c"), "two pairs never share a name")
	long := n.name(strings.Repeat("n", 63), strings.Repeat("s", 253))
	assert.LessOrEqual(t, len(long), 253)
	ia := association(long, "ns", "sa", func(s *v1alpha1.IdentityAssociationSpec) {
		s.AWS = &v1alpha1.AWSIdentity{RoleARN: "arn:aws:iam::111122223333:role/r"}
	})
	assert.Empty(t, ia.Validate())
}

func TestProblemsOfConsistentAssociations(t *testing.T) {
	for name, ia := range map[string]*v1alpha1.IdentityAssociation{
		"IRSA in aws-cn with a China region": association("a", "ns", "sa", func(s *v1alpha1.IdentityAssociationSpec) {
			s.AWS = &v1alpha1.AWSIdentity{RoleARN: "arn:aws-cn:iam::111122223333:role/r", Mode: v1alpha1.AWSModeIRSA, Region: "cn-northwest-1"}
		}),
		"PodIdentity without region": association("a", "ns", "sa", func(s *v1alpha1.IdentityAssociationSpec) {
			s.AWS = &v1alpha1.AWSIdentity{RoleARN: "arn:aws:iam::111122223333:role/r"}
		}),
		"PodIdentity with its own audience spelled out": association("a", "ns", "sa", func(s *v1alpha1.IdentityAssociationSpec) {
			s.AWS = &v1alpha1.AWSIdentity{RoleARN: "arn:aws:iam::111122223333:role/r", Audience: AudiencePodIdentity}
		}),
		"IRSA with a custom audience": association("a", "ns", "sa", func(s *v1alpha1.IdentityAssociationSpec) {
			s.AWS = &v1alpha1.AWSIdentity{RoleARN: "arn:aws:iam::111122223333:role/r", Mode: v1alpha1.AWSModeIRSA, Audience: "sts.example.com"}
		}),
		"GCP subject of exactly 127 bytes": association("a", "apps", strings.Repeat("s", 100), func(s *v1alpha1.IdentityAssociationSpec) {
			s.GCP = &v1alpha1.GCPIdentity{WorkloadIdentityProvider: testProvider}
		}),
	} {
		t.Run(name, func(t *testing.T) {
			assert.Empty(t, Problems(ia))
		})
	}
}

func TestExportAWSIAMSharesARoleAndScopesToTheCluster(t *testing.T) {
	issuer, err := ParseIssuer(testIssuer)
	require.NoError(t, err)
	role := "arn:aws:iam::111122223333:role/shared"
	irsa := func(ns, sa string) *v1alpha1.IdentityAssociation {
		return association(ns+"-"+sa, ns, sa, func(s *v1alpha1.IdentityAssociationSpec) {
			s.AWS = &v1alpha1.AWSIdentity{RoleARN: role, Mode: v1alpha1.AWSModeIRSA}
		})
	}
	res, err := ExportAWSIAM([]*v1alpha1.IdentityAssociation{irsa("b", "x"), irsa("a", "y")}, issuer, "")
	require.NoError(t, err)
	var out AWSIAMExport
	require.NoError(t, json.Unmarshal(res.Content, &out))
	require.Len(t, out.Roles, 1)
	assert.Equal(t, []string{"a-y", "b-x"}, out.Roles[0].Associations, "sorted, whatever the input order")
	require.Len(t, out.Roles[0].TrustPolicy.Statement, 2, "one statement per ServiceAccount")
	assert.Equal(t, "system:serviceaccount:a:y", out.Roles[0].TrustPolicy.Statement[0].Condition["StringEquals"][issuer.HostPath+":sub"])
}

func TestExportAWSIAMWarnsOverTheTrustPolicyQuota(t *testing.T) {
	issuer, err := ParseIssuer(testIssuer)
	require.NoError(t, err)
	var ias []*v1alpha1.IdentityAssociation
	for i := range 12 {
		sa := "service-account-" + strings.Repeat("x", i+1)
		ias = append(ias, association(sa, "apps", sa, func(s *v1alpha1.IdentityAssociationSpec) {
			s.AWS = &v1alpha1.AWSIdentity{RoleARN: "arn:aws:iam::111122223333:role/shared", Mode: v1alpha1.AWSModeIRSA}
		}))
	}
	res, err := ExportAWSIAM(ias, issuer, "")
	require.NoError(t, err)
	require.Len(t, res.Notes, 1)
	assert.Equal(t, SeverityWarning, res.Notes[0].Severity)
	assert.Contains(t, res.Notes[0].Message, "over IAM's default quota of 2048")
}

func TestExportAzureRefusesTwoCredentialsOfOneName(t *testing.T) {
	issuer, err := ParseIssuer(testIssuer)
	require.NoError(t, err)
	id := "/subscriptions/" + testGUID + "/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/shared"
	azure := func(name, sa string) *v1alpha1.IdentityAssociation {
		return association(name, "apps", sa, func(s *v1alpha1.IdentityAssociationSpec) {
			s.Azure = &v1alpha1.AzureIdentity{ClientID: testGUID, IdentityResourceID: id}
		})
	}
	_, err = ExportAzure([]*v1alpha1.IdentityAssociation{azure("one", "a.b"), azure("two", "a-b")}, issuer)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "would both create federated credential lanyard-apps-a-b")
}

func TestExportGCPReportsSubjectsGoogleRefuses(t *testing.T) {
	ia := association("long", "apps", strings.Repeat("s", 101), func(s *v1alpha1.IdentityAssociationSpec) {
		s.GCP = &v1alpha1.GCPIdentity{WorkloadIdentityProvider: testProvider}
	})
	res, err := ExportGCP([]*v1alpha1.IdentityAssociation{ia})
	require.NoError(t, err)
	assert.True(t, HasErrors(res.Notes))
	assert.Contains(t, string(res.Content), "# CANNOT WORK: the token subject")
}

func TestImportAnnotationsWithAnotherEKSPrefix(t *testing.T) {
	sa := &metav1.ObjectMeta{Name: "app", Namespace: "apps", Annotations: map[string]string{
		"iam.example.com/role-arn": "arn:aws:iam::111122223333:role/r",
		policy.EKSRoleARN:          "arn:aws:iam::111122223333:role/ignored",
	}}
	res, err := ImportAnnotations([]*metav1.ObjectMeta{sa}, nil, policy.Options{EKSAnnotationPrefix: "iam.example.com"})
	require.NoError(t, err)
	assert.Contains(t, string(res.Content), "roleARN: arn:aws:iam::111122223333:role/r\n")
	assert.NotContains(t, string(res.Content), "ignored")
}
