package mutate_test

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/lanyard-dev/lanyard/mutate"
	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// benchPod builds a pod with the given number of containers, env vars per container and volumes.
func benchPod(containers, env, volumes int) *corev1.Pod {
	pod := &corev1.Pod{}
	pod.Name = "bench"
	pod.Namespace = "default"
	pod.Annotations = map[string]string{"team": "bench"}
	pod.Spec.ServiceAccountName = "app"
	for v := 0; v < volumes; v++ {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
			Name:         fmt.Sprintf("config-%d", v),
			VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: fmt.Sprintf("cm-%d", v)}}},
		})
	}
	for c := 0; c < containers; c++ {
		ctr := corev1.Container{Name: fmt.Sprintf("c%d", c), Image: "myacr.azurecr.io/app:1"}
		for e := 0; e < env; e++ {
			ctr.Env = append(ctr.Env, corev1.EnvVar{Name: fmt.Sprintf("VAR_%d", e), Value: "value"})
		}
		for v := 0; v < volumes && v < 5; v++ {
			ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: fmt.Sprintf("config-%d", v), MountPath: fmt.Sprintf("/etc/config-%d", v)})
		}
		pod.Spec.Containers = append(pod.Spec.Containers, ctr)
	}
	return pod
}

func benchApplied() *policy.Applied {
	return &policy.Applied{
		Namespace: "default", ServiceAccountName: "app",
		Identity:   policy.Identity{AWS: &policy.AWS{Mode: v1alpha1.AWSModeIRSA, RoleARN: "arn:aws:iam::111122223333:role/r", Region: "us-west-2", STSRegionalEndpoints: true}},
		Registries: []policy.RegistryGrant{{Attachment: "acr", Registry: "myacr.azurecr.io", PullSecret: "acr-pull"}},
	}
}

// BenchmarkMutate measures the webhook's mutation work: Compute and rendering the JSON Patch.
func BenchmarkMutate(b *testing.B) {
	cases := map[string]*corev1.Pod{
		"typical": benchPod(1, 10, 2),    // 1 container, 10 env
		"large":   benchPod(20, 200, 30), // 20 containers x 200 env, 30 volumes
	}
	applied := benchApplied()
	for name, pod := range cases {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ch, err := mutate.Compute(pod, applied, mutate.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if len(ch.Patch()) == 0 {
					b.Fatal("no patch")
				}
			}
		})
	}
}

// BenchmarkMutateNoop is the reinvocation path: an already injected pod yields no changes.
func BenchmarkMutateNoop(b *testing.B) {
	applied := benchApplied()
	pod := benchPod(20, 200, 30)
	ch, err := mutate.Compute(pod, applied, mutate.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ch.Apply(pod)
	b.ReportAllocs()
	for b.Loop() {
		ch, err := mutate.Compute(pod, applied, mutate.Options{})
		if err != nil || !ch.Empty() {
			b.Fatal("expected no changes")
		}
	}
}

// BenchmarkComputeContainers measures how the mutation scales with the number of containers
// (2 env vars each): Compute and AppendPatchJSON. ns/container should stay flat across the sizes;
// TestManyContainers and TestAllocsPerContainerDoNotGrow pin the rest without timing anything.
func BenchmarkComputeContainers(b *testing.B) {
	applied := benchApplied()
	for _, n := range []int{1, 100, 10000} {
		pod := benchPod(n, 2, 0)
		b.Run(fmt.Sprintf("containers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				ch, err := mutate.Compute(pod, applied, mutate.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if buf, err = ch.AppendPatchJSON(buf[:0], ""); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/container")
		})
	}
}
