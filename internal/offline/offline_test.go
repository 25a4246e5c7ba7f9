package offline_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/lanyard-dev/lanyard/internal/manifest"
	"github.com/lanyard-dev/lanyard/internal/offline"
	"github.com/lanyard-dev/lanyard/policy"
)

const testRoleARN = "arn:aws:iam::111122223333:role/app"

var (
	// basePolicy opts namespace apps in, describes namespace closed without the label, and gives
	// ServiceAccount app an AWS identity in apps, closed, undescribed, kube-system and defaultns.
	basePolicy = `apiVersion: v1
kind: Namespace
metadata:
  name: apps
  labels: {lanyard.dev/inject: enabled}
---
apiVersion: v1
kind: Namespace
metadata:
  name: closed
---
apiVersion: v1
kind: Namespace
metadata:
  name: disabled
  labels: {lanyard.dev/inject: disabled}
` + iaDoc("apps-app", "apps", "app") + iaDoc("closed-app", "closed", "app") + iaDoc("disabled-app", "disabled", "app") +
		iaDoc("undescribed-app", "undescribed", "app") + iaDoc("kube-app", "kube-system", "app") + iaDoc("defaultns-app", "defaultns", "app")
)

func iaDoc(name, namespace, sa string) string {
	return `---
apiVersion: lanyard.dev/v1alpha1
kind: IdentityAssociation
metadata:
  name: ` + name + `
spec:
  namespace: ` + namespace + `
  serviceAccountName: ` + sa + `
  aws:
    roleARN: ` + testRoleARN + `
`
}

func newEngine(t *testing.T, policyYAML string) *offline.Engine {
	t.Helper()
	p := manifest.NewPolicy()
	docs, err := manifest.Split("policy.yaml", []byte(policyYAML))
	require.NoError(t, err)
	require.NoError(t, p.Add(docs, "defaultns"))
	return &offline.Engine{
		Policy:           p,
		Reader:           p,
		PolicyOptions:    policy.Options{CompatAnnotations: true},
		DefaultNamespace: "defaultns",
	}
}

func toYAML(t *testing.T, obj any) string {
	t.Helper()
	y, err := yaml.Marshal(obj)
	require.NoError(t, err)
	return string(y)
}

func podSpec(extra map[string]any) map[string]any {
	spec := map[string]any{
		"serviceAccountName": "app",
		"containers":         []any{map[string]any{"name": "main", "image": "nginx"}},
	}
	for k, v := range extra {
		spec[k] = v
	}
	return spec
}

func template() map[string]any {
	return map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": "x"}}, "spec": podSpec(nil)}
}

func meta(name, namespace string) map[string]any {
	m := map[string]any{"name": name}
	if namespace != "" {
		m["namespace"] = namespace
	}
	return m
}

func workloadObject(apiVersion, kind, namespace string) map[string]any {
	obj := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": meta("w", namespace)}
	switch kind {
	case "Pod":
		obj["spec"] = podSpec(nil)
	case "CronJob":
		obj["spec"] = map[string]any{"schedule": "* * * * *", "jobTemplate": map[string]any{"spec": map[string]any{"template": template()}}}
	default:
		obj["spec"] = map[string]any{"replicas": 2, "template": template()}
	}
	return obj
}

// mapAt descends through nested maps of a test object being built.
func mapAt(obj map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		obj = obj[k].(map[string]any)
	}
	return obj
}

func process(t *testing.T, e *offline.Engine, input string) ([]offline.Output, []*offline.Workload) {
	t.Helper()
	docs, err := manifest.Split("in.yaml", []byte(input))
	require.NoError(t, err)
	outputs, workloads, err := e.Process(context.Background(), docs)
	require.NoError(t, err)
	require.Len(t, outputs, len(docs))
	return outputs, workloads
}

// at walks a JSON pointer through decoded JSON.
func at(t *testing.T, v any, pointer string) any {
	t.Helper()
	if pointer == "" {
		return v
	}
	for _, seg := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			v, ok = x[seg]
			require.True(t, ok, "no %q in %s", seg, pointer)
		case []any:
			var i int
			require.NoError(t, json.Unmarshal([]byte(seg), &i))
			require.Less(t, i, len(x))
			v = x[i]
		default:
			t.Fatalf("cannot descend into %T at %q of %s", v, seg, pointer)
		}
	}
	return v
}

// replaceAt replaces the value at pointer (which must exist) and returns the document.
func replaceAt(t *testing.T, doc any, pointer string, value any) any {
	t.Helper()
	if pointer == "" {
		return value
	}
	i := strings.LastIndex(pointer, "/")
	parent := at(t, doc, pointer[:i])
	key := pointer[i+1:]
	switch p := parent.(type) {
	case map[string]any:
		p[key] = value
	case []any:
		var n int
		require.NoError(t, json.Unmarshal([]byte(key), &n))
		p[n] = value
	}
	return doc
}

func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(b, &v))
	return v
}

// podAt decodes the pod template at pointer as a Pod.
func podAt(t *testing.T, doc any, pointer string) *corev1.Pod {
	t.Helper()
	b, err := json.Marshal(at(t, doc, pointer))
	require.NoError(t, err)
	pod := &corev1.Pod{}
	require.NoError(t, json.Unmarshal(b, pod))
	return pod
}

func assertAWSInjected(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	assert.Equal(t, "aws", pod.Annotations[policy.AnnotationInjected])
	require.Len(t, pod.Spec.Volumes, 1)
	assert.Equal(t, "eks-pod-identity-token", pod.Spec.Volumes[0].Name)
	require.Len(t, pod.Spec.Containers, 1)
	c := pod.Spec.Containers[0]
	require.Len(t, c.VolumeMounts, 1)
	assert.Equal(t, "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount", c.VolumeMounts[0].MountPath)
	assert.Contains(t, c.Env, corev1.EnvVar{Name: "AWS_CONTAINER_CREDENTIALS_FULL_URI", Value: "http://169.254.170.23/v1/credentials"})
}

func TestProcessWorkloadKinds(t *testing.T) {
	tests := map[string]struct {
		obj      map[string]any
		wantPath string
		wantKind string
	}{
		"Pod":         {obj: workloadObject("v1", "Pod", "apps"), wantPath: "", wantKind: "Pod"},
		"Deployment":  {obj: workloadObject("apps/v1", "Deployment", "apps"), wantPath: "/spec/template", wantKind: "Deployment"},
		"StatefulSet": {obj: workloadObject("apps/v1", "StatefulSet", "apps"), wantPath: "/spec/template", wantKind: "StatefulSet"},
		"DaemonSet":   {obj: workloadObject("apps/v1", "DaemonSet", "apps"), wantPath: "/spec/template", wantKind: "DaemonSet"},
		"ReplicaSet":  {obj: workloadObject("apps/v1", "ReplicaSet", "apps"), wantPath: "/spec/template", wantKind: "ReplicaSet"},
		"Job":         {obj: workloadObject("batch/v1", "Job", "apps"), wantPath: "/spec/template", wantKind: "Job"},
		"CronJob":     {obj: workloadObject("batch/v1", "CronJob", "apps"), wantPath: "/spec/jobTemplate/spec/template", wantKind: "CronJob"},
		"List with a Deployment inside": {
			obj: map[string]any{"apiVersion": "v1", "kind": "List", "items": []any{
				map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("cm", "apps")},
				workloadObject("apps/v1", "Deployment", "apps"),
			}},
			wantPath: "/items/1/spec/template", wantKind: "Deployment",
		},
		"List in a List": {
			obj: map[string]any{"apiVersion": "v1", "kind": "List", "items": []any{
				map[string]any{"apiVersion": "v1", "kind": "List", "items": []any{workloadObject("batch/v1", "Job", "apps")}},
			}},
			wantPath: "/items/0/items/0/spec/template", wantKind: "Job",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := newEngine(t, basePolicy)
			input := toYAML(t, tc.obj)
			outputs, workloads := process(t, e, input)

			require.Len(t, workloads, 1)
			w := workloads[0]
			assert.Equal(t, tc.wantKind, w.Kind)
			assert.Equal(t, "w", w.Name)
			assert.Equal(t, "apps", w.Namespace)
			assert.Equal(t, tc.wantPath, w.Path)
			assert.Empty(t, w.Skipped)
			assert.False(t, w.AssumedNamespace)
			assert.NoError(t, w.Denied)
			require.NotNil(t, w.Applied)
			assert.Equal(t, "IdentityAssociation apps-app", w.Applied.Identity.Source)
			assert.Equal(t, []string{"aws"}, w.Changes.Injected)
			assertAWSInjected(t, w.Pod)

			require.True(t, outputs[0].Changed)
			got := decodeJSON(t, outputs[0].JSON)
			assertAWSInjected(t, podAt(t, got, tc.wantPath))

			// Everything outside the template is as it was.
			want := decodeJSON(t, outputs[0].Doc.JSON)
			assert.Equal(t, replaceAt(t, want, tc.wantPath, nil), replaceAt(t, got, tc.wantPath, nil))

			// Processing the output again changes nothing.
			again, _ := process(t, newEngine(t, basePolicy), string(outputs[0].JSON))
			assert.False(t, again[0].Changed, "mutation is idempotent")
		})
	}
}

func TestProcessTemplateWithoutMetadata(t *testing.T) {
	tests := map[string]struct {
		obj      map[string]any
		wantPath string
	}{
		"Deployment template without metadata": {
			obj: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("w", "apps"),
				"spec": map[string]any{"template": map[string]any{"spec": podSpec(nil)}}},
			wantPath: "/spec/template",
		},
		"Pod without metadata takes the default namespace": {
			obj:      map[string]any{"apiVersion": "v1", "kind": "Pod", "spec": podSpec(nil)},
			wantPath: "",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			outputs, workloads := process(t, newEngine(t, basePolicy), toYAML(t, tc.obj))
			require.Len(t, workloads, 1)
			require.True(t, outputs[0].Changed)
			got := decodeJSON(t, outputs[0].JSON)
			md, ok := at(t, got, tc.wantPath+"/metadata").(map[string]any)
			require.True(t, ok)
			assert.Equal(t, map[string]any{policy.AnnotationInjected: "aws"}, md["annotations"])
			assertAWSInjected(t, podAt(t, got, tc.wantPath))
		})
	}
}

func TestProcessPassesThrough(t *testing.T) {
	tests := map[string]map[string]any{
		"ConfigMap":                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("cm", "apps"), "data": map[string]any{"k": "v"}},
		"Service":                      {"apiVersion": "v1", "kind": "Service", "metadata": meta("svc", "apps"), "spec": map[string]any{"template": template()}},
		"apps/v1beta1 Deployment":      workloadObject("apps/v1beta1", "Deployment", "apps"),
		"extensions/v1beta1 DaemonSet": workloadObject("extensions/v1beta1", "DaemonSet", "apps"),
		"example.com/v1 Pod":           workloadObject("example.com/v1", "Pod", "apps"),
		"batch/v1beta1 CronJob":        workloadObject("batch/v1beta1", "CronJob", "apps"),
		"PodTemplate":                  {"apiVersion": "v1", "kind": "PodTemplate", "metadata": meta("pt", "apps"), "template": template()},
		"List of non-workloads":        {"apiVersion": "v1", "kind": "List", "items": []any{map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": meta("s", "apps")}}},
	}
	for name, obj := range tests {
		t.Run(name, func(t *testing.T) {
			outputs, workloads := process(t, newEngine(t, basePolicy), toYAML(t, obj))
			assert.Empty(t, workloads)
			assert.False(t, outputs[0].Changed)
			assert.Nil(t, outputs[0].JSON)
		})
	}

	t.Run("empty and comment-only documents", func(t *testing.T) {
		outputs, workloads := process(t, newEngine(t, basePolicy), "# only a comment\n---\n---\n")
		assert.Empty(t, workloads)
		for _, o := range outputs {
			assert.False(t, o.Changed)
		}
	})
}

func TestProcessSkipsAndNamespaces(t *testing.T) {
	withPodLabel := func(obj map[string]any, key, value string) map[string]any {
		md := mapAt(obj, "spec", "template", "metadata")
		md["labels"] = map[string]any{key: value}
		return obj
	}
	tests := map[string]struct {
		obj           map[string]any
		wantNamespace string
		wantSkipped   string // substring; empty: processed
		wantAssumed   bool
	}{
		"kube-system is never mutated": {
			obj:           workloadObject("apps/v1", "Deployment", "kube-system"),
			wantNamespace: "kube-system", wantSkipped: "namespace kube-system is never mutated",
		},
		"kube-public is never mutated": {
			obj:           workloadObject("v1", "Pod", "kube-public"),
			wantNamespace: "kube-public", wantSkipped: "never mutated",
		},
		"pod label opts out": {
			obj:           withPodLabel(workloadObject("apps/v1", "Deployment", "apps"), policy.InjectLabel, policy.InjectDisabled),
			wantNamespace: "apps", wantSkipped: "opted out with pod label lanyard.dev/inject=disabled",
		},
		"pod label with another value does not opt out": {
			obj:           withPodLabel(workloadObject("apps/v1", "Deployment", "apps"), policy.InjectLabel, "false"),
			wantNamespace: "apps",
		},
		"namespace described without the label": {
			obj:           workloadObject("apps/v1", "Deployment", "closed"),
			wantNamespace: "closed", wantSkipped: "namespace closed is not opted in (label lanyard.dev/inject=enabled)",
		},
		"namespace described with the label disabled": {
			obj:           workloadObject("apps/v1", "Deployment", "disabled"),
			wantNamespace: "disabled", wantSkipped: "namespace disabled is not opted in",
		},
		"undescribed namespace is assumed opted in": {
			obj:           workloadObject("apps/v1", "Deployment", "undescribed"),
			wantNamespace: "undescribed", wantAssumed: true,
		},
		"object without namespace gets the default": {
			obj:           workloadObject("apps/v1", "Deployment", ""),
			wantNamespace: "defaultns", wantAssumed: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			outputs, workloads := process(t, newEngine(t, basePolicy), toYAML(t, tc.obj))
			require.Len(t, workloads, 1)
			w := workloads[0]
			assert.Equal(t, tc.wantNamespace, w.Namespace)
			assert.Equal(t, tc.wantAssumed, w.AssumedNamespace)
			if tc.wantSkipped != "" {
				assert.Contains(t, w.Skipped, tc.wantSkipped)
				assert.False(t, outputs[0].Changed)
				assert.Nil(t, w.Applied)
				assert.Nil(t, w.Changes)
				assert.NotNil(t, w.Pod)
				return
			}
			assert.Empty(t, w.Skipped)
			assert.True(t, outputs[0].Changed, "the namespace's association applies")
			assert.Equal(t, "IdentityAssociation "+tc.wantNamespace+"-app", w.Applied.Identity.Source)
		})
	}
}

func TestProcessAssumedNamespaceMatchesSelectors(t *testing.T) {
	pol := basePolicy + `---
apiVersion: lanyard.dev/v1alpha1
kind: RegistryAttachment
metadata: {name: by-name}
spec:
  registry: myacr.azurecr.io
  namespaceSelector:
    matchLabels: {kubernetes.io/metadata.name: undescribed, lanyard.dev/inject: enabled}
  pull:
    imagePullSecret: {name: acr-pull}
`
	obj := workloadObject("v1", "Pod", "undescribed")
	obj["spec"] = podSpec(map[string]any{"containers": []any{map[string]any{"name": "main", "image": "myacr.azurecr.io/app:v1"}}})
	outputs, workloads := process(t, newEngine(t, pol), toYAML(t, obj))
	require.Len(t, workloads, 1)
	assert.True(t, workloads[0].AssumedNamespace)
	require.True(t, outputs[0].Changed)
	pod := podAt(t, decodeJSON(t, outputs[0].JSON), "")
	assert.Equal(t, []corev1.LocalObjectReference{{Name: "acr-pull"}}, pod.Spec.ImagePullSecrets)
	assert.Equal(t, "aws,registry/by-name", pod.Annotations[policy.AnnotationInjected])
}

func TestProcessDenied(t *testing.T) {
	tests := map[string]struct {
		policy     string
		obj        map[string]any
		wantDenied string
	}{
		"malformed pod annotation": {
			policy: basePolicy,
			obj: func() map[string]any {
				obj := workloadObject("apps/v1", "Deployment", "apps")
				mapAt(obj, "spec", "template", "metadata")["annotations"] = map[string]any{policy.AnnotationTokenExpiration: "5"}
				return obj
			}(),
			wantDenied: policy.AnnotationTokenExpiration,
		},
		"malformed compat ServiceAccount annotation": {
			policy: basePolicy + "---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: legacy\n  namespace: apps\n  annotations: {eks.amazonaws.com/role-arn: not-an-arn}\n",
			obj: func() map[string]any {
				obj := workloadObject("apps/v1", "Deployment", "apps")
				mapAt(obj, "spec", "template", "spec")["serviceAccountName"] = "legacy"
				return obj
			}(),
			wantDenied: "ServiceAccount apps/legacy annotation eks.amazonaws.com/role-arn",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			outputs, workloads := process(t, newEngine(t, tc.policy), toYAML(t, tc.obj))
			require.Len(t, workloads, 1)
			w := workloads[0]
			require.Error(t, w.Denied)
			var invalid *policy.InvalidError
			assert.ErrorAs(t, w.Denied, &invalid)
			assert.Contains(t, w.Denied.Error(), tc.wantDenied)
			assert.False(t, outputs[0].Changed)
			assert.Nil(t, w.Changes)
			assert.NotNil(t, w.Pod)
		})
	}
}

func TestProcessErrors(t *testing.T) {
	tests := map[string]struct {
		input   string
		wantErr []string
	}{
		"template is not an object": {
			input:   "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w, namespace: apps}\nspec:\n  template: nope\n",
			wantErr: []string{"in.yaml document 1 (Deployment w), line 1", "Deployment has no pod template at spec.template"},
		},
		"CronJob without jobTemplate": {
			input:   "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c, namespace: apps}\nspec: {schedule: x}\n",
			wantErr: []string{"in.yaml document 1 (CronJob c), line 1", "jobTemplate"},
		},
		"List item that is not an object": {
			input:   "apiVersion: v1\nkind: List\nitems: [1]\n",
			wantErr: []string{"in.yaml document 1 (List)", "items[0] is not an object"},
		},
		"pod spec of the wrong type": {
			input:   "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: apps}\nspec:\n  containers: {name: x}\n",
			wantErr: []string{"in.yaml document 1 (Pod p)", "pod template at ."},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			docs, err := manifest.Split("in.yaml", []byte(tc.input+"---\n"+toYAML(t, workloadObject("v1", "Pod", "apps"))))
			require.NoError(t, err)
			outputs, _, err := newEngine(t, basePolicy).Process(context.Background(), docs)
			require.Error(t, err)
			for _, want := range tc.wantErr {
				assert.Contains(t, err.Error(), want)
			}
			var merr *manifest.Error
			assert.ErrorAs(t, err, &merr)
			require.Len(t, outputs, 2, "every document still has an output")
			assert.False(t, outputs[0].Changed)
			assert.True(t, outputs[1].Changed, "the other documents are processed")
		})
	}
}

func TestWorkloadRef(t *testing.T) {
	tests := map[string]struct {
		w    offline.Workload
		want string
	}{
		"named":   {w: offline.Workload{Kind: "Deployment", Namespace: "payments", Name: "api"}, want: "Deployment payments/api"},
		"unnamed": {w: offline.Workload{Kind: "Pod", Namespace: "payments"}, want: "Pod payments/(unnamed)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.w.Ref())
		})
	}
}

func TestIsWorkload(t *testing.T) {
	tests := map[string]struct {
		apiVersion, kind string
		want             bool
	}{
		"v1 Pod":                  {apiVersion: "v1", kind: "Pod", want: true},
		"apps/v1 Deployment":      {apiVersion: "apps/v1", kind: "Deployment", want: true},
		"batch/v1 CronJob":        {apiVersion: "batch/v1", kind: "CronJob", want: true},
		"apps/v1beta2 Deployment": {apiVersion: "apps/v1beta2", kind: "Deployment", want: false},
		"batch/v1 Deployment":     {apiVersion: "batch/v1", kind: "Deployment", want: false},
		"v1 List":                 {apiVersion: "v1", kind: "List", want: false},
		"v1 PodTemplate":          {apiVersion: "v1", kind: "PodTemplate", want: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, offline.IsWorkload(tc.apiVersion, tc.kind))
		})
	}
}

func TestProcessDecodesTemplateCaseSensitively(t *testing.T) {
	// The API server matches field names case-sensitively: "ServiceAccountName" is not
	// spec.serviceAccountName, so in the cluster the pod runs as "default" (which has no identity
	// here) and the webhook injects nothing. The offline door must agree.
	input := `apiVersion: v1
kind: Pod
metadata: {name: p, namespace: apps}
spec:
  ServiceAccountName: app
  containers: [{name: main, image: nginx}]
`
	outputs, workloads := process(t, newEngine(t, basePolicy), input)
	require.Len(t, workloads, 1)
	w := workloads[0]
	require.NotNil(t, w.Applied)
	assert.Equal(t, policy.DefaultServiceAccountName, w.Applied.ServiceAccountName, "a mis-cased key is not serviceAccountName")
	assert.True(t, w.Applied.Identity.Empty())
	assert.False(t, outputs[0].Changed)
}
