package offline_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lanyard-dev/lanyard/internal/manifest"
	"github.com/lanyard-dev/lanyard/internal/offline"
	"github.com/lanyard-dev/lanyard/policy"
)

const appsNamespace = `apiVersion: v1
kind: Namespace
metadata:
  name: apps
  labels: {lanyard.dev/inject: enabled}
`

func serviceAccountDoc(namespace, name string) string {
	return "---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: " + name + "\n  namespace: " + namespace + "\n"
}

// runCheck loads the policy, processes input (one or more documents) and returns the findings.
func runCheck(t *testing.T, policyYAML, input string) []offline.Finding {
	t.Helper()
	e := newEngine(t, policyYAML)
	docs, err := manifest.Split("in.yaml", []byte(input))
	require.NoError(t, err)
	_, workloads, err := e.Process(context.Background(), docs)
	require.NoError(t, err)
	return offline.Check(e.Policy, workloads)
}

func withCode(findings []offline.Finding, code string) []offline.Finding {
	var out []offline.Finding
	for _, f := range findings {
		if f.Code == code {
			out = append(out, f)
		}
	}
	return out
}

// deploymentWith returns a Deployment in namespace whose pod uses serviceAccount and containers.
func deploymentWith(t *testing.T, name, namespace, serviceAccount string, containers ...map[string]any) string {
	t.Helper()
	obj := workloadObject("apps/v1", "Deployment", namespace)
	obj["metadata"] = meta(name, namespace)
	spec := mapAt(obj, "spec", "template", "spec")
	spec["serviceAccountName"] = serviceAccount
	if len(containers) > 0 {
		list := make([]any, len(containers))
		for i, c := range containers {
			list[i] = c
		}
		spec["containers"] = list
	}
	return toYAML(t, obj)
}

func TestCheckFindings(t *testing.T) {
	tests := map[string]struct {
		policy string
		input  func(t *testing.T) string
		want   []offline.Finding
	}{
		"clean workload has no findings": {
			policy: appsNamespace + iaDoc("apps-app", "apps", "app") + serviceAccountDoc("apps", "app"),
			input:  func(t *testing.T) string { return deploymentWith(t, "web", "apps", "app") },
		},
		"assumed namespace is a warning": {
			policy: iaDoc("else-app", "elsewhere", "app") + serviceAccountDoc("elsewhere", "app"),
			input:  func(t *testing.T) string { return deploymentWith(t, "web", "elsewhere", "app") },
			want: []offline.Finding{{
				Severity: policy.SeverityWarning, Code: offline.CodeAssumedNamespace,
				Object: "Deployment elsewhere/web", Source: "in.yaml document 1 (Deployment web)",
				Message: "namespace elsewhere is not described in the input; assumed opted in (label lanyard.dev/inject=enabled)",
			}},
		},
		"denied pod is an error": {
			policy: appsNamespace + iaDoc("apps-app", "apps", "app") + serviceAccountDoc("apps", "app"),
			input: func(t *testing.T) string {
				obj := workloadObject("apps/v1", "Deployment", "apps")
				obj["metadata"] = meta("web", "apps")
				mapAt(obj, "spec", "template", "metadata")["annotations"] = map[string]any{policy.AnnotationTokenExpiration: "soon"}
				return toYAML(t, obj)
			},
			want: []offline.Finding{{
				Severity: policy.SeverityError, Code: offline.CodeDenied,
				Object: "Deployment apps/web", Source: "in.yaml document 1 (Deployment web)",
				Message: "the webhook would deny this pod: " + `pod annotation lanyard.dev/token-expiration: invalid value "soon": must be a whole number of seconds between 600 and 86400`,
			}},
		},
		"unattached cloud registry is an error": {
			policy: appsNamespace,
			input: func(t *testing.T) string {
				return deploymentWith(t, "web", "apps", "", map[string]any{"name": "main", "image": "myacr.azurecr.io/web:v1"})
			},
			want: []offline.Finding{{
				Severity: policy.SeverityError, Code: policy.CodeUnattachedRegistry,
				Object: "Deployment apps/web", Source: "in.yaml document 1 (Deployment web)",
				Message: "image myacr.azurecr.io/web:v1 is on azure registry myacr.azurecr.io and no RegistryAttachment covers it for apps/default: it would fail to pull (declare a nodeIdentity attachment if the kubelet pulls)",
			}},
		},
		"manual AWS keys without an association are a warning": {
			policy: appsNamespace,
			input: func(t *testing.T) string {
				return deploymentWith(t, "web", "apps", "noid", map[string]any{"name": "main", "image": "nginx",
					"env": []any{map[string]any{"name": "AWS_ACCESS_KEY_ID", "value": "AKIA..."}}})
			},
			want: []offline.Finding{{
				Severity: policy.SeverityWarning, Code: offline.CodeManualCloudCredentials,
				Object: "Deployment apps/web", Source: "in.yaml document 1 (Deployment web)",
				Message: `container "main" sets AWS_ACCESS_KEY_ID by hand but ServiceAccount apps/noid gets no identity from lanyard`,
			}},
		},
		"manual credentials in an init container": {
			policy: appsNamespace,
			input: func(t *testing.T) string {
				obj := workloadObject("v1", "Pod", "apps")
				obj["metadata"] = meta("p", "apps")
				obj["spec"] = podSpec(map[string]any{"serviceAccountName": "", "initContainers": []any{map[string]any{"name": "init", "image": "busybox",
					"env": []any{map[string]any{"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": "/k.json"}}}}})
				return toYAML(t, obj)
			},
			want: []offline.Finding{{
				Severity: policy.SeverityWarning, Code: offline.CodeManualCloudCredentials,
				Object: "Pod apps/p", Source: "in.yaml document 1 (Pod p)",
				Message: `container "init" sets GOOGLE_APPLICATION_CREDENTIALS by hand but ServiceAccount apps/default gets no identity from lanyard`,
			}},
		},
		"manual credentials with an association are not reported": {
			policy: appsNamespace + iaDoc("apps-app", "apps", "app") + serviceAccountDoc("apps", "app"),
			input: func(t *testing.T) string {
				return deploymentWith(t, "web", "apps", "app", map[string]any{"name": "main", "image": "nginx",
					"env": []any{map[string]any{"name": "AWS_ACCESS_KEY_ID", "value": "AKIA..."}}})
			},
		},
		"env lanyard would set is left alone with a warning": {
			policy: appsNamespace + iaDoc("apps-app", "apps", "app") + serviceAccountDoc("apps", "app"),
			input: func(t *testing.T) string {
				return deploymentWith(t, "web", "apps", "app", map[string]any{"name": "main", "image": "nginx",
					"env": []any{map[string]any{"name": "AWS_CONTAINER_CREDENTIALS_FULL_URI", "value": "http://elsewhere"}}})
			},
			want: []offline.Finding{{
				Severity: policy.SeverityWarning, Code: offline.CodeMutationWarning,
				Object: "Deployment apps/web", Source: "in.yaml document 1 (Deployment web)",
				Message: `container "main" already sets AWS_CONTAINER_CREDENTIALS_FULL_URI: lanyard adds none of AWS_CONTAINER_CREDENTIALS_FULL_URI, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, which only work together (aws identity may not work as expected)`,
			}},
		},
		"skipped workloads have no findings": {
			policy: appsNamespace + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: closed}\n",
			input: func(t *testing.T) string {
				return deploymentWith(t, "web", "closed", "", map[string]any{"name": "main", "image": "gcr.io/p/web"}) + "---\n" +
					deploymentWith(t, "sys", "kube-system", "", map[string]any{"name": "main", "image": "gcr.io/p/web"})
			},
		},
		"association whose ServiceAccount is not in the input": {
			policy: appsNamespace + iaDoc("apps-api", "apps", "api"),
			input: func(t *testing.T) string {
				return toYAML(t, map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("c", "apps")})
			},
			want: []offline.Finding{{
				Severity: policy.SeverityWarning, Code: offline.CodeServiceAccountMissing,
				Object: "IdentityAssociation apps-api", Source: "policy.yaml document 2 (IdentityAssociation apps-api)",
				Message: "ServiceAccount apps/api is not in the input",
			}},
		},
		"association of the default ServiceAccount needs no ServiceAccount": {
			policy: appsNamespace + iaDoc("apps-default", "apps", "default"),
			input:  func(t *testing.T) string { return deploymentWith(t, "web", "apps", "") },
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := runCheck(t, tc.policy, tc.input(t))
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestCheckConflictReportedOnce(t *testing.T) {
	conflict := appsNamespace + iaDoc("b-shared", "apps", "shared") + iaDoc("a-shared", "apps", "shared") + serviceAccountDoc("apps", "shared")

	t.Run("on the workload that uses the ServiceAccount", func(t *testing.T) {
		findings := runCheck(t, conflict, deploymentWith(t, "web", "apps", "shared"))
		got := withCode(findings, policy.CodeConflictingAssociations)
		require.Len(t, got, 1, "findings: %+v", findings)
		assert.Equal(t, policy.SeverityError, got[0].Severity)
		assert.Equal(t, "Deployment apps/web", got[0].Object)
		assert.Equal(t, "in.yaml document 1 (Deployment web)", got[0].Source)
		assert.Contains(t, got[0].Message, "IdentityAssociations a-shared and b-shared claim the same ServiceAccount apps/shared")
		assert.Len(t, findings, 1)
	})

	t.Run("on the associations when no workload uses it", func(t *testing.T) {
		findings := runCheck(t, conflict, deploymentWith(t, "web", "apps", "other"))
		got := withCode(findings, policy.CodeConflictingAssociations)
		require.Len(t, got, 1, "findings: %+v", findings)
		assert.Equal(t, offline.Finding{
			Severity: policy.SeverityError, Code: policy.CodeConflictingAssociations,
			Object: "IdentityAssociation a-shared, b-shared",
			Source: "policy.yaml document 3 (IdentityAssociation a-shared)",
			Message: "IdentityAssociations a-shared and b-shared claim the same ServiceAccount apps/shared; the webhook rejects the second one, " +
				"and pods of that ServiceAccount get no identity while both exist",
		}, got[0])
		assert.Len(t, findings, 1)
	})

	t.Run("a skipped workload does not count as reporting it", func(t *testing.T) {
		input := deploymentWith(t, "sys", "kube-system", "shared")
		findings := runCheck(t, conflict, input)
		got := withCode(findings, policy.CodeConflictingAssociations)
		require.Len(t, got, 1)
		assert.Equal(t, "IdentityAssociation a-shared, b-shared", got[0].Object)
	})
}

func TestCheckAssumedNamespaceAndDenied(t *testing.T) {
	// Both findings for one workload: the assumption and the denial.
	obj := workloadObject("v1", "Pod", "elsewhere")
	obj["metadata"] = meta("p", "elsewhere")
	obj["metadata"].(map[string]any)["annotations"] = map[string]any{policy.AnnotationContainers: ","}
	findings := runCheck(t, iaDoc("else-app", "elsewhere", "app")+serviceAccountDoc("elsewhere", "app"), toYAML(t, obj))
	var codes []string
	for _, f := range findings {
		codes = append(codes, f.Code)
	}
	assert.Equal(t, []string{offline.CodeAssumedNamespace, offline.CodeDenied}, codes)
}
