package e2e

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/lanyard-dev/lanyard/internal/cli"
	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// lanyard import --from annotations --from-cluster reads the cluster's annotated ServiceAccounts
// and prints the associations that give their pods the same identities; the API server (schema
// and lanyard's validating webhook) accepts every one of them.
func TestImportAnnotationsFromCluster(t *testing.T) {
	ns := namespace(t, true)
	serviceAccount(t, ns, "legacy-aws", map[string]string{policy.EKSRoleARN: roleARN})
	serviceAccount(t, ns, "legacy-azure", map[string]string{policy.AzureClientID: clientID, policy.AzureTenantID: tenantID})
	serviceAccount(t, ns, "plain", nil)

	var stdout, stderr bytes.Buffer
	code := cli.Run([]string{"import", "--from", "annotations", "--from-cluster", "--kubeconfig", kubeconfig(t),
		"--aws-default-region", "eu-west-1"}, strings.NewReader(""), &stdout, &stderr)
	require.Equal(t, cli.ExitOK, code, "stderr: %s", stderr.String())

	imported := map[string]*v1alpha1.IdentityAssociation{}
	for _, doc := range strings.Split(stdout.String(), "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		ia := &v1alpha1.IdentityAssociation{}
		require.NoError(t, yaml.UnmarshalStrict([]byte(doc), ia), "%s", doc)
		if ia.Spec.Namespace == ns {
			imported[ia.Spec.ServiceAccountName] = ia
		}
	}
	require.Len(t, imported, 2, "one association per annotated ServiceAccount of the namespace:\n%s", stdout.String())
	aws := imported["legacy-aws"]
	require.NotNil(t, aws)
	require.NotNil(t, aws.Spec.AWS)
	assert.Equal(t, roleARN, aws.Spec.AWS.RoleARN)
	assert.Equal(t, v1alpha1.AWSModeIRSA, aws.Spec.AWS.Mode)
	assert.Equal(t, "eu-west-1", aws.Spec.AWS.Region)
	azure := imported["legacy-azure"]
	require.NotNil(t, azure)
	require.NotNil(t, azure.Spec.Azure)
	assert.Equal(t, clientID, azure.Spec.Azure.ClientID)
	assert.Equal(t, tenantID, azure.Spec.Azure.TenantID)

	for _, ia := range imported {
		require.NoError(t, k8s.Create(ctx(t), ia, client.DryRunAll), "the API server accepts %s", ia.Name)
	}
}
