package cloudside

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// imported is one association produced by an import, with where it came from.
type imported struct {
	from string
	ia   *v1alpha1.IdentityAssociation
}

// associationYAML is an IdentityAssociation as written by import: no status, no empty metadata.
type associationYAML struct {
	APIVersion string                           `json:"apiVersion"`
	Kind       string                           `json:"kind"`
	Metadata   associationMeta                  `json:"metadata"`
	Spec       v1alpha1.IdentityAssociationSpec `json:"spec"`
}

type associationMeta struct {
	Name string `json:"name"`
}

// associationNamer gives each imported association a unique, valid name: <namespace>-<serviceAccount>,
// or, when that is taken or too long, a shortened form with a hash of the pair.
type associationNamer struct {
	taken map[string]bool
}

func newAssociationNamer(existing []*v1alpha1.IdentityAssociation) *associationNamer {
	n := &associationNamer{taken: map[string]bool{}}
	for _, ia := range existing {
		n.taken[ia.Name] = true
	}
	return n
}

func (n *associationNamer) name(namespace, serviceAccount string) string {
	name := namespace + "-" + serviceAccount
	if len(name) > 253 || n.taken[name] {
		sum := sha256.Sum256([]byte(namespace + "/" + serviceAccount))
		suffix := "-" + hex.EncodeToString(sum[:4])
		if len(name)+len(suffix) > 253 {
			name = strings.TrimRight(name[:253-len(suffix)], "-.")
		}
		name += suffix
	}
	n.taken[name] = true
	return name
}

// render writes the imported associations as a YAML stream, each after a comment naming its source.
func render(header []string, items []imported) ([]byte, error) {
	var b strings.Builder
	for _, h := range header {
		b.WriteString("# " + h + "\n")
	}
	for i, it := range items {
		if i > 0 {
			b.WriteString("---\n")
		}
		y, err := yaml.Marshal(associationYAML{
			APIVersion: v1alpha1.GroupVersion.String(), Kind: "IdentityAssociation",
			Metadata: associationMeta{Name: it.ia.Name}, Spec: it.ia.Spec,
		})
		if err != nil {
			return nil, err
		}
		b.WriteString("# from " + it.from + "\n")
		b.Write(y)
	}
	return []byte(b.String()), nil
}

// checked validates an imported association as the API server would, so the output always applies.
func checked(ia *v1alpha1.IdentityAssociation) error {
	if errs := ia.Validate(); len(errs) > 0 {
		return errs.ToAggregate()
	}
	return nil
}

// ImportEksctl turns the iam.podIdentityAssociations of an eksctl ClusterConfig into
// IdentityAssociations (mode PodIdentity, region from metadata.region, as EKS sets AWS_REGION for
// pod identity). Entries without roleARN, whose role eksctl creates, and entries lanyard cannot
// express (targetRoleARN: role chaining) are errors with the fix; settings that only concern how
// eksctl creates the role are reported as left out. source names the file in comments and notes.
func ImportEksctl(cfg *EksctlClusterConfig, source string) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var entries []EksctlPodIdentityAssociation
	if cfg.IAM != nil {
		entries = cfg.IAM.PodIdentityAssociations
	}
	var notes []Note
	var items []imported
	namer := newAssociationNamer(nil)
	claimed := map[string]string{}
	for i, e := range entries {
		path := fmt.Sprintf("iam.podIdentityAssociations[%d]", i)
		object := fmt.Sprintf("%s %s (%s/%s)", source, path, e.Namespace, e.ServiceAccountName)
		note := func(sev Severity, format string, args ...any) {
			notes = append(notes, Note{Severity: sev, Object: object, Message: fmt.Sprintf(format, args...)})
		}
		if policy.IsSystemNamespace(e.Namespace, "") {
			note(SeverityInfo, "not imported: lanyard never mutates pods in %s; keep this association in eksctl", e.Namespace)
			continue
		}
		if e.RoleARN == "" {
			note(SeverityError, "not imported: no roleARN, eksctl creates the role from its policies; create the association (eksctl create podidentityassociation -f %s), then set %s.roleARN to the role it made (eksctl get podidentityassociation --cluster %s --namespace %s --service-account-name %s) and import again",
				source, path, cfg.Metadata.Name, e.Namespace, e.ServiceAccountName)
			continue
		}
		if e.TargetRoleARN != nil && *e.TargetRoleARN != "" {
			note(SeverityError, "not imported: %s.targetRoleARN (role chaining to %s) has no lanyard equivalent; keep this association in eksctl", path, *e.TargetRoleARN)
			continue
		}
		key := e.Namespace + "/" + e.ServiceAccountName
		if first, dup := claimed[key]; dup {
			note(SeverityError, "not imported: %s already associates ServiceAccount %s, and EKS allows one association per ServiceAccount", first, key)
			continue
		}
		claimed[key] = path
		ia := &v1alpha1.IdentityAssociation{Spec: v1alpha1.IdentityAssociationSpec{
			Namespace: e.Namespace, ServiceAccountName: e.ServiceAccountName,
			AWS: &v1alpha1.AWSIdentity{RoleARN: e.RoleARN, Mode: v1alpha1.AWSModePodIdentity, Region: cfg.Metadata.Region},
		}}
		ia.Name = namer.name(e.Namespace, e.ServiceAccountName)
		if err := checked(ia); err != nil {
			note(SeverityError, "not imported: %v", err)
			continue
		}
		var ignored []string
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"roleName", e.RoleName != ""}, {"permissionsBoundaryARN", e.PermissionsBoundaryARN != ""}, {"tags", len(e.Tags) > 0},
		} {
			if f.set {
				ignored = append(ignored, path+"."+f.name)
			}
		}
		if len(ignored) > 0 {
			note(SeverityInfo, "%s left out: eksctl applies them only to roles it creates", strings.Join(ignored, ", "))
		}
		if e.CreateServiceAccount {
			note(SeverityInfo, "%s.createServiceAccount left out: lanyard does not create ServiceAccounts; keep the ServiceAccount in your manifests", path)
		}
		if e.DisableSessionTags != nil {
			note(SeverityInfo, "%s.disableSessionTags left out: it is set on the EKS association, not in the pod; keep it in the eksctl config", path)
		}
		for _, msg := range Problems(ia) {
			note(SeverityWarning, "%s", msg)
		}
		items = append(items, imported{from: source + " " + path, ia: ia})
	}
	if len(items) == 0 {
		notes = append(notes, Note{Severity: SeverityInfo, Object: source, Message: "no podIdentityAssociations with a roleARN: nothing written"})
		return &Result{Notes: notes}, nil
	}
	content, err := render([]string{
		fmt.Sprintf("lanyard import --from eksctl: %s from cluster %s (%s).",
			plural(len(items), "IdentityAssociation"), cfg.Metadata.Name, cfg.Metadata.Region),
	}, items)
	if err != nil {
		return nil, err
	}
	return &Result{Content: content, Notes: notes}, nil
}

// ImportAnnotations turns every ServiceAccount annotated for the EKS pod identity webhook
// (<prefix>/role-arn: IRSA) or the Azure workload identity webhook (azure.workload.identity/client-id)
// into the IdentityAssociation that gives its pods the same identity. The annotations are read by
// lanyard's own resolution with opts (the webhooks' cluster-wide flags, under lanyard's names), so the
// association says explicitly what the annotations meant there. ServiceAccounts that an association
// already claims are left alone, as that association wins over their annotations.
func ImportAnnotations(serviceAccounts []*metav1.ObjectMeta, existing []*v1alpha1.IdentityAssociation, opts policy.Options) (*Result, error) {
	opts.CompatAnnotations = true
	eks := policy.EKSKeysFor(opts.EKSAnnotationPrefix)
	accounts := append([]*metav1.ObjectMeta(nil), serviceAccounts...)
	sort.Slice(accounts, func(i, j int) bool {
		if accounts[i].Namespace != accounts[j].Namespace {
			return accounts[i].Namespace < accounts[j].Namespace
		}
		return accounts[i].Name < accounts[j].Name
	})
	claimedBy := map[string][]string{}
	for _, ia := range existing {
		k := ia.Spec.Namespace + "/" + ia.Spec.ServiceAccountName
		claimedBy[k] = append(claimedBy[k], ia.Name)
	}
	var notes []Note
	var items []imported
	namer := newAssociationNamer(existing)
	for _, sa := range accounts {
		if sa.Annotations[eks.RoleARN] == "" && sa.Annotations[policy.AzureClientID] == "" {
			continue
		}
		object := fmt.Sprintf("ServiceAccount %s/%s", sa.Namespace, sa.Name)
		if policy.IsSystemNamespace(sa.Namespace, "") {
			notes = append(notes, Note{Severity: SeverityInfo, Object: object,
				Message: "not imported: lanyard never mutates pods in " + sa.Namespace + "; keep the webhook's annotations there"})
			continue
		}
		if names := claimedBy[sa.Namespace+"/"+sa.Name]; len(names) > 0 {
			notes = append(notes, Note{Severity: SeverityInfo, Object: object,
				Message: fmt.Sprintf("not imported: IdentityAssociation %s already claims it (and wins over its annotations)", strings.Join(names, ", "))})
			continue
		}
		spec, saNotes, err := specFromAnnotations(sa, opts)
		for _, n := range saNotes {
			notes = append(notes, Note{Severity: n.Severity, Object: object, Message: n.Message})
		}
		if err != nil {
			notes = append(notes, Note{Severity: SeverityError, Object: object, Message: "not imported: " + err.Error()})
			continue
		}
		if spec == nil {
			continue
		}
		ia := &v1alpha1.IdentityAssociation{Spec: *spec}
		ia.Name = namer.name(sa.Namespace, sa.Name)
		if err := checked(ia); err != nil {
			notes = append(notes, Note{Severity: SeverityError, Object: object, Message: "not imported: " + err.Error()})
			continue
		}
		for _, msg := range Problems(ia) {
			notes = append(notes, Note{Severity: SeverityWarning, Object: object, Message: msg})
		}
		items = append(items, imported{from: object + " annotations", ia: ia})
	}
	if len(items) == 0 {
		notes = append(notes, Note{Severity: SeverityInfo, Object: "input", Message: "no ServiceAccounts with EKS or Azure webhook annotations to import: nothing written"})
		return &Result{Notes: notes}, nil
	}
	content, err := render([]string{
		fmt.Sprintf("lanyard import --from annotations: %s.", plural(len(items), "IdentityAssociation")),
		"Once applied, each association wins over its ServiceAccount's annotations (with a warning): remove them then.",
	}, items)
	if err != nil {
		return nil, err
	}
	return &Result{Content: content, Notes: notes}, nil
}

// specFromAnnotations resolves a ServiceAccount's annotations as the webhook does and writes the
// result as an association spec. A nil spec with no error means nothing applies.
func specFromAnnotations(sa *metav1.ObjectMeta, opts policy.Options) (*v1alpha1.IdentityAssociationSpec, []Note, error) {
	static := policy.NewStatic()
	static.AddServiceAccount(sa)
	applied, err := policy.NewResolver(static, opts).Resolve(context.Background(), policy.Subject{Namespace: sa.Namespace, ServiceAccountName: sa.Name})
	if err != nil {
		return nil, nil, err
	}
	var notes []Note
	for _, is := range applied.Issues {
		sev := SeverityWarning
		msg := is.Message
		if is.Severity == policy.SeverityError {
			sev = SeverityError
			msg = "not imported: " + msg
		}
		notes = append(notes, Note{Severity: sev, Message: msg})
	}
	id := applied.Identity
	if id.Empty() {
		return nil, notes, nil
	}
	spec := &v1alpha1.IdentityAssociationSpec{Namespace: sa.Namespace, ServiceAccountName: sa.Name}
	var awsExp, azureExp int64
	if a := id.AWS; a != nil {
		spec.AWS = &v1alpha1.AWSIdentity{RoleARN: a.RoleARN, Mode: v1alpha1.AWSModeIRSA, Region: a.Region}
		if a.Audience != "" && a.Audience != AudienceIRSA {
			spec.AWS.Audience = a.Audience
		}
		if !a.STSRegionalEndpoints {
			regional := false
			spec.AWS.STSRegionalEndpoints = &regional
		}
		awsExp = a.TokenExpirationSeconds
	}
	if az := id.Azure; az != nil {
		spec.Azure = &v1alpha1.AzureIdentity{ClientID: az.ClientID, TenantID: az.TenantID}
		if az.Cloud != "" && az.Cloud != v1alpha1.AzurePublicCloud {
			spec.Azure.Cloud = az.Cloud
		}
		azureExp = az.TokenExpirationSeconds
	}
	exp, err := oneExpiration(spec, awsExp, azureExp)
	if err != nil {
		return nil, notes, err
	}
	if exp != 0 {
		spec.TokenExpirationSeconds = &exp
	}
	return spec, notes, nil
}

// oneExpiration merges the providers' token lifetimes into the association's single
// tokenExpirationSeconds (0: provider defaults), refusing to change what either provider gets.
func oneExpiration(spec *v1alpha1.IdentityAssociationSpec, aws, azure int64) (int64, error) {
	switch {
	case spec.AWS == nil:
		return azure, nil
	case spec.Azure == nil:
		return aws, nil
	}
	effective := func(v, def int64) int64 {
		if v == 0 {
			return def
		}
		return v
	}
	awsSecs, azureSecs := effective(aws, defaultAWSTokenSeconds), effective(azure, defaultAzureTokenSeconds)
	switch {
	case aws == 0 && azure == 0:
		return 0, nil // each provider keeps its default, as without a tokenExpirationSeconds
	case awsSecs != azureSecs:
		return 0, fmt.Errorf("the AWS token lifetime is %d seconds and the Azure one %d: an IdentityAssociation has one tokenExpirationSeconds for both; give both webhooks' token-expiration annotations the same value first",
			awsSecs, azureSecs)
	}
	return awsSecs, nil
}

// The providers' default token lifetimes (SPEC §5), which apply when an association sets none.
const (
	defaultAWSTokenSeconds   = 86400
	defaultAzureTokenSeconds = 3600
)
