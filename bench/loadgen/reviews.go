// Package loadgen is SPEC §9's load generator and the floor it is measured against: the
// AdmissionReviews of pod CREATEs (typical and large pods, ServiceAccounts sa-0 … sa-N-1 in one
// namespace), sent over HTTPS with HTTP/1.1 keep-alive in a closed loop (C workers) or an open
// loop (R reviews per second, latency from the due time); each server's CPU and memory read from
// /proc around a measured run; the floor server (package floor behind HTTPS, run as a process of
// its own); and the fixture on a real API server the reviews refer to (Seed, WriteStatuses).
// bench/load (one comparison from the command line) and bench/budget (the whole table of
// `make bench`) are built on it.
package loadgen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// Shape is a pod shape: containers, env vars per container, volumes (each mounted in every
// container).
type Shape struct {
	Name       string `json:"name"`
	Containers int    `json:"containers"`
	Env        int    `json:"envPerContainer"`
	Volumes    int    `json:"volumes"`
}

// SPEC §9's pods.
var (
	// Typical is 1 container with 10 env vars and 1 ConfigMap volume mounted.
	Typical = Shape{Name: "typical", Containers: 1, Env: 10, Volumes: 1}
	// Large is 20 containers × 200 env vars, 1 volume.
	Large = Shape{Name: "large", Containers: 20, Env: 200, Volumes: 1}
)

// ShapeNamed returns the shape called name (typical, large).
func ShapeNamed(name string) (Shape, bool) {
	for _, s := range []Shape{Typical, Large} {
		if s.Name == name {
			return s, true
		}
	}
	return Shape{}, false
}

// Placeholders in the review template, replaced per request: the body is assembled from the
// pieces around them.
const (
	uidPlaceholder = "00000000-0000-0000-0000-00000000feed"
	saPlaceholder  = "lanyard-bench-serviceaccount-placeholder"
)

// Reviews makes AdmissionReview bodies for pod CREATE requests of one shape, as the API server
// sends them: a unique request UID each, the pod's ServiceAccount cycling over sa-0 … sa-(n-1).
type Reviews struct {
	shape  Shape
	pieces [3][]byte // before the UID, between UID and ServiceAccount name, after the name
	names  [][]byte  // sa-0 … sa-(n-1)
	run    uint32    // distinguishes the UIDs of one process's runs
	size   int       // largest body
	pool   sync.Pool // *[]byte
}

// NewReviews makes the reviews of shape s in namespace, over ServiceAccounts sa-0 …
// sa-(serviceAccounts-1).
func NewReviews(s Shape, namespace string, serviceAccounts int) (*Reviews, error) {
	if serviceAccounts < 1 {
		return nil, errors.New("need at least one ServiceAccount")
	}
	tmpl, err := reviewTemplate(s, namespace)
	if err != nil {
		return nil, err
	}
	u := bytes.Index(tmpl, []byte(uidPlaceholder))
	n := bytes.Index(tmpl, []byte(`"serviceAccountName":"`+saPlaceholder+`"`))
	if u < 0 || n < 0 || u > n || bytes.Count(tmpl, []byte(saPlaceholder)) != 1 {
		return nil, errors.New("review template: placeholders not found once each, UID first")
	}
	n += len(`"serviceAccountName":"`)
	r := &Reviews{shape: s, run: rand.Uint32()}
	r.pieces[0] = tmpl[:u]
	r.pieces[1] = tmpl[u+len(uidPlaceholder) : n]
	r.pieces[2] = tmpl[n+len(saPlaceholder):]
	longest := 0
	for i := range serviceAccounts {
		name := []byte(ServiceAccountName(i))
		r.names = append(r.names, name)
		longest = max(longest, len(name))
	}
	r.size = len(r.pieces[0]) + len(uidPlaceholder) + len(r.pieces[1]) + longest + len(r.pieces[2])
	r.pool.New = func() any { buf := make([]byte, 0, r.size); return &buf }
	return r, nil
}

// ServiceAccountName is the name of the i-th ServiceAccount the reviews refer to: sa-i.
func ServiceAccountName(i int) string { return fmt.Sprintf("sa-%d", i) }

// Shape is the shape of the reviews' pods.
func (r *Reviews) Shape() Shape { return r.shape }

// Size is the length of the largest review, in bytes.
func (r *Reviews) Size() int { return r.size }

// uid is request seq's UID: unique within the process and run.
func (r *Reviews) uid(seq uint64) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", r.run, seq&(1<<48-1))
}

// Body is request seq's review, in a pooled buffer returned when the transport closes it, with
// the request UID it carries.
func (r *Reviews) Body(seq uint64) (*PooledBody, string) {
	bufp := r.pool.Get().(*[]byte)
	uid := r.uid(seq)
	buf := append((*bufp)[:0], r.pieces[0]...)
	buf = append(buf, uid...)
	buf = append(buf, r.pieces[1]...)
	buf = append(buf, r.names[seq%uint64(len(r.names))]...)
	buf = append(buf, r.pieces[2]...)
	*bufp = buf
	pb := &PooledBody{buf: bufp, pool: &r.pool}
	pb.r.Reset(buf)
	return pb, uid
}

// PooledBody is a request body whose buffer goes back to its pool once the transport is done
// with it (it calls Close, possibly after RoundTrip returned).
type PooledBody struct {
	r    bytes.Reader
	buf  *[]byte
	pool *sync.Pool
	once sync.Once
}

func (p *PooledBody) Read(q []byte) (int, error) { return p.r.Read(q) }

// Len is the number of bytes not yet read.
func (p *PooledBody) Len() int { return p.r.Len() }

// Close returns the buffer to its pool.
func (p *PooledBody) Close() error {
	p.once.Do(func() { p.pool.Put(p.buf) })
	return nil
}

// reviewTemplate is the AdmissionReview of a pod CREATE in namespace with the placeholders for
// the request UID and the ServiceAccount name, built from the Kubernetes API types.
func reviewTemplate(s Shape, namespace string) ([]byte, error) {
	pod := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}}
	pod.GenerateName = "app-6b7f9d8c5d-"
	pod.Namespace = namespace
	pod.Labels = map[string]string{"app": "app", "pod-template-hash": "6b7f9d8c5d"}
	pod.Spec.ServiceAccountName = saPlaceholder
	pod.Spec.RestartPolicy = corev1.RestartPolicyAlways
	pod.Spec.DNSPolicy = corev1.DNSClusterFirst
	pod.Spec.SchedulerName = corev1.DefaultSchedulerName
	for v := range s.Volumes {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
			Name: fmt.Sprintf("config-%d", v),
			VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: fmt.Sprintf("app-config-%d", v)}}},
		})
	}
	for c := range s.Containers {
		ctr := corev1.Container{Name: fmt.Sprintf("app-%d", c), Image: "registry.example.com/team/app:1.4.2",
			TerminationMessagePath: corev1.TerminationMessagePathDefault, TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Ports:           []corev1.ContainerPort{{Name: "http", ContainerPort: int32(8080 + c), Protocol: corev1.ProtocolTCP}}}
		for e := range s.Env {
			ctr.Env = append(ctr.Env, corev1.EnvVar{Name: fmt.Sprintf("APP_SETTING_%d", e), Value: fmt.Sprintf("value-%d", e)})
		}
		for v := range s.Volumes {
			ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: fmt.Sprintf("config-%d", v), MountPath: fmt.Sprintf("/etc/app/config-%d", v), ReadOnly: true})
		}
		pod.Spec.Containers = append(pod.Spec.Containers, ctr)
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		return nil, err
	}
	gvk := metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	gvr := metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
	dryRun := false
	return json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: types.UID(uidPlaceholder), Kind: gvk, Resource: gvr, RequestKind: &gvk, RequestResource: &gvr,
			Namespace: namespace, Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}, DryRun: &dryRun,
			UserInfo: authenticationUser(),
			Options:  runtime.RawExtension{Raw: []byte(`{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1"}`)},
		},
	})
}

// authenticationUser is who creates pods in a cluster most of the time: the ReplicaSet controller.
func authenticationUser() authenticationv1.UserInfo {
	return authenticationv1.UserInfo{Username: "system:serviceaccount:kube-system:replicaset-controller",
		UID: "5b2a6f0e-8c1d-4f3e-9a7b-2d4c6e8f0a1b", Groups: []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"}}
}
