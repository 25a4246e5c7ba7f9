package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	helmrelease "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/lanyard-dev/lanyard/certs"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// renderHelm renders deploy/helm/lanyard as `helm template --include-crds` would.
func renderHelm(t *testing.T, release, namespace string, vals map[string]any) []*unstructured.Unstructured {
	t.Helper()
	ch, err := loader.Load(filepath.Join("..", "deploy", "helm", "lanyard"))
	require.NoError(t, err)
	install := action.NewInstall(action.NewConfiguration())
	install.DryRunStrategy = action.DryRunClient
	install.Replace = true
	install.ReleaseName, install.Namespace = release, namespace
	install.KubeVersion, err = common.ParseKubeVersion("v1.37.2")
	require.NoError(t, err)
	rel, err := install.Run(ch, vals)
	require.NoError(t, err)
	r, ok := rel.(*helmrelease.Release)
	require.True(t, ok)
	var docs []string
	for _, crd := range ch.CRDObjects() {
		docs = append(docs, string(crd.File.Data))
	}
	for _, doc := range releaseutil.SplitManifests(r.Manifest) {
		docs = append(docs, doc)
	}
	var out []*unstructured.Unstructured
	for _, doc := range docs {
		for _, part := range strings.Split(doc, "\n---") {
			if strings.TrimSpace(part) == "" || strings.TrimSpace(part) == "---" {
				continue
			}
			js, err := sigsyaml.YAMLToJSON([]byte(part))
			require.NoError(t, err)
			u := &unstructured.Unstructured{}
			require.NoError(t, u.UnmarshalJSON(js))
			if u.GetNamespace() == "" && !clusterScoped(u.GetKind()) {
				u.SetNamespace(namespace)
			}
			out = append(out, u)
		}
	}
	return out
}

func clusterScoped(kind string) bool {
	switch kind {
	case "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "Namespace":
		return true
	}
	return false
}

// The Helm chart as shipped, applied server-side to the real API server, and lanyard running with
// exactly the RBAC it grants (impersonating the chart's ServiceAccount) in self-signed mode: it
// bootstraps its certificate, keeps its webhook configurations' caBundle, becomes ready, answers
// reviews (cache and live lookups), writes association status — and is refused every Secret but
// its own.
func TestHelmInstallRunsWithItsOwnRBAC(t *testing.T) {
	const release, ns = "e2e", "lanyard-helm"
	mustCreateOrExists(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	app := namespace(t, false)
	serviceAccount(t, app, "app", nil)
	ia := association(t, app, "app", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}})
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "someone-elses"}, StringData: map[string]string{"password": "x"}}
	mustCreateOrExists(t, foreign)

	objs := renderHelm(t, release, ns, map[string]any{
		"caBundleLabel":     "helm-e2e", // never the suite's own configurations
		"namespaceSelector": map[string]any{"matchLabels": map[string]any{"lanyard.dev/inject": "helm-e2e-only"}},
	})
	var deployment appsv1.Deployment
	kinds := map[string]int{}
	for _, u := range objs {
		kinds[u.GetKind()]++
		require.NoError(t, k8s.Apply(ctx(t), client.ApplyConfigurationFromUnstructured(u.DeepCopy()), client.FieldOwner("e2e-helm"), client.ForceOwnership),
			"server-side apply of %s %s", u.GetKind(), u.GetName())
		if u.GetKind() != "CustomResourceDefinition" {
			t.Cleanup(func() { _ = k8s.Delete(context.Background(), u.DeepCopy()) })
		}
		if u.GetKind() == "Deployment" {
			require.NoError(t, runtimeConvert(u, &deployment))
		}
	}
	for _, kind := range []string{"CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
		"Deployment", "Service", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
		assert.Positive(t, kinds[kind], "the chart renders a %s", kind)
	}

	// lanyard as the chart runs it: the container's arguments, listening on free local ports, as
	// the chart's ServiceAccount.
	sa := deployment.Spec.Template.Spec.ServiceAccountName
	cfg, err := clientcmd.LoadFromFile(lanyard.kubeconfig)
	require.NoError(t, err)
	for _, auth := range cfg.AuthInfos {
		auth.Impersonate = "system:serviceaccount:" + ns + ":" + sa
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*cfg, kubeconfig))
	port, health := freePort(t), freePort(t)
	var args []string
	for _, a := range deployment.Spec.Template.Spec.Containers[0].Args {
		switch {
		case a == "serve", strings.HasPrefix(a, "--port="), strings.HasPrefix(a, "--metrics-bind-address="),
			strings.HasPrefix(a, "--health-probe-bind-address="), strings.HasPrefix(a, "--cert-dir="):
			continue
		}
		args = append(args, a)
	}
	require.Contains(t, args, "--cert-mode=self-signed")
	l := &lanyardProcess{binary: lanyard.binary, kubeconfig: kubeconfig, port: port, noWait: true,
		args: append(args, "--namespace", ns, "--leader-election-namespace", ns, "--cert-extra-names", "127.0.0.1",
			"--health-probe-bind-address", "127.0.0.1:"+strconv.Itoa(health))}
	require.NoError(t, l.Start())
	t.Cleanup(l.Stop)
	l.healthAddr = "127.0.0.1:" + strconv.Itoa(health)
	require.NoError(t, l.waitReady(60*time.Second), "ready with the chart's RBAC: caches synced, certificate issued and trusted")

	// Its certificate: created under the chart's RBAC, published in the release's configurations.
	secretName := release + "-lanyard-webhook-tls"
	s := &corev1.Secret{}
	require.NoError(t, k8s.Get(ctx(t), types.NamespacedName{Namespace: ns, Name: secretName}, s), "the self-signed Secret")
	m := certs.FromSecretData(s.Data)
	require.Empty(t, m.Problems)
	leaf, err := servedLeaf(port)
	require.NoError(t, err)
	assert.True(t, certs.SignedBy(leaf, m.CA.Cert))

	// Its job: a review from the cache, and one for a brand-new ServiceAccount (live lookup).
	addr := "127.0.0.1:" + strconv.Itoa(port)
	trusting := trustingClient(m.Bundle)
	status, out, msg := reviewWith(t, trusting, addr, podReview(t, app, newPod(app, "cached", "app")))
	require.Equal(t, 200, status, msg)
	assert.Equal(t, "aws", out.Response.AuditAnnotations["injected"])
	serviceAccount(t, app, "brand-new", nil)
	status, out, msg = reviewWith(t, trusting, addr, podReview(t, app, newPod(app, "new", "brand-new")))
	require.Equal(t, 200, status, msg)
	assert.True(t, out.Response.Allowed)

	// Association status: the chart's RBAC lets the reconciler write it (server-side dry run, as
	// the suite's own lanyard reconciles the same objects).
	as, err := client.New(impersonated(ns, sa), client.Options{Scheme: k8s.Scheme()})
	require.NoError(t, err)
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		// The suite's lanyard may write the same status in between (a conflict, not a refusal).
		got := &v1alpha1.IdentityAssociation{}
		if err := as.Get(ctx(t), client.ObjectKeyFromObject(ia), got); err != nil {
			return err
		}
		return as.Status().Update(ctx(t), got, client.DryRunAll)
	}), "status update under the chart's RBAC")

	// Refused every Secret but its own.
	require.NoError(t, as.Get(ctx(t), types.NamespacedName{Namespace: ns, Name: secretName}, &corev1.Secret{}), "its own Secret")
	for what, err := range map[string]error{
		"a Secret of its namespace": as.Get(ctx(t), client.ObjectKeyFromObject(foreign), &corev1.Secret{}),
		"a Secret elsewhere":        as.Get(ctx(t), types.NamespacedName{Namespace: app, Name: "anything"}, &corev1.Secret{}),
		"listing its namespace":     as.List(ctx(t), &corev1.SecretList{}, client.InNamespace(ns)),
		"listing the cluster":       as.List(ctx(t), &corev1.SecretList{}),
	} {
		assert.True(t, apierrors.IsForbidden(err), "%s: %v", what, err)
	}
}

func mustCreateOrExists(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Create(ctx(t), obj); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

func runtimeConvert(u *unstructured.Unstructured, into any) error {
	js, err := u.MarshalJSON()
	if err != nil {
		return err
	}
	return jsonUnmarshal(js, into)
}

// impersonated is the suite's API server config acting as a ServiceAccount.
func impersonated(ns, sa string) *rest.Config {
	c := rest.CopyConfig(restConfig)
	c.Impersonate.UserName = fmt.Sprintf("system:serviceaccount:%s:%s", ns, sa)
	return c
}
