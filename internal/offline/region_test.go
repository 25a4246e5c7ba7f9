package offline

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// An IRSA identity that reaches a container without any region: the AWS SDKs fail with "Missing
// Region" before calling STS, so check says so and how to fix it; a region anywhere (the
// identity, the flag, the container's own env) silences it.
func TestCheckMissingRegion(t *testing.T) {
	tests := map[string]struct {
		region, env string
		want        bool
	}{
		"no region anywhere":             {want: true},
		"a region on the identity":       {region: "us-west-2"},
		"the container sets AWS_REGION":  {env: "AWS_REGION"},
		"the container sets the default": {env: "AWS_DEFAULT_REGION"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			applied := &policy.Applied{Namespace: "ns", ServiceAccountName: "app",
				Identity: policy.Identity{Source: "IdentityAssociation app", AWS: &policy.AWS{Mode: v1alpha1.AWSModeIRSA, RoleARN: "arn:aws:iam::111122223333:role/r", Region: tc.region}}}
			c := corev1.Container{Name: "main", Env: []corev1.EnvVar{{Name: "AWS_ROLE_ARN", Value: "x"}}}
			if tc.env != "" {
				c.Env = append(c.Env, corev1.EnvVar{Name: tc.env, Value: "eu-west-1"})
			}
			got := irsaWithoutRegion(applied, &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{c}}})
			if tc.want {
				assert.Equal(t, "main", got)
			} else {
				assert.Empty(t, got)
			}
		})
	}
}
