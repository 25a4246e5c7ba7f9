package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// association creates an IdentityAssociation (cluster-scoped; removed after the test).
func association(t *testing.T, ns, sa string, spec v1alpha1.IdentityAssociationSpec) *v1alpha1.IdentityAssociation {
	t.Helper()
	spec.Namespace, spec.ServiceAccountName = ns, sa
	ia := &v1alpha1.IdentityAssociation{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%s", ns, sa)}, Spec: spec}
	mustCreate(t, ia)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), ia) })
	return ia
}

func attachment(t *testing.T, name string, spec v1alpha1.RegistryAttachmentSpec) {
	t.Helper()
	ra := &v1alpha1.RegistryAttachment{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	mustCreate(t, ra)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), ra) })
}

// newPod is a minimal pod of ServiceAccount sa with one container per image.
func newPod(ns, name, sa string, images ...string) *corev1.Pod {
	if len(images) == 0 {
		images = []string{"registry.example.com/app:1"}
	}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.PodSpec{ServiceAccountName: sa}}
	for i, img := range images {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: img})
	}
	return p
}

// stored reads a pod back from the API server.
func stored(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{}
	require.NoError(t, k8s.Get(ctx(t), types.NamespacedName{Namespace: ns, Name: name}, p))
	return p
}

func envMap(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

func volumeNamed(p *corev1.Pod, name string) *corev1.Volume {
	for i := range p.Spec.Volumes {
		if p.Spec.Volumes[i].Name == name {
			return &p.Spec.Volumes[i]
		}
	}
	return nil
}

func mountAt(c corev1.Container, path string) *corev1.VolumeMount {
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].MountPath == path {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

// untouched asserts lanyard did nothing to a stored pod.
func untouched(t *testing.T, p *corev1.Pod) {
	t.Helper()
	require.NotContains(t, p.Annotations, "lanyard.dev/injected")
	for _, c := range p.Spec.Containers {
		for _, e := range c.Env {
			require.False(t, strings.HasPrefix(e.Name, "AWS_") || strings.HasPrefix(e.Name, "AZURE_"), "unexpected env %s", e.Name)
		}
	}
	require.Nil(t, volumeNamed(p, "aws-iam-token"))
	require.Nil(t, volumeNamed(p, "eks-pod-identity-token"))
}

func yamlUnmarshal(data []byte, v any) error { return sigsyaml.Unmarshal(data, v) }

func inNamespace(ns string) client.DeleteAllOfOption { return client.InNamespace(ns) }

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// metricSum adds up the samples of metric name on a lanyard's metrics endpoint whose labels
// contain label ("" for all), and reports whether there was any.
func metricSum(t *testing.T, metricsAddr, name, label string) (float64, bool) {
	t.Helper()
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	var sum float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') || !strings.Contains(rest, label) {
			continue
		}
		fields := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		require.NotEmpty(t, fields, "metric line %s%s", name, rest)
		v, err := strconv.ParseFloat(fields[0], 64)
		require.NoError(t, err)
		sum += v
		found = true
	}
	return sum, found
}
