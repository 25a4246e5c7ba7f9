package webhook

import (
	"encoding/base64"
	"encoding/json"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lanyard-dev/lanyard/internal/jsonw"
	"github.com/lanyard-dev/lanyard/mutate"
)

// response is an AdmissionResponse under construction. appendJSON writes the admission.k8s.io/v1
// AdmissionReview directly (the patch is rendered straight into its base64 field); it decodes to
// the same object encoding/json would write for admissionv1.AdmissionReview (tested).
type response struct {
	uid      types.UID
	allowed  bool
	result   *metav1.Status
	changes  *mutate.Changes // nil: no patch
	warnings []string        // prefixed with "lanyard: " when written
	injected []string        // auditAnnotations["injected"]
}

// appendJSON writes the review; the patch may be at most maxPatch bytes (0: no bound), else
// mutate.ErrPatchTooLarge.
func (r *response) appendJSON(dst []byte, maxPatch int) ([]byte, error) {
	dst = append(dst, `{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","response":{`...)
	dst = jsonw.StringField(dst, true, "uid", string(r.uid))
	if r.allowed {
		dst = append(dst, `,"allowed":true`...)
	} else {
		dst = append(dst, `,"allowed":false`...)
	}
	if r.result != nil {
		js, err := json.Marshal(r.result)
		if err != nil {
			return nil, err
		}
		dst = append(jsonw.Field(dst, false, "status"), js...)
	}
	if r.changes != nil {
		patch, err := r.changes.AppendPatchJSONWithin(make([]byte, 0, 1024), "", maxPatch)
		if err != nil {
			return nil, err
		}
		dst = jsonw.Field(dst, false, "patch")
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, patch)
		dst = append(dst, `","patchType":"JSONPatch"`...)
	}
	if len(r.injected) > 0 {
		dst = append(jsonw.Field(dst, false, "auditAnnotations"), '{')
		dst = jsonw.StringField(dst, true, auditKeyInjected, strings.Join(r.injected, ","))
		dst = append(dst, '}')
	}
	if len(r.warnings) > 0 {
		dst = append(jsonw.Field(dst, false, "warnings"), '[')
		for i, w := range r.warnings {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonw.String(dst, "lanyard: "+w)
		}
		dst = append(dst, ']')
	}
	return append(dst, '}', '}'), nil
}
