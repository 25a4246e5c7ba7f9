package e2e

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lanyard-dev/lanyard/internal/manifest"
)

// The shipped kustomize base is valid for a real API server: every object passes server-side
// validation (dry run), and the Deployment carries the hardening SPEC §8 asks for.
func TestDeployBaseIsValid(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "deploy", "base", "*.yaml"))
	require.NoError(t, err)
	rbac, err := filepath.Glob(filepath.Join("..", "deploy", "base", "rbac", "*.yaml"))
	require.NoError(t, err)
	docs, err := manifest.ReadPaths(append(files, rbac...), nil)
	require.NoError(t, err)

	kinds := map[string]int{}
	for _, d := range docs {
		if d.JSON == nil || d.Kind == "Kustomization" {
			continue
		}
		kinds[d.Kind]++
		t.Run(d.Ref(), func(t *testing.T) {
			obj := &unstructured.Unstructured{}
			require.NoError(t, obj.UnmarshalJSON(d.JSON))
			if d.Kind == "Namespace" || d.Kind == "MutatingWebhookConfiguration" || d.Kind == "ValidatingWebhookConfiguration" {
				// Already there (created by the suite / installed by envtest): validate as an update.
				existing := &unstructured.Unstructured{}
				existing.SetGroupVersionKind(obj.GroupVersionKind())
				if err := k8s.Get(ctx(t), client.ObjectKeyFromObject(obj), existing); err == nil {
					obj.SetResourceVersion(existing.GetResourceVersion())
					require.NoError(t, k8s.Update(ctx(t), obj, client.DryRunAll), "server-side validation")
					return
				}
			}
			require.NoError(t, k8s.Create(ctx(t), obj, client.DryRunAll), "server-side validation")
		})
	}
	for _, kind := range []string{"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
		"Deployment", "Service", "PodDisruptionBudget", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
		assert.Positive(t, kinds[kind], "deploy/base has a %s", kind)
	}

	for _, d := range docs {
		if d.Kind != "Deployment" {
			continue
		}
		dep := &appsv1.Deployment{}
		require.NoError(t, jsonUnmarshal(d.JSON, dep))
		spec := dep.Spec.Template.Spec
		assert.Equal(t, int32(2), *dep.Spec.Replicas)
		assert.Equal(t, "system-cluster-critical", spec.PriorityClassName)
		require.NotNil(t, spec.Affinity)
		assert.NotNil(t, spec.Affinity.PodAntiAffinity)
		require.NotNil(t, spec.SecurityContext)
		assert.True(t, *spec.SecurityContext.RunAsNonRoot)
		assert.Equal(t, "RuntimeDefault", string(spec.SecurityContext.SeccompProfile.Type))
		c := spec.Containers[0]
		assert.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
		assert.False(t, *c.SecurityContext.AllowPrivilegeEscalation)
		assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
		assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
	}
}
