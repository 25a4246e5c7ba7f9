package webhook

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
)

// hostileReview wraps a pod object (raw JSON) in an AdmissionReview of a pod CREATE in the test
// namespace, as the API server sends it.
func hostileReview(object string) string {
	return `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"hostile-1",` +
		`"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},` +
		`"namespace":"` + testNamespace + `","operation":"CREATE","object":` + object + `}}`
}

// hostilePod is a pod of ServiceAccount irsa (IRSA association) with the given extra metadata
// members, extra spec members and containers.
func hostilePod(metadata, spec, containers string) string {
	if containers == "" {
		containers = `{"name":"app","image":"registry.example.com/app:1"}`
	}
	return `{"metadata":{"name":"p","namespace":"` + testNamespace + `"` + metadata + `},"spec":{"serviceAccountName":"irsa"` + spec +
		`,"containers":[` + containers + `]}}`
}

func repeatJoined(n int, f func(i int) string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = f(i)
	}
	return strings.Join(parts, ",")
}

// hostileOutcome is what one hostile body must get.
type hostileOutcome struct {
	status int // HTTP status
	// for HTTP 200: whether the review is allowed, and whether the answer carries a patch
	allowed, patched bool
	message          string // a substring of the error or denial message ("" = not checked)
	check            func(t *testing.T, resp *admissionv1.AdmissionResponse, patch []map[string]any)
}

// The hostile input catalogue: each body an attacker (or a broken client) could send, through the
// real HTTPS server and handler with the production limits, and exactly what it gets. The process
// stays healthy: a well-formed review is answered normally afterwards, and no goroutine is left.
func TestHostileInputCatalogue(t *testing.T) {
	m, _ := newMutator(testPolicy())
	m.Limits = NewLimits(DefaultMaxInflightReviews, DefaultMaxInflightBytes, m.Metrics)
	m.MaxRequestBytes = DefaultMaxRequestBytes
	addr, ca := startServer(t, ServerOptions{RequestTimeout: 10 * time.Second}, m)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool(), ServerName: "localhost"}}}
	defer client.CloseIdleConnections()
	goroutines := runtime.NumGoroutine()

	deep := strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000)
	envVar := func(i int) string { return fmt.Sprintf(`{"name":"V%d","value":"x"}`, i) }

	tests := map[string]struct {
		body string
		want hostileOutcome
	}{
		"invalid UTF-8 in a string is read as U+FFFD, as the API server reads it": {
			body: hostileReview(hostilePod(`,"annotations":{"note":"a`+"\xff\xfe"+`b"}`, "", "")),
			want: hostileOutcome{status: 200, allowed: true, patched: true},
		},
		"JSON nested 10,000 deep in a field lanyard skips": {
			body: hostileReview(hostilePod("", `,"unknown":`+deep, "")),
			want: hostileOutcome{status: 400, message: "exceeded max depth"},
		},
		"duplicate uid: the last one is answered": {
			body: strings.Replace(hostileReview(hostilePod("", "", "")), `"uid":"hostile-1"`, `"uid":"first","uid":"hostile-1"`, 1),
			want: hostileOutcome{status: 200, allowed: true, patched: true},
		},
		"duplicate serviceAccountName: the last one counts, as the API server stores it": {
			body: hostileReview(`{"metadata":{"name":"p"},"spec":{"serviceAccountName":"irsa","serviceAccountName":"nobody","containers":[{"name":"app","image":"i"}]}}`),
			want: hostileOutcome{status: 200, allowed: true, patched: false},
		},
		"duplicate serviceAccountName the other way round": {
			body: hostileReview(`{"metadata":{"name":"p"},"spec":{"serviceAccountName":"nobody","serviceAccountName":"irsa","containers":[{"name":"app","image":"i"}]}}`),
			want: hostileOutcome{status: 200, allowed: true, patched: true},
		},
		"null metadata": {
			body: hostileReview(`{"metadata":null,"spec":{"serviceAccountName":"irsa","containers":[{"name":"app","image":"i"}]}}`),
			want: hostileOutcome{status: 200, allowed: true, patched: true},
		},
		"null spec": {
			body: hostileReview(`{"metadata":{"name":"p"},"spec":null}`),
			want: hostileOutcome{status: 200, allowed: true, patched: false},
		},
		"null containers: no container to give the identity to": {
			body: hostileReview(`{"metadata":{"name":"p"},"spec":{"serviceAccountName":"irsa","containers":null}}`),
			want: hostileOutcome{status: 200, allowed: true, patched: false},
		},
		"a number where the ServiceAccount name is expected": {
			body: hostileReview(`{"metadata":{"name":"p"},"spec":{"serviceAccountName":5,"containers":[{"name":"app","image":"i"}]}}`),
			want: hostileOutcome{status: 200, allowed: false, message: "spec.serviceAccountName"},
		},
		"an object where annotations' values are expected": {
			body: hostileReview(hostilePod(`,"annotations":{"a":{"b":"c"}}`, "", "")),
			want: hostileOutcome{status: 200, allowed: false, message: "metadata.annotations"},
		},
		"10,000 containers: the identity patch could not be stored, denied with the reason": {
			body: hostileReview(hostilePod("", "", repeatJoined(10000, func(i int) string { return fmt.Sprintf(`{"name":"c%d","image":"i"}`, i) }))),
			want: hostileOutcome{status: 200, allowed: false, message: "--max-patch-bytes"},
		},
		"10,000 env vars in one container": {
			body: hostileReview(hostilePod("", "", `{"name":"app","image":"i","env":[`+repeatJoined(10000, envVar)+`]}`)),
			want: hostileOutcome{status: 200, allowed: true, patched: true},
		},
		"a 1 MiB annotation value": {
			body: hostileReview(hostilePod(`,"annotations":{"big":"`+strings.Repeat("x", 1<<20)+`"}`, "", "")),
			want: hostileOutcome{status: 200, allowed: true, patched: true},
		},
		"a volume named like lanyard's token volume but something else: that provider is skipped, with a warning": {
			body: hostileReview(hostilePod("", `,"volumes":[{"name":"aws-iam-token","emptyDir":{}}]`, "")),
			want: hostileOutcome{status: 200, allowed: true, patched: false, check: func(t *testing.T, resp *admissionv1.AdmissionResponse, _ []map[string]any) {
				assert.NotEmpty(t, resp.Warnings, "the skipped provider is reported")
			}},
		},
		"odd image references: digest only, ports, IPv6 host, upper case, 4 KiB name": {
			body: hostileReview(hostilePod("", "", strings.Join([]string{
				`{"name":"a","image":"sha256:` + strings.Repeat("a", 64) + `"}`,
				`{"name":"b","image":"registry.example.com:5000/app@sha256:` + strings.Repeat("b", 64) + `"}`,
				`{"name":"c","image":"[fd00::1]:5000/app:1"}`,
				`{"name":"d","image":"MYACR.AZURECR.IO/App:1"}`,
				`{"name":"e","image":"registry.example.com/` + strings.Repeat("n", 4096) + `:1"}`,
			}, ","))),
			want: hostileOutcome{status: 200, allowed: true, patched: true},
		},
		"not JSON at all": {
			body: "\x00\x01\x02 not json",
			want: hostileOutcome{status: 400, message: "malformed AdmissionReview"},
		},
		"trailing data after the review": {
			body: hostileReview(hostilePod("", "", "")) + `{"again":true}`,
			want: hostileOutcome{status: 400, message: "malformed AdmissionReview"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "https://"+addr+MutatePodPath+"?timeout=10s", strings.NewReader(tc.body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			res, err := client.Do(req)
			require.NoError(t, err)
			body, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			require.NoError(t, res.Body.Close())
			require.Equal(t, tc.want.status, res.StatusCode, "answer: %.600s", body)
			if res.StatusCode != http.StatusOK {
				assert.Contains(t, string(body), tc.want.message)
				return
			}
			var review admissionv1.AdmissionReview
			require.NoError(t, json.Unmarshal(body, &review))
			resp := review.Response
			require.NotNil(t, resp)
			assert.Equal(t, "hostile-1", string(resp.UID))
			assert.Equal(t, tc.want.allowed, resp.Allowed, "answer: %.600s", body)
			if !resp.Allowed {
				require.NotNil(t, resp.Result)
				assert.Contains(t, resp.Result.Message, tc.want.message)
				return
			}
			var patch []map[string]any
			if len(resp.Patch) > 0 {
				require.NoError(t, json.Unmarshal(resp.Patch, &patch))
			}
			assert.Equal(t, tc.want.patched, len(patch) > 0, "patch: %.600s", resp.Patch)
			if tc.want.check != nil {
				tc.want.check(t, resp, patch)
			}
		})
	}

	// Healthy afterwards: a well-formed review is answered with its identity, and the work of the
	// catalogue left nothing running.
	res, err := client.Post("https://"+addr+MutatePodPath, "application/json", bytes.NewReader(readFixture(t, "aws-irsa.json")))
	require.NoError(t, err)
	var review admissionv1.AdmissionReview
	require.NoError(t, json.NewDecoder(res.Body).Decode(&review))
	require.NoError(t, res.Body.Close())
	require.NotNil(t, review.Response)
	assert.True(t, review.Response.Allowed)
	assert.NotEmpty(t, review.Response.Patch)
	client.CloseIdleConnections()
	assert.Eventually(t, func() bool { return runtime.NumGoroutine() <= goroutines+2 }, 5*time.Second, 50*time.Millisecond,
		"goroutines: %d before, %d after", goroutines, runtime.NumGoroutine())
}
