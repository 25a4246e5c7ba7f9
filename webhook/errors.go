package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lanyard-dev/lanyard/internal/jsonw"
)

// httpError is a request lanyard cannot answer with an AdmissionResponse: the API server then
// applies the webhook's failurePolicy.
type httpError struct {
	status int
	reason string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

// writeStatus answers with an HTTP error whose body is a metav1.Status. The API server's webhook
// client decodes a Status from a failed call and shows its message to whoever created the pod;
// with a plain-text body it would only say "the server responded with the status code 413 but did
// not return more information".
func writeStatus(w http.ResponseWriter, e *httpError) error {
	body := make([]byte, 0, 128+len(e.msg))
	body = append(body, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",`...)
	body = jsonw.StringField(body, true, "message", "lanyard: "+e.msg)
	body = jsonw.StringField(body, false, "reason", string(statusReason(e.status)))
	body = append(append(jsonw.Field(body, false, "code"), strconv.Itoa(e.status)...), '}')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.status)
	return writeAll(w, body)
}

func statusReason(code int) metav1.StatusReason {
	switch code {
	case http.StatusBadRequest:
		return metav1.StatusReasonBadRequest
	case http.StatusMethodNotAllowed:
		return metav1.StatusReasonMethodNotAllowed
	case http.StatusUnsupportedMediaType:
		return metav1.StatusReasonUnsupportedMediaType
	case http.StatusRequestEntityTooLarge:
		return metav1.StatusReasonRequestEntityTooLarge
	case http.StatusRequestTimeout:
		return metav1.StatusReasonTimeout
	case http.StatusServiceUnavailable:
		return metav1.StatusReasonServiceUnavailable
	}
	return metav1.StatusReasonInternalError
}

// describeJSONError says what is wrong with a JSON document in the document's own terms: the
// JSON path of the field and the JSON types, never the Go types lanyard decodes into.
func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		want := jsonTypeName(typeErr.Type)
		if typeErr.Field == "" {
			return fmt.Sprintf("expected %s, got a JSON %s", want, typeErr.Value)
		}
		return fmt.Sprintf("field %s: expected %s, got a JSON %s", jsonPath(typeErr.Field), want, typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("invalid JSON at byte %d: %s", syntaxErr.Offset, strings.TrimPrefix(syntaxErr.Error(), "json: "))
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// jsonPath drops the names of embedded Go structs from a decoder's field path: they have no
// place in the JSON.
func jsonPath(field string) string {
	parts := strings.Split(strings.TrimPrefix(field, "."), ".")
	out := parts[:0]
	for _, p := range parts {
		if p != "requestHeader" {
			out = append(out, p)
		}
	}
	return strings.Join(out, ".")
}

func jsonTypeName(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 { // json.RawMessage: any JSON value
			return "a JSON value"
		}
		return "an array"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a value"
}
