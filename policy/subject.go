package policy

import corev1 "k8s.io/api/core/v1"

// SubjectOf describes a pod for resolution. namespace is the admission request's (a pod made by a
// controller arrives without one); images cover init containers and native sidecars too.
func SubjectOf(namespace string, pod *corev1.Pod) Subject {
	images := make([]string, 0, len(pod.Spec.InitContainers)+len(pod.Spec.Containers))
	for i := range pod.Spec.InitContainers {
		images = append(images, pod.Spec.InitContainers[i].Image)
	}
	for i := range pod.Spec.Containers {
		images = append(images, pod.Spec.Containers[i].Image)
	}
	return Subject{Namespace: namespace, ServiceAccountName: pod.Spec.ServiceAccountName, Images: images,
		AzureUseLabel: pod.Labels[AzureUseLabel] == "true"}
}
