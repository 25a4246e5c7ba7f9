package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lanyard-dev/lanyard/internal/cli"
	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// namedNamespace creates an opted-in namespace with this name and labels, and its default
// ServiceAccount.
func namedNamespace(t *testing.T, name string, labels map[string]string) *corev1.Namespace {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{policy.InjectLabel: policy.InjectEnabled}}}
	for k, v := range labels {
		ns.Labels[k] = v
	}
	mustCreate(t, ns)
	serviceAccount(t, name, policy.DefaultServiceAccountName, nil)
	t.Cleanup(func() { _ = k8s.Delete(ctx(t), ns) })
	return ns
}

func broadAssociation(t *testing.T, name string, spec v1alpha1.IdentityAssociationSpec) *v1alpha1.IdentityAssociation {
	t.Helper()
	ia := &v1alpha1.IdentityAssociation{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	mustCreate(t, ia)
	t.Cleanup(func() { _ = k8s.Delete(ctx(t), ia) })
	return ia
}

// injectedEventually creates pods of ServiceAccount sa until lanyard's record on the stored pod is
// want ("" for no injection): policy reaches lanyard's caches within the informers' lag.
func injectedEventually(t *testing.T, ns, sa, want string) {
	t.Helper()
	var got string
	require.Eventually(t, func() bool {
		p := newPod(ns, "", sa)
		p.GenerateName = "broad-"
		mustCreate(t, p)
		got = stored(t, ns, p.Name).Annotations[policy.AnnotationInjected]
		_ = k8s.Delete(ctx(t), p, client.GracePeriodSeconds(0))
		return got == want
	}, 20*time.Second, 200*time.Millisecond, "pods of %s/%s: injected %q, want %q", ns, sa, got, want)
}

func matchedEventually(t *testing.T, name string, want int32) {
	t.Helper()
	var got int32 = -1
	require.Eventually(t, func() bool {
		ia := &v1alpha1.IdentityAssociation{}
		if err := k8s.Get(ctx(t), types.NamespacedName{Name: name}, ia); err != nil {
			return false
		}
		got = ia.Status.MatchedServiceAccounts
		return got == want
	}, 30*time.Second, 200*time.Millisecond, "IdentityAssociation %s: status.matchedServiceAccounts %d, want %d", name, got, want)
}

// A glob association and a selector association inject pods in the namespaces they match through
// the API server; removing the namespace's label stops the selector's; an exact association
// created later wins for its ServiceAccount; the validating webhook rejects a second association
// with the same subject; the CLI (--from-cluster) agrees with the webhook.
func TestBroadSubjects(t *testing.T) {
	tok := rand.String(5)
	teamLabel := "e2e.lanyard.dev/team-" + tok
	globNS := namedNamespace(t, "ci-"+tok+"-a", nil).Name
	selNS := namedNamespace(t, "sel-"+tok, map[string]string{teamLabel: "yes"}).Name
	otherNS := namedNamespace(t, "other-"+tok, nil).Name
	serviceAccount(t, globNS, "runner-1", nil)
	serviceAccount(t, otherNS, "runner-1", nil)
	serviceAccount(t, selNS, "api", nil)

	glob := broadAssociation(t, "glob-"+tok, v1alpha1.IdentityAssociationSpec{Namespace: "ci-" + tok + "-*", ServiceAccountName: "runner-*",
		AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN, Region: "us-west-2"}})
	sel := broadAssociation(t, "sel-"+tok, v1alpha1.IdentityAssociationSpec{ServiceAccountName: "*",
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{teamLabel: "yes"}},
		Azure:             &v1alpha1.AzureIdentity{ClientID: clientID, TenantID: tenantID}})

	injectedEventually(t, globNS, "runner-1", "aws")
	injectedEventually(t, globNS, "default", "")     // the name glob does not match
	injectedEventually(t, otherNS, "runner-1", "")   // nor does the namespace glob
	injectedEventually(t, selNS, "api", "azure")     // the selector matches every ServiceAccount
	injectedEventually(t, selNS, "default", "azure") // of the labelled namespace
	matchedEventually(t, glob.Name, 1)
	matchedEventually(t, sel.Name, 2)

	t.Run("the two doors agree", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "pod.yaml")
		require.NoError(t, os.WriteFile(file, []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: doors, namespace: "+globNS+
			"}\nspec:\n  serviceAccountName: runner-1\n  containers: [{name: app, image: registry.example.com/app:1}]\n"), 0o644))
		var stdout, stderr bytes.Buffer
		code := cli.Run([]string{"inject", "--from-cluster", "--kubeconfig", kubeconfig(t), "-f", file, "-o", "json"}, strings.NewReader(""), &stdout, &stderr)
		require.Equal(t, 0, code, stderr.String())
		offline := &corev1.Pod{}
		require.NoError(t, json.Unmarshal(stdout.Bytes(), offline))
		admitted := newPod(globNS, "doors", "runner-1")
		admitted.Spec.Containers[0].Name = "app"
		mustCreate(t, admitted)
		got := stored(t, globNS, "doors")
		assert.Equal(t, got.Annotations[policy.AnnotationInjected], offline.Annotations[policy.AnnotationInjected])
		assert.Equal(t, got.Spec.Containers[0].Env, offline.Spec.Containers[0].Env)
	})

	t.Run("a second association with the same subject is rejected", func(t *testing.T) {
		dup := &v1alpha1.IdentityAssociation{ObjectMeta: metav1.ObjectMeta{Name: "glob-dup-" + tok}, Spec: v1alpha1.IdentityAssociationSpec{
			Namespace: "ci-" + tok + "-*", ServiceAccountName: "runner-*", GCP: &v1alpha1.GCPIdentity{WorkloadIdentityProvider: provider}}}
		err := k8s.Create(ctx(t), dup)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "subject ci-"+tok+"-*/runner-* already has IdentityAssociation "+glob.Name)
	})

	t.Run("the CRD rejects two globs and namespace with namespaceSelector", func(t *testing.T) {
		bad := &v1alpha1.IdentityAssociation{ObjectMeta: metav1.ObjectMeta{Name: "bad-" + tok}, Spec: v1alpha1.IdentityAssociationSpec{
			Namespace: "ci-*-*", ServiceAccountName: "x", NamespaceSelector: &metav1.LabelSelector{},
			GCP: &v1alpha1.GCPIdentity{WorkloadIdentityProvider: provider}}}
		err := k8s.Create(ctx(t), bad)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "namespace may contain at most one '*'")
		assert.Contains(t, err.Error(), "namespace and namespaceSelector are mutually exclusive")
	})

	t.Run("removing the namespace label stops the selector", func(t *testing.T) {
		ns := &corev1.Namespace{}
		require.NoError(t, k8s.Get(ctx(t), types.NamespacedName{Name: selNS}, ns))
		patch := client.MergeFrom(ns.DeepCopy())
		delete(ns.Labels, teamLabel)
		require.NoError(t, k8s.Patch(ctx(t), ns, patch))
		injectedEventually(t, selNS, "api", "")
		matchedEventually(t, sel.Name, 0)
	})

	t.Run("a more specific association created later wins", func(t *testing.T) {
		association(t, globNS, "runner-1", v1alpha1.IdentityAssociationSpec{GCP: &v1alpha1.GCPIdentity{WorkloadIdentityProvider: provider}})
		injectedEventually(t, globNS, "runner-1", "gcp")
	})
}

// warningRecorder collects the API server's warnings (admission warnings among them).
type warningRecorder struct {
	mu       sync.Mutex
	messages []string
}

func (w *warningRecorder) HandleWarningHeader(_ int, _ string, message string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.messages = append(w.messages, message)
}

// A serviceAccountToken RegistryAttachment injects nothing, counts as attached (no "would fail to
// pull" warning), and warns when the ServiceAccount lacks the credential provider's annotations.
func TestServiceAccountTokenPull(t *testing.T) {
	ns := namespace(t, true)
	serviceAccount(t, ns, "ready", map[string]string{policy.ACRClientIDAnnotation: clientID, policy.ACRTenantIDAnnotation: tenantID})
	serviceAccount(t, ns, "bare", nil)
	attachment(t, ns+"-acr", v1alpha1.RegistryAttachmentSpec{Registry: "tokenacr.azurecr.io",
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{v1alpha1.NamespaceNameLabel: ns}},
		Pull:              v1alpha1.PullMethod{ServiceAccountToken: &v1alpha1.ServiceAccountTokenPull{}}})

	rec := &warningRecorder{}
	cfg := rest.CopyConfig(restConfig)
	cfg.WarningHandler = rec
	c, err := client.New(cfg, client.Options{Scheme: k8s.Scheme()})
	require.NoError(t, err)
	create := func(sa string) (*corev1.Pod, []string) {
		rec.mu.Lock()
		rec.messages = nil
		rec.mu.Unlock()
		p := newPod(ns, "", sa, "tokenacr.azurecr.io/app:1")
		p.GenerateName = "token-"
		require.NoError(t, c.Create(ctx(t), p))
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return stored(t, ns, p.Name), append([]string(nil), rec.messages...)
	}
	require.Eventually(t, func() bool { // the attachment reaches lanyard's cache
		_, warnings := create("ready")
		return len(warnings) == 0
	}, 20*time.Second, 200*time.Millisecond, "no unattached-registry warning once the attachment is cached")

	p, warnings := create("ready")
	untouched(t, p)
	assert.Empty(t, p.Spec.ImagePullSecrets)
	assert.Empty(t, warnings)

	p, warnings = create("bare")
	untouched(t, p)
	require.Len(t, warnings, 1, "warnings: %q", warnings)
	assert.Contains(t, warnings[0], "ServiceAccount "+ns+"/bare lacks annotation kubernetes.azure.com/acr-client-id and kubernetes.azure.com/acr-tenant-id")
}
