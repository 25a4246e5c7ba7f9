package deploy_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	certmanagerv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	helmrelease "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/kustomize/kyaml/resid"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/lanyard-dev/lanyard/internal/cli"
)

const (
	chartDir = "helm/lanyard"
	crdsDir  = "crds"
	// The release of every equivalence test: its names must be the overlays' names.
	defaultRelease   = "lanyard"
	defaultNamespace = "lanyard-system"
	// The Kubernetes version the chart is rendered for (the k8s.io/* modules' minor); Helm's SDK
	// defaults to 1.20 in tests, which the chart's kubeVersion refuses.
	renderKubeVersion = "v1.37.2"
)

// helmOnlyLabels are the labels the chart puts on every object and the overlays do not: Helm's
// bookkeeping (chart, release, manager) and the app version, which kustomize has no notion of.
// The equivalence tests drop them; every other label must be the overlays'.
var helmOnlyLabels = []string{
	"helm.sh/chart",
	"app.kubernetes.io/managed-by",
	"app.kubernetes.io/instance",
	"app.kubernetes.io/version",
}

// loadChart loads deploy/helm/lanyard as `helm install` does (Chart.yaml apiVersion v2).
func loadChart(t *testing.T) *chartv2.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	require.NoError(t, err, "load chart %s", chartDir)
	return ch
}

// renderChart renders the chart as `helm template <release> deploy/helm/lanyard -n <namespace>`
// would with vals given by --values/--set: client only (no cluster), values validated against
// values.schema.json, CRDs (crds/) left out as `helm template` does without --include-crds.
func renderChart(t *testing.T, release, namespace string, vals map[string]any) ([]object, error) {
	t.Helper()
	ch := loadChart(t)
	install := action.NewInstall(action.NewConfiguration())
	install.DryRunStrategy = action.DryRunClient
	install.Replace = true // no release storage to check the name against
	install.ReleaseName = release
	install.Namespace = namespace
	kv, err := common.ParseKubeVersion(renderKubeVersion)
	require.NoError(t, err)
	install.KubeVersion = kv
	if vals == nil {
		vals = map[string]any{}
	}
	rel, err := install.Run(ch, vals)
	if err != nil {
		return nil, err
	}
	r, ok := rel.(*helmrelease.Release)
	require.True(t, ok, "release type %T", rel)
	require.Empty(t, r.Hooks, "the chart renders no hooks")
	return splitManifest(t, r.Manifest), nil
}

// mustRenderChart is renderChart for values that must render.
func mustRenderChart(t *testing.T, vals map[string]any) []object {
	t.Helper()
	objs, err := renderChart(t, defaultRelease, defaultNamespace, vals)
	require.NoError(t, err, "render chart with %v", vals)
	return objs
}

// splitManifest cuts a rendered manifest into objects (with their JSON, as renderOverlay).
func splitManifest(t *testing.T, manifest string) []object {
	t.Helper()
	docs := releaseutil.SplitManifests(manifest)
	var objs []object
	for _, key := range slices.Sorted(maps.Keys(docs)) {
		doc := docs[key]
		data, err := sigsyaml.YAMLToJSONStrict([]byte(doc))
		require.NoError(t, err, "rendered document:\n%s", doc)
		if string(data) == "null" {
			continue // an empty document
		}
		var head struct {
			metav1.TypeMeta
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		require.NoError(t, json.Unmarshal(data, &head), "rendered document:\n%s", doc)
		gv, err := schema.ParseGroupVersion(head.APIVersion)
		require.NoError(t, err, "rendered document:\n%s", doc)
		objs = append(objs, object{
			group: gv.Group, kind: head.Kind, name: head.Metadata.Name, namespace: head.Metadata.Namespace,
			clusterScoped: resid.NewGvk(gv.Group, gv.Version, head.Kind).IsClusterScoped(),
			json:          data,
		})
	}
	return objs
}

// serviceMonitor is the part of the Prometheus Operator's monitoring.coreos.com/v1 ServiceMonitor
// the chart renders, field names as in github.com/prometheus-operator/prometheus-operator's
// pkg/apis/monitoring/v1 (not a dependency of lanyard). Decoded strictly, it fails on any field
// the chart renders that is not listed here, so each new one is looked at.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path,omitempty"`
			Scheme        string `json:"scheme,omitempty"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// typed decodes o strictly into *T.
func typed[T any, PT interface {
	*T
	metav1.Object
}](t *testing.T, o object) metav1.Object {
	t.Helper()
	v := decodeStrict[T](t, o)
	return PT(&v)
}

// decodeTyped decodes o strictly into its Go API type; a kind it does not know fails the test.
func decodeTyped(t *testing.T, o object) metav1.Object {
	t.Helper()
	switch o.group + "/" + o.kind {
	case "/Namespace":
		return typed[corev1.Namespace](t, o)
	case "/ServiceAccount":
		return typed[corev1.ServiceAccount](t, o)
	case "/Service":
		return typed[corev1.Service](t, o)
	case "apps/Deployment":
		return typed[appsv1.Deployment](t, o)
	case "policy/PodDisruptionBudget":
		return typed[policyv1.PodDisruptionBudget](t, o)
	case "networking.k8s.io/NetworkPolicy":
		return typed[networkingv1.NetworkPolicy](t, o)
	case "rbac.authorization.k8s.io/ClusterRole":
		return typed[rbacv1.ClusterRole](t, o)
	case "rbac.authorization.k8s.io/Role":
		return typed[rbacv1.Role](t, o)
	case "rbac.authorization.k8s.io/ClusterRoleBinding":
		return typed[rbacv1.ClusterRoleBinding](t, o)
	case "rbac.authorization.k8s.io/RoleBinding":
		return typed[rbacv1.RoleBinding](t, o)
	case "admissionregistration.k8s.io/MutatingWebhookConfiguration":
		return typed[admissionregistrationv1.MutatingWebhookConfiguration](t, o)
	case "admissionregistration.k8s.io/ValidatingWebhookConfiguration":
		return typed[admissionregistrationv1.ValidatingWebhookConfiguration](t, o)
	case "cert-manager.io/Issuer":
		return typed[certmanagerv1.Issuer](t, o)
	case "cert-manager.io/Certificate":
		return typed[certmanagerv1.Certificate](t, o)
	case "monitoring.coreos.com/ServiceMonitor":
		return typed[serviceMonitor](t, o)
	}
	require.FailNow(t, "no Go type for this kind; extend decodeTyped", "%s", o)
	return nil
}

// byKey indexes objects by kind, namespace and name.
func byKey(objs []object) map[string]object {
	m := map[string]object{}
	for _, o := range objs {
		m[o.String()] = o
	}
	return m
}

// only returns the one object of group/kind in objs.
func only[T any](t *testing.T, objs []object, group, kind string) T {
	t.Helper()
	found := ofKind(objs, group, kind)
	require.Len(t, found, 1, "%s.%s objects", kind, group)
	return decodeStrict[T](t, found[0])
}

// ofKind returns the objects of group/kind in objs.
func ofKind(objs []object, group, kind string) []object {
	var found []object
	for _, o := range objs {
		if o.group == group && o.kind == kind {
			found = append(found, o)
		}
	}
	return found
}

// lanyardContainerOf returns the Deployment's lanyard container.
func lanyardContainerOf(t *testing.T, d appsv1.Deployment) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "lanyard" {
			return c
		}
	}
	require.FailNow(t, "the Deployment has no lanyard container")
	return corev1.Container{}
}

// secretMountedAtCertDir returns the name of the Secret volume mounted at --cert-dir, "" if none.
func secretMountedAtCertDir(t *testing.T, d appsv1.Deployment) string {
	t.Helper()
	c := lanyardContainerOf(t, d)
	certDirs := flagValues(c.Args, "cert-dir")
	require.Len(t, certDirs, 1, "--cert-dir in %q", c.Args)
	for _, m := range c.VolumeMounts {
		if m.MountPath != certDirs[0] {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == m.Name {
				require.NotNil(t, v.Secret, "volume %s at --cert-dir is not a Secret volume", v.Name)
				return v.Secret.SecretName
			}
		}
	}
	return ""
}

// assertChartEqualsOverlay renders the chart with vals (release lanyard in lanyard-system) and the
// kustomize overlay dir, and requires the same objects with the same content, except:
//   - the Namespace: Helm installs into an existing (or --create-namespace) namespace;
//   - the CRDs: the chart ships them in crds/, which TestChart_CRDsAreTheGeneratedCRDs compares;
//   - helmOnlyLabels;
//   - the differences each object's comparison names below, each for a reason given there.
func assertChartEqualsOverlay(t *testing.T, vals map[string]any, dir string) {
	t.Helper()
	want, err := renderOverlay(dir)
	require.NoError(t, err, "kustomize build %s", dir)
	got := mustRenderChart(t, vals)
	appVersion := loadChart(t).Metadata.AppVersion

	var namespaces []string
	want = slices.DeleteFunc(want, func(o object) bool {
		switch {
		case o.group == "" && o.kind == "Namespace":
			namespaces = append(namespaces, o.name)
			return true
		case o.group == "apiextensions.k8s.io" && o.kind == "CustomResourceDefinition":
			return true
		}
		return false
	})
	require.Equal(t, []string{defaultNamespace}, namespaces, "the overlay's Namespace is the release namespace of this test")

	wantByKey, gotByKey := byKey(want), byKey(got)
	require.ElementsMatch(t, slices.Sorted(maps.Keys(wantByKey)), slices.Sorted(maps.Keys(gotByKey)),
		"objects of %s (without Namespace and CRDs) and of the chart", dir)

	for key, w := range wantByKey {
		g := gotByKey[key]
		wantObj, gotObj := decodeTyped(t, w), decodeTyped(t, g)

		gotLabels := gotObj.GetLabels()
		for _, l := range helmOnlyLabels {
			assert.Contains(t, gotLabels, l, "%s: the chart's label", key)
			delete(gotLabels, l)
		}
		gotObj.SetLabels(gotLabels)

		switch gotTyped := gotObj.(type) {
		case *appsv1.Deployment:
			// The overlays run ghcr.io/lanyard-dev/lanyard:latest (kustomize users pin it with
			// `kustomize edit set image`); the chart pins the image to its appVersion, so that one
			// chart version always installs the same lanyard.
			wantTyped := wantObj.(*appsv1.Deployment)
			require.Len(t, gotTyped.Spec.Template.Spec.Containers, 1)
			require.Len(t, wantTyped.Spec.Template.Spec.Containers, 1)
			assert.Equal(t, "ghcr.io/lanyard-dev/lanyard:"+appVersion, gotTyped.Spec.Template.Spec.Containers[0].Image,
				"the chart's image is its appVersion")
			assert.Equal(t, "ghcr.io/lanyard-dev/lanyard:latest", wantTyped.Spec.Template.Spec.Containers[0].Image)
			gotTyped.Spec.Template.Spec.Containers[0].Image = wantTyped.Spec.Template.Spec.Containers[0].Image
		case *corev1.Service:
			// The chart's metrics Service carries app.kubernetes.io/component=metrics, so that the
			// ServiceMonitor selects it and not the webhook's (the overlays label both alike).
			if gotTyped.Name == "lanyard-metrics" {
				assert.Equal(t, "metrics", gotTyped.Labels["app.kubernetes.io/component"], "%s", key)
				delete(gotTyped.Labels, "app.kubernetes.io/component")
			}
		}

		assert.Equal(t, wantObj, gotObj, "%s: chart (+) differs from %s (-)", key, dir)
	}
}

func TestChart_DefaultValuesRenderTheSelfSignedOverlay(t *testing.T) {
	assertChartEqualsOverlay(t, nil, selfSignedOverlay)
}

func TestChart_CertModeCertManagerRendersTheCertManagerOverlay(t *testing.T) {
	assertChartEqualsOverlay(t, map[string]any{"certMode": "cert-manager"}, certManagerOverlay)
}

// valueSets are values that together render every template of the chart and every optional field.
func valueSets() map[string]map[string]any {
	return map[string]map[string]any{
		"defaults":     nil,
		"cert-manager": {"certMode": "cert-manager"},
		"secret": {
			"certMode": "secret", "existingSecret": map[string]any{"name": "my-tls"},
			"caBundle": base64.StdEncoding.EncodeToString([]byte(testCAPEM)),
		},
		"everything set": {
			"certMode":      "self-signed",
			"replicaCount":  3,
			"image":         map[string]any{"repository": "registry.example/lanyard", "tag": "v9.9.9", "pullPolicy": "IfNotPresent"},
			"failurePolicy": "Ignore",
			// matchLabels: null drops the default (Helm merges maps with values.yaml).
			"namespaceSelector": map[string]any{"matchLabels": nil, "matchExpressions": []any{map[string]any{"key": "team", "operator": "Exists"}}},
			"selfSigned":        map[string]any{"caLifetime": "17520h", "certLifetime": "720h"},
			"compatAnnotations": false,
			"azure":             map[string]any{"defaultTenantID": "00000000-0000-0000-0000-000000000001", "cloud": "AzureChinaCloud"},
			"aws":               map[string]any{"defaultRegion": "eu-west-1", "podIdentityIPv6": true},
			"logLevel":          "debug",
			"commonLabels":      map[string]any{"team": "platform"},
			"commonAnnotations": map[string]any{"owner": "platform@example.com"},
			"podLabels":         map[string]any{"sidecar.istio.io/inject": "false"},
			"podAnnotations":    map[string]any{"cluster-autoscaler.kubernetes.io/safe-to-evict": "true"},
			"priorityClassName": "",
			"nodeSelector":      map[string]any{"kubernetes.io/os": "linux"},
			"tolerations":       []any{map[string]any{"key": "dedicated", "operator": "Equal", "value": "system", "effect": "NoSchedule"}},
			"serviceMonitor":    map[string]any{"enabled": true, "interval": "30s", "scrapeTimeout": "10s", "labels": map[string]any{"release": "prometheus"}},
			"networkPolicy":     map[string]any{"enabled": true},
		},
	}
}

// A CA certificate's PEM, only ever base64-encoded into caBundle.
const testCAPEM = "-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIBATAKBggqhkjOPQQDAjAVMRMwEQYDVQQDEwpsYW55YXJk\n-----END CERTIFICATE-----\n"

func TestChart_EveryRenderedObjectDecodesStrictlyIntoItsAPIType(t *testing.T) {
	for name, vals := range valueSets() {
		t.Run(name, func(t *testing.T) {
			objs := mustRenderChart(t, vals)
			require.NotEmpty(t, objs)
			for _, o := range objs {
				obj := decodeTyped(t, o)
				assert.Equal(t, o.name, obj.GetName(), "%s", o)
				if o.clusterScoped {
					assert.Empty(t, o.namespace, "cluster-scoped %s", o)
				} else {
					assert.Equal(t, defaultNamespace, o.namespace, "namespaced %s is in the release namespace", o)
				}
			}
		})
	}
}

func TestChart_CRDsAreTheGeneratedCRDs(t *testing.T) {
	want := map[string][]byte{}
	entries, err := os.ReadDir(crdsDir)
	require.NoError(t, err)
	for _, e := range entries {
		if e.IsDir() || e.Name() == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(crdsDir, e.Name()))
		require.NoError(t, err)
		want[e.Name()] = data
	}
	require.NotEmpty(t, want, "deploy/crds holds the generated CRDs")

	got := map[string][]byte{}
	entries, err = os.ReadDir(filepath.Join(chartDir, "crds"))
	require.NoError(t, err)
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(chartDir, "crds", e.Name()))
		require.NoError(t, err)
		got[e.Name()] = data
	}
	require.ElementsMatch(t, slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got)),
		"files of deploy/crds (without kustomization.yaml) and of %s/crds", chartDir)
	for name, data := range want {
		// Byte for byte: refresh with `cp deploy/crds/*_*.yaml deploy/helm/lanyard/crds/` after make generate.
		assert.True(t, bytes.Equal(data, got[name]), "%s/crds/%s differs from deploy/crds/%s", chartDir, name, name)
	}

	// And Helm takes them for CRDs (installed before the templates).
	var loaded []string
	for _, crd := range loadChart(t).CRDObjects() {
		loaded = append(loaded, filepath.Base(crd.Name))
		assert.True(t, bytes.Equal(want[filepath.Base(crd.Name)], crd.File.Data), "loaded %s", crd.Name)
	}
	assert.ElementsMatch(t, slices.Sorted(maps.Keys(want)), loaded, "CRDs Helm loads from the chart")
}

func TestChart_SchemaRejectsValuesOfTheWrongTypeNamingTheValue(t *testing.T) {
	for _, tc := range []struct {
		vals map[string]any
		path string
	}{
		{map[string]any{"replicaCount": "two"}, "/replicaCount"},
		{map[string]any{"certMode": "bogus"}, "/certMode"},
		{map[string]any{"failurePolicy": "Sometimes"}, "/failurePolicy"},
		{map[string]any{"logLevel": "verbose"}, "/logLevel"},
		{map[string]any{"compatAnnotations": "yes"}, "/compatAnnotations"},
		{map[string]any{"image": map[string]any{"tag": 1.2}}, "/image/tag"},
		{map[string]any{"commonLabels": map[string]any{"n": 1}}, "/commonLabels/n"},
		{map[string]any{"selfSigned": map[string]any{"caLifetime": "1 year"}}, "/selfSigned/caLifetime"},
		// A misspelt value is an error, not silently ignored.
		{map[string]any{"replicas": 3}, "replicas"},
		{map[string]any{"aws": map[string]any{"region": "eu-west-1"}}, "region"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			_, err := renderChart(t, defaultRelease, defaultNamespace, tc.vals)
			require.Error(t, err, "values %v", tc.vals)
			assert.Contains(t, err.Error(), "values don't meet the specifications of the schema", "%v", err)
			assert.Contains(t, err.Error(), tc.path, "the error names the value")
		})
	}
}

func TestChart_CertModeSecretServesTheExistingSecretWithTheGivenCABundleAndNoSecretRBAC(t *testing.T) {
	objs := mustRenderChart(t, map[string]any{
		"certMode":       "secret",
		"existingSecret": map[string]any{"name": "my-tls"},
		"caBundle":       base64.StdEncoding.EncodeToString([]byte(testCAPEM)),
	})

	d := only[appsv1.Deployment](t, objs, "apps", "Deployment")
	assert.Equal(t, []string{"files"}, flagValues(lanyardContainerOf(t, d).Args, "cert-mode"))
	assert.Equal(t, "my-tls", secretMountedAtCertDir(t, d), "the Secret mounted at --cert-dir")

	mutating := only[admissionregistrationv1.MutatingWebhookConfiguration](t, objs, "admissionregistration.k8s.io", "MutatingWebhookConfiguration")
	validating := only[admissionregistrationv1.ValidatingWebhookConfiguration](t, objs, "admissionregistration.k8s.io", "ValidatingWebhookConfiguration")
	require.NotEmpty(t, mutating.Webhooks)
	require.NotEmpty(t, validating.Webhooks)
	for _, w := range mutating.Webhooks {
		assert.Equal(t, testCAPEM, string(w.ClientConfig.CABundle), "mutating webhook %s", w.Name)
	}
	for _, w := range validating.Webhooks {
		assert.Equal(t, testCAPEM, string(w.ClientConfig.CABundle), "validating webhook %s", w.Name)
	}
	assert.NotContains(t, mutating.Annotations, "cert-manager.io/inject-ca-from")
	assert.NotContains(t, validating.Annotations, "cert-manager.io/inject-ca-from")

	for _, o := range objs {
		assert.NotEqual(t, "cert-manager.io", o.group, "no cert-manager objects: %s", o)
		assert.NotContains(t, o.name, "self-signed", "no self-signed RBAC: %s", o)
	}
	for _, o := range ofKind(objs, "rbac.authorization.k8s.io", "Role") {
		for _, rule := range decodeStrict[rbacv1.Role](t, o).Rules {
			assert.NotContains(t, rule.Resources, "secrets", "Role %s: lanyard reads its Secret from a volume", o.name)
		}
	}
	for _, o := range ofKind(objs, "rbac.authorization.k8s.io", "ClusterRole") {
		for _, rule := range decodeStrict[rbacv1.ClusterRole](t, o).Rules {
			assert.NotContains(t, rule.Resources, "secrets", "ClusterRole %s", o.name)
			if slices.Contains(rule.Resources, "mutatingwebhookconfigurations") || slices.Contains(rule.Resources, "validatingwebhookconfigurations") {
				assert.NotContains(t, rule.Verbs, "update", "ClusterRole %s: the caBundle is the user's in files mode", o.name)
				assert.NotContains(t, rule.Verbs, "patch", "ClusterRole %s: the caBundle is the user's in files mode", o.name)
			}
		}
	}
}

func TestChart_CertModeSecretRequiresTheSecretAndTheCABundle(t *testing.T) {
	_, err := renderChart(t, defaultRelease, defaultNamespace, map[string]any{
		"certMode": "secret", "caBundle": base64.StdEncoding.EncodeToString([]byte(testCAPEM)),
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "existingSecret.name")

	_, err = renderChart(t, defaultRelease, defaultNamespace, map[string]any{
		"certMode": "secret", "existingSecret": map[string]any{"name": "my-tls"},
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "caBundle")
}

func TestChart_CommonLabelsAndAnnotationsAreOnEveryObject(t *testing.T) {
	for name, vals := range valueSets() {
		t.Run(name, func(t *testing.T) {
			vals := maps.Clone(vals)
			if vals == nil {
				vals = map[string]any{}
			}
			vals["commonLabels"] = map[string]any{"team": "platform", "cost-center": "42"}
			vals["commonAnnotations"] = map[string]any{"owner": "platform@example.com"}
			for _, o := range mustRenderChart(t, vals) {
				obj := decodeTyped(t, o)
				assert.Equal(t, "platform", obj.GetLabels()["team"], "%s", o)
				assert.Equal(t, "42", obj.GetLabels()["cost-center"], "%s", o)
				assert.Equal(t, "platform@example.com", obj.GetAnnotations()["owner"], "%s", o)
			}
		})
	}
}

func TestChart_CommonLabelsNeverReplaceTheChartsOwn(t *testing.T) {
	objs := mustRenderChart(t, map[string]any{"commonLabels": map[string]any{
		"app.kubernetes.io/name": "other", "lanyard.dev/ca-bundle": "false",
	}})
	for _, o := range objs {
		obj := decodeTyped(t, o)
		assert.Equal(t, "lanyard", obj.GetLabels()["app.kubernetes.io/name"], "%s", o)
		if strings.HasSuffix(o.kind, "WebhookConfiguration") {
			assert.Equal(t, "true", obj.GetLabels()["lanyard.dev/ca-bundle"], "%s", o)
		}
	}
}

func TestChart_ServiceMonitorScrapesTheMetricsServiceOnlyWhenEnabled(t *testing.T) {
	assert.Empty(t, ofKind(mustRenderChart(t, nil), "monitoring.coreos.com", "ServiceMonitor"), "off by default")

	objs := mustRenderChart(t, map[string]any{"serviceMonitor": map[string]any{
		"enabled": true, "interval": "30s", "labels": map[string]any{"release": "prometheus"},
	}})
	sm := only[serviceMonitor](t, objs, "monitoring.coreos.com", "ServiceMonitor")
	assert.Equal(t, "monitoring.coreos.com/v1", sm.APIVersion)
	assert.Equal(t, defaultNamespace, sm.Namespace)
	assert.Equal(t, "prometheus", sm.Labels["release"], "serviceMonitor.labels")
	assert.Equal(t, []string{defaultNamespace}, sm.Spec.NamespaceSelector.MatchNames)

	selector, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	require.NoError(t, err)
	require.False(t, selector.Empty(), "the ServiceMonitor selects by labels")
	var selected []corev1.Service
	for _, o := range ofKind(objs, "", "Service") {
		svc := decodeStrict[corev1.Service](t, o)
		if svc.Namespace == defaultNamespace && selector.Matches(labels.Set(svc.Labels)) {
			selected = append(selected, svc)
		}
	}
	require.Len(t, selected, 1, "Services the ServiceMonitor selects")
	metrics := selected[0]
	assert.Equal(t, "lanyard-metrics", metrics.Name)

	require.Len(t, sm.Spec.Endpoints, 1)
	ep := sm.Spec.Endpoints[0]
	assert.True(t, slices.ContainsFunc(metrics.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }),
		"endpoint port %q is a port of %s", ep.Port, metrics.Name)
	assert.Equal(t, "/metrics", ep.Path)
	assert.Equal(t, "http", ep.Scheme)
	assert.Equal(t, "30s", ep.Interval)

	// The metrics Service's port leads to the container's metrics port, the one --metrics-bind-address serves.
	d := only[appsv1.Deployment](t, objs, "apps", "Deployment")
	c := lanyardContainerOf(t, d)
	var targetPort int32
	for _, p := range c.Ports {
		if p.Name == metrics.Spec.Ports[0].TargetPort.String() {
			targetPort = p.ContainerPort
		}
	}
	assert.Equal(t, []string{fmt.Sprintf(":%d", targetPort)}, flagValues(c.Args, "metrics-bind-address"))
}

// Another release name and namespace: every name follows the release, every namespace the
// release namespace (nothing says lanyard-system), and lanyard is told the names it cannot
// derive (its Service and Secret in self-signed mode).
func TestChart_NamesAndNamespacesFollowTheRelease(t *testing.T) {
	const rel, ns = "acme", "security"
	for _, mode := range []string{"self-signed", "cert-manager"} {
		t.Run(mode, func(t *testing.T) {
			objs, err := renderChart(t, rel, ns, map[string]any{"certMode": mode})
			require.NoError(t, err)
			for _, o := range objs {
				assert.True(t, strings.HasPrefix(o.name, "acme-lanyard"), "%s is named after the release", o)
				assert.NotContains(t, string(o.json), defaultNamespace, "%s", o)
				if !o.clusterScoped {
					assert.Equal(t, ns, o.namespace, "%s", o)
				}
			}

			d := only[appsv1.Deployment](t, objs, "apps", "Deployment")
			c := lanyardContainerOf(t, d)
			assert.Equal(t, "acme-lanyard", d.Spec.Template.Spec.ServiceAccountName)
			assert.Contains(t, c.Env, corev1.EnvVar{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"},
			}}, "--namespace comes from the pod's namespace")
			assert.Empty(t, flagValues(c.Args, "namespace"))

			mutating := only[admissionregistrationv1.MutatingWebhookConfiguration](t, objs, "admissionregistration.k8s.io", "MutatingWebhookConfiguration")
			validating := only[admissionregistrationv1.ValidatingWebhookConfiguration](t, objs, "admissionregistration.k8s.io", "ValidatingWebhookConfiguration")
			var services []corev1.Service
			for _, o := range ofKind(objs, "", "Service") {
				services = append(services, decodeStrict[corev1.Service](t, o))
			}
			refs := []*admissionregistrationv1.ServiceReference{mutating.Webhooks[0].ClientConfig.Service, validating.Webhooks[0].ClientConfig.Service}
			for _, ref := range refs {
				require.NotNil(t, ref)
				assert.Equal(t, admissionregistrationv1.ServiceReference{
					Namespace: ns, Name: "acme-lanyard-webhook", Path: ref.Path, Port: ref.Port,
				}, *ref)
				assert.True(t, slices.ContainsFunc(services, func(s corev1.Service) bool {
					return s.Name == ref.Name && s.Namespace == ref.Namespace
				}), "the webhooks call a rendered Service")
			}
			// The release namespace is never mutated: lanyard's pods opt out by label (the webhook's
			// objectSelector never sends them) and the handler skips POD_NAMESPACE.
			assert.Equal(t, "disabled", d.Spec.Template.Labels["lanyard.dev/inject"])
			require.NotNil(t, mutating.Webhooks[0].ObjectSelector)
			objectSelector, err := metav1.LabelSelectorAsSelector(mutating.Webhooks[0].ObjectSelector)
			require.NoError(t, err)
			assert.False(t, objectSelector.Matches(labels.Set(d.Spec.Template.Labels)), "the webhook never sees lanyard's pods")

			for _, o := range ofKind(objs, "rbac.authorization.k8s.io", "RoleBinding") {
				assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "acme-lanyard", Namespace: ns}},
					decodeStrict[rbacv1.RoleBinding](t, o).Subjects, "%s", o)
			}
			for _, o := range ofKind(objs, "rbac.authorization.k8s.io", "ClusterRoleBinding") {
				assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "acme-lanyard", Namespace: ns}},
					decodeStrict[rbacv1.ClusterRoleBinding](t, o).Subjects, "%s", o)
			}

			switch mode {
			case "self-signed":
				assert.Equal(t, []string{"acme-lanyard-webhook"}, flagValues(c.Args, "service-name"))
				assert.Equal(t, []string{"acme-lanyard-webhook-tls"}, flagValues(c.Args, "cert-secret-name"))
				for _, o := range ofKind(objs, "rbac.authorization.k8s.io", "ClusterRole") {
					for _, rule := range decodeStrict[rbacv1.ClusterRole](t, o).Rules {
						if slices.Contains(rule.Verbs, "update") && slices.Contains(rule.Resources, "mutatingwebhookconfigurations") {
							assert.Equal(t, []string{mutating.Name}, rule.ResourceNames, "%s updates the release's webhook configurations", o)
							assert.Equal(t, mutating.Name, validating.Name)
						}
					}
				}
				for _, o := range ofKind(objs, "rbac.authorization.k8s.io", "Role") {
					for _, rule := range decodeStrict[rbacv1.Role](t, o).Rules {
						if slices.Contains(rule.Resources, "secrets") && !slices.Equal(rule.Verbs, []string{"create"}) {
							assert.Equal(t, []string{"acme-lanyard-webhook-tls"}, rule.ResourceNames, "%s", o)
						}
					}
				}
			case "cert-manager":
				var serving certmanagerv1.Certificate
				for _, o := range ofKind(objs, "cert-manager.io", "Certificate") {
					if cert := decodeStrict[certmanagerv1.Certificate](t, o); !cert.Spec.IsCA {
						serving = cert
					}
				}
				svc := "acme-lanyard-webhook"
				assert.ElementsMatch(t, []string{svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc.cluster.local"},
					serving.Spec.DNSNames)
				assert.Equal(t, serving.Spec.SecretName, secretMountedAtCertDir(t, d))
				assert.Equal(t, ns+"/"+serving.Name, mutating.Annotations["cert-manager.io/inject-ca-from"])
				assert.Equal(t, ns+"/"+serving.Name, validating.Annotations["cert-manager.io/inject-ca-from"])
				assert.Empty(t, flagValues(c.Args, "service-name"), "cert-manager mode does not issue certificates")
			}
		})
	}
}

func TestChart_ValuesBecomeServeFlags(t *testing.T) {
	objs := mustRenderChart(t, valueSets()["everything set"])
	d := only[appsv1.Deployment](t, objs, "apps", "Deployment")
	c := lanyardContainerOf(t, d)
	for flag, want := range map[string][]string{
		"cert-mode":                 {"self-signed"},
		"self-signed-ca-lifetime":   {"17520h"},
		"self-signed-cert-lifetime": {"720h"},
		"compat-annotations":        {"false"},
		"azure-tenant-id":           {"00000000-0000-0000-0000-000000000001"},
		"azure-cloud":               {"AzureChinaCloud"},
		"aws-default-region":        {"eu-west-1"},
		"log-level":                 {"debug"},
	} {
		assert.Equal(t, want, flagValues(c.Args, flag), "--%s in %q", flag, c.Args)
	}
	assert.Contains(t, c.Args, "--aws-pod-identity-ipv6")
	assert.Equal(t, "registry.example/lanyard:v9.9.9", c.Image)
	assert.Equal(t, corev1.PullIfNotPresent, c.ImagePullPolicy)
	assert.Equal(t, int32(3), *d.Spec.Replicas)
	assert.Empty(t, d.Spec.Template.Spec.PriorityClassName)
	assert.Equal(t, map[string]string{"kubernetes.io/os": "linux"}, d.Spec.Template.Spec.NodeSelector)
	assert.Len(t, d.Spec.Template.Spec.Tolerations, 1)
	assert.Equal(t, "false", d.Spec.Template.Labels["sidecar.istio.io/inject"], "podLabels")
	assert.Equal(t, "true", d.Spec.Template.Annotations["cluster-autoscaler.kubernetes.io/safe-to-evict"], "podAnnotations")
	assert.Subset(t, d.Spec.Template.Labels, d.Spec.Selector.MatchLabels, "the pods keep the selector labels")
	assert.Equal(t, "disabled", d.Spec.Template.Labels["lanyard.dev/inject"], "lanyard's pods stay opted out")
	assert.NotContains(t, d.Spec.Template.Labels, "team", "commonLabels are for objects, podLabels for pods")

	mutating := only[admissionregistrationv1.MutatingWebhookConfiguration](t, objs, "admissionregistration.k8s.io", "MutatingWebhookConfiguration")
	validating := only[admissionregistrationv1.ValidatingWebhookConfiguration](t, objs, "admissionregistration.k8s.io", "ValidatingWebhookConfiguration")
	require.NotNil(t, mutating.Webhooks[0].FailurePolicy)
	assert.Equal(t, admissionregistrationv1.Ignore, *mutating.Webhooks[0].FailurePolicy, "failurePolicy is the pod webhook's")
	require.NotNil(t, validating.Webhooks[0].FailurePolicy)
	assert.Equal(t, admissionregistrationv1.Fail, *validating.Webhooks[0].FailurePolicy, "IdentityAssociation validation fails closed")
	assert.Equal(t, &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: metav1.LabelSelectorOpExists}}},
		mutating.Webhooks[0].NamespaceSelector, "namespaceSelector")
}

// Every argument the chart gives lanyard serve, in every value set, is a flag lanyard serve has,
// with a value it parses (cobra parses the flags before it honours --help).
func TestChart_ServeAcceptsEveryRenderedArgument(t *testing.T) {
	for name, vals := range valueSets() {
		t.Run(name, func(t *testing.T) {
			for _, rel := range []string{defaultRelease, "acme"} {
				objs, err := renderChart(t, rel, defaultNamespace, vals)
				require.NoError(t, err)
				c := lanyardContainerOf(t, only[appsv1.Deployment](t, objs, "apps", "Deployment"))
				var stderr strings.Builder
				code := cli.Run(append(slices.Clone(c.Args), "--help"), strings.NewReader(""), io.Discard, &stderr)
				assert.Equal(t, 0, code, "lanyard %q: %s", c.Args, stderr.String())
			}
		})
	}
}

func TestChart_OptionalObjectsFollowTheirValues(t *testing.T) {
	objs := mustRenderChart(t, map[string]any{"networkPolicy": map[string]any{"enabled": false}})
	assert.Empty(t, ofKind(objs, "networking.k8s.io", "NetworkPolicy"), "networkPolicy.enabled=false")

	objs = mustRenderChart(t, map[string]any{"replicaCount": 1})
	assert.Empty(t, ofKind(objs, "policy", "PodDisruptionBudget"), "one replica: a PDB of minAvailable 1 would block every drain")
	objs = mustRenderChart(t, nil)
	assert.Len(t, ofKind(objs, "policy", "PodDisruptionBudget"), 1)
}

func TestChart_DefaultValuesAreTheDocumentedOnes(t *testing.T) {
	vals := loadChart(t).Values
	assert.EqualValues(t, 2, vals["replicaCount"])
	assert.Equal(t, "self-signed", vals["certMode"])
	assert.Equal(t, "Fail", vals["failurePolicy"])
	assert.Equal(t, "info", vals["logLevel"])
	assert.Equal(t, true, vals["compatAnnotations"])
	assert.Equal(t, "system-cluster-critical", vals["priorityClassName"])
	assert.Equal(t, map[string]any{"enabled": false, "interval": "", "scrapeTimeout": "", "labels": map[string]any{}}, vals["serviceMonitor"])
	assert.Equal(t, map[string]any{"enabled": true}, vals["networkPolicy"])
	assert.Equal(t, map[string]any{"matchLabels": map[string]any{"lanyard.dev/inject": "enabled"}}, vals["namespaceSelector"])
}

func TestChart_PodLabelsNeverReplaceTheSelectorOrTheOptOut(t *testing.T) {
	objs := mustRenderChart(t, map[string]any{"podLabels": map[string]any{
		"app.kubernetes.io/name": "other", "lanyard.dev/inject": "enabled", "team": "platform",
	}})
	d := only[appsv1.Deployment](t, objs, "apps", "Deployment")
	assert.Equal(t, map[string]string{
		"app.kubernetes.io/name": "lanyard", "app.kubernetes.io/component": "webhook",
		"lanyard.dev/inject": "disabled", "team": "platform",
	}, d.Spec.Template.Labels)
}

// helm lint --strict (warnings fail too), for every value set.
func TestChart_PassesHelmLintStrict(t *testing.T) {
	kv, err := common.ParseKubeVersion(renderKubeVersion)
	require.NoError(t, err)
	for name, vals := range valueSets() {
		t.Run(name, func(t *testing.T) {
			lint := action.NewLint()
			lint.Strict = true
			lint.Namespace = defaultNamespace
			lint.KubeVersion = kv
			if vals == nil {
				vals = map[string]any{}
			}
			res := lint.Run([]string{chartDir}, vals)
			assert.Equal(t, 1, res.TotalChartsLinted)
			assert.Empty(t, res.Errors)
			for _, m := range res.Messages {
				t.Log(m.Error())
			}
		})
	}
}

// Every object of the kustomize base and of each overlay decodes strictly into its Go API type
// (CRDs into apiextensions' type), so a misspelt field in any install path fails here.
func TestKustomize_EveryRenderedObjectDecodesStrictlyIntoItsAPIType(t *testing.T) {
	for _, dir := range []string{"base", selfSignedOverlay, certManagerOverlay} {
		t.Run(dir, func(t *testing.T) {
			objs, err := renderOverlay(dir)
			require.NoError(t, err)
			require.NotEmpty(t, objs)
			for _, o := range objs {
				if o.kind == "CustomResourceDefinition" {
					decodeStrict[apiextensionsv1.CustomResourceDefinition](t, o)
					continue
				}
				decodeTyped(t, o)
			}
		})
	}
}
