package webhook

import (
	"encoding/base64"
	"encoding/json"
	"slices"
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
		dst = append(jsonw.Field(dst, false, "patch"), '"')
		// The patch is rendered where its base64 goes and encoded there: no buffer of its own.
		start := len(dst)
		var err error
		if dst, err = r.changes.AppendPatchJSONWithin(dst, "", maxPatch); err != nil {
			return nil, err
		}
		dst = append(encodeBase64InPlace(dst, start), `","patchType":"JSONPatch"`...)
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

const base64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// encodeBase64InPlace replaces b[start:] with its padded standard base64 encoding (as
// base64.StdEncoding). It works from the end: each 3-byte group is read before its 4 bytes of
// encoding are written, at or after the group, over groups already encoded. (The slices of a
// group and the masks let the compiler drop the bounds checks: twice as fast.)
func encodeBase64InPlace(b []byte, start int) []byte {
	n := len(b) - start
	b = slices.Grow(b, base64.StdEncoding.EncodedLen(n)-n)
	b = b[:start+base64.StdEncoding.EncodedLen(n)]
	enc := b[start:]
	si, di := n/3*3, n/3*4
	switch n - si { // the last, short group, padded
	case 1:
		v := uint(enc[si]) << 16
		enc[di], enc[di+1], enc[di+2], enc[di+3] = base64Alphabet[v>>18&0x3f], base64Alphabet[v>>12&0x3f], '=', '='
	case 2:
		v := uint(enc[si])<<16 | uint(enc[si+1])<<8
		enc[di], enc[di+1], enc[di+2], enc[di+3] = base64Alphabet[v>>18&0x3f], base64Alphabet[v>>12&0x3f], base64Alphabet[v>>6&0x3f], '='
	}
	for si > 0 {
		si, di = si-3, di-4
		in := enc[si : si+3 : si+3]
		v := uint(in[0])<<16 | uint(in[1])<<8 | uint(in[2])
		out := enc[di : di+4 : di+4]
		out[0], out[1], out[2], out[3] = base64Alphabet[v>>18&0x3f], base64Alphabet[v>>12&0x3f], base64Alphabet[v>>6&0x3f], base64Alphabet[v&0x3f]
	}
	return b
}
