package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// Policy is the policy found in documents: IdentityAssociations, RegistryAttachments, Namespaces and
// ServiceAccounts, at top level or inside a kind: List.
type Policy struct {
	*policy.Static
	// Origin maps "Kind/name" (ServiceAccounts "ServiceAccount/namespace/name") to the document that
	// described the object.
	Origin map[string]*Document
}

// NewPolicy returns an empty Policy.
func NewPolicy() *Policy {
	return NewPolicyFrom(policy.NewStatic())
}

// NewPolicyFrom returns a Policy starting from objects read elsewhere (a cluster snapshot); objects
// added from documents replace same-named ones.
func NewPolicyFrom(s *policy.Static) *Policy {
	return &Policy{Static: s, Origin: map[string]*Document{}}
}

// IsPolicyKind reports whether documents of this type feed the policy.
func IsPolicyKind(apiVersion, kind string) bool {
	switch {
	case apiVersion == v1alpha1.GroupVersion.String():
		return true // unknown kinds of lanyard's group are errors, not silently ignored
	case apiVersion == "v1":
		return kind == "Namespace" || kind == "ServiceAccount"
	}
	return strings.HasPrefix(apiVersion, v1alpha1.GroupVersion.Group+"/")
}

// Add loads the policy objects of docs (others are ignored). defaultNamespace is given to
// ServiceAccounts that name none, as kubectl would. Objects are decoded strictly (unknown and
// duplicate fields are errors) and validated with the CRD's rules; errors name document and field.
func (p *Policy) Add(docs []*Document, defaultNamespace string) error {
	var errs []error
	for _, d := range docs {
		if d.JSON == nil {
			continue
		}
		if err := p.addObject(d, d.JSON, d.APIVersion, d.Kind, defaultNamespace); err != nil {
			errs = append(errs, &Error{Doc: d, Err: err})
		}
	}
	return errors.Join(errs...)
}

func (p *Policy) addObject(d *Document, js []byte, apiVersion, kind, defaultNamespace string) error {
	isList := apiVersion == "v1" && kind == "List" ||
		apiVersion == v1alpha1.GroupVersion.String() && (kind == "IdentityAssociationList" || kind == "RegistryAttachmentList")
	if isList {
		var list struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(js, &list); err != nil {
			return fmt.Errorf("kind %s: %w", kind, err)
		}
		var errs []error
		for i, item := range list.Items {
			var tm metav1.TypeMeta
			if err := json.Unmarshal(item, &tm); err != nil {
				errs = append(errs, fmt.Errorf("items[%d]: %w", i, err))
				continue
			}
			if kind != "List" && tm.Kind == "" { // typed lists may omit the items' type
				tm.APIVersion, tm.Kind = apiVersion, strings.TrimSuffix(kind, "List")
				var obj map[string]any
				if err := json.Unmarshal(item, &obj); err == nil {
					obj["apiVersion"], obj["kind"] = tm.APIVersion, tm.Kind
					if js, err := json.Marshal(obj); err == nil {
						item = js
					}
				}
			}
			if err := p.addObject(d, item, tm.APIVersion, tm.Kind, defaultNamespace); err != nil {
				errs = append(errs, fmt.Errorf("items[%d]: %w", i, err))
			}
		}
		return errors.Join(errs...)
	}
	if !IsPolicyKind(apiVersion, kind) {
		return nil
	}
	switch {
	case apiVersion == v1alpha1.GroupVersion.String() && kind == "IdentityAssociation":
		ia := &v1alpha1.IdentityAssociation{}
		if err := decodeStrict(js, ia); err != nil {
			return err
		}
		if ia.Name == "" {
			return errors.New("metadata.name: Required value")
		}
		if errs := ia.Validate(); len(errs) > 0 {
			return errs.ToAggregate()
		}
		p.AddIdentityAssociation(ia)
		p.Origin["IdentityAssociation/"+ia.Name] = d
	case apiVersion == v1alpha1.GroupVersion.String() && kind == "RegistryAttachment":
		ra := &v1alpha1.RegistryAttachment{}
		if err := decodeStrict(js, ra); err != nil {
			return err
		}
		if ra.Name == "" {
			return errors.New("metadata.name: Required value")
		}
		if errs := ra.Validate(); len(errs) > 0 {
			return errs.ToAggregate()
		}
		p.AddRegistryAttachment(ra)
		p.Origin["RegistryAttachment/"+ra.Name] = d
	case kind == "Namespace":
		ns := &corev1.Namespace{}
		if err := decodeStrict(js, ns); err != nil {
			return err
		}
		if ns.Name == "" {
			return errors.New("metadata.name: Required value")
		}
		// The API server labels every namespace with its name; selectors may rely on it.
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[corev1.LabelMetadataName] = ns.Name
		p.AddNamespace(&ns.ObjectMeta)
		p.Origin["Namespace/"+ns.Name] = d
	case kind == "ServiceAccount":
		sa := &corev1.ServiceAccount{}
		if err := decodeStrict(js, sa); err != nil {
			return err
		}
		if sa.Name == "" {
			return errors.New("metadata.name: Required value")
		}
		if sa.Namespace == "" {
			sa.Namespace = defaultNamespace
		}
		p.AddServiceAccount(&sa.ObjectMeta)
		p.Origin["ServiceAccount/"+sa.Namespace+"/"+sa.Name] = d
	default:
		return fmt.Errorf("unsupported kind %s in %s (lanyard knows IdentityAssociation and RegistryAttachment of %s)",
			kind, apiVersion, v1alpha1.GroupVersion)
	}
	return nil
}

// decodeStrict decodes JSON into v, refusing unknown and duplicate fields, with errors that give
// the field's path ("unknown field \"spec.aws.rolearn\"").
func decodeStrict(js []byte, v any) error {
	strict, err := kjson.UnmarshalStrict(js, v, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}
