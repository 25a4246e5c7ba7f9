package e2e

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/lanyard-dev/lanyard/policy"
)

// One workload per anchor, moved over unchanged: the ServiceAccount and pod annotations of the EKS
// pod identity webhook and of Azure Workload Identity, through the real API server.
func TestMigratedWorkloads(t *testing.T) {
	ns := namespace(t, true)

	t.Run("EKS pod identity webhook", func(t *testing.T) {
		serviceAccount(t, ns, "eks-app", map[string]string{
			policy.EKSRoleARN: roleARN, policy.EKSTokenExpiration: "300", // the EKS webhook raises it to 600
		})
		pod := newPod(ns, "eks-app", "eks-app", "registry.example.com/app:1", "registry.example.com/proxy:1")
		pod.Annotations = map[string]string{policy.EKSSkipContainers: "c1"}
		mustCreate(t, pod)
		got := stored(t, ns, "eks-app")
		assert.Equal(t, "aws", got.Annotations[policy.AnnotationInjected])
		v := volumeNamed(got, "aws-iam-token")
		require.NotNil(t, v)
		assert.Equal(t, int64(600), *v.Projected.Sources[0].ServiceAccountToken.ExpirationSeconds)
		assert.Equal(t, roleARN, envMap(got.Spec.Containers[0])["AWS_ROLE_ARN"])
		assert.Empty(t, envMap(got.Spec.Containers[1])["AWS_ROLE_ARN"], "skipped by eks.amazonaws.com/skip-containers")
	})

	t.Run("Azure Workload Identity", func(t *testing.T) {
		serviceAccount(t, ns, "azure-app", map[string]string{policy.AzureClientID: clientID, policy.AzureTenantID: tenantID})
		pod := newPod(ns, "azure-app", "azure-app", "registry.example.com/app:1", "registry.example.com/proxy:1")
		pod.Labels = map[string]string{policy.AzureUseLabel: "true"}
		pod.Annotations = map[string]string{policy.AzureSkipContainers: "c1;"} // empty entries ignored, as the Azure webhook does
		mustCreate(t, pod)
		got := stored(t, ns, "azure-app")
		assert.Equal(t, "azure", got.Annotations[policy.AnnotationInjected])
		env := envMap(got.Spec.Containers[0])
		assert.Equal(t, clientID, env["AZURE_CLIENT_ID"])
		assert.Equal(t, "/var/run/secrets/azure/tokens/azure-identity-token", env["AZURE_FEDERATED_TOKEN_FILE"])
		assert.Empty(t, envMap(got.Spec.Containers[1])["AZURE_CLIENT_ID"], "skipped by azure.workload.identity/skip-containers")
	})

	t.Run("Azure use label without a client id", func(t *testing.T) {
		serviceAccount(t, ns, "picks-its-own", nil)
		pod := newPod(ns, "picks-its-own", "picks-its-own")
		pod.Labels = map[string]string{policy.AzureUseLabel: "true"}
		pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "AZURE_CLIENT_ID", Value: clientID}}
		mustCreate(t, pod)
		got := stored(t, ns, "picks-its-own")
		assert.Equal(t, "azure", got.Annotations[policy.AnnotationInjected])
		env := envMap(got.Spec.Containers[0])
		assert.Equal(t, clientID, env["AZURE_CLIENT_ID"], "the workload's own")
		assert.Equal(t, "72f988bf-86f1-41af-91ab-2d7cd011db47", env["AZURE_TENANT_ID"], "lanyard's --azure-tenant-id")
		assert.NotEmpty(t, env["AZURE_FEDERATED_TOKEN_FILE"])
	})
}
