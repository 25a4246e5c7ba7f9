package cloudside

import (
	"fmt"
	"strings"

	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// AzureIdentityRef is what a user-assigned managed identity's resource ID names.
type AzureIdentityRef struct {
	Subscription, ResourceGroup, Name string
}

// ParseAzureIdentityResourceID splits an ID that spec.azure.identityResourceID accepts:
// /subscriptions/<GUID>/resourceGroups/<group>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>.
func ParseAzureIdentityResourceID(id string) (AzureIdentityRef, error) {
	parts := strings.Split(id, "/")
	ia := &v1alpha1.IdentityAssociation{Spec: v1alpha1.IdentityAssociationSpec{Namespace: "x", ServiceAccountName: "x",
		Azure: &v1alpha1.AzureIdentity{ClientID: "00000000-0000-0000-0000-000000000000", IdentityResourceID: id}}}
	if errs := ia.Validate(); len(errs) > 0 || len(parts) != 9 {
		return AzureIdentityRef{}, fmt.Errorf("%q is not the resource ID of a user-assigned managed identity: /subscriptions/<subscription GUID>/resourceGroups/<group>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>", id)
	}
	// "", subscriptions, <sub>, resourceGroups, <group>, providers, Microsoft.ManagedIdentity, userAssignedIdentities, <name>
	return AzureIdentityRef{Subscription: parts[2], ResourceGroup: parts[4], Name: parts[8]}, nil
}

// maxFederatedCredentialName and the allowed characters: Azure's federatedIdentityCredentials
// resource name pattern ^[a-zA-Z0-9]{1}[a-zA-Z0-9-_]{2,119}$.
const maxFederatedCredentialName = 120

// federatedCredentialName names the credential after the ServiceAccount it trusts:
// lanyard-<namespace>-<serviceAccount>, dots turned into hyphens, cut to Azure's limit.
func federatedCredentialName(namespace, serviceAccount string) string {
	name := strings.ReplaceAll("lanyard-"+namespace+"-"+serviceAccount, ".", "-")
	if len(name) > maxFederatedCredentialName {
		name = strings.TrimRight(name[:maxFederatedCredentialName], "-")
	}
	return name
}

// cloudNames are the names az cloud set takes for the non-public clouds.
var cloudNames = map[v1alpha1.AzureCloud]string{
	v1alpha1.AzureChinaCloud:        "AzureChinaCloud",
	v1alpha1.AzureUSGovernmentCloud: "AzureUSGovernment",
}

// ExportAzure writes one az identity federated-credential create command per Azure association:
// the cluster's issuer, subject system:serviceaccount:<namespace>:<serviceAccount> and the audience
// lanyard's Azure token carries. The identity's subscription, resource group and name come from
// spec.azure.identityResourceID; without it they are placeholders, and a note says so.
func ExportAzure(associations []*v1alpha1.IdentityAssociation, issuer *Issuer) (*Result, error) {
	if issuer == nil {
		return nil, fmt.Errorf("--oidc-issuer: required with --format azure: the federated identity credential names the cluster's OIDC issuer")
	}
	associations, notes := withoutConflicts(sortedAssociations(associations))
	var b strings.Builder
	n, placeholders := 0, 0
	names := map[string]string{} // identity + credential name -> association, to keep names unique
	for _, ia := range associations {
		az := ia.Spec.Azure
		if az == nil {
			continue
		}
		n++
		subject := Subject(ia.Spec.Namespace, ia.Spec.ServiceAccountName)
		fmt.Fprintf(&b, "\n# %s: ServiceAccount %s/%s, client ID %s\n", associationRef(ia), ia.Spec.Namespace, ia.Spec.ServiceAccountName, az.ClientID)
		if cloud, ok := cloudNames[az.Cloud]; ok {
			fmt.Fprintf(&b, "# cloud %s: run az cloud set --name %s first\n", az.Cloud, cloud)
		}
		credential := federatedCredentialName(ia.Spec.Namespace, ia.Spec.ServiceAccountName)
		identityKey := "?"
		var ref AzureIdentityRef
		if az.IdentityResourceID != "" {
			var err error
			if ref, err = ParseAzureIdentityResourceID(az.IdentityResourceID); err != nil {
				return nil, fmt.Errorf("%s: spec.azure.identityResourceID: %w", associationRef(ia), err)
			}
			identityKey = strings.ToLower(az.IdentityResourceID)
		}
		if other, taken := names[identityKey+"|"+credential]; taken && identityKey != "?" {
			return nil, fmt.Errorf("%s and %s would both create federated credential %s on %s: rename one of the ServiceAccounts",
				associationRef(ia), other, credential, az.IdentityResourceID)
		}
		names[identityKey+"|"+credential] = associationRef(ia)

		var c command
		if az.IdentityResourceID != "" {
			c = newCommand(&b, "az", "identity", "federated-credential", "create").
				flag("--subscription", ref.Subscription).
				flag("--resource-group", ref.ResourceGroup).
				flag("--identity-name", ref.Name)
		} else {
			placeholders++
			notes = append(notes, Note{Severity: SeverityWarning, Object: associationRef(ia),
				Message: "spec.azure.identityResourceID is not set: the command has placeholders <RESOURCE_GROUP> and <IDENTITY_NAME> for the managed identity whose client ID is " + az.ClientID + " (az identity list --query \"[?clientId=='" + az.ClientID + "'].id\" finds it)"})
			b.WriteString("# PLACEHOLDERS: spec.azure.identityResourceID is not set; fill in the managed identity with this client ID\n")
			b.WriteString("# (az identity list --query \"[?clientId=='" + az.ClientID + "'].id\" -o tsv), or set identityResourceID and export again.\n")
			b.WriteString("# For an app registration instead: az ad app federated-credential create --id " + az.ClientID + " --parameters <credential JSON>\n")
			c = newCommand(&b, "az", "identity", "federated-credential", "create").
				placeholder("--resource-group", "RESOURCE_GROUP").
				placeholder("--identity-name", "IDENTITY_NAME")
		}
		c.flag("--name", credential).
			flag("--issuer", issuer.URL).
			flag("--subject", subject).
			flag("--audiences", AudienceAzure).
			end()
	}
	if n == 0 {
		notes = append(notes, Note{Severity: SeverityInfo, Object: "input", Message: "no Azure associations to export: nothing written"})
		return &Result{Notes: notes}, nil
	}
	var head strings.Builder
	fmt.Fprintf(&head, "#!/bin/sh\n# lanyard export --format azure: %s for issuer %s.\n", plural(n, "federated identity credential"), issuer.URL)
	if placeholders > 0 {
		fmt.Fprintf(&head, "# %d of them contain placeholders (<...>): fill them in before running this script.\n", placeholders)
	}
	head.WriteString("set -eu\n")
	return &Result{Content: []byte(head.String() + b.String()), Notes: notes}, nil
}
