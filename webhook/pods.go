package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// DefaultMaxRequestBytes bounds an AdmissionReview body. It is sized from the largest pod the API
// server can store, not from a typical one: etcd takes a pod of up to 1.5 MiB in protobuf, and
// its JSON in the review can be several times that — the API server escapes <, > and & as
// \u003c (6 bytes for 1), and short booleans and integers gain their field names (up to ~8×).
// 1.5 MiB × 8 plus the review's envelope is ~12 MiB; no legal pod is refused below 16 MiB.
// Limits bound how many such bodies are held at once.
const DefaultMaxRequestBytes = 16 << 20

// DefaultMaxPatchBytes bounds the patch of one answer. A JSON Patch op is larger than what it adds
// to the stored (protobuf) pod, and etcd stores a pod of at most 1.5 MiB by default: a patch
// beyond 4 MiB makes a pod the API server cannot store, so rendering and sending it (for a pod of
// hundreds of thousands of containers it was hundreds of MB) serves nobody.
const DefaultMaxPatchBytes = 4 << 20

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
	// Timeout bounds one review (the API server's own ?timeout= when shorter); 0 means
	// DefaultRequestTimeout.
	Timeout time.Duration
	// LookupTimeout bounds all policy lookups of one review together (live reads on cache
	// misses); 0 means no bound beyond Timeout.
	LookupTimeout time.Duration
	// MaxPatchBytes bounds the patch of one answer; 0 means DefaultMaxPatchBytes.
	MaxPatchBytes int
	// Limits bound the reviews in flight; nil means unbounded (tests).
	Limits  *Limits
	Log     logr.Logger
	Metrics *Metrics

	// patchAnswerBytes is the length of the last answer with a patch: the next one, likely of the
	// same shape, is built in a buffer of that size instead of one grown (and copied) several
	// times.
	patchAnswerBytes atomic.Int64
}

// maxAnswerHint bounds the buffer allocated up front for an answer: after one large pod, the
// typical ones that follow should not each allocate as much.
const maxAnswerHint = 64 << 10

// Buffers reused from one review to the next: a typical review's pod, answer and body would
// otherwise be most of the garbage it leaves, and garbage collection over a large cache is what
// a review costs beyond its own work.
var (
	podBuffers    = sync.Pool{New: func() any { return new(mutate.PodBuffer) }}
	answerBuffers sync.Pool // *[]byte
	bodyBuffers   = sync.Pool{New: func() any { b := make([]byte, 0, pooledBodyBytes); return &b }}
)

// pooledBodyBytes is the size of a pooled body buffer: a typical review is 2–4 KB.
const pooledBodyBytes = 8 << 10

func releasePodBuffer(b *mutate.PodBuffer) {
	if b.Release() {
		podBuffers.Put(b)
	}
}

// answerBuffer returns an empty buffer for the answer resp, at least as large as the last answer
// with a patch, in the holder it goes back to the pool in.
func (h *PodMutator) answerBuffer(resp *response) *[]byte {
	want := int64(512)
	if resp.changes != nil {
		want = min(max(h.patchAnswerBytes.Load(), want), maxAnswerHint)
	}
	if b, ok := answerBuffers.Get().(*[]byte); ok && int64(cap(*b)) >= want {
		*b = (*b)[:0]
		return b
	}
	b := make([]byte, 0, want)
	return &b
}

// releaseAnswer takes back an answer once it is written.
func releaseAnswer(b *[]byte) {
	if cap(*b) <= maxAnswerHint {
		answerBuffers.Put(b)
	}
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

// ServeHTTP implements http.Handler.
func (h *PodMutator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	result := resultError
	defer func() {
		if p := recover(); p != nil {
			h.Metrics.error(reasonPanic)
			h.Log.Error(fmt.Errorf("%v", p), "panic while handling admission review")
			_ = writeStatus(w, &httpError{http.StatusInternalServerError, reasonPanic, "internal error while handling the admission review"})
			result = resultError
		}
		h.Metrics.observe(result, time.Since(start).Seconds())
	}()

	res := h.Limits.reserve()
	defer res.release()
	resp, result, herr := h.serve(w, r, res)
	if herr == nil {
		w.Header().Set("Content-Type", "application/json")
		if err := writeAll(w, *resp); err != nil {
			// The client did not take the answer in time (write deadline) or went away.
			result = resultError
			h.Metrics.error(reasonWrite)
			h.Log.V(1).Info("answer not delivered", "error", err.Error(), "bytes", len(*resp))
		}
		releaseAnswer(resp) // written (net/http copies or sends it before Write and Flush return)
		return
	}
	h.Metrics.error(herr.reason)
	switch {
	case herr.status >= 500 && herr.reason != reasonOverloaded && herr.reason != reasonDeadline:
		h.Log.Error(herr, "admission review failed")
	default:
		// Bad requests, overload and requests that ran out of time are the client's or the
		// load's doing: counted in metrics, logged only at debug level.
		h.Log.V(1).Info("admission review refused", "status", herr.status, "error", herr.msg)
	}
	if herr.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	if err := writeStatus(w, herr); err != nil {
		h.Metrics.error(reasonWrite)
	}
}

// serve checks the request, reads its body within the byte budget, waits for a review slot,
// reviews it and reserves room for the answer. The reservation is released by the caller once the
// answer is written.
func (h *PodMutator) serve(w http.ResponseWriter, r *http.Request, res *reservation) (*[]byte, string, *httpError) {
	if herr := checkRequest(r); herr != nil {
		return nil, resultError, herr
	}
	limit := h.maxRequestBytes()
	if r.ContentLength > limit {
		return nil, resultError, tooLarge(r.ContentLength, limit)
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestBudget(r, h.timeout()))
	defer cancel()
	body, pooled, herr := readBody(ctx, w, r, limit, res)
	if pooled != nil {
		defer bodyBuffers.Put(pooled) // nothing decoded from the body refers to it: strings are copies
	}
	if herr != nil {
		return nil, resultError, herr
	}
	// Reserve what working on it will take before decoding it: for a pod of many small
	// containers that is many times its body.
	working := workingBytes(body)
	if h.Limits != nil && working > h.Limits.maxBytes {
		return nil, resultError, &httpError{http.StatusRequestEntityTooLarge, reasonTooLarge, fmt.Sprintf(
			"working on this review would take an estimated %d bytes, more than --max-inflight-review-bytes (%d); no pod that etcd can store is this large",
			working, h.Limits.maxBytes)}
	}
	if err := res.takeSlot(ctx); err != nil {
		return nil, resultError, overloaded(err)
	}
	if err := res.takeWork(ctx, working); err != nil {
		return nil, resultError, overloaded(err)
	}
	out, result, herr := h.review(ctx, body)
	if herr != nil {
		return nil, result, herr
	}
	// The answer outlives the review's working memory (garbage once it is built): what was
	// reserved for that work covers it, and only an answer larger still takes more.
	if err := res.growWork(int64(len(*out))); err != nil {
		return nil, resultError, overloaded(err)
	}
	return out, result, nil
}

// writeAll writes the answer and flushes it, so that a failure to deliver it (the write deadline,
// a client gone) is seen here and counted rather than lost after the handler returns. The length
// is announced first: a flushed answer without one goes out chunked, costing a second TLS record
// and syscall per answer.
func writeAll(w http.ResponseWriter, b []byte) error {
	w.Header().Set("Content-Length", strconv.Itoa(len(b))) // ignored once the header is written
	if _, err := w.Write(b); err != nil {
		return err
	}
	if err := http.NewResponseController(w).Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// checkRequest refuses what is not an AdmissionReview POST before anything is read.
func checkRequest(r *http.Request) *httpError {
	if r.Method != http.MethodPost {
		return &httpError{http.StatusMethodNotAllowed, reasonBadRequest, "admission reviews must be POSTed"}
	}
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" { // ParseMediaType lowercases
		return &httpError{http.StatusUnsupportedMediaType, reasonBadRequest, fmt.Sprintf("Content-Type %q: expected application/json", ct)}
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return &httpError{http.StatusUnsupportedMediaType, reasonBadRequest, fmt.Sprintf("Content-Encoding %q is not supported: send the AdmissionReview uncompressed", ce)}
	}
	return nil
}

func (h *PodMutator) maxRequestBytes() int64 {
	if h.MaxRequestBytes > 0 {
		return h.MaxRequestBytes
	}
	return DefaultMaxRequestBytes
}

func (h *PodMutator) maxPatchBytes() int {
	if h.MaxPatchBytes > 0 {
		return h.MaxPatchBytes
	}
	return DefaultMaxPatchBytes
}

func (h *PodMutator) timeout() time.Duration {
	if h.Timeout > 0 {
		return h.Timeout
	}
	return DefaultRequestTimeout
}

func tooLarge(size, limit int64) *httpError {
	what := "request body"
	if size >= 0 {
		what = fmt.Sprintf("request body of %d bytes", size)
	}
	return &httpError{http.StatusRequestEntityTooLarge, reasonTooLarge, fmt.Sprintf(
		"%s exceeds lanyard's limit of %d bytes (--max-request-bytes); no pod that etcd can store is this large", what, limit)}
}

// readBody reads the body into memory reserved as it arrives: a client that announces a large body
// and sends it slowly, or not at all, holds only what it sent.
func readBody(ctx context.Context, w http.ResponseWriter, r *http.Request, limit int64, res *reservation) (body []byte, pooled *[]byte, herr *httpError) {
	reader := http.MaxBytesReader(w, r.Body, limit)
	want := int64(readChunk)
	if r.ContentLength >= 0 {
		want = min(r.ContentLength+1, want) // +1: EOF is seen without growing
	}
	if err := res.addBody(ctx, want); err != nil {
		return nil, nil, overloaded(err)
	}
	var buf []byte
	if want <= pooledBodyBytes {
		pooled = bodyBuffers.Get().(*[]byte)
		buf = (*pooled)[:0:want] // capped at what was reserved: a body that grows gets new memory
	} else {
		buf = make([]byte, 0, want)
	}
	for {
		if len(buf) == cap(buf) {
			grow := min(max(int64(cap(buf)), readChunk), limit+1-int64(cap(buf)))
			if r.ContentLength >= 0 {
				grow = min(grow, r.ContentLength+1-int64(cap(buf)))
			}
			grow = max(grow, 1)
			if err := res.addBody(ctx, grow); err != nil {
				return nil, pooled, overloaded(err)
			}
			buf = append(buf[:cap(buf)], make([]byte, grow)...)[:len(buf)]
		}
		n, err := reader.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, pooled, nil
		}
		if err != nil {
			var tooLargeErr *http.MaxBytesError
			if errors.As(err, &tooLargeErr) {
				return nil, pooled, tooLarge(-1, limit)
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, pooled, &httpError{http.StatusRequestTimeout, reasonBadRequest, "reading the request body timed out"}
			}
			return nil, pooled, &httpError{http.StatusBadRequest, reasonBadRequest, "reading request body: " + err.Error()}
		}
	}
}

// Review answers one AdmissionReview body: the response JSON and the outcome, or an error that
// must become an HTTP error status (so the webhook's failurePolicy decides).
func (h *PodMutator) Review(ctx context.Context, body []byte) ([]byte, string, *httpError) {
	out, result, herr := h.review(ctx, body)
	if out == nil {
		return nil, result, herr
	}
	return *out, result, herr
}

// review is Review with the answer in its pooled holder (releaseAnswer once written).
func (h *PodMutator) review(ctx context.Context, body []byte) (*[]byte, string, *httpError) {
	if len(body) == 0 {
		return nil, resultError, &httpError{http.StatusBadRequest, reasonBadRequest, "empty request body: expected an AdmissionReview"}
	}
	// The fast decoder takes reviews as the API server writes them; anything else gets kjson's
	// decode and errors, as if there were no fast path.
	review, fast := decodeReviewFast(body)
	var err error
	if !fast {
		err = kjson.UnmarshalCaseSensitivePreserveInts(body, &review)
	}
	if err != nil {
		var raw rawReviewRequest
		if rawErr := kjson.UnmarshalCaseSensitivePreserveInts(body, &raw); rawErr != nil {
			return nil, resultError, &httpError{http.StatusBadRequest, reasonBadRequest, "malformed AdmissionReview: " + describeJSONError(rawErr)}
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
	pod := podBuffers.Get().(*mutate.PodBuffer)
	defer releasePodBuffer(pod) // the answer, rendered below, is the last to read the pod
	result, herr := h.admit(ctx, req, &resp, pod)
	if herr != nil {
		return nil, result, herr
	}
	holder := h.answerBuffer(&resp)
	out, err := resp.appendJSON(*holder, h.maxPatchBytes())
	if errors.Is(err, mutate.ErrPatchTooLarge) {
		// The pod with its identity could not be stored: refuse it with the reason instead of
		// sending a patch the API server would fail on (or take seconds to send).
		resp = response{uid: req.UID}
		deny(&resp, http.StatusRequestEntityTooLarge, metav1.StatusReasonRequestEntityTooLarge, fmt.Sprintf(
			"giving this pod its identity takes a patch of more than %d bytes (--max-patch-bytes): the pod would be larger than the API server can store; give fewer containers the identity (%s) or split the pod",
			h.maxPatchBytes(), policy.AnnotationContainers))
		h.Metrics.error(reasonTooLarge)
		out, err = resp.appendJSON(make([]byte, 0, 512), 0)
		result = resultDenied
	}
	if err != nil {
		return nil, resultError, &httpError{http.StatusInternalServerError, reasonInternal, "encoding response: " + err.Error()}
	}
	if resp.changes != nil {
		h.patchAnswerBytes.Store(int64(len(out)))
	}
	if result == resultInjected && (req.DryRun == nil || !*req.DryRun) {
		h.Metrics.injected(resp.injected)
	}
	*holder = out
	return holder, result, nil
}

func (h *PodMutator) admit(ctx context.Context, req *requestFields, resp *response, buf *mutate.PodBuffer) (string, *httpError) {
	if req.Operation != admissionv1.Create || req.SubResource != "" ||
		req.Kind.Group != "" || req.Kind.Kind != "Pod" || req.Resource.Group != "" || req.Resource.Resource != "pods" {
		return resultSkipped, nil // lanyard only mutates pod creation; anything else passes untouched
	}
	if policy.IsSystemNamespace(req.Namespace, h.LanyardNamespace) {
		return resultSkipped, nil
	}
	if req.objectErr != nil {
		return badPod(resp, h.Metrics, describeJSONError(req.objectErr))
	}
	if req.Object == nil {
		return resultError, &httpError{http.StatusBadRequest, reasonBadRequest, "AdmissionReview request has no object: expected the pod being created"}
	}
	// Labels are decoded only to find the opt-out; a pod whose labels do not decode is denied
	// rather than injected against an opt-out lanyard could not read.
	optOut, err := req.Object.Label(policy.InjectLabel)
	if err != nil {
		return badPod(resp, h.Metrics, err.Error())
	}
	if optOut == policy.InjectDisabled {
		return resultSkipped, nil
	}

	pod := req.Object.PodIn(buf)
	lookupCtx := ctx
	// A review that ends before the lookup budget would (the API server's ?timeout= is short)
	// needs no timer of its own for the lookups: its deadline bounds them already.
	if deadline, ok := ctx.Deadline(); h.LookupTimeout > 0 && (!ok || time.Until(deadline) > h.LookupTimeout) {
		var cancel context.CancelFunc
		lookupCtx, cancel = context.WithTimeout(ctx, h.LookupTimeout) // one budget for every lookup of this review
		defer cancel()
	}
	subject := policy.SubjectOf(req.Namespace, pod)
	use, err := req.Object.Label(policy.AzureUseLabel) // the view's pod carries no labels
	if err != nil {
		return badPod(resp, h.Metrics, err.Error())
	}
	subject.AzureUseLabel = use == "true"
	applied, err := h.Resolver.Resolve(lookupCtx, subject)
	if err != nil {
		var invalid *policy.InvalidError
		if errors.As(err, &invalid) {
			deny(resp, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, err.Error())
			return resultDenied, nil
		}
		return resultError, &httpError{http.StatusInternalServerError, reasonLookup, "lanyard could not look up policy for the pod: " + err.Error()}
	}
	if ctx.Err() != nil {
		return resultError, deadlineError(ctx)
	}
	if pod.Spec.ServiceAccountName == "" && !applied.Identity.Empty() {
		// The API server's ServiceAccount admission sets spec.serviceAccountName before webhooks
		// run; empty means it is off in this cluster, and the API server refuses a projected
		// ServiceAccount token in a pod without a ServiceAccount. Registry access still applies.
		resp.warnings = append(resp.warnings, fmt.Sprintf(
			"pod has no spec.serviceAccountName (the ServiceAccount admission plugin is off?): ServiceAccount tokens cannot be projected, %s not injected",
			applied.Identity.Source))
		applied.Identity = policy.Identity{}
	}
	changes, err := mutate.Compute(pod, applied, h.Mutate)
	if err != nil {
		deny(resp, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, err.Error())
		return resultDenied, nil
	}
	if ctx.Err() != nil {
		return resultError, deadlineError(ctx)
	}

	for _, is := range applied.Issues {
		resp.warnings = append(resp.warnings, is.Message)
	}
	resp.warnings = capWarnings(append(resp.warnings, changes.Warnings...))
	resp.injected = changes.Injected
	if changes.Empty() {
		return resultUnchanged, nil
	}
	resp.changes = changes
	if !req.Object.HasMetadata() {
		changes.CreateMetadata()
	}
	return resultInjected, nil
}

// maxResponseWarnings bounds the warnings of one answer: resolution issues are per image, and a
// pod of thousands of containers must not make an answer of thousands of warnings.
const maxResponseWarnings = 2 * mutate.MaxWarnings

func capWarnings(w []string) []string {
	if len(w) <= maxResponseWarnings {
		return w
	}
	return append(w[:maxResponseWarnings:maxResponseWarnings], fmt.Sprintf("... and %d more warnings (only the first %d are listed; lanyard check lists every one)",
		len(w)-maxResponseWarnings, maxResponseWarnings))
}

func badPod(resp *response, m *Metrics, reason string) (string, *httpError) {
	deny(resp, http.StatusBadRequest, metav1.StatusReasonBadRequest, "lanyard could not decode the pod: "+reason)
	m.error(reasonBadPod)
	return resultDenied, nil
}

// deadlineError ends a review whose request is over (the client went away or its deadline
// passed): no more work is spent on it.
func deadlineError(ctx context.Context) *httpError {
	return &httpError{http.StatusServiceUnavailable, reasonDeadline, "the review ran out of time: " + context.Cause(ctx).Error()}
}

func deny(resp *response, code int32, reason metav1.StatusReason, msg string) {
	resp.allowed = false
	resp.result = &metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg}
}
