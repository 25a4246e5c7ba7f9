package offline_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/lanyard-dev/lanyard/internal/manifest"
	"github.com/lanyard-dev/lanyard/internal/offline"
	"github.com/lanyard-dev/lanyard/policy"
)

func selectorIADoc(name, selectorYAML, sa string) string {
	return "---\napiVersion: lanyard.dev/v1alpha1\nkind: IdentityAssociation\nmetadata:\n  name: " + name +
		"\nspec:\n  namespaceSelector: " + selectorYAML + "\n  serviceAccountName: \"" + sa + "\"\n  aws:\n    roleARN: " + testRoleARN + "\n"
}

func quotedIADoc(name, namespace, sa string) string {
	return "---\napiVersion: lanyard.dev/v1alpha1\nkind: IdentityAssociation\nmetadata:\n  name: " + name +
		"\nspec:\n  namespace: \"" + namespace + "\"\n  serviceAccountName: \"" + sa + "\"\n  aws:\n    roleARN: " + testRoleARN + "\n"
}

func coverages(t *testing.T, policyYAML, input string) ([]offline.Coverage, []offline.Finding) {
	t.Helper()
	e := newEngine(t, policyYAML)
	docs, err := manifest.Split("in.yaml", []byte(input))
	require.NoError(t, err)
	_, workloads, err := e.Process(context.Background(), docs)
	require.NoError(t, err)
	return offline.Coverages(e.Policy, workloads), offline.Check(e.Policy, workloads)
}

// check lists per association the ServiceAccounts of the input it covers, with precedence.
func TestCheckCoverage(t *testing.T) {
	pol := appsNamespace + serviceAccountDoc("apps", "runner-a") + serviceAccountDoc("apps", "runner-b") + serviceAccountDoc("apps", "web") +
		quotedIADoc("all-runners", "*", "runner-*") + iaDoc("runner-a", "apps", "runner-a") + quotedIADoc("apps-all", "apps", "*")
	cov, findings := coverages(t, pol, "")
	byName := map[string]offline.Coverage{}
	for _, c := range cov {
		byName[c.Association] = c
	}
	assert.Equal(t, []string{"apps/runner-b", "apps/web"}, byName["apps-all"].Covers)
	assert.Equal(t, []string{"apps/runner-a"}, byName["runner-a"].Covers)
	assert.Empty(t, byName["all-runners"].Covers)
	assert.Equal(t, []string{"apps/runner-a (IdentityAssociation runner-a is more specific)", "apps/runner-b (IdentityAssociation apps-all is more specific)"},
		byName["all-runners"].Overridden)
	assert.Equal(t, "*/runner-*", byName["all-runners"].Subject)
	assert.Empty(t, withCode(findings, policy.CodeConflictingAssociations))
	assert.Empty(t, withCode(findings, offline.CodeServiceAccountMissing), "every association matches a ServiceAccount of the input")
}

func TestCheckBroadSubjectFindings(t *testing.T) {
	t.Run("equal specificity on a ServiceAccount no workload uses is an error", func(t *testing.T) {
		pol := appsNamespace + serviceAccountDoc("apps", "web") + quotedIADoc("ap", "ap*", "web") + quotedIADoc("ps", "*ps", "web")
		_, findings := coverages(t, pol, "")
		got := withCode(findings, policy.CodeConflictingAssociations)
		require.Len(t, got, 1, "findings: %+v", findings)
		assert.Equal(t, "IdentityAssociation ap, ps", got[0].Object)
		assert.Contains(t, got[0].Message, "match ServiceAccount apps/web equally specifically (namespace glob or selector, exact name)")
	})
	t.Run("on a workload it is reported on the workload only", func(t *testing.T) {
		pol := appsNamespace + serviceAccountDoc("apps", "web") + quotedIADoc("ap", "ap*", "web") + quotedIADoc("ps", "*ps", "web")
		_, findings := coverages(t, pol, deploymentWith(t, "web", "apps", "web"))
		got := withCode(findings, policy.CodeConflictingAssociations)
		require.Len(t, got, 1, "findings: %+v", findings)
		assert.Equal(t, "Deployment apps/web", got[0].Object)
	})
	t.Run("identical broad subjects are one conflict", func(t *testing.T) {
		pol := appsNamespace + serviceAccountDoc("apps", "web") + quotedIADoc("one", "ap*", "*") + quotedIADoc("two", "ap*", "*")
		_, findings := coverages(t, pol, "")
		got := withCode(findings, policy.CodeConflictingAssociations)
		require.Len(t, got, 1, "findings: %+v", findings)
		assert.Contains(t, got[0].Message, "IdentityAssociations one and two have the same subject ap*/*")
	})
	t.Run("a label selector is a security warning, a name selector is not", func(t *testing.T) {
		pol := appsNamespace + serviceAccountDoc("apps", "web") + selectorIADoc("by-label", "{matchLabels: {lanyard.dev/inject: enabled}}", "web") +
			selectorIADoc("by-name", "{matchLabels: {kubernetes.io/metadata.name: apps}}", "*")
		_, findings := coverages(t, pol, "")
		got := withCode(findings, offline.CodeLabelSelectedNamespaces)
		require.Len(t, got, 1, "findings: %+v", findings)
		assert.Equal(t, "IdentityAssociation by-label", got[0].Object)
		assert.Equal(t, policy.SelectorWarning, got[0].Message)
	})
	t.Run("a broad subject matching nothing in the input is a warning", func(t *testing.T) {
		pol := appsNamespace + serviceAccountDoc("apps", "web") + quotedIADoc("ci", "ci-*", "*")
		_, findings := coverages(t, pol, "")
		got := withCode(findings, offline.CodeServiceAccountMissing)
		require.Len(t, got, 1, "findings: %+v", findings)
		assert.Equal(t, "no ServiceAccount in the input matches subject ci-*/*", got[0].Message)
	})
}

// Every image gets the path that pulls it.
func TestPullPaths(t *testing.T) {
	pol := appsNamespace + `---
apiVersion: lanyard.dev/v1alpha1
kind: RegistryAttachment
metadata: {name: acr}
spec:
  registry: myacr.azurecr.io
  pull: {imagePullSecret: {name: acr-pull}}
---
apiVersion: lanyard.dev/v1alpha1
kind: RegistryAttachment
metadata: {name: ecr}
spec:
  registry: "*.dkr.ecr.us-west-2.amazonaws.com"
  pull: {nodeIdentity: {}}
---
apiVersion: lanyard.dev/v1alpha1
kind: RegistryAttachment
metadata: {name: gar}
spec:
  registry: us-docker.pkg.dev
  pull: {serviceAccountToken: {}}
`
	images := []string{"myacr.azurecr.io/a:1", "111122223333.dkr.ecr.us-west-2.amazonaws.com/b:1", "us-docker.pkg.dev/p/r/c:1", "nginx", "gcr.io/p/d:1"}
	var containers []map[string]any
	for i, img := range images {
		containers = append(containers, map[string]any{"name": string(rune('a' + i)), "image": img})
	}
	e := newEngine(t, pol)
	docs, err := manifest.Split("in.yaml", []byte(deploymentWith(t, "web", "apps", "web", containers...)))
	require.NoError(t, err)
	_, workloads, err := e.Process(context.Background(), docs)
	require.NoError(t, err)
	require.Len(t, workloads, 1)
	var got []policy.PullPath
	for _, p := range offline.PullPaths(workloads[0]) {
		got = append(got, p.Path)
	}
	assert.Equal(t, []policy.PullPath{policy.PullImagePullSecret, policy.PullNodeIdentity, policy.PullServiceAccountToken, offline.PullAnonymous, offline.PullWouldFail}, got)
	findings := offline.Check(e.Policy, workloads)
	assert.Len(t, withCode(findings, policy.CodeUnattachedRegistry), 1, "only gcr.io is unattached")
	assert.Len(t, withCode(findings, policy.CodeCredentialProviderAnnotations), 1, "web lacks iam.gke.io/enable-wi-image-pull")

	t.Run("the pod's own pull secrets", func(t *testing.T) {
		obj := deploymentWith(t, "own", "apps", "web", map[string]any{"name": "a", "image": "gcr.io/p/d:1"})
		docs, err := manifest.Split("in.yaml", []byte(obj))
		require.NoError(t, err)
		_, workloads, err := e.Process(context.Background(), docs)
		require.NoError(t, err)
		workloads[0].Pod.Spec.ImagePullSecrets = append(workloads[0].Pod.Spec.ImagePullSecrets, corev1LocalRef("gcr-pull"))
		paths := offline.PullPaths(workloads[0])
		require.Len(t, paths, 1)
		assert.Equal(t, offline.PullPodSecrets, paths[0].Path)
		assert.Equal(t, "the pod's own imagePullSecrets gcr-pull (no RegistryAttachment)", paths[0].Describe())
	})
}

func corev1LocalRef(name string) corev1.LocalObjectReference {
	return corev1.LocalObjectReference{Name: name}
}
