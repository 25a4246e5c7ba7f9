package mutate_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	kjson "sigs.k8s.io/json"

	"github.com/lanyard-dev/lanyard/mutate"
)

// decodeBothWays decodes a pod's JSON with the fast decoder and with kjson (as the webhook did
// before there was a fast path).
func decodeBothWays(t testing.TB, raw []byte) (fast *mutate.PodView, ok bool, slow *mutate.PodView, slowErr error) {
	t.Helper()
	fast, ok = mutate.DecodePodView(raw)
	slow = &mutate.PodView{}
	slowErr = kjson.UnmarshalCaseSensitivePreserveInts(raw, slow)
	return fast, ok, slow, slowErr
}

// A pod the fast decoder takes decodes exactly as kjson decodes it: nil and empty kept apart,
// strings unescaped alike, labels the same bytes.
func TestDecodePodViewEqualsKJSON(t *testing.T) {
	tests := map[string]string{
		"empty pod":                     `{}`,
		"empty metadata is not absent":  `{"metadata":{}}`,
		"empty maps are not nil maps":   `{"metadata":{"annotations":{}},"spec":{"nodeSelector":{}}}`,
		"empty lists are not nil lists": `{"spec":{"volumes":[],"imagePullSecrets":[],"initContainers":[],"containers":[{"env":[],"volumeMounts":[]}]}}`,
		"absent lists stay nil":         `{"spec":{"containers":[{"name":"a"}]}}`,
		"whitespace anywhere":           " \t\r\n{ \"spec\" : { \"containers\" : [ { \"name\" : \"a\" , \"env\" : [ { \"name\" : \"A\" } ] } ] } } \n",
		"labels are kept as their exact bytes": `{"metadata":{"labels": { "app" : "x",
			"b\u002fc":"d" } }}`,
		"labels of any JSON value are kept raw":      `{"metadata":{"labels":[1, "x", null]}}`,
		"null labels are kept raw":                   `{"metadata":{"labels":null}}`,
		"common escapes":                             `{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"a\":\"\u003cb\u003e \u0026 \\\/\b\f\n\r\t\"}"}}}`,
		"escaped map keys":                           `{"metadata":{"annotations":{"a\u002fb":"c","\ud83d\ude00":"pair"}}}`,
		"surrogate pairs":                            `{"spec":{"serviceAccountName":"\ud83d\ude00 \uD83D\uDE00"}}`,
		"lone and reversed surrogates become U+FFFD": `{"spec":{"serviceAccountName":"\ud83d x \ude00 \ude00\ud83d \ud83d\u0041 \ud83d\ud83d\ude00"}}`,
		"non-ASCII is kept":                          `{"metadata":{"name":"pöd-日本-😀"}}`,
		"invalid UTF-8 becomes U+FFFD":               "{\"metadata\":{\"name\":\"a\xffb\xc3(c\xed\xa0\x80\"}}",
		"member names are case-sensitive":            `{"Metadata":{"name":"x"},"spec":{"Containers":[{"name":"a"}],"containers":[{"Name":"b","IMAGE":"c"}]}}`,
		"unknown members of every type are skipped": `{"kind":"Pod","apiVersion":"v1","metadata":{"creationTimestamp":null,"generation":-1.5e+3,
			"managedFields":[{"fieldsV1":{"f:spec":{"f:containers":{"k:{\"name\":\"a\"}":{".":{},"f:env":[[],[[{}]],true,false,0,-0,1E2,0.5e-1]}}}}}],
			"ownerReferences":[{"controller":true}]},"spec":{"containers":[{"name":"a","resources":{"limits":{"cpu":"1"}},"ports":[{"containerPort":80}]}],"x":"\u00e9\"\\"}}`,
		"non-ASCII member names are unknown":   "{\"metadata\":{\"námé\":\"x\",\"\xff\":1}}",
		"valueFrom of any object is set":       `{"spec":{"containers":[{"env":[{"name":"A","valueFrom":{}},{"name":"B","valueFrom":{"secretKeyRef":{"name":"s","key":"k"},"x\u0041":[1]}},{"name":"C","value":""}]}]}}`,
		"every volume mount field":             `{"spec":{"initContainers":[{"volumeMounts":[{"name":"v","readOnly":true,"recursiveReadOnly":"Enabled","mountPath":"/p","subPath":"s","mountPropagation":"HostToContainer","subPathExpr":"$(X)","bindMountOptions":["a","b"]},{"readOnly":false,"bindMountOptions":[]}]}]}}`,
		"projected volumes and os go to kjson": `{"spec":{"os":{"name":"windows"},"volumes":[{"name":"t","projected":{"defaultMode":420,"sources":[{"serviceAccountToken":{"audience":"a","expirationSeconds":3600,"path":"token"}}]}},{"name":"c","configMap":{"name":"cm"}},{"name":"n","projected":null}]}}`,
		"null os is left to kjson's decode":    `{"spec":{"os":null}}`,
		"image pull secrets":                   `{"spec":{"imagePullSecrets":[{"name":"a"},{},{"name":"b","x":1}]}}`,
	}
	for name, pod := range tests {
		t.Run(name, func(t *testing.T) {
			fast, ok, slow, err := decodeBothWays(t, []byte(pod))
			require.NoError(t, err)
			require.True(t, ok, "the fast decoder refused it")
			assert.Equal(t, slow, fast)
		})
	}
}

// What the fast decoder does not handle, it refuses (the webhook then decodes with kjson).
func TestDecodePodViewRefusesTheUnusual(t *testing.T) {
	tests := map[string]string{
		"a repeated member":                    `{"spec":{"serviceAccountName":"a","serviceAccountName":"b"}}`,
		"a repeated metadata":                  `{"metadata":{},"metadata":{}}`,
		"a repeated member deep down":          `{"spec":{"containers":[{"env":[{"name":"A","name":"B"}]}]}}`,
		"a repeated map key":                   `{"metadata":{"annotations":{"a":"1","a":"2"}}}`,
		"a repeated map key once unescaped":    `{"metadata":{"annotations":{"a":"1","\u0061":"2"}}}`,
		"null metadata":                        `{"metadata":null}`,
		"null spec":                            `{"spec":null}`,
		"null string":                          `{"spec":{"serviceAccountName":null}}`,
		"null list":                            `{"spec":{"containers":null}}`,
		"null item":                            `{"spec":{"containers":[null]}}`,
		"null map value":                       `{"metadata":{"annotations":{"a":null}}}`,
		"null valueFrom":                       `{"spec":{"containers":[{"env":[{"valueFrom":null}]}]}}`,
		"a number for a string":                `{"spec":{"serviceAccountName":1}}`,
		"a string for a bool":                  `{"spec":{"containers":[{"volumeMounts":[{"readOnly":"true"}]}]}}`,
		"an object for a list":                 `{"spec":{"containers":{}}}`,
		"a list for valueFrom":                 `{"spec":{"containers":[{"env":[{"valueFrom":[]}]}]}}`,
		"an escaped member name":               `{"spec":{"serviceAccount\u004eame":"a"}}`,
		"an escaped unknown member name":       `{"\u0073pec":{}}`,
		"a pod that is not an object":          `[]`,
		"os of the wrong type (kjson's error)": `{"spec":{"os":{"name":1}}}`,
		"projected of the wrong type":          `{"spec":{"volumes":[{"projected":[]}]}}`,
	}
	for name, pod := range tests {
		t.Run(name, func(t *testing.T) {
			_, ok := mutate.DecodePodView([]byte(pod))
			assert.False(t, ok)
		})
	}
}

// Malformed JSON anywhere, also in what is skipped, is refused by both decoders.
func TestDecodePodViewRefusesMalformedJSON(t *testing.T) {
	tests := map[string]string{
		"empty":                             ``,
		"only whitespace":                   ` `,
		"trailing data":                     `{} {}`,
		"trailing comma":                    `{"spec":{},}`,
		"trailing comma in a skipped list":  `{"x":[1,]}`,
		"missing colon":                     `{"spec" {}}`,
		"unquoted name":                     `{spec:{}}`,
		"single quotes":                     `{'spec':{}}`,
		"unterminated string":               `{"metadata":{"name":"a}}`,
		"unterminated object":               `{"metadata":{"name":"a"}`,
		"mismatched brackets when skipped":  `{"x":[1}`,
		"mismatched brackets":               `{"spec":{"containers":[}}`,
		"control character in a string":     "{\"metadata\":{\"name\":\"a\nb\"}}",
		"control character when skipped":    "{\"x\":\"a\tb\"}",
		"invalid escape":                    `{"metadata":{"name":"\x"}}`,
		"invalid escape when skipped":       `{"x":"\'"}`,
		"short unicode escape":              `{"metadata":{"name":"\u12"}}`,
		"short unicode escape when skipped": `{"x":"\u12g4"}`,
		"leading zero":                      `{"x":01}`,
		"bare minus":                        `{"x":-}`,
		"fraction without digits":           `{"x":1.}`,
		"exponent without digits":           `{"x":1e+}`,
		"plus sign":                         `{"x":+1}`,
		"misspelt literal":                  `{"x":nul}`,
		"literal run on":                    `{"x":truex}`,
		"bool run on":                       `{"spec":{"containers":[{"volumeMounts":[{"readOnly":falsey}]}]}}`,
		"byte order mark":                   "\xef\xbb\xbf{}",
		"NUL":                               "{}\x00",
	}
	for name, pod := range tests {
		t.Run(name, func(t *testing.T) {
			_, ok, _, err := decodeBothWays(t, []byte(pod))
			assert.False(t, ok)
			assert.Error(t, err)
		})
	}
}

// Nesting deeper than the fast decoder skips is left to kjson, which accepts it up to its own
// bound.
func TestDecodePodViewLeavesDeepNestingToKJSON(t *testing.T) {
	deep := func(n int) []byte {
		return []byte(`{"x":` + strings.Repeat(`[{"a":`, n) + `1` + strings.Repeat(`}]`, n) + `}`)
	}
	_, ok, _, err := decodeBothWays(t, deep(100))
	require.NoError(t, err)
	assert.True(t, ok)

	_, ok, _, err = decodeBothWays(t, deep(1000))
	require.NoError(t, err)
	assert.False(t, ok)
}

// Decoders reuse their scratch space from pod to pod: a pod decoded after a larger one keeps nothing
// of it, and the earlier pod's view is left as it was.
func TestDecodePodViewAfterAnotherKeepsNothingOfIt(t *testing.T) {
	large := []byte(`{"metadata":{"annotations":{"a":"1","b":"2"}},"spec":{"volumes":[{"name":"v1"},{"name":"v2"}],"imagePullSecrets":[{"name":"s1"},{"name":"s2"}],
		"containers":[{"name":"a","env":[{"name":"A","value":"1"},{"name":"B","valueFrom":{}}],"volumeMounts":[{"name":"v1","mountPath":"/1","readOnly":true,"bindMountOptions":["x"]},{"name":"v2","mountPath":"/2"}]},{"name":"b"}]}}`)
	small := []byte(`{"spec":{"volumes":[],"containers":[{"name":"c","env":[{"name":"C"}],"volumeMounts":[{"name":"v3","mountPath":"/3"}]}]}}`)
	first, ok, want, err := decodeBothWays(t, large)
	require.NoError(t, err)
	require.True(t, ok)
	for _, pod := range [][]byte{small, large, small} {
		fast, ok, slow, err := decodeBothWays(t, pod)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, slow, fast)
	}
	assert.Equal(t, want, first)
}

// Volume mounts are decoded field by field: every field of corev1.VolumeMount, and of
// corev1.LocalObjectReference, must be one the decoder knows, or it would drop it.
func TestDecodePodViewKnowsEveryField(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[corev1.VolumeMount](), reflect.TypeFor[corev1.LocalObjectReference]()} {
		t.Run(typ.Name(), func(t *testing.T) {
			item := reflect.New(typ).Elem()
			for i := range typ.NumField() {
				fillField(t, item.Field(i), typ.Field(i).Name)
			}
			list, err := json.Marshal([]any{item.Interface()})
			require.NoError(t, err)
			pod := `{"spec":{"imagePullSecrets":` + string(list) + `}}`
			if typ == reflect.TypeFor[corev1.VolumeMount]() {
				pod = `{"spec":{"containers":[{"volumeMounts":` + string(list) + `}]}}`
			}
			fast, ok, slow, err := decodeBothWays(t, []byte(pod))
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, slow, fast, "a field of %s is not decoded", typ)
		})
	}
}

// fillField sets a field to a value that is not its zero value.
func fillField(t *testing.T, f reflect.Value, name string) {
	t.Helper()
	switch {
	case f.Kind() == reflect.String:
		f.SetString(name + "-value")
	case f.Kind() == reflect.Bool:
		f.SetBool(true)
	case f.Kind() == reflect.Pointer && f.Type().Elem().Kind() == reflect.String:
		f.Set(reflect.New(f.Type().Elem()))
		f.Elem().SetString(name + "-value")
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
		f.Set(reflect.MakeSlice(f.Type(), 2, 2))
		f.Index(0).SetString(name + "-1")
		f.Index(1).SetString(name + "-2")
	default:
		t.Fatalf("field %s of type %s: teach the view decoder (and this test) about it", name, f.Type())
	}
}

// FuzzDecodePodViewAgrees: a pod the fast decoder takes, kjson takes too and decodes to the same view.
func FuzzDecodePodViewAgrees(f *testing.F) {
	for _, c := range loadGoldenCases(f) {
		f.Add(c.raw)
	}
	f.Add([]byte(`{"metadata":{"labels":{"a":"b"},"annotations":{"x":"\u003c\ud83d\ude00\"}"}},"spec":{"os":{"name":"linux"},"containers":[{"name":"a","env":[{"name":"A","valueFrom":{"fieldRef":{}}}],"volumeMounts":[{"name":"v","mountPath":"/v","readOnly":true}]}]}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		fast, ok, slow, err := decodeBothWays(t, raw)
		if !ok {
			return
		}
		require.NoError(t, err, "the fast decoder took what kjson refuses")
		require.Equal(t, slow, fast)
	})
}
