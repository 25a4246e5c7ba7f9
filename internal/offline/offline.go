// Package offline runs lanyard's admission logic on manifests, for lanyard inject and lanyard
// check: it finds the pod templates of workloads, decides opt-in as the webhook configuration
// would, resolves policy through the same policy.Resolver and mutates through the same
// mutate.Compute as the webhook, and applies the resulting JSON Patch to each document.
package offline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	jsonpatch "github.com/evanphx/json-patch/v5"
	gjsonpatch "gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/internal/manifest"
	"github.com/lanyard-dev/lanyard/mutate"
	"github.com/lanyard-dev/lanyard/policy"
)

// Engine processes documents against a policy.
type Engine struct {
	// Policy holds the Namespaces, ServiceAccounts and policy objects known offline; it decides
	// opt-in (a namespace it does not describe is assumed opted in).
	Policy *manifest.Policy
	// Reader is where resolution reads policy; usually Policy itself.
	Reader           policy.Reader
	PolicyOptions    policy.Options
	MutateOptions    mutate.Options
	DefaultNamespace string
}

// Workload is one pod template (or Pod) found in the input and what lanyard does to it.
type Workload struct {
	Doc       *manifest.Document
	Kind      string
	Name      string
	Namespace string
	// Path is the JSON pointer of the pod template within the document ("" for a Pod).
	Path string
	// Skipped says why lanyard leaves the workload alone (not opted in, opted out, system
	// namespace); empty when it was processed.
	Skipped string
	// AssumedNamespace is set when the namespace is described nowhere and was assumed opted in.
	AssumedNamespace bool
	Applied          *policy.Applied
	Changes          *mutate.Changes
	// Denied is the error the webhook would deny the pod with.
	Denied error
	// Pod is the pod template after mutation (typed), for reports.
	Pod *corev1.Pod
}

// Ref names the workload: "Deployment payments/api".
func (w *Workload) Ref() string {
	name := w.Name
	if name == "" {
		name = "(unnamed)"
	}
	return fmt.Sprintf("%s %s/%s", w.Kind, w.Namespace, name)
}

// Output is a document after processing: Changed documents carry new JSON, others keep their bytes.
type Output struct {
	Doc     *manifest.Document
	Changed bool
	JSON    []byte
}

// templatePaths gives, per kind, where the pod template is.
var templatePaths = map[string][]string{
	"Pod":         {""},
	"Deployment":  {"spec", "template"},
	"StatefulSet": {"spec", "template"},
	"DaemonSet":   {"spec", "template"},
	"ReplicaSet":  {"spec", "template"},
	"Job":         {"spec", "template"},
	"CronJob":     {"spec", "jobTemplate", "spec", "template"},
}

var workloadAPIVersions = map[string]string{
	"Pod": "v1", "Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1",
	"ReplicaSet": "apps/v1", "Job": "batch/v1", "CronJob": "batch/v1",
}

// IsWorkload reports whether lanyard mutates objects of this type.
func IsWorkload(apiVersion, kind string) bool {
	v, ok := workloadAPIVersions[kind]
	return ok && v == apiVersion
}

// Process runs every document. Documents that are not workloads pass through untouched. A
// document that cannot be processed (malformed workload) is an error naming it; a workload the
// webhook would deny is not an error here but a Workload with Denied set, left unchanged.
func (e *Engine) Process(ctx context.Context, docs []*manifest.Document) ([]Output, []*Workload, error) {
	outputs := make([]Output, 0, len(docs))
	var workloads []*Workload
	var errs []error
	for _, d := range docs {
		out := Output{Doc: d}
		if d.JSON != nil {
			changed, js, ws, err := e.processDocument(ctx, d)
			if err != nil {
				errs = append(errs, &manifest.Error{Doc: d, Err: err})
			}
			workloads = append(workloads, ws...)
			out.Changed, out.JSON = changed, js
		}
		outputs = append(outputs, out)
	}
	return outputs, workloads, errors.Join(errs...)
}

func (e *Engine) processDocument(ctx context.Context, d *manifest.Document) (bool, []byte, []*Workload, error) {
	var obj map[string]any
	if err := json.Unmarshal(d.JSON, &obj); err != nil {
		return false, nil, nil, err
	}
	var ops []gjsonpatch.Operation
	var workloads []*Workload
	var visit func(obj map[string]any, pointer string) error
	visit = func(obj map[string]any, pointer string) error {
		apiVersion, _ := obj["apiVersion"].(string)
		kind, _ := obj["kind"].(string)
		if apiVersion == "v1" && kind == "List" {
			items, _ := obj["items"].([]any)
			for i, it := range items {
				item, ok := it.(map[string]any)
				if !ok {
					return fmt.Errorf("items[%d] is not an object", i)
				}
				if err := visit(item, pointer+"/items/"+strconv.Itoa(i)); err != nil {
					return fmt.Errorf("items[%d]: %w", i, err)
				}
			}
			return nil
		}
		if !IsWorkload(apiVersion, kind) {
			return nil
		}
		w, wops, err := e.processWorkload(ctx, d, obj, pointer, kind)
		if err != nil {
			return err
		}
		workloads = append(workloads, w)
		ops = append(ops, wops...)
		return nil
	}
	if err := visit(obj, ""); err != nil {
		return false, nil, nil, err
	}
	if len(ops) == 0 {
		return false, nil, workloads, nil
	}
	patched, err := ApplyPatch(d.JSON, ops)
	if err != nil {
		return false, nil, nil, err
	}
	return true, patched, workloads, nil
}

func (e *Engine) processWorkload(ctx context.Context, d *manifest.Document, obj map[string]any, pointer, kind string) (*Workload, []gjsonpatch.Operation, error) {
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	if name == "" {
		name, _ = meta["generateName"].(string)
	}
	ns, _ := meta["namespace"].(string)
	if ns == "" {
		ns = e.DefaultNamespace
	}
	w := &Workload{Doc: d, Kind: kind, Name: name, Namespace: ns}

	// Find the template.
	var tmpl any = obj
	segments := templatePaths[kind]
	path := pointer
	for _, s := range segments {
		if s == "" {
			continue
		}
		m, ok := tmpl.(map[string]any)
		if !ok {
			return nil, nil, fmt.Errorf("%s has no pod template at %s", kind, jsonPointerToField(templatePointer(pointer, kind), pointer))
		}
		tmpl = m[s]
		path += "/" + s
	}
	tmplObj, ok := tmpl.(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("%s has no pod template at %s", kind, jsonPointerToField(path, pointer))
	}
	w.Path = path
	tmplJSON, err := json.Marshal(map[string]any{"metadata": tmplObj["metadata"], "spec": tmplObj["spec"]})
	if err != nil {
		return nil, nil, err
	}
	// Case-sensitive, as the API server decodes: a mis-cased field is not the field.
	pod, err := mutate.DecodePod(tmplJSON)
	if err != nil {
		return nil, nil, fmt.Errorf("pod template at %s: %w", jsonPointerToField(path, pointer), err)
	}

	if reason := e.skipReason(w, pod); reason != "" {
		w.Skipped = reason
		w.Pod = pod
		return w, nil, nil
	}
	resolver := policy.NewResolver(assumingReader{e.Reader}, e.PolicyOptions)
	applied, err := resolver.Resolve(ctx, policy.SubjectOf(ns, pod))
	if err != nil {
		var invalid *policy.InvalidError
		if errors.As(err, &invalid) {
			w.Denied = err
			w.Pod = pod
			return w, nil, nil
		}
		return nil, nil, err
	}
	w.Applied = applied
	changes, err := mutate.Compute(pod, applied, e.MutateOptions)
	if err != nil {
		w.Denied = err
		w.Pod = pod
		return w, nil, nil
	}
	w.Changes = changes
	mutated := pod.DeepCopy()
	changes.Apply(mutated)
	w.Pod = mutated

	if _, hasMeta := tmplObj["metadata"].(map[string]any); !hasMeta {
		changes.CreateMetadata()
	}
	return w, changes.PatchAt(path), nil
}

// skipReason decides, as the webhook configuration and handler do, whether the workload is
// mutated at all.
func (e *Engine) skipReason(w *Workload, pod *corev1.Pod) string {
	if policy.IsSystemNamespace(w.Namespace, "") {
		return fmt.Sprintf("namespace %s is never mutated", w.Namespace)
	}
	if pod.Labels[policy.InjectLabel] == policy.InjectDisabled {
		return fmt.Sprintf("opted out with pod label %s=%s", policy.InjectLabel, policy.InjectDisabled)
	}
	if e.Policy != nil && e.Policy.HasNamespace(w.Namespace) {
		ns, _ := e.Policy.Namespace(context.Background(), w.Namespace)
		if !policy.OptedIn(ns.Labels) {
			return fmt.Sprintf("namespace %s is not opted in (label %s=%s)", w.Namespace, policy.InjectLabel, policy.InjectEnabled)
		}
		return ""
	}
	w.AssumedNamespace = true
	return ""
}

func templatePointer(base, kind string) string {
	p := base
	for _, s := range templatePaths[kind] {
		if s != "" {
			p += "/" + s
		}
	}
	return p
}

// ApplyPatch applies JSON Patch operations to a JSON document.
func ApplyPatch(doc []byte, ops []gjsonpatch.Operation) ([]byte, error) {
	js, err := json.Marshal(ops)
	if err != nil {
		return nil, err
	}
	p, err := jsonpatch.DecodePatch(js)
	if err != nil {
		return nil, err
	}
	return p.Apply(doc)
}

func jsonPointerToField(path, base string) string {
	rel := path[len(base):]
	if rel == "" {
		return "."
	}
	out := make([]byte, 0, len(rel))
	for i := 0; i < len(rel); i++ {
		if rel[i] == '/' {
			if i > 0 {
				out = append(out, '.')
			}
			continue
		}
		out = append(out, rel[i])
	}
	return string(out)
}

// assumingReader describes a namespace that the input does not as the API server would label an
// opted-in one, so that namespaceSelectors behave as they will in the cluster.
type assumingReader struct{ policy.Reader }

func (r assumingReader) Namespace(ctx context.Context, name string) (*metav1.ObjectMeta, error) {
	ns, err := r.Reader.Namespace(ctx, name)
	if ns != nil || err != nil {
		return ns, err
	}
	return &metav1.ObjectMeta{Name: name, Labels: map[string]string{
		corev1.LabelMetadataName: name,
		policy.InjectLabel:       policy.InjectEnabled,
	}}, nil
}
