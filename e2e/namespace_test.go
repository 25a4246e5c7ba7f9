package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/lanyard-dev/lanyard/policy"
)

// Installing into a namespace other than lanyard-system takes nothing but kustomize's namespace
// field: no rendered object still names lanyard-system (Service references, RoleBinding subjects,
// Roles, the Deployment), lanyard's own pods are kept away from its webhook by label wherever they
// run, and every object passes the real API server's validation in the new namespace.
func TestInstallIntoAnotherNamespace(t *testing.T) {
	const other = "lanyard-elsewhere"
	for _, overlay := range []string{"self-signed", "cert-manager"} {
		t.Run(overlay, func(t *testing.T) {
			// kustomize takes bases by relative path only: the test's kustomization lives beside them.
			dir, err := os.MkdirTemp(filepath.Join("..", "deploy"), ".e2e-namespace-")
			require.NoError(t, err)
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			target := filepath.Join("..", "overlays", overlay)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(
				"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: "+other+"\nresources:\n- "+target+"\n"), 0o600))
			rendered, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
			require.NoError(t, err)

			for _, r := range rendered.Resources() {
				data, err := r.MarshalJSON()
				require.NoError(t, err)
				if overlay == "cert-manager" && (r.GetKind() == "Certificate" || strings.HasPrefix(r.GetKind(), "Mutating") || strings.HasPrefix(r.GetKind(), "Validating")) {
					// The cert-manager overlay spells out the namespace in dnsNames and inject-ca-from
					// (cert-manager reads them as strings); see its kustomization.yaml.
					continue
				}
				assert.NotContains(t, string(data), "lanyard-system", "%s %s still names lanyard-system", r.GetKind(), r.GetName())
				obj := &unstructured.Unstructured{}
				require.NoError(t, obj.UnmarshalJSON(data))
				switch obj.GetKind() {
				case "CustomResourceDefinition", "Certificate", "Issuer":
					continue // installed by the suite / cert-manager is not in this cluster
				case "Namespace":
					assert.Equal(t, other, obj.GetName())
					if err := k8s.Create(ctx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}}); err != nil {
						require.True(t, strings.Contains(err.Error(), "already exists"), "%v", err)
					}
					continue
				case "MutatingWebhookConfiguration":
					m := &admissionregistrationv1.MutatingWebhookConfiguration{}
					require.NoError(t, jsonUnmarshal(data, m))
					for _, w := range m.Webhooks {
						assert.Equal(t, other, w.ClientConfig.Service.Namespace)
						for _, c := range w.MatchConditions {
							assert.NotContains(t, c.Expression, other, "the match conditions need no edit for the namespace")
						}
					}
				case "Deployment":
					d := &appsv1.Deployment{}
					require.NoError(t, jsonUnmarshal(data, d))
					assert.Equal(t, policy.InjectDisabled, d.Spec.Template.Labels[policy.InjectLabel],
						"lanyard's pods are never sent to lanyard, wherever it is installed")
				}
				if obj.GetNamespace() != "" {
					assert.Equal(t, other, obj.GetNamespace())
				}
				existing := &unstructured.Unstructured{}
				existing.SetGroupVersionKind(obj.GroupVersionKind())
				if err := k8s.Get(ctx(t), client.ObjectKeyFromObject(obj), existing); err == nil {
					obj.SetResourceVersion(existing.GetResourceVersion())
					require.NoError(t, k8s.Update(ctx(t), obj, client.DryRunAll), "%s %s: server-side validation", obj.GetKind(), obj.GetName())
					continue
				}
				require.NoError(t, k8s.Create(ctx(t), obj, client.DryRunAll), "%s %s: server-side validation", obj.GetKind(), obj.GetName())
			}
		})
	}
}
