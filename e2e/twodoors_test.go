package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lanyard-dev/lanyard/internal/cli"
	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// kubeconfig is the cluster-admin kubeconfig the suite wrote for lanyard; the CLI uses it too.
func kubeconfig(*testing.T) string { return lanyard.kubeconfig }

// Scenario 8: lanyard inject --from-cluster on a pod manifest gives the same pod the API server
// stores for that manifest. The CLI's output is sent through the API server's defaulting too
// (server-side dry-run in a namespace lanyard leaves alone) so both sides compare like for like.
func TestTwoDoorsAgree(t *testing.T) {
	ns := namespace(t, true)
	plain := namespace(t, false)
	serviceAccount(t, ns, "app", map[string]string{policy.EKSRoleARN: "arn:aws:iam::111122223333:role/ignored"})
	association(t, ns, "app", v1alpha1.IdentityAssociationSpec{
		AWS:   &v1alpha1.AWSIdentity{RoleARN: roleARN, Mode: v1alpha1.AWSModeIRSA, Region: "eu-west-1"},
		Azure: &v1alpha1.AzureIdentity{ClientID: clientID, TenantID: tenantID},
		GCP:   &v1alpha1.GCPIdentity{WorkloadIdentityProvider: provider, ServiceAccountEmail: "e2e@proj.iam.gserviceaccount.com"},
	})
	attachment(t, ns+"-acr", v1alpha1.RegistryAttachmentSpec{Registry: "myacr.azurecr.io",
		Pull: v1alpha1.PullMethod{ImagePullSecret: &v1alpha1.SecretReference{Name: "acr-pull"}}})

	manifest := `apiVersion: v1
kind: Pod
metadata:
  name: doors
  namespace: ` + ns + `
  annotations:
    lanyard.dev/skip-containers: mesh
spec:
  serviceAccountName: app
  initContainers:
  - name: init
    image: myacr.azurecr.io/init:1
  - name: log
    image: registry.example.com/log:1
    restartPolicy: Always
  containers:
  - name: app
    image: myacr.azurecr.io/app:1
    env:
    - name: AWS_REGION
      value: us-east-1
  - name: mesh
    image: registry.example.com/mesh:1
`
	file := filepath.Join(t.TempDir(), "pod.yaml")
	require.NoError(t, os.WriteFile(file, []byte(manifest), 0o644))

	// Door 1: the CLI against the live cluster.
	var stdout, stderr bytes.Buffer
	code := cli.Run([]string{"inject", "--from-cluster", "--kubeconfig", kubeconfig(t), "-f", file, "-o", "json",
		"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"}, strings.NewReader(""), &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	offline := &corev1.Pod{}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), offline))
	require.Equal(t, "aws,azure,gcp,registry/"+ns+"-acr", offline.Annotations[policy.AnnotationInjected])

	// Door 2: the API server calling the webhook.
	fromManifest := &corev1.Pod{}
	require.NoError(t, json.Unmarshal(mustJSON(t, manifest), fromManifest))
	mustCreate(t, fromManifest)
	admitted := stored(t, ns, "doors")

	// The CLI's pod, defaulted by the API server without lanyard (namespace not opted in).
	offline.Namespace = plain
	require.NoError(t, k8s.Create(ctx(t), offline, client.DryRunAll))

	assert.Equal(t, admitted.Annotations, offline.Annotations)
	assert.Equal(t, admitted.Spec, offline.Spec)
}

func mustJSON(t *testing.T, y string) []byte {
	t.Helper()
	var v any
	require.NoError(t, yamlUnmarshal([]byte(y), &v))
	js, err := json.Marshal(v)
	require.NoError(t, err)
	return js
}

// lanyard check --from-cluster verifies, with the user's credentials, that the pull secrets the
// workloads would receive exist (lanyard itself never reads Secrets).
func TestCheckFromClusterPullSecrets(t *testing.T) {
	ns := namespace(t, true)
	attachment(t, ns+"-acr", v1alpha1.RegistryAttachmentSpec{Registry: "checkacr.azurecr.io",
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
		Pull:              v1alpha1.PullMethod{ImagePullSecret: &v1alpha1.SecretReference{Name: "acr-pull"}}})
	file := filepath.Join(t.TempDir(), "deploy.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: `+ns+`}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: checkacr.azurecr.io/web:1}]
`), 0o644))
	kc := kubeconfig(t)
	check := func() (int, string) {
		var stdout, stderr bytes.Buffer
		code := cli.Run([]string{"check", "--from-cluster", "--kubeconfig", kc, "-f", file}, strings.NewReader(""), &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	code, out := check()
	assert.Equal(t, cli.ExitFindings, code, out)
	assert.Contains(t, out, "PullSecretNotFound")
	assert.Contains(t, out, "imagePullSecret acr-pull, which does not exist in namespace "+ns)

	mustCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "acr-pull"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{}}`)}})
	code, out = check()
	assert.Equal(t, cli.ExitOK, code, out)
	assert.Contains(t, out, "registry checkacr.azurecr.io: pull secret acr-pull")
}
