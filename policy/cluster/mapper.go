package cluster

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// KnownRESTMapper maps the kinds Reader caches without asking the API server, and everything
// else through fallback. The cache needs these mappings when it is created; with discovery
// alone, lanyard could not even start (and serve its health endpoints) while the API server is
// unreachable.
func KnownRESTMapper(fallback meta.RESTMapper) meta.RESTMapper {
	known := meta.NewDefaultRESTMapper(nil)
	known.Add(v1alpha1.GroupVersion.WithKind("IdentityAssociation"), meta.RESTScopeRoot)
	known.Add(v1alpha1.GroupVersion.WithKind("RegistryAttachment"), meta.RESTScopeRoot)
	known.Add(corev1.SchemeGroupVersion.WithKind("ServiceAccount"), meta.RESTScopeNamespace)
	known.Add(corev1.SchemeGroupVersion.WithKind("Namespace"), meta.RESTScopeRoot)
	return meta.FirstHitRESTMapper{MultiRESTMapper: meta.MultiRESTMapper{known, fallback}}
}

// PolicyAPIGroupKind is the kind whose discovery proves the API server answers and lanyard's CRDs
// are installed.
var PolicyAPIGroupKind = schema.GroupKind{Group: v1alpha1.GroupVersion.Group, Kind: "IdentityAssociation"}
