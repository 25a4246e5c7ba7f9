package e2e

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lanyard-dev/lanyard/internal/manifest"
)

// The shipped kustomize base is valid for a real API server: every object passes server-side
// validation (dry run), the Deployment carries the hardening SPEC §8 asks for, and the
// NetworkPolicy admits exactly the Deployment's webhook, health and metrics ports.
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
		"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
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

	// The NetworkPolicy selects the Deployment's pods and allows ingress to exactly the ports they
	// declare for the webhook (API server), health (kubelet) and metrics (Prometheus), from any
	// peer; egress stays unrestricted.
	dep, np := &appsv1.Deployment{}, &networkingv1.NetworkPolicy{}
	require.NoError(t, jsonUnmarshal(onlyDocument(t, docs, "Deployment").JSON, dep))
	require.NoError(t, jsonUnmarshal(onlyDocument(t, docs, "NetworkPolicy").JSON, np))
	assert.Equal(t, dep.Namespace, np.Namespace)
	selector, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	require.NoError(t, err)
	assert.False(t, selector.Empty(), "the NetworkPolicy selects every pod of its namespace")
	assert.True(t, selector.Matches(labels.Set(dep.Spec.Template.Labels)),
		"podSelector %s does not match the Deployment's pod labels %v", selector, dep.Spec.Template.Labels)
	assert.Equal(t, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}, np.Spec.PolicyTypes, "egress is not restricted")
	require.Len(t, np.Spec.Ingress, 1)
	rule := np.Spec.Ingress[0]
	assert.Empty(t, rule.From, "ingress from anywhere: the API server's address is not predictable")

	declared := map[string]corev1.ContainerPort{}
	for _, c := range dep.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			if p.Protocol == "" {
				p.Protocol = corev1.ProtocolTCP // the API server's default; not applied to the file
			}
			declared[p.Name] = p
		}
	}
	var want []string
	for _, name := range []string{"webhook", "health", "metrics"} {
		p, ok := declared[name]
		require.True(t, ok, "the Deployment declares no container port %q", name)
		want = append(want, portString(p))
	}
	var got []string
	for _, p := range rule.Ports {
		require.NotNil(t, p.Port, "a NetworkPolicy port without a port allows every port")
		assert.Nil(t, p.EndPort, "port range")
		var match *corev1.ContainerPort
		for _, c := range declared {
			if (p.Port.Type == intstr.String && c.Name == p.Port.StrVal) || (p.Port.Type == intstr.Int && c.ContainerPort == p.Port.IntVal) {
				match = &c
				break
			}
		}
		require.NotNil(t, match, "NetworkPolicy port %s is not a container port of the Deployment", p.Port)
		protocol := corev1.ProtocolTCP
		if p.Protocol != nil {
			protocol = *p.Protocol
		}
		assert.Equal(t, match.Protocol, protocol, "protocol of NetworkPolicy port %s", p.Port)
		got = append(got, portString(*match))
	}
	assert.ElementsMatch(t, want, got, "NetworkPolicy ingress ports")
}

// onlyDocument is the one document of kind in docs.
func onlyDocument(t *testing.T, docs []*manifest.Document, kind string) *manifest.Document {
	t.Helper()
	var found []*manifest.Document
	for _, d := range docs {
		if d.Kind == kind {
			found = append(found, d)
		}
	}
	require.Len(t, found, 1, "deploy/base has one %s", kind)
	return found[0]
}

func portString(p corev1.ContainerPort) string {
	return fmt.Sprintf("%s=%d/%s", p.Name, p.ContainerPort, p.Protocol)
}
