package e2e

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

func TestSmoke(t *testing.T) {
	ns := namespace(t, true)
	serviceAccount(t, ns, "app", nil)
	ia := &v1alpha1.IdentityAssociation{ObjectMeta: metav1.ObjectMeta{GenerateName: "smoke-"},
		Spec: v1alpha1.IdentityAssociationSpec{Namespace: ns, ServiceAccountName: "app",
			AWS: &v1alpha1.AWSIdentity{RoleARN: "arn:aws:iam::111122223333:role/r", Mode: v1alpha1.AWSModeIRSA}}}
	mustCreate(t, ia)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"},
		Spec: corev1.PodSpec{ServiceAccountName: "app", Containers: []corev1.Container{{Name: "a", Image: "nginx"}}}}
	mustCreate(t, pod)
	got := &corev1.Pod{}
	require.NoError(t, k8s.Get(context.Background(), client_key(ns, "p"), got))
	t.Logf("annotations: %v env: %v", got.Annotations, got.Spec.Containers[0].Env)
	require.Equal(t, "aws", got.Annotations["lanyard.dev/injected"])
}

func client_key(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}
