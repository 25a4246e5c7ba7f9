package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/lanyard-dev/lanyard/internal/manifest"
)

// repoRoot is resolved before any test changes directory.
var repoRoot, _ = filepath.Abs("../..")

var update = flag.Bool("update", false, "rewrite the golden files from the current output")

type result struct {
	code           int
	stdout, stderr string
}

// run executes the CLI from the repository root, so paths in reports read as a user would type them.
func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	t.Chdir(repoRoot)
	var stdout, stderr bytes.Buffer
	code := Run(args, strings.NewReader(stdin), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join(repoRoot, "internal", "cli", "testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file: run go test ./internal/cli -update")
	assert.Equal(t, string(want), got, "stale golden %s: review the diff, then go test ./internal/cli -update", path)
}

// TestExamples pins what the bundled examples become, through every output of inject and check.
func TestExamples(t *testing.T) {
	tests := map[string]struct {
		args     []string
		wantCode int
	}{
		"inject":      {args: []string{"inject", "-f", "examples/manifests", "--policy", "examples/policy"}},
		"inject-json": {args: []string{"inject", "-f", "examples/manifests", "--policy", "examples/policy", "-o", "json"}},
		"inject-diff": {args: []string{"inject", "-f", "examples/manifests", "--policy", "examples/policy", "--diff"}},
		"check":       {args: []string{"check", "-f", "examples/manifests", "--policy", "examples/policy"}},
		"check-json":  {args: []string{"check", "-f", "examples/manifests", "--policy", "examples/policy", "-o", "json"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := run(t, "", tc.args...)
			require.Equal(t, tc.wantCode, r.code, "stderr: %s", r.stderr)
			golden(t, "examples-"+name+".stdout.golden", r.stdout)
			golden(t, "examples-"+name+".stderr.golden", r.stderr)
		})
	}
}

// TestInjectIsIdempotent: injecting the output of inject changes nothing.
func TestInjectIsIdempotent(t *testing.T) {
	first := run(t, "", "inject", "-f", "examples/manifests", "--policy", "examples/policy")
	require.Equal(t, 0, first.code, first.stderr)
	second := run(t, first.stdout, "inject", "-f", "-", "--policy", "examples/policy")
	require.Equal(t, 0, second.code, second.stderr)
	assert.Equal(t, first.stdout, second.stdout)
	assert.Contains(t, second.stderr, "already injected")
	assert.NotContains(t, second.stderr, ": injected:")
}

// TestPassThroughByteForByte: documents lanyard does not mutate come out exactly as they went in.
func TestPassThroughByteForByte(t *testing.T) {
	in := "# leading comment\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c   # odd spacing kept\n  namespace: shop\ndata: {a: \"1\"}\n---\n" +
		"apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec:\n    deep:   [1,2]\n---\n" +
		"apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\nspec:\n  containers: [{name: a, image: nginx}]\n"
	r := run(t, in, "inject", "-f", "-")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, in, r.stdout, "nothing applies, so every document must be unchanged")
	assert.Contains(t, r.stderr, "Pod shop/p: nothing applies")
}

// TestMutateGoldensAgreeWithCLI: the CLI door gives the same pod as the mutate golden for every
// case that is not denied.
func TestMutateGoldensAgreeWithCLI(t *testing.T) {
	files, err := filepath.Glob("../../mutate/testdata/*.golden.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	// The cases the goldens run with non-default options run with the equivalent flags.
	flags := map[string][]string{
		"aws-pod-identity-ipv6":           {"--aws-pod-identity-ipv6"},
		"azure-default-tenant":            {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"compat-disabled":                 {"--compat-annotations=false"},
		"compat-disabled-pod-annotations": {"--compat-annotations=false"},
		"compat-irsa-default-region":      {"--aws-default-region", "eu-north-1"},
		"compat-eks-annotation-prefix":    {"--aws-annotation-prefix", "iam.example.com"},
		"compat-azure-use-label":          {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"compat-azure-china-cloud":        {"--azure-cloud", "azurechinacloud"},
		"compat-irsa-anchor-flags": {"--aws-token-audience", "sts.example.com", "--aws-token-expiration", "3600",
			"--aws-sts-regional-endpoints=false"},

		// The anchors' own cases (mutate/testdata/anchor-*.yaml).
		"anchor-aws-TestMutatePod":                       {"--aws-sts-regional-endpoints=false"},
		"anchor-aws-betaWindowsPodWithoutVolumes":        {"--aws-sts-regional-endpoints=false"},
		"anchor-aws-containercredentials-rawPodNeedsAll": {"--aws-default-region", "cn-north-1"},
		"anchor-aws-initPodNeedsRegion":                  {"--aws-sts-regional-endpoints=false", "--aws-default-region", "us-west-2"},
		"anchor-aws-rawPodHasAll":                        {"--aws-sts-regional-endpoints=false", "--aws-default-region", "cn-north-1"},
		"anchor-aws-rawPodHasSTS":                        {"--aws-sts-regional-endpoints=false", "--aws-default-region", "cn-north-1"},
		"anchor-aws-rawPodHasTokenExpiration":            {"--aws-sts-regional-endpoints=false", "--aws-default-region", "cn-north-1"},
		"anchor-aws-rawPodHasVolumeMount":                {"--aws-sts-regional-endpoints=false"},
		"anchor-aws-rawPodMinTokenExpiration":            {"--aws-sts-regional-endpoints=false", "--aws-default-region", "cn-north-1"},
		"anchor-aws-rawPodNeedsRegion":                   {"--aws-sts-regional-endpoints=false", "--aws-default-region", "us-west-2"},
		"anchor-aws-rawPodNeedsSTS":                      {"--aws-sts-regional-endpoints=false", "--aws-default-region", "cn-north-1"},
		"anchor-aws-rawPodNoSTSAnnotationOverride":       {"--aws-default-region", "us-east-1"},
		"anchor-aws-rawPodRegionPresent":                 {"--aws-sts-regional-endpoints=false"},
		"anchor-aws-rawPodSkip":                          {"--aws-sts-regional-endpoints=false", "--aws-default-region", "us-west-2"},
		"anchor-aws-rawPodWithGRPC":                      {"--aws-sts-regional-endpoints=false", "--aws-default-region", "us-west-2"},
		"anchor-aws-rawPodWithInitContainer":             {"--aws-sts-regional-endpoints=false", "--aws-default-region", "us-west-2"},
		"anchor-aws-rawPodWithVolumes":                   {"--aws-sts-regional-endpoints=false"},
		"anchor-aws-rawPodWithoutVolumes":                {"--aws-sts-regional-endpoints=false"},
		"anchor-aws-rawPodWithsecCompProfile":            {"--aws-sts-regional-endpoints=false", "--aws-default-region", "us-west-2"},
		"anchor-aws-windowsPodWithoutVolumes":            {"--aws-sts-regional-endpoints=false"},
		"anchor-azure-TestAddEnvironmentVariables-environment-variables-added-to-container":                                        {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestAddEnvironmentVariables-environment-variables-added-to-existing-list":                                    {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestAddEnvironmentVariables-environment-variables-are-not-added-when-empty":                                  {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestAddEnvironmentVariables-existing-environment-variables-not-replaced":                                     {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestAddProjectServiceAccountTokenVolumeMount-v1.5.1-volume-mount-with-name-already-exists-so-skipped":        {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestAddProjectServiceAccountTokenVolumeMount-volume-mount-added-to-container":                                {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestAddProjectServiceAccountTokenVolumeMount-volume-mount-added-to-existing-volume-mounts-for-container":     {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestAddProjectedVolume-azure-identity-token-projected-volume-already-exists":                                 {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestAddProjectedVolume-existing-projected-service-account-token-volume-overridden-with-desired-audience":     {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestAddProjectedVolume-no-volumes-in-the-pod":                                                                {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestAddProjectedVolume-v1.5.1-existing-projected-service-account-token-volume-not-affected":                  {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestGetAzureAuthorityHost-china-cloud":                                                                       {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47", "--azure-cloud", "AzureChinaCloud"},
		"anchor-azure-TestGetAzureAuthorityHost-default-azure-environment":                                                         {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestGetAzureAuthorityHost-public-cloud":                                                                      {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47", "--azure-cloud", "AzurePublicCloud"},
		"anchor-azure-TestGetAzureAuthorityHost-us-government-cloud":                                                               {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47", "--azure-cloud", "AzureUSGovernmentCloud"},
		"anchor-azure-TestGetClientID-client-id-not-present":                                                                       {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestGetClientID-client-id-present":                                                                           {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestGetServiceAccountTokenExpiration-invalid-token-expiry-greater-than-86400":                                {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestGetServiceAccountTokenExpiration-invalid-token-expiry-less-than-3600":                                    {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestGetServiceAccountTokenExpiration-pod-token-expiry-annotation-invalid":                                    {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestGetServiceAccountTokenExpiration-service-account-token-expiry-annotation-invalid":                        {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestGetServiceAccountTokenExpiration-token-expiry-in-pod-preferred-over-service-account-token-expiry":        {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestGetServiceAccountTokenExpiration-valid-token-expiry-defined-in-service-account":                          {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestGetSkipContainers-multiple-skip-containers-defined-delimited-by-semicolon":                               {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestGetSkipContainers-multiple-skip-containers-defined-with-extra-space":                                     {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestGetSkipContainers-no-skip-containers-defined":                                                            {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestGetSkipContainers-one-skip-container-defined":                                                            {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestGetTenantID-tenant-ID-annotation-not-defined-use-default":                                                {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestHandle-default-service-account-in-cache":                                                                 {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestHandle-pod-has-the-required-label-no-warnings":                                                           {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestHandle-pod-has-the-required-label-restart-policy-in-init-container":                                      {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestHandle-service-account-in-cache":                                                                         {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestHandleError-invalid-sa-token-expiry":                                                                     {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestHandleError-service-account-not-found":                                                                   {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestMutateContainers-one-container-and-one-skip-container":                                                   {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-TestMutateContainers-one-container":                                                                          {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-e2e-should-mutate-a-labeled-pod-guid":                                                                        {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-e2e-should-mutate-a-labeled-pod":                                                                             {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-e2e-should-mutate-the-init-containers-within-a-pod":                                                          {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-e2e-should-not-mutate-a-pod-if-service-account-token-expiration-100-is-annotated-to-the-pod":                 {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-e2e-should-not-mutate-a-pod-if-service-account-token-expiration-100-is-annotated-to-the-service-account":     {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-e2e-should-not-mutate-a-pod-if-service-account-token-expiration-invalid-is-annotated-to-the-pod":             {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-e2e-should-not-mutate-a-pod-if-service-account-token-expiration-invalid-is-annotated-to-the-service-account": {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		"anchor-azure-e2e-should-not-mutate-selected-containers-if-skip-containers-annotated":                                      {"--azure-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
	}
	for _, goldenFile := range files {
		name := strings.TrimSuffix(filepath.Base(goldenFile), ".golden.yaml")
		want, err := os.ReadFile(goldenFile)
		require.NoError(t, err)
		if bytes.Contains(want, []byte("# denied:")) {
			continue
		}
		t.Run(name, func(t *testing.T) {
			input, err := filepath.Abs(strings.TrimSuffix(goldenFile, ".golden.yaml") + ".yaml")
			require.NoError(t, err)
			r := run(t, "", append([]string{"inject", "-f", input}, flags[name]...)...)
			require.Equal(t, 0, r.code, r.stderr)
			docs, err := manifest.Split("stdout", []byte(r.stdout))
			require.NoError(t, err)
			var got *corev1.Pod
			for _, d := range docs {
				if d.Kind == "Pod" {
					got = &corev1.Pod{}
					require.NoError(t, json.Unmarshal(d.JSON, got))
				}
			}
			require.NotNil(t, got)
			wantPod := &corev1.Pod{}
			require.NoError(t, yaml.Unmarshal(want, wantPod))
			assert.Equal(t, wantPod, got)
		})
	}
}

// TestErrors: bad input and flags exit 2 with a message naming file, document and field; findings
// exit 1; never a stack trace.
func TestErrors(t *testing.T) {
	tests := map[string]struct {
		args       []string
		stdin      string
		wantCode   int
		wantStderr []string
	}{
		"no input": {
			args: []string{"inject"}, wantCode: ExitUsage, wantStderr: []string{"no input: pass -f"},
		},
		"missing file": {
			args: []string{"inject", "-f", "does/not/exist.yaml"}, wantCode: ExitUsage, wantStderr: []string{"does/not/exist.yaml", "no such file"},
		},
		"unknown flag": {
			args: []string{"inject", "--bogus"}, wantCode: ExitUsage, wantStderr: []string{"unknown flag: --bogus"},
		},
		"bad output format": {
			args: []string{"inject", "-f", "-", "-o", "xml"}, wantCode: ExitUsage, wantStderr: []string{`--output "xml": must be yaml or json`},
		},
		"bad check output format": {
			args: []string{"check", "-f", "-", "-o", "yaml"}, wantCode: ExitUsage, wantStderr: []string{`--output "yaml": must be text or json`},
		},
		"malformed yaml": {
			args: []string{"inject", "-f", "-"}, stdin: "apiVersion: v1\nkind: Pod\n---\nmetadata:\n  name: [unclosed\n",
			wantCode: ExitUsage, wantStderr: []string{"<stdin> document 2, line 4: malformed YAML"},
		},
		"unknown policy field": {
			args:     []string{"inject", "-f", "-"},
			stdin:    "apiVersion: lanyard.dev/v1alpha1\nkind: IdentityAssociation\nmetadata: {name: x}\nspec:\n  namespace: a\n  serviceAccountName: b\n  aws: {rolearn: arn:aws:iam::111122223333:role/r}\n",
			wantCode: ExitUsage, wantStderr: []string{"<stdin> document 1 (IdentityAssociation x), line 1", `unknown field "spec.aws.rolearn"`},
		},
		"invalid policy value": {
			args:     []string{"check", "-f", "-"},
			stdin:    "apiVersion: lanyard.dev/v1alpha1\nkind: IdentityAssociation\nmetadata: {name: x}\nspec:\n  namespace: a\n  serviceAccountName: b\n  azure: {clientID: not-a-guid}\n",
			wantCode: ExitUsage, wantStderr: []string{"IdentityAssociation x", "spec.azure.clientID", "must be a GUID"},
		},
		"no provider": {
			args:     []string{"check", "-f", "-"},
			stdin:    "apiVersion: lanyard.dev/v1alpha1\nkind: IdentityAssociation\nmetadata: {name: x}\nspec: {namespace: a, serviceAccountName: b}\n",
			wantCode: ExitUsage, wantStderr: []string{"at least one of aws, azure or gcp must be set"},
		},
		"invalid pod annotation is a finding": {
			args:     []string{"inject", "-f", "-"},
			stdin:    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {lanyard.dev/token-expiration: \"99999999\"}\nspec:\n  containers: [{name: a, image: nginx}]\n",
			wantCode: ExitFindings, wantStderr: []string{"Pod default/p: DENIED: pod annotation lanyard.dev/token-expiration", "between 600 and 86400"},
		},
		"check reports unattached cloud registry": {
			args:     []string{"check", "-f", "-"},
			stdin:    "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: myacr.azurecr.io/app:1}]\n",
			wantCode: ExitFindings,
		},
		"workload without template": {
			args:     []string{"inject", "-f", "-"},
			stdin:    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: 1}\n",
			wantCode: ExitUsage, wantStderr: []string{"<stdin> document 1 (Deployment d)", "no pod template at spec.template"},
		},
		"bad aws default region flag": {
			args: []string{"inject", "-f", "-", "--aws-default-region", "Mars-1"}, wantCode: ExitUsage, wantStderr: []string{"--aws-default-region", "us-west-2"},
		},
		"bad azure tenant flag": {
			args: []string{"inject", "-f", "-", "--azure-tenant-id", "x"}, wantCode: ExitUsage, wantStderr: []string{"--azure-tenant-id"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := run(t, tc.stdin, tc.args...)
			assert.Equal(t, tc.wantCode, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
			for _, s := range tc.wantStderr {
				assert.Contains(t, r.stderr, s)
			}
			assert.NotContains(t, r.stderr, "goroutine", "no stack traces")
			assert.NotContains(t, r.stderr, "panic")
		})
	}
}

func TestVersion(t *testing.T) {
	r := run(t, "", "version")
	require.Equal(t, 0, r.code)
	assert.True(t, strings.HasPrefix(r.stdout, "lanyard "), r.stdout)
}
