package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// ValidateAssociationPath is where the API server sends IdentityAssociation reviews.
const ValidateAssociationPath = "/validate-lanyard-dev-v1alpha1-identityassociation"

// AssociationValidator admits an IdentityAssociation only when it is valid and no other
// association has the same subject (the same namespace, glob or selector, and the same name or
// glob). Uniqueness is checked against the API server, not a cache: creations are rare, and a
// stale cache would let a duplicate through. Overlapping subjects of different specificity are
// allowed (the most specific applies); overlapping ones of equal specificity are reported by
// lanyard check and at admission of the pods they both match.
type AssociationValidator struct {
	// Live lists IdentityAssociations by the CRD's selectable fields.
	Live client.Reader
	// Reader answers whether the ServiceAccount exists (a warning when it does not).
	Reader               policy.Reader
	DefaultAzureTenantID string
}

var _ admission.Handler = (*AssociationValidator)(nil)

// Handle implements admission.Handler.
func (v *AssociationValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("")
	}
	ia := &v1alpha1.IdentityAssociation{}
	if err := json.Unmarshal(req.Object.Raw, ia); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding IdentityAssociation: %w", err))
	}
	if errs := ia.Validate(); len(errs) > 0 {
		return admission.Denied(errs.ToAggregate().Error())
	}
	if req.Operation == admissionv1.Update && len(req.OldObject.Raw) > 0 {
		old := &v1alpha1.IdentityAssociation{}
		if err := json.Unmarshal(req.OldObject.Raw, old); err == nil && old.Spec.SubjectKey() == ia.Spec.SubjectKey() {
			return v.allowWithWarnings(ctx, ia) // same subject as before: nothing new claimed
		}
	}
	// The selectable fields hold the literal subject names (a glob too); a namespaceSelector has
	// no field to select on, so those are listed by name and compared here.
	fields := client.MatchingFields{fieldSpecServiceAccount: ia.Spec.ServiceAccountName}
	if ia.Spec.NamespaceSelector == nil {
		fields[fieldSpecNamespace] = ia.Spec.Namespace
	}
	list := &v1alpha1.IdentityAssociationList{}
	if err := v.Live.List(ctx, list, fields); err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("checking for other IdentityAssociations of %s: %w",
			ia.Spec.Subject(), err))
	}
	key := ia.Spec.SubjectKey()
	var others []string
	for i := range list.Items {
		if list.Items[i].Name != ia.Name && list.Items[i].Spec.SubjectKey() == key {
			others = append(others, list.Items[i].Name)
		}
	}
	if len(others) > 0 {
		sort.Strings(others)
		if ia.Spec.Exact() {
			return admission.Denied(fmt.Sprintf(
				"ServiceAccount %s/%s already has IdentityAssociation %s: one association per ServiceAccount (put every provider in that one, or delete it first)",
				ia.Spec.Namespace, ia.Spec.ServiceAccountName, strings.Join(others, ", ")))
		}
		return admission.Denied(fmt.Sprintf(
			"subject %s already has IdentityAssociation %s: one association per subject (put every provider in that one, or delete it first)",
			ia.Spec.Subject(), strings.Join(others, ", ")))
	}
	return v.allowWithWarnings(ctx, ia)
}

// allowWithWarnings admits, warning about what will not work as the author probably expects.
func (v *AssociationValidator) allowWithWarnings(ctx context.Context, ia *v1alpha1.IdentityAssociation) admission.Response {
	resp := admission.Allowed("")
	var warnings []string
	if az := ia.Spec.Azure; az != nil && az.TenantID == "" && v.DefaultAzureTenantID == "" {
		warnings = append(warnings, "spec.azure.tenantID is empty and lanyard has no --azure-tenant-id: pods will not get the Azure identity")
	}
	if sel := ia.Spec.NamespaceSelector; sel != nil && !v1alpha1.SelectorOnlyOnNames(sel) {
		warnings = append(warnings, policy.SelectorWarning)
	}
	if v.Reader != nil && ia.Spec.Exact() {
		if sa, _, err := v.Reader.ServiceAccount(ctx, ia.Spec.Namespace, ia.Spec.ServiceAccountName); err == nil && sa == nil {
			warnings = append(warnings, fmt.Sprintf("ServiceAccount %s/%s does not exist (yet)", ia.Spec.Namespace, ia.Spec.ServiceAccountName))
		}
	}
	return resp.WithWarnings(warnings...)
}

// Selectable fields of the IdentityAssociation CRD.
const (
	fieldSpecNamespace      = "spec.namespace"
	fieldSpecServiceAccount = "spec.serviceAccountName"
)
