package mutate_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/lanyard-dev/lanyard/mutate"
)

// Pods with thousands of containers are legal; the mutation must stay linear in them. These tests
// pin it without timing anything: BenchmarkComputeContainers shows the time per container.

// TestManyContainers mutates a 20,000-container pod (init and regular containers) through the
// webhook's rendering: every container gets its ops, the patch applies, Apply agrees, and the
// result is a fixed point.
func TestManyContainers(t *testing.T) {
	const n, inits = 20000, 1000
	pod := benchPod(n, 2, 0)
	pod.Spec.InitContainers = pod.Spec.Containers[:inits:inits]
	pod.Spec.Containers = pod.Spec.Containers[inits:]
	applied := benchApplied()
	raw, err := json.Marshal(pod)
	require.NoError(t, err)

	ch, err := mutate.Compute(pod, applied, mutate.Options{})
	require.NoError(t, err)
	require.Empty(t, ch.Warnings)
	patch, err := ch.AppendPatchJSON(nil, "")
	require.NoError(t, err)

	var ops []struct{ Op, Path string }
	require.NoError(t, json.Unmarshal(patch, &ops))
	// Per container: its first mounts (one whole-list add) and IRSA's 5 env vars appended to its
	// own. Per pod: the injected annotation, the volume list, the pull secret list.
	const perContainer, perPod = 1 + 5, 3
	require.Len(t, ops, perPod+perContainer*n)
	containerOp := regexp.MustCompile(`^/spec/(initContainers|containers)/(\d+)/(volumeMounts|env/-)$`)
	counts := map[string]int{}
	for _, op := range ops {
		require.Equal(t, "add", op.Op)
		if m := containerOp.FindStringSubmatch(op.Path); m != nil {
			counts[m[1]+"/"+m[2]]++
		}
	}
	require.Len(t, counts, n, "every container has ops")
	for c, got := range counts {
		if got != perContainer {
			require.Equal(t, perContainer, got, "ops for %s", c)
		}
	}

	decoded, err := jsonpatch.DecodePatch(patch)
	require.NoError(t, err)
	patched, err := decoded.Apply(raw)
	require.NoError(t, err)
	fromPatch, err := mutate.DecodePod(patched)
	require.NoError(t, err)
	typed := pod.DeepCopy()
	ch.Apply(typed)
	require.True(t, reflect.DeepEqual(typed, fromPatch), "Apply and the patch disagree") // no 20,000-container diff

	again, err := mutate.Compute(fromPatch, applied, mutate.Options{})
	require.NoError(t, err)
	require.True(t, again.Empty(), "second pass is not a no-op")
	require.Empty(t, again.Warnings)
}

// TestAllocsPerContainerDoNotGrow: the allocations of Compute + AppendPatchJSON per container stay
// the same from 1,000 to 10,000 containers. Growth means per-container work that depends on the
// pod's size (a copy of a growing list, a buffer that stops fitting).
func TestAllocsPerContainerDoNotGrow(t *testing.T) {
	applied := benchApplied()
	perContainer := func(n int) float64 {
		pod := benchPod(n, 2, 0)
		var buf []byte
		var err error
		allocs := testing.AllocsPerRun(5, func() {
			var ch *mutate.Changes
			if ch, err = mutate.Compute(pod, applied, mutate.Options{}); err == nil {
				buf, err = ch.AppendPatchJSON(buf[:0], "")
			}
		})
		require.NoError(t, err)
		return allocs / float64(n)
	}
	small, large := perContainer(1000), perContainer(10000)
	assert.LessOrEqual(t, large/small, 1.2, "allocs per container: %.2f at 1,000 containers, %.2f at 10,000", small, large)
}

func TestWarningsAreCapped(t *testing.T) {
	more := func(n int) string {
		if n == 1 {
			return fmt.Sprintf("... and 1 more warning (only the first %d are listed)", mutate.MaxWarnings)
		}
		return fmt.Sprintf("... and %d more warnings (only the first %d are listed)", n, mutate.MaxWarnings)
	}
	tests := map[string]struct {
		containers int // each already sets AWS_ROLE_ARN to another role: one warning each
		want       int // warnings listed one by one
		last       string
	}{
		"under the cap: all listed":               {containers: 3, want: 3},
		"at the cap: all listed, no count":        {containers: mutate.MaxWarnings, want: mutate.MaxWarnings},
		"one over the cap: the cap and one more":  {containers: mutate.MaxWarnings + 1, want: mutate.MaxWarnings, last: more(1)},
		"far over the cap: the cap and the count": {containers: 10000, want: mutate.MaxWarnings, last: more(10000 - mutate.MaxWarnings)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pod := benchPod(tc.containers, 0, 0)
			for i := range pod.Spec.Containers {
				pod.Spec.Containers[i].Env = []corev1.EnvVar{{Name: "AWS_ROLE_ARN", Value: "arn:aws:iam::111122223333:role/other"}}
			}
			ch, err := mutate.Compute(pod, benchApplied(), mutate.Options{})
			require.NoError(t, err)

			listed := ch.Warnings
			if tc.last != "" {
				require.NotEmpty(t, listed)
				assert.Equal(t, tc.last, listed[len(listed)-1])
				listed = listed[:len(listed)-1]
			}
			require.Len(t, listed, tc.want)
			for i, w := range listed {
				assert.Contains(t, w, fmt.Sprintf("container %q already sets AWS_ROLE_ARN", pod.Spec.Containers[i].Name))
			}
			// Capping the warnings changes nothing else: every container still gets the rest (the
			// mount, STS and region variables; not the web identity token file, which only works
			// with the role ARN the container chose).
			assert.Len(t, ch.Patch(), 3+tc.containers*(1+3))
		})
	}
}
