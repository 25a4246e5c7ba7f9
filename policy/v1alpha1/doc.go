// Package v1alpha1 holds the lanyard.dev/v1alpha1 API: IdentityAssociation ("this ServiceAccount gets
// this cloud identity") and RegistryAttachment ("pods may pull from this registry"). Both kinds are
// cluster-scoped. The kubebuilder markers here are the source of the CRDs in deploy/crds and of the
// generated deepcopy code; Validate mirrors the CRD's CEL rules so that offline tools reject exactly
// what the API server rejects, with the same messages.
//
// +kubebuilder:object:generate=true
// +groupName=lanyard.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of lanyard's policy objects.
var GroupVersion = schema.GroupVersion{Group: "lanyard.dev", Version: "v1alpha1"}

// SchemeBuilder registers the lanyard.dev/v1alpha1 kinds with a scheme.
var SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

// AddToScheme adds the lanyard.dev/v1alpha1 kinds to a scheme.
var AddToScheme = SchemeBuilder.AddToScheme

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion,
		&IdentityAssociation{}, &IdentityAssociationList{},
		&RegistryAttachment{}, &RegistryAttachmentList{},
	)
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
