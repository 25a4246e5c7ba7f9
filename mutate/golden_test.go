package mutate_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/lanyard-dev/lanyard/internal/manifest"
	"github.com/lanyard-dev/lanyard/mutate"
	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite the *.golden.yaml files from the current output")

// goldenOptions are the non-default settings of some cases; every other case runs with compat
// annotations on and no default Azure tenant.
var goldenOptions = map[string]struct {
	policy policy.Options
	mutate mutate.Options
}{
	"aws-pod-identity-ipv6":           {policy: policy.Options{CompatAnnotations: true}, mutate: mutate.Options{AWSPodIdentityIPv6: true}},
	"azure-default-tenant":            {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"compat-disabled":                 {policy: policy.Options{CompatAnnotations: false}, mutate: mutate.Options{IgnoreCompatAnnotations: true}},
	"compat-disabled-pod-annotations": {policy: policy.Options{CompatAnnotations: false}, mutate: mutate.Options{IgnoreCompatAnnotations: true}},
	"compat-azure-use-label":          {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"compat-azure-china-cloud":        {policy: policy.Options{CompatAnnotations: true, DefaultAzureCloud: v1alpha1.AzureChinaCloud}},
	"compat-irsa-anchor-flags": {policy: policy.Options{CompatAnnotations: true, CompatAWSAudience: "sts.example.com",
		CompatAWSTokenExpiration: 3600, CompatAWSGlobalSTS: true}},
	"compat-eks-annotation-prefix": {policy: policy.Options{CompatAnnotations: true, EKSAnnotationPrefix: "iam.example.com"},
		mutate: mutate.Options{EKSAnnotationPrefix: "iam.example.com"}},
	"compat-irsa-default-region": {policy: policy.Options{CompatAnnotations: true, DefaultAWSRegion: "eu-north-1"}},

	// The anchors' own cases (testdata/anchor-*.yaml) run with the anchors' cluster-wide settings.
	"anchor-aws-TestMutatePod":                       {policy: policy.Options{CompatAnnotations: true, CompatAWSGlobalSTS: true}},
	"anchor-aws-betaWindowsPodWithoutVolumes":        {policy: policy.Options{CompatAnnotations: true, CompatAWSGlobalSTS: true}},
	"anchor-aws-containercredentials-rawPodNeedsAll": {policy: policy.Options{CompatAnnotations: true, DefaultAWSRegion: "cn-north-1"}},
	"anchor-aws-initPodNeedsRegion":                  {policy: policy.Options{CompatAnnotations: true, CompatAWSGlobalSTS: true, DefaultAWSRegion: "us-west-2"}},
	"anchor-aws-rawPodHasAll":                        {policy: policy.Options{CompatAnnotations: true, CompatAWSGlobalSTS: true, DefaultAWSRegion: "cn-north-1"}},
	"anchor-aws-rawPodHasSTS":                        {policy: policy.Options{CompatAnnotations: true, CompatAWSGlobalSTS: true, DefaultAWSRegion: "cn-north-1"}},
	"anchor-aws-rawPodHasTokenExpiration":            {policy: policy.Options{CompatAnnotations: true, CompatAWSGlobalSTS: true, DefaultAWSRegion: "cn-north-1"}},
	"anchor-aws-rawPodHasVolumeMount":                {policy: policy.Options{CompatAnnotations: true, CompatAWSGlobalSTS: true}},
	"anchor-aws-rawPodMinTokenExpiration":            {policy: policy.Options{CompatAnnotations: true, CompatAWSGlobalSTS: true, DefaultAWSRegion: "cn-north-1"}},
	"anchor-aws-rawPodNeedsRegion":                   {policy: policy.Options{CompatAnnotations: true, CompatAWSGlobalSTS: true, DefaultAWSRegion: "us-west-2"}},
	"anchor-aws-rawPodNeedsSTS":                      {policy: policy.Options{CompatAnnotations: true, CompatAWSGlobalSTS: true, DefaultAWSRegion: "cn-north-1"}},
	"anchor-aws-rawPodNoSTSAnnotationOverride":       {policy: policy.Options{CompatAnnotations: true, DefaultAWSRegion: "us-east-1"}},
	"anchor-aws-rawPodRegionPresent":                 {policy: policy.Options{CompatAnnotations: true, CompatAWSGlobalSTS: true}},
	"anchor-aws-rawPodSkip":                          {policy: policy.Options{CompatAnnotations: true, CompatAWSGlobalSTS: true, DefaultAWSRegion: "us-west-2"}},
	"anchor-aws-rawPodWithGRPC":                      {policy: policy.Options{CompatAnnotations: true, CompatAWSGlobalSTS: true, DefaultAWSRegion: "us-west-2"}},
	"anchor-aws-rawPodWithInitContainer":             {policy: policy.Options{CompatAnnotations: true, CompatAWSGlobalSTS: true, DefaultAWSRegion: "us-west-2"}},
	"anchor-aws-rawPodWithVolumes":                   {policy: policy.Options{CompatAnnotations: true, CompatAWSGlobalSTS: true}},
	"anchor-aws-rawPodWithoutVolumes":                {policy: policy.Options{CompatAnnotations: true, CompatAWSGlobalSTS: true}},
	"anchor-aws-rawPodWithsecCompProfile":            {policy: policy.Options{CompatAnnotations: true, CompatAWSGlobalSTS: true, DefaultAWSRegion: "us-west-2"}},
	"anchor-aws-windowsPodWithoutVolumes":            {policy: policy.Options{CompatAnnotations: true, CompatAWSGlobalSTS: true}},
	"anchor-azure-TestAddEnvironmentVariables-environment-variables-added-to-container":                                        {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestAddEnvironmentVariables-environment-variables-added-to-existing-list":                                    {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestAddEnvironmentVariables-environment-variables-are-not-added-when-empty":                                  {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestAddEnvironmentVariables-existing-environment-variables-not-replaced":                                     {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestAddProjectServiceAccountTokenVolumeMount-v1.5.1-volume-mount-with-name-already-exists-so-skipped":        {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestAddProjectServiceAccountTokenVolumeMount-volume-mount-added-to-container":                                {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestAddProjectServiceAccountTokenVolumeMount-volume-mount-added-to-existing-volume-mounts-for-container":     {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestAddProjectedVolume-azure-identity-token-projected-volume-already-exists":                                 {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestAddProjectedVolume-existing-projected-service-account-token-volume-overridden-with-desired-audience":     {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestAddProjectedVolume-no-volumes-in-the-pod":                                                                {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestAddProjectedVolume-v1.5.1-existing-projected-service-account-token-volume-not-affected":                  {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestGetAzureAuthorityHost-china-cloud":                                                                       {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47", DefaultAzureCloud: v1alpha1.AzureChinaCloud}},
	"anchor-azure-TestGetAzureAuthorityHost-default-azure-environment":                                                         {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestGetAzureAuthorityHost-public-cloud":                                                                      {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47", DefaultAzureCloud: v1alpha1.AzurePublicCloud}},
	"anchor-azure-TestGetAzureAuthorityHost-us-government-cloud":                                                               {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47", DefaultAzureCloud: v1alpha1.AzureUSGovernmentCloud}},
	"anchor-azure-TestGetClientID-client-id-not-present":                                                                       {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestGetClientID-client-id-present":                                                                           {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestGetServiceAccountTokenExpiration-invalid-token-expiry-greater-than-86400":                                {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestGetServiceAccountTokenExpiration-invalid-token-expiry-less-than-3600":                                    {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestGetServiceAccountTokenExpiration-pod-token-expiry-annotation-invalid":                                    {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestGetServiceAccountTokenExpiration-service-account-token-expiry-annotation-invalid":                        {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestGetServiceAccountTokenExpiration-token-expiry-in-pod-preferred-over-service-account-token-expiry":        {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestGetServiceAccountTokenExpiration-valid-token-expiry-defined-in-service-account":                          {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestGetSkipContainers-multiple-skip-containers-defined-delimited-by-semicolon":                               {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestGetSkipContainers-multiple-skip-containers-defined-with-extra-space":                                     {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestGetSkipContainers-no-skip-containers-defined":                                                            {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestGetSkipContainers-one-skip-container-defined":                                                            {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestGetTenantID-tenant-ID-annotation-not-defined-use-default":                                                {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestHandle-default-service-account-in-cache":                                                                 {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestHandle-pod-has-the-required-label-no-warnings":                                                           {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestHandle-pod-has-the-required-label-restart-policy-in-init-container":                                      {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestHandle-service-account-in-cache":                                                                         {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestHandleError-invalid-sa-token-expiry":                                                                     {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestHandleError-service-account-not-found":                                                                   {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestMutateContainers-one-container-and-one-skip-container":                                                   {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-TestMutateContainers-one-container":                                                                          {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-e2e-should-mutate-a-labeled-pod-guid":                                                                        {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-e2e-should-mutate-a-labeled-pod":                                                                             {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-e2e-should-mutate-the-init-containers-within-a-pod":                                                          {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-e2e-should-not-mutate-a-pod-if-service-account-token-expiration-100-is-annotated-to-the-pod":                 {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-e2e-should-not-mutate-a-pod-if-service-account-token-expiration-100-is-annotated-to-the-service-account":     {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-e2e-should-not-mutate-a-pod-if-service-account-token-expiration-invalid-is-annotated-to-the-pod":             {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-e2e-should-not-mutate-a-pod-if-service-account-token-expiration-invalid-is-annotated-to-the-service-account": {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
	"anchor-azure-e2e-should-not-mutate-selected-containers-if-skip-containers-annotated":                                      {policy: policy.Options{CompatAnnotations: true, DefaultAzureTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}},
}

// goldenCase is one testdata/*.yaml file: policy objects plus exactly one Pod.
type goldenCase struct {
	name      string
	namespace string
	raw       []byte // the pod's JSON as it would arrive in an AdmissionReview
	pod       *corev1.Pod
	applied   *policy.Applied
	// resolveErr is a policy that cannot be applied (e.g. a malformed compatibility annotation).
	resolveErr error
	opts       mutate.Options
}

func loadGoldenCases(t testing.TB) []goldenCase {
	files, err := filepath.Glob("testdata/*.yaml")
	require.NoError(t, err)
	var cases []goldenCase
	for _, f := range files {
		if strings.HasSuffix(f, ".golden.yaml") {
			continue
		}
		cases = append(cases, loadGoldenCase(t, f))
	}
	require.NotEmpty(t, cases)
	return cases
}

func loadGoldenCase(t testing.TB, file string) goldenCase {
	name := strings.TrimSuffix(filepath.Base(file), ".yaml")
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	docs, err := manifest.Split(file, data)
	require.NoError(t, err)
	pol := manifest.NewPolicy()
	require.NoError(t, pol.Add(docs, "default"))

	c := goldenCase{name: name}
	for _, d := range docs {
		if d.Kind != "Pod" {
			continue
		}
		require.Nil(t, c.raw, "%s: more than one Pod", file)
		c.raw = d.JSON
		c.namespace = d.Namespace
	}
	require.NotNil(t, c.raw, "%s: no Pod", file)
	if c.namespace == "" {
		c.namespace = "default"
	}
	c.pod = &corev1.Pod{}
	require.NoError(t, json.Unmarshal(c.raw, c.pod))

	o, ok := goldenOptions[name]
	if !ok {
		o.policy = policy.Options{CompatAnnotations: true}
	}
	c.opts = o.mutate
	c.applied, c.resolveErr = policy.NewResolver(pol, o.policy).Resolve(context.Background(), policy.SubjectOf(c.namespace, c.pod))
	return c
}

// TestGolden runs every testdata case through both doors: the JSON Patch applied to the raw pod
// (the webhook) and Apply on the typed pod (the CLI report). They must agree, the patch must only
// add, and the result must be a fixed point. The golden file shows the patched pod, the operations,
// what was injected and every warning.
func TestGolden(t *testing.T) {
	for _, c := range loadGoldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			golden := filepath.Join("testdata", c.name+".golden.yaml")
			got := runGoldenCase(t, c)
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
				return
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "missing golden file: run go test ./mutate -update")
			assert.Equal(t, string(want), got, "stale golden file %s: review the diff and run go test ./mutate -update", golden)
		})
	}
}

func runGoldenCase(t *testing.T, c goldenCase) string {
	var out strings.Builder
	if c.resolveErr != nil {
		var invalid *policy.InvalidError
		require.ErrorAs(t, c.resolveErr, &invalid, "a deny must name the field")
		fmt.Fprintf(&out, "# denied: %v\n", c.resolveErr)
		return out.String()
	}
	for _, is := range c.applied.Issues {
		fmt.Fprintf(&out, "# policy %s: %s\n", is.Severity, is.Message)
	}
	ch, err := mutate.Compute(c.pod, c.applied, c.opts)
	if err != nil {
		var invalid *policy.InvalidError
		require.ErrorAs(t, err, &invalid, "a deny must name the field")
		fmt.Fprintf(&out, "# denied: %v\n", err)
		return out.String()
	}
	ops := ch.Patch()
	patched := applyPatch(t, c.raw, ops)
	checkFastPaths(t, c.raw, ch, c.applied, c.opts)

	// Door 2: the typed pod edited in place equals the patched JSON.
	typed := c.pod.DeepCopy()
	ch.Apply(typed)
	fromPatch := &corev1.Pod{}
	require.NoError(t, json.Unmarshal(patched, fromPatch))
	require.Equal(t, typed, fromPatch, "Apply and Patch disagree")

	// Fixed point: mutating the result again changes nothing.
	again, err := mutate.Compute(fromPatch, c.applied, c.opts)
	require.NoError(t, err)
	require.True(t, again.Empty(), "second pass is not a no-op: %v", again.Patch())
	require.Empty(t, again.Patch())

	injected := strings.Join(ch.Injected, ",")
	if injected == "" {
		injected = "(nothing)"
	}
	fmt.Fprintf(&out, "# injected: %s\n", injected)
	for _, w := range ch.Warnings {
		fmt.Fprintf(&out, "# warning: %s\n", w)
	}
	for _, op := range ops {
		js, err := json.Marshal(op)
		require.NoError(t, err)
		fmt.Fprintf(&out, "# patch: %s\n", js)
	}
	y, err := yaml.JSONToYAML(patched)
	require.NoError(t, err)
	out.Write(y)
	return out.String()
}

// applyPatch applies ops to raw JSON the way the API server does, after checking they only add.
func applyPatch(t testing.TB, raw []byte, ops any) []byte {
	t.Helper()
	js, err := json.Marshal(ops)
	require.NoError(t, err)
	var generic []map[string]any
	require.NoError(t, json.Unmarshal(js, &generic))
	for _, op := range generic {
		require.Equal(t, "add", op["op"], "only add operations are allowed: %v", op)
	}
	if len(generic) == 0 {
		return raw
	}
	p, err := jsonpatch.DecodePatch(js)
	require.NoError(t, err)
	out, err := p.Apply(raw)
	require.NoError(t, err)
	return out
}

// checkFastPaths checks the webhook's fast paths against the reference ones: the pod decoded as a
// PodView yields the same changes as the full pod, and AppendPatchJSON writes the same operations
// as json.Marshal of Patch.
func checkFastPaths(t *testing.T, raw []byte, ch *mutate.Changes, applied *policy.Applied, opts mutate.Options) {
	t.Helper()
	want, err := json.Marshal(ch.Patch())
	require.NoError(t, err)
	got, err := ch.AppendPatchJSON(nil, "")
	require.NoError(t, err)
	if len(ch.Patch()) == 0 {
		require.Equal(t, "[]", string(got))
	} else {
		require.JSONEq(t, string(want), string(got), "AppendPatchJSON differs from json.Marshal(Patch())")
	}

	var view mutate.PodView
	require.NoError(t, json.Unmarshal(raw, &view))
	// A buffer that held a larger pod before builds exactly the pod a fresh one does.
	used := &mutate.PodBuffer{}
	usedPodView(t).PodIn(used)
	require.Equal(t, view.Pod(), view.PodIn(used), "a reused PodBuffer keeps something of its last pod")
	viewChanges, err := mutate.Compute(view.PodIn(used), applied, opts)
	require.NoError(t, err)
	fromView, err := viewChanges.AppendPatchJSON(nil, "")
	require.NoError(t, err)
	require.JSONEq(t, string(got), string(fromView), "the PodView gives other changes than the full pod")
	require.Equal(t, ch.Warnings, viewChanges.Warnings)
	require.Equal(t, ch.Injected, viewChanges.Injected)
}

// usedPodView is a view of a pod with something in every field PodIn fills: many containers,
// env vars (one from valueFrom), mounts, volumes, annotations.
func usedPodView(t *testing.T) *mutate.PodView {
	t.Helper()
	var env []string
	for i := range 12 {
		env = append(env, fmt.Sprintf(`{"name":"E%d","value":"v"}`, i))
	}
	env = append(env, `{"name":"F","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}}`)
	c := `{"name":"c%d","image":"registry.example/app:%d","env":[` + strings.Join(env, ",") + `],"volumeMounts":[{"name":"data","mountPath":"/data"}]}`
	var containers []string
	for i := range 6 {
		containers = append(containers, fmt.Sprintf(c, i, i))
	}
	raw := `{"metadata":{"name":"old","namespace":"old","annotations":{"a":"b"}},"spec":{"serviceAccountName":"old","nodeSelector":{"k":"v"},` +
		`"volumes":[{"name":"data","projected":{"sources":[]}},{"name":"other"}],"imagePullSecrets":[{"name":"s"}],` +
		`"initContainers":[` + strings.Join(containers[:2], ",") + `],"containers":[` + strings.Join(containers[2:], ",") + `]}}`
	var view mutate.PodView
	require.NoError(t, json.Unmarshal([]byte(raw), &view))
	return &view
}
