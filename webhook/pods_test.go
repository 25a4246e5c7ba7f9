package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

func TestPodMutatorServeHTTP(t *testing.T) {
	tests := map[string]struct {
		fixture     string // under testdata/reviews
		body        []byte // sent instead of a fixture
		method      string // POST when empty
		contentType string // application/json when empty
		chunked     bool   // send without Content-Length
		maxBytes    int64
		headers     map[string]string
		edit        func(review map[string]any) // changes the fixture before it is sent

		// HTTP errors (the API server applies failurePolicy), answered with a metav1.Status.
		wantStatus  int // 200 when zero
		wantHTTPMsg []string
		wantNotHTTP []string // must not appear in the message (Go internals)
		wantHeader  map[string]string

		// AdmissionResponses.
		wantAllowed     bool
		wantCode        int32
		wantMessage     []string
		wantInjected    string // auditAnnotations["injected"] and the lanyard.dev/injected annotation
		wantPatch       bool
		wantWarnings    []string // each a substring of one warning; none expected when empty
		wantVolumes     []string // volumes of the patched pod, in order
		wantEnv         map[string]string
		wantPullSecrets []string
		wantAnnotations []string // annotation keys of the patched pod
	}{
		"AWS PodIdentity gets the agent endpoint, its token volume and region": {
			fixture: "aws-pod-identity.json", wantAllowed: true, wantPatch: true, wantInjected: "aws",
			wantVolumes: []string{"kube-api-access-x7k2p", "eks-pod-identity-token"},
			wantEnv: map[string]string{
				"LOG_LEVEL":                              "info",
				"AWS_CONTAINER_CREDENTIALS_FULL_URI":     "http://169.254.170.23/v1/credentials",
				"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token",
				"AWS_REGION":                             "us-west-2",
				"AWS_DEFAULT_REGION":                     "us-west-2",
			},
		},
		"AWS IRSA gets the role, the web identity token and regional STS": {
			fixture: "aws-irsa.json", wantAllowed: true, wantPatch: true, wantInjected: "aws",
			wantVolumes: []string{"kube-api-access-x7k2p", "aws-iam-token"},
			wantEnv: map[string]string{
				"AWS_ROLE_ARN":                irsaRoleARN,
				"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
				"AWS_STS_REGIONAL_ENDPOINTS":  "regional",
				"AWS_REGION":                  "eu-central-1",
			},
		},
		"Azure gets client, tenant, federated token file and authority": {
			fixture: "azure.json", wantAllowed: true, wantPatch: true, wantInjected: "azure",
			wantVolumes: []string{"kube-api-access-x7k2p", "azure-identity-token"},
			wantEnv: map[string]string{
				"AZURE_CLIENT_ID":            azureClientID,
				"AZURE_TENANT_ID":            azureTenantID,
				"AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token",
				"AZURE_AUTHORITY_HOST":       "https://login.microsoftonline.com/",
			},
		},
		"GCP gets the credential configuration annotation, volume and env": {
			fixture: "gcp.json", wantAllowed: true, wantPatch: true, wantInjected: "gcp",
			wantVolumes:     []string{"kube-api-access-x7k2p", "gcp-identity-token"},
			wantEnv:         map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": "/var/run/secrets/gcp/credential-configuration.json"},
			wantAnnotations: []string{policy.AnnotationInjected, policy.AnnotationGCPCredentialConfig},
		},
		"attached registry adds its pull secret and nothing else": {
			fixture: "registry-pull-secret.json", wantAllowed: true, wantPatch: true, wantInjected: "registry/myacr",
			wantVolumes: []string{"kube-api-access-x7k2p"}, wantPullSecrets: []string{"acr-pull"},
			wantEnv: map[string]string{"LOG_LEVEL": "info"},
		},
		"compat ServiceAccount annotation means IRSA": {
			fixture: "compat-irsa-annotations.json", wantAllowed: true, wantPatch: true, wantInjected: "aws",
			wantVolumes: []string{"kube-api-access-x7k2p", "aws-iam-token"},
			wantEnv:     map[string]string{"AWS_ROLE_ARN": legacyRoleARN},
		},
		"pod opted out by label is admitted untouched": {
			fixture: "opt-out-label.json", wantAllowed: true,
		},
		"kube-system is never mutated": {
			fixture: "kube-system.json", wantAllowed: true,
		},
		"lanyard's own namespace is never mutated": {
			fixture: "lanyard-namespace.json", wantAllowed: true,
		},
		"DELETE passes untouched": {
			fixture: "delete.json", wantAllowed: true,
		},
		"a ConfigMap passes untouched": {
			fixture: "configmap.json", wantAllowed: true,
		},
		"pods/status updates pass untouched": {
			fixture: "pod-status-subresource.json", wantAllowed: true,
		},
		"malformed JSON is a 400 with the decoder's message": {
			fixture: "malformed.json", wantStatus: http.StatusBadRequest, wantHTTPMsg: []string{"malformed AdmissionReview"},
		},
		"admission.k8s.io/v1beta1 is a 400 naming it": {
			fixture: "v1beta1.json", wantStatus: http.StatusBadRequest, wantHTTPMsg: []string{"admission.k8s.io/v1beta1", "admission.k8s.io/v1 AdmissionReview"},
		},
		"empty body is a 400": {
			body: []byte{}, wantStatus: http.StatusBadRequest, wantHTTPMsg: []string{"empty request body"},
		},
		"review without request is a 400": {
			fixture: "no-request.json", wantStatus: http.StatusBadRequest, wantHTTPMsg: []string{"has no request"},
		},
		"request without uid is a 400": {
			fixture: "no-uid.json", wantStatus: http.StatusBadRequest, wantHTTPMsg: []string{"has no uid"},
		},
		"CREATE without object is a 400": {
			fixture: "no-object.json", wantStatus: http.StatusBadRequest, wantHTTPMsg: []string{"has no object"},
		},
		"CREATE with a null object is a 400": {
			fixture: "null-object.json", wantStatus: http.StatusBadRequest, wantHTTPMsg: []string{"has no object"},
		},
		"an object that is not a pod is denied with code 400": {
			fixture: "object-not-a-pod.json", wantAllowed: false, wantCode: http.StatusBadRequest,
			wantMessage: []string{"could not decode the pod"},
		},
		"GET is a 405 that names the allowed method": {
			fixture: "aws-irsa.json", method: http.MethodGet, wantStatus: http.StatusMethodNotAllowed, wantHTTPMsg: []string{"POST"},
			wantHeader: map[string]string{"Allow": "POST"},
		},
		"media types compare case-insensitively": {
			fixture: "aws-irsa.json", contentType: "Application/JSON", wantAllowed: true, wantPatch: true, wantInjected: "aws",
			wantVolumes: []string{"kube-api-access-x7k2p", "aws-iam-token"},
		},
		"a compressed body is a 415 naming the encoding": {
			fixture: "aws-irsa.json", headers: map[string]string{"Content-Encoding": "gzip"},
			wantStatus: http.StatusUnsupportedMediaType, wantHTTPMsg: []string{`Content-Encoding "gzip" is not supported`},
		},
		"a uid of the wrong type is a 400 naming the JSON field, not Go types": {
			fixture: "aws-irsa.json", edit: func(r map[string]any) { r["request"].(map[string]any)["uid"] = 5 },
			wantStatus:  http.StatusBadRequest,
			wantHTTPMsg: []string{"malformed AdmissionReview: field request.uid: expected a string, got a JSON number"},
			wantNotHTTP: []string{"requestHeader", "types.UID", "Go struct", "webhook."},
		},
		"a review that is not an object is a 400 in JSON terms": {
			body: []byte(`[1,2]`), wantStatus: http.StatusBadRequest,
			wantHTTPMsg: []string{"malformed AdmissionReview: expected an object, got a JSON array"},
			wantNotHTTP: []string{"webhook.", "Go value"},
		},
		"a pod field of the wrong type is denied naming the field": {
			fixture: "aws-irsa.json", edit: func(r map[string]any) {
				podSpec(r)["containers"].([]any)[0].(map[string]any)["name"] = 5
			},
			wantAllowed: false, wantCode: http.StatusBadRequest,
			wantMessage: []string{"could not decode the pod: field request.object.spec.containers.name: expected a string, got a JSON number"},
		},
		"labels that do not decode deny the pod rather than ignore its opt-out": {
			fixture: "aws-irsa.json", edit: func(r map[string]any) {
				podMeta(r)["labels"] = map[string]any{policy.InjectLabel: false}
			},
			wantAllowed: false, wantCode: http.StatusBadRequest,
			wantMessage: []string{"could not decode the pod: metadata.labels must map label names to strings: found a JSON bool"},
		},
		"a pod without serviceAccountName gets no token, with a warning": {
			fixture: "aws-irsa.json", edit: func(r map[string]any) { delete(podSpec(r), "serviceAccountName") },
			wantAllowed: true, wantWarnings: []string{"pod has no spec.serviceAccountName", "IdentityAssociation fallback not injected"},
		},
		"a content type other than JSON is a 415": {
			fixture: "aws-irsa.json", contentType: "application/yaml", wantStatus: http.StatusUnsupportedMediaType,
			wantHTTPMsg: []string{`"application/yaml"`, "application/json"},
		},
		"JSON with a charset parameter is accepted": {
			fixture: "aws-irsa.json", contentType: "application/json; charset=utf-8", wantAllowed: true, wantPatch: true, wantInjected: "aws",
			wantVolumes: []string{"kube-api-access-x7k2p", "aws-iam-token"},
		},
		"a body over the limit is a 413 before it is read": {
			fixture: "aws-irsa.json", maxBytes: 1024, wantStatus: http.StatusRequestEntityTooLarge,
			wantHTTPMsg: []string{"request body of 5521 bytes exceeds lanyard's limit of 1024 bytes (--max-request-bytes)"},
		},
		"a chunked body over the limit is a 413 while it is read": {
			fixture: "aws-irsa.json", maxBytes: 1024, chunked: true, wantStatus: http.StatusRequestEntityTooLarge,
			wantHTTPMsg: []string{"request body exceeds lanyard's limit of 1024 bytes"},
		},
		"an out-of-range token-expiration annotation denies with 422 naming it and the range": {
			fixture: "invalid-token-expiration.json", wantAllowed: false, wantCode: http.StatusUnprocessableEntity,
			wantMessage: []string{policy.AnnotationTokenExpiration, `"5"`, "600", "86400"},
		},
		"conflicting associations admit without identity, warning with both names": {
			fixture: "conflicting-associations.json", wantAllowed: true,
			wantWarnings: []string{"search-a and search-b", "team-a/contested"},
		},
		"a pre-set credential variable keeps its whole group out, with a warning": {
			fixture: "preset-env.json", wantAllowed: true, wantPatch: true, wantInjected: "aws",
			wantVolumes:  []string{"kube-api-access-x7k2p", "aws-iam-token"},
			wantWarnings: []string{`container "web" already sets AWS_ROLE_ARN: lanyard adds none of AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE`},
			wantEnv: map[string]string{
				"AWS_ROLE_ARN":                "arn:aws:iam::999999999999:role/hand-picked",
				"AWS_WEB_IDENTITY_TOKEN_FILE": "",
				"AWS_STS_REGIONAL_ENDPOINTS":  "regional",
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, _ := newMutator(testPolicy())
			m.MaxRequestBytes = tc.maxBytes
			srv, client := newServer(t, m)

			body := tc.body
			if tc.fixture != "" {
				body = readFixture(t, tc.fixture)
			}
			if tc.edit != nil {
				var review map[string]any
				require.NoError(t, json.Unmarshal(body, &review))
				tc.edit(review)
				var err error
				body, err = json.Marshal(review)
				require.NoError(t, err)
			}
			var reader io.Reader = bytes.NewReader(body)
			if tc.chunked {
				reader = io.MultiReader(reader) // hides the length: sent chunked
			}
			method, contentType := tc.method, tc.contentType
			if method == "" {
				method = http.MethodPost
			}
			if contentType == "" {
				contentType = "application/json"
			}
			req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+MutatePodPath, reader)
			require.NoError(t, err)
			req.Header.Set("Content-Type", contentType)
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			res := do(t, client, req)
			for k, v := range tc.wantHeader {
				assert.Equal(t, v, res.header.Get(k), "header %s", k)
			}

			wantStatus := tc.wantStatus
			if wantStatus == 0 {
				wantStatus = http.StatusOK
			}
			require.Equal(t, wantStatus, res.status, "body: %s", res.body)
			if wantStatus != http.StatusOK {
				// A Status body is what the API server's webhook client shows users.
				assert.Equal(t, "application/json", res.contentType)
				var status metav1.Status
				require.NoError(t, json.Unmarshal(res.body, &status), "body: %s", res.body)
				assert.Equal(t, "Status", status.Kind)
				assert.Equal(t, metav1.StatusFailure, status.Status)
				assert.Equal(t, int32(wantStatus), status.Code)
				for _, msg := range tc.wantHTTPMsg {
					assert.Contains(t, status.Message, msg)
				}
				for _, msg := range tc.wantNotHTTP {
					assert.NotContains(t, status.Message, msg)
				}
				return
			}

			resp := decodeResponse(t, res)
			assert.Equal(t, fixtureUID(t, body), string(resp.UID), "uid must echo the request's")
			assert.Equal(t, tc.wantAllowed, resp.Allowed)
			if tc.wantCode != 0 {
				require.NotNil(t, resp.Result)
				assert.Equal(t, tc.wantCode, resp.Result.Code)
				for _, msg := range tc.wantMessage {
					assert.Contains(t, resp.Result.Message, msg)
				}
			}
			if len(tc.wantWarnings) == 0 {
				assert.Empty(t, resp.Warnings)
			}
			for _, w := range tc.wantWarnings {
				assert.True(t, containsSubstring(resp.Warnings, w), "no warning contains %q: %q", w, resp.Warnings)
			}
			if tc.wantInjected == "" {
				assert.NotContains(t, resp.AuditAnnotations, auditKeyInjected)
			} else {
				assert.Equal(t, tc.wantInjected, resp.AuditAnnotations[auditKeyInjected])
			}
			if !tc.wantPatch {
				assert.Empty(t, resp.Patch)
				assert.Nil(t, resp.PatchType)
				return
			}

			object := fixtureObject(t, body)
			patched := checkPatch(t, resp, object)
			pod := &corev1.Pod{}
			require.NoError(t, json.Unmarshal(patched, pod))
			assert.Equal(t, tc.wantInjected, pod.Annotations[policy.AnnotationInjected])
			if tc.wantAnnotations != nil {
				assert.ElementsMatch(t, tc.wantAnnotations, keys(pod.Annotations))
			}
			var volumes []string
			for _, v := range pod.Spec.Volumes {
				volumes = append(volumes, v.Name)
			}
			assert.Equal(t, tc.wantVolumes, volumes)
			env := map[string]string{}
			for _, e := range pod.Spec.Containers[0].Env {
				env[e.Name] = e.Value
			}
			for k, v := range tc.wantEnv {
				assert.Equal(t, v, env[k], "env %s", k)
			}
			var secrets []string
			for _, s := range pod.Spec.ImagePullSecrets {
				secrets = append(secrets, s.Name)
			}
			assert.Equal(t, tc.wantPullSecrets, secrets)

			// Reinvocation: the patched pod needs nothing more.
			again := decodeResponse(t, post(t, srv, client, bytes.NewReader(withObject(t, body, patched)), "application/json"))
			assert.True(t, again.Allowed)
			assert.Empty(t, again.Patch, "second pass must not patch: %s", again.Patch)
			assert.Equal(t, tc.wantInjected, again.AuditAnnotations[auditKeyInjected])
		})
	}
}

// TestEveryFixture runs every review fixture and checks what must hold for all of them: a 200
// answer echoes the uid, and any patch is "add" operations only, applies to the object as sent, and
// is complete (re-reviewing the patched pod yields no patch).
func TestEveryFixture(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "reviews", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	tests := map[string]struct{ file string }{}
	for _, f := range files {
		tests[strings.TrimSuffix(filepath.Base(f), ".json")] = struct{ file string }{filepath.Base(f)}
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, _ := newMutator(testPolicy())
			srv, client := newServer(t, m)
			body := readFixture(t, tc.file)
			res := post(t, srv, client, bytes.NewReader(body), "application/json")
			if res.status != http.StatusOK {
				assert.Equal(t, http.StatusBadRequest, res.status, "only malformed reviews may fail: %s", res.body)
				assert.NotContains(t, string(res.body), `"patch"`)
				return
			}
			resp := decodeResponse(t, res)
			assert.Equal(t, fixtureUID(t, body), string(resp.UID))
			if len(resp.Patch) == 0 {
				assert.Nil(t, resp.PatchType)
				return
			}
			assert.True(t, resp.Allowed)
			patched := checkPatch(t, resp, fixtureObject(t, body))
			again := decodeResponse(t, post(t, srv, client, bytes.NewReader(withObject(t, body, patched)), "application/json"))
			assert.True(t, again.Allowed)
			assert.Empty(t, again.Patch, "not idempotent: second pass patched %s", again.Patch)
			assert.Equal(t, resp.AuditAnnotations, again.AuditAnnotations)
		})
	}
}

func TestDryRunGetsTheSamePatch(t *testing.T) {
	m, _ := newMutator(testPolicy())
	srv, client := newServer(t, m)
	wet := decodeResponse(t, post(t, srv, client, bytes.NewReader(readFixture(t, "aws-irsa.json")), "application/json"))
	dry := decodeResponse(t, post(t, srv, client, bytes.NewReader(readFixture(t, "aws-irsa-dry-run.json")), "application/json"))
	require.NotEmpty(t, wet.Patch)
	assert.JSONEq(t, string(wet.Patch), string(dry.Patch))
	assert.Equal(t, wet.AuditAnnotations, dry.AuditAnnotations)
	assert.Equal(t, wet.Warnings, dry.Warnings)
}

// TestUnknownFieldsSurvive pins the reason for raw-JSON patches: fields the compiled k8s.io/api
// does not know, at pod, spec and container level, are still there after the patch, and a native
// sidecar keeps restartPolicy: Always and gets the identity too.
func TestUnknownFieldsSurvive(t *testing.T) {
	m, _ := newMutator(testPolicy())
	srv, client := newServer(t, m)
	body := readFixture(t, "unknown-fields.json")
	resp := decodeResponse(t, post(t, srv, client, bytes.NewReader(body), "application/json"))
	require.True(t, resp.Allowed)
	assert.Equal(t, "aws", resp.AuditAnnotations[auditKeyInjected])
	patched := checkPatch(t, resp, fixtureObject(t, body))

	var doc struct {
		FuturePodField map[string]any `json:"futurePodField"`
		Metadata       struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
		Spec struct {
			FutureSpecField map[string]any `json:"futureSpecField"`
			Containers      []rawContainer `json:"containers"`
			InitContainers  []rawContainer `json:"initContainers"`
			Volumes         []struct {
				Name string `json:"name"`
			} `json:"volumes"`
		} `json:"spec"`
	}
	require.NoError(t, json.Unmarshal(patched, &doc))

	assert.Equal(t, map[string]any{"rollout": "canary"}, doc.FuturePodField)
	assert.Equal(t, map[string]any{"mode": "strict", "weights": []any{1.0, 2.0, 3.0}}, doc.Spec.FutureSpecField)
	require.Len(t, doc.Spec.Containers, 1)
	assert.Equal(t, map[string]any{"enabled": true}, doc.Spec.Containers[0].FutureContainerField)
	require.Len(t, doc.Spec.InitContainers, 1)
	sidecar := doc.Spec.InitContainers[0]
	assert.Equal(t, map[string]any{"enabled": false}, sidecar.FutureContainerField)
	require.NotNil(t, sidecar.RestartPolicy)
	assert.Equal(t, "Always", *sidecar.RestartPolicy)

	assert.Equal(t, map[string]string{"example.com/owner": "team-a", policy.AnnotationInjected: "aws"}, doc.Metadata.Annotations)
	require.Len(t, doc.Spec.Volumes, 2)
	assert.Equal(t, "aws-iam-token", doc.Spec.Volumes[1].Name)
	for _, c := range []rawContainer{doc.Spec.Containers[0], sidecar} {
		assert.Contains(t, c.envNames(), "AWS_ROLE_ARN", "container %s", c.Name)
		assert.Contains(t, c.mountPaths(), "/var/run/secrets/eks.amazonaws.com/serviceaccount", "container %s", c.Name)
	}
}

type rawContainer struct {
	Name                 string         `json:"name"`
	RestartPolicy        *string        `json:"restartPolicy"`
	FutureContainerField map[string]any `json:"futureContainerField"`
	Env                  []struct {
		Name string `json:"name"`
	} `json:"env"`
	VolumeMounts []struct {
		MountPath string `json:"mountPath"`
	} `json:"volumeMounts"`
}

func (c rawContainer) envNames() []string {
	var out []string
	for _, e := range c.Env {
		out = append(out, e.Name)
	}
	return out
}

func (c rawContainer) mountPaths() []string {
	var out []string
	for _, m := range c.VolumeMounts {
		out = append(out, m.MountPath)
	}
	return out
}

func TestPodMutatorMetrics(t *testing.T) {
	tests := map[string]struct {
		reader  policy.Reader // testPolicy() when nil
		fixture string
		body    []byte

		wantStatus     int
		wantResult     string             // label of the one latency observation
		wantErrors     map[string]float64 // lanyard_admission_errors_total by reason; others 0
		wantInjections map[string]float64 // lanyard_injections_total by provider; others 0
	}{
		"an injection counts its provider": {
			fixture: "aws-irsa.json", wantStatus: http.StatusOK, wantResult: resultInjected,
			wantInjections: map[string]float64{"aws": 1},
		},
		"a dry-run injection is observed but not counted": {
			fixture: "aws-irsa-dry-run.json", wantStatus: http.StatusOK, wantResult: resultInjected,
		},
		"a pull secret counts as registry": {
			fixture: "registry-pull-secret.json", wantStatus: http.StatusOK, wantResult: resultInjected,
			wantInjections: map[string]float64{"registry": 1},
		},
		"a skipped review is observed as skipped": {
			fixture: "delete.json", wantStatus: http.StatusOK, wantResult: resultSkipped,
		},
		"a pod given nothing is observed as unchanged": {
			fixture: "conflicting-associations.json", wantStatus: http.StatusOK, wantResult: resultUnchanged,
		},
		"an invalid annotation is observed as denied": {
			fixture: "invalid-token-expiration.json", wantStatus: http.StatusOK, wantResult: resultDenied,
		},
		"an undecodable pod is denied and counted as bad_pod": {
			fixture: "object-not-a-pod.json", wantStatus: http.StatusOK, wantResult: resultDenied,
			wantErrors: map[string]float64{reasonBadPod: 1},
		},
		"a malformed review counts as bad_request": {
			fixture: "malformed.json", wantStatus: http.StatusBadRequest, wantResult: resultError,
			wantErrors: map[string]float64{reasonBadRequest: 1},
		},
		"a failed lookup is a 500 counted as lookup": {
			reader: failingReader{errLookup}, fixture: "aws-irsa.json",
			wantStatus: http.StatusInternalServerError, wantResult: resultError,
			wantErrors: map[string]float64{reasonLookup: 1},
		},
		"a panic is a 500 counted as panic": {
			reader: panickingReader{testPolicy()}, fixture: "aws-irsa.json",
			wantStatus: http.StatusInternalServerError, wantResult: resultError,
			wantErrors: map[string]float64{reasonPanic: 1},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			reader := tc.reader
			if reader == nil {
				reader = testPolicy()
			}
			m, reg := newMutator(reader)
			srv, client := newServer(t, m)
			body := tc.body
			if tc.fixture != "" {
				body = readFixture(t, tc.fixture)
			}
			res := post(t, srv, client, bytes.NewReader(body), "application/json")
			require.Equal(t, tc.wantStatus, res.status, "body: %s", res.body)

			for _, result := range []string{resultInjected, resultUnchanged, resultSkipped, resultDenied, resultError} {
				want := uint64(0)
				if result == tc.wantResult {
					want = 1
				}
				// Observed once the handler returns, which can be just after the client has the answer.
				assert.Eventually(t, func() bool { return histogramCount(t, reg, result) == want }, 5*time.Second, 5*time.Millisecond,
					"observations with result=%s", result)
			}
			for reason, c := range m.Metrics.errors {
				assert.Equal(t, tc.wantErrors[reason], testutil.ToFloat64(c), "errors_total{reason=%q}", reason)
			}
			for provider, c := range m.Metrics.injections {
				assert.Equal(t, tc.wantInjections[provider], testutil.ToFloat64(c), "injections_total{provider=%q}", provider)
			}
		})
	}
}

// TestLookupFailureIsAnHTTPError pins that a lookup that cannot complete is not answered with an
// AdmissionResponse (allowed or denied): the API server's failurePolicy must decide.
func TestLookupFailureIsAnHTTPError(t *testing.T) {
	m, _ := newMutator(failingReader{errLookup})
	srv, client := newServer(t, m)
	res := post(t, srv, client, bytes.NewReader(readFixture(t, "aws-irsa.json")), "application/json")
	assert.Equal(t, http.StatusInternalServerError, res.status)
	assert.Contains(t, string(res.body), "could not look up policy")
	assert.Contains(t, string(res.body), errLookup.Error())
	assert.NotContains(t, string(res.body), "AdmissionReview\"")
}

// TestPanicDoesNotKillTheServer: a panic during resolution answers 500 and the next request on the
// same server is served normally.
func TestPanicDoesNotKillTheServer(t *testing.T) {
	reader := &switchingReader{Static: testPolicy()}
	m, _ := newMutator(reader)
	srv, client := newServer(t, m)
	body := readFixture(t, "aws-irsa.json")

	reader.panics = true
	res := post(t, srv, client, bytes.NewReader(body), "application/json")
	assert.Equal(t, http.StatusInternalServerError, res.status)
	assert.Contains(t, string(res.body), "internal error")
	assert.Equal(t, 1.0, testutil.ToFloat64(m.Metrics.errors[reasonPanic]))

	reader.panics = false
	resp := decodeResponse(t, post(t, srv, client, bytes.NewReader(body), "application/json"))
	assert.True(t, resp.Allowed)
	assert.NotEmpty(t, resp.Patch)
}

// switchingReader panics in resolution while panics is set. Requests are sequential.
type switchingReader struct {
	*policy.Static
	panics bool
}

func (r *switchingReader) ServiceAccount(ctx context.Context, namespace, sa string) (*metav1.ObjectMeta, []*v1alpha1.IdentityAssociation, error) {
	if r.panics {
		panic("reader bug")
	}
	return r.Static.ServiceAccount(ctx, namespace, sa)
}

// TestReviewWithoutMetrics pins that metrics are optional (nil Metrics).
func TestReviewWithoutMetrics(t *testing.T) {
	tests := map[string]struct {
		fixture    string
		wantResult string
	}{
		"injection": {fixture: "aws-irsa.json", wantResult: resultInjected},
		"bad pod":   {fixture: "object-not-a-pod.json", wantResult: resultDenied},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := &PodMutator{Resolver: policy.NewResolver(testPolicy(), policy.Options{CompatAnnotations: true})}
			out, result, herr := m.Review(t.Context(), readFixture(t, tc.fixture))
			require.Nil(t, herr)
			assert.Equal(t, tc.wantResult, result)
			var review admissionv1.AdmissionReview
			require.NoError(t, json.Unmarshal(out, &review))
			assert.NotNil(t, review.Response)
		})
	}
}

func fixtureUID(t testing.TB, review []byte) string {
	t.Helper()
	var doc struct {
		Request struct {
			UID string `json:"uid"`
		} `json:"request"`
	}
	require.NoError(t, json.Unmarshal(review, &doc))
	return doc.Request.UID
}

func containsSubstring(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestSubresourcesAreNeverMutated: the handler skips every subresource on its own, whatever the
// webhook configuration's rules send it (the fixtures' pods/status is also an UPDATE; these are
// the aws-irsa review with only the subresource and operation changed).
func TestSubresourcesAreNeverMutated(t *testing.T) {
	tests := map[string]struct {
		subResource string
		operation   string
	}{
		"pods/status on CREATE":              {subResource: "status", operation: "CREATE"},
		"pods/ephemeralcontainers on UPDATE": {subResource: "ephemeralcontainers", operation: "UPDATE"},
		"pods/resize on UPDATE":              {subResource: "resize", operation: "UPDATE"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, reg := newMutator(testPolicy())
			srv, client := newServer(t, m)
			body := withRequestFields(t, readFixture(t, "aws-irsa.json"), map[string]any{
				"subResource": tc.subResource, "requestSubResource": tc.subResource, "operation": tc.operation,
			})
			resp := decodeResponse(t, post(t, srv, client, bytes.NewReader(body), "application/json"))
			assert.True(t, resp.Allowed)
			assert.Empty(t, resp.Patch)
			assert.Empty(t, resp.AuditAnnotations)
			assert.Eventually(t, func() bool { return histogramCount(t, reg, resultSkipped) == 1 }, 5*time.Second, 5*time.Millisecond)
		})
	}
}

// withRequestFields returns the review with members of request set, every other member kept.
func withRequestFields(t testing.TB, review []byte, fields map[string]any) []byte {
	t.Helper()
	var doc map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(review, &doc))
	var req map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(doc["request"], &req))
	for k, v := range fields {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		req[k] = b
	}
	var err error
	doc["request"], err = json.Marshal(req)
	require.NoError(t, err)
	out, err := json.Marshal(doc)
	require.NoError(t, err)
	return out
}

// A pod of thousands of containers on unattached cloud registries gets one bounded list of
// warnings, not one per image.
func TestWarningsAreBounded(t *testing.T) {
	m, _ := newMutator(testPolicy())
	var review map[string]any
	require.NoError(t, json.Unmarshal(readFixture(t, "aws-irsa.json"), &review))
	var containers []any
	for i := range 500 {
		containers = append(containers, map[string]any{"name": fmt.Sprintf("c%d", i), "image": fmt.Sprintf("unattached%d.azurecr.io/app:1", i)})
	}
	podSpec(review)["containers"] = containers
	body, err := json.Marshal(review)
	require.NoError(t, err)
	out, _, herr := m.Review(t.Context(), body)
	require.Nil(t, herr)
	var resp admissionv1.AdmissionReview
	require.NoError(t, json.Unmarshal(out, &resp))
	require.Len(t, resp.Response.Warnings, maxResponseWarnings+1)
	assert.Contains(t, resp.Response.Warnings[maxResponseWarnings], fmt.Sprintf("and %d more warnings", 500-maxResponseWarnings))
}

// The API server calls webhooks with a client-go REST client; what it makes of lanyard's HTTP
// errors is what the pod's creator reads. A Status body turns into the Status's message, not
// "the server responded with the status code 413 but did not return more information".
func TestHTTPErrorsReachTheAPIServersClient(t *testing.T) {
	m, _ := newMutator(testPolicy())
	m.MaxRequestBytes = 1024
	srv, _ := newServer(t, m)

	scheme := runtime.NewScheme()
	require.NoError(t, admissionv1.AddToScheme(scheme))
	cfg := &rest.Config{
		Host:            srv.URL,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		ContentConfig: rest.ContentConfig{
			GroupVersion:         &admissionv1.SchemeGroupVersion,
			NegotiatedSerializer: serializer.NewCodecFactory(scheme).WithoutConversion(),
			ContentType:          "application/json",
		},
	}
	client, err := rest.UnversionedRESTClientFor(cfg)
	require.NoError(t, err)
	err = client.Post().AbsPath(MutatePodPath).SetHeader("Content-Type", "application/json").Body(readFixture(t, "aws-irsa.json")).Do(t.Context()).Into(&admissionv1.AdmissionReview{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "lanyard: request body of 5521 bytes exceeds lanyard's limit of 1024 bytes")
	assert.True(t, apierrors.IsRequestEntityTooLargeError(err), "the status code travels too: %v", err)
}
