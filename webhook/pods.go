package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	kjson "sigs.k8s.io/json"

	"github.com/lanyard-dev/lanyard/mutate"
	"github.com/lanyard-dev/lanyard/policy"
)

// MutatePodPath is where the API server sends pod CREATE reviews.
const MutatePodPath = "/mutate-v1-pod"

// DefaultMaxRequestBytes bounds an AdmissionReview body. A pod is at most ~1.5 MiB in etcd; the
// review wraps it with request metadata.
const DefaultMaxRequestBytes = 4 << 20

// auditKeyInjected is the auditAnnotations key (the API server prefixes it with the webhook name).
const auditKeyInjected = "injected"

// PodMutator answers pod CREATE admission reviews.
type PodMutator struct {
	Resolver *policy.Resolver
	Mutate   mutate.Options
	// LanyardNamespace is never mutated (lanyard must always be able to start).
	LanyardNamespace string
	// MaxRequestBytes bounds the request body; 0 means DefaultMaxRequestBytes.
	MaxRequestBytes int64
	Log             logr.Logger
	Metrics         *Metrics
}

// reviewRequest is an AdmissionReview as lanyard reads it: in one pass, with the pod decoded only
// as far as the mutation reads it (mutate.PodView). The pod is never re-encoded: the patch
// addresses the members the API server sent, so fields newer than the compiled API survive.
type reviewRequest struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Request    *requestFields `json:"request"`
}

// rawReviewRequest is the slow path when the object does not decode as a pod view: it tells a
// malformed review from a malformed object.
type rawReviewRequest struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Request    *struct {
		requestHeader
		Object json.RawMessage `json:"object"`
	} `json:"request"`
}

type requestFields struct {
	requestHeader
	Object *mutate.PodView `json:"object"`
	// objectErr is set when the object is present but is not a pod.
	objectErr error
}

// requestHeader is the part of an AdmissionRequest lanyard reads (versions, names, user info and
// options are skipped, not decoded).
type requestHeader struct {
	UID  types.UID `json:"uid"`
	Kind struct {
		Group string `json:"group"`
		Kind  string `json:"kind"`
	} `json:"kind"`
	Resource struct {
		Group    string `json:"group"`
		Resource string `json:"resource"`
	} `json:"resource"`
	SubResource string                `json:"subResource"`
	Namespace   string                `json:"namespace"`
	Operation   admissionv1.Operation `json:"operation"`
	DryRun      *bool                 `json:"dryRun"`
}

// httpError is a request lanyard cannot answer with an AdmissionResponse: the API server then
// applies the webhook's failurePolicy.
type httpError struct {
	status int
	reason string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

// ServeHTTP implements http.Handler.
func (h *PodMutator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	result := resultError
	defer func() {
		if p := recover(); p != nil {
			h.Metrics.error(reasonPanic)
			h.Log.Error(fmt.Errorf("%v", p), "panic while handling admission review")
			http.Error(w, "internal error while handling the admission review", http.StatusInternalServerError)
			result = resultError
		}
		h.Metrics.observe(result, time.Since(start).Seconds())
	}()

	body, herr := h.readBody(w, r)
	if herr == nil {
		var resp []byte
		resp, result, herr = h.Review(r.Context(), body)
		if herr == nil {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(resp)
			return
		}
	}
	h.Metrics.error(herr.reason)
	if herr.status >= 500 {
		h.Log.Error(herr, "admission review failed")
	} else {
		h.Log.V(1).Info("bad admission review", "error", herr.msg)
	}
	http.Error(w, herr.msg, herr.status)
}

func (h *PodMutator) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *httpError) {
	if r.Method != http.MethodPost {
		return nil, &httpError{http.StatusMethodNotAllowed, reasonBadRequest, "admission reviews must be POSTed"}
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" && !strings.HasPrefix(ct, "application/json;") {
		return nil, &httpError{http.StatusUnsupportedMediaType, reasonBadRequest, fmt.Sprintf("Content-Type %q: expected application/json", ct)}
	}
	limit := h.MaxRequestBytes
	if limit <= 0 {
		limit = DefaultMaxRequestBytes
	}
	if r.ContentLength > limit {
		return nil, &httpError{http.StatusRequestEntityTooLarge, reasonTooLarge, fmt.Sprintf("request body of %d bytes exceeds the limit of %d", r.ContentLength, limit)}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, &httpError{http.StatusRequestEntityTooLarge, reasonTooLarge, fmt.Sprintf("request body exceeds the limit of %d bytes", limit)}
		}
		return nil, &httpError{http.StatusBadRequest, reasonBadRequest, "reading request body: " + err.Error()}
	}
	return body, nil
}

// Review answers one AdmissionReview body: the response JSON and the outcome, or an error that
// must become an HTTP error status (so the webhook's failurePolicy decides).
func (h *PodMutator) Review(ctx context.Context, body []byte) ([]byte, string, *httpError) {
	var review reviewRequest
	if len(body) == 0 {
		return nil, resultError, &httpError{http.StatusBadRequest, reasonBadRequest, "empty request body: expected an AdmissionReview"}
	}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(body, &review); err != nil {
		var raw rawReviewRequest
		if rawErr := kjson.UnmarshalCaseSensitivePreserveInts(body, &raw); rawErr != nil {
			return nil, resultError, &httpError{http.StatusBadRequest, reasonBadRequest, "malformed AdmissionReview: " + rawErr.Error()}
		}
		review = reviewRequest{APIVersion: raw.APIVersion, Kind: raw.Kind}
		if raw.Request != nil {
			review.Request = &requestFields{requestHeader: raw.Request.requestHeader, objectErr: err}
		}
	}
	if review.APIVersion != admissionv1.SchemeGroupVersion.String() || review.Kind != "AdmissionReview" {
		return nil, resultError, &httpError{http.StatusBadRequest, reasonBadRequest,
			fmt.Sprintf("unsupported %s %s: lanyard speaks admission.k8s.io/v1 AdmissionReview", review.APIVersion, review.Kind)}
	}
	req := review.Request
	if req == nil {
		return nil, resultError, &httpError{http.StatusBadRequest, reasonBadRequest, "AdmissionReview has no request"}
	}
	if req.UID == "" {
		return nil, resultError, &httpError{http.StatusBadRequest, reasonBadRequest, "AdmissionReview request has no uid"}
	}

	resp := response{uid: req.UID, allowed: true}
	result, herr := h.admit(ctx, req, &resp)
	if herr != nil {
		return nil, result, herr
	}
	out, err := resp.appendJSON(make([]byte, 0, 512))
	if err != nil {
		return nil, resultError, &httpError{http.StatusInternalServerError, reasonInternal, "encoding response: " + err.Error()}
	}
	return out, result, nil
}

func (h *PodMutator) admit(ctx context.Context, req *requestFields, resp *response) (string, *httpError) {
	if req.Operation != admissionv1.Create || req.SubResource != "" ||
		req.Kind.Group != "" || req.Kind.Kind != "Pod" || req.Resource.Group != "" || req.Resource.Resource != "pods" {
		return resultSkipped, nil // lanyard only mutates pod creation; anything else passes untouched
	}
	if policy.IsSystemNamespace(req.Namespace, h.LanyardNamespace) {
		return resultSkipped, nil
	}
	if req.objectErr != nil {
		deny(resp, http.StatusBadRequest, metav1.StatusReasonBadRequest, "lanyard could not decode the pod: "+req.objectErr.Error())
		h.Metrics.error(reasonBadPod)
		return resultDenied, nil
	}
	if req.Object == nil {
		return resultError, &httpError{http.StatusBadRequest, reasonBadRequest, "AdmissionReview request has no object: expected the pod being created"}
	}
	if req.Object.Label(policy.InjectLabel) == policy.InjectDisabled {
		return resultSkipped, nil
	}

	pod := req.Object.Pod()
	applied, err := h.Resolver.Resolve(ctx, policy.SubjectOf(req.Namespace, pod))
	if err != nil {
		var invalid *policy.InvalidError
		if errors.As(err, &invalid) {
			deny(resp, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, err.Error())
			return resultDenied, nil
		}
		return resultError, &httpError{http.StatusInternalServerError, reasonLookup, "lanyard could not look up policy for the pod: " + err.Error()}
	}
	changes, err := mutate.Compute(pod, applied, h.Mutate)
	if err != nil {
		deny(resp, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, err.Error())
		return resultDenied, nil
	}

	for _, is := range applied.Issues {
		resp.warnings = append(resp.warnings, is.Message)
	}
	resp.warnings = append(resp.warnings, changes.Warnings...)
	resp.injected = changes.Injected
	if changes.Empty() {
		return resultUnchanged, nil
	}
	resp.changes = changes
	if !req.Object.HasMetadata() {
		changes.CreateMetadata()
	}
	if req.DryRun == nil || !*req.DryRun {
		h.Metrics.injected(changes.Injected)
	}
	return resultInjected, nil
}

func deny(resp *response, code int32, reason metav1.StatusReason, msg string) {
	resp.allowed = false
	resp.result = &metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg}
}
