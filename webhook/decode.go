package webhook

import (
	"sync"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lanyard-dev/lanyard/internal/jsonr"
	"github.com/lanyard-dev/lanyard/mutate"
)

// decodeReviewFast decodes an AdmissionReview as the API server writes it, in one pass without
// reflection (internal/jsonr; the pod by mutate.DecodePodViewFrom). ok is false for anything else
// — malformed JSON, duplicate members, nulls, other types — which Review then decodes with kjson:
// the results are kjson's either way (FuzzFastDecodeAgrees checks it), only faster for the
// reviews that matter.
func decodeReviewFast(body []byte) (review reviewRequest, ok bool) {
	d := reviewDecoders.Get().(*jsonr.Decoder)
	d.Reset(body)
	defer func() {
		d.Reset(nil)
		reviewDecoders.Put(d)
	}()
	var seen uint32
	for more := d.Object(); more; more = d.More() {
		switch string(d.Name()) {
		case "apiVersion":
			d.Once(&seen, 0)
			review.APIVersion = d.StringAmong("admission.k8s.io/v1")
		case "kind":
			d.Once(&seen, 1)
			review.Kind = d.StringAmong("AdmissionReview")
		case "request":
			d.Once(&seen, 2)
			review.Request = decodeRequestFast(d)
		default:
			d.Skip()
		}
	}
	if !d.End() {
		return reviewRequest{}, false
	}
	return review, true
}

// reviewDecoders keeps decoders, and the scratch space they grew, for the next review.
var reviewDecoders = sync.Pool{New: func() any { return new(jsonr.Decoder) }}

func decodeRequestFast(d *jsonr.Decoder) *requestFields {
	req := &requestFields{}
	var seen uint32
	for more := d.Object(); more; more = d.More() {
		switch string(d.Name()) {
		case "uid":
			d.Once(&seen, 0)
			req.UID = types.UID(d.String())
		case "kind":
			d.Once(&seen, 1)
			req.Kind.Group, req.Kind.Kind = groupAnd(d, "kind", "Pod")
		case "resource":
			d.Once(&seen, 2)
			req.Resource.Group, req.Resource.Resource = groupAnd(d, "resource", "pods")
		case "subResource":
			d.Once(&seen, 3)
			req.SubResource = d.String()
		case "namespace":
			d.Once(&seen, 4)
			req.Namespace = d.String()
		case "operation":
			d.Once(&seen, 5)
			req.Operation = admissionv1.Operation(d.StringAmong("CREATE", "UPDATE", "DELETE", "CONNECT"))
		case "dryRun":
			d.Once(&seen, 6)
			dryRun := d.Bool()
			req.DryRun = &dryRun
		case "object":
			d.Once(&seen, 7)
			if !d.Null() { // as in a DELETE review: no object
				req.Object = mutate.DecodePodViewFrom(d)
			}
		default:
			d.Skip()
		}
	}
	return req
}

// groupAnd reads a {group, <member>} object (a request's kind or resource); the member's value
// is usually common, which StringAmong returns without allocating.
func groupAnd(d *jsonr.Decoder, member, common string) (group, value string) {
	var seen uint32
	for more := d.Object(); more; more = d.More() {
		switch string(d.Name()) {
		case "group":
			d.Once(&seen, 0)
			group = d.String()
		case member:
			d.Once(&seen, 1)
			value = d.StringAmong(common)
		default:
			d.Skip()
		}
	}
	return group, value
}
