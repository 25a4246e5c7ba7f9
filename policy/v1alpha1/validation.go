package v1alpha1

import (
	"fmt"
	"regexp"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

var (
	roleARNRegexp                  = regexp.MustCompile(RoleARNPattern)
	guidRegexp                     = regexp.MustCompile(GUIDPattern)
	workloadIdentityProviderRegexp = regexp.MustCompile(WorkloadIdentityProviderPattern)
	gcpServiceAccountEmailRegexp   = regexp.MustCompile(GCPServiceAccountEmailPattern)
	awsRegionRegexp                = regexp.MustCompile(AWSRegionPattern)
	registryRegexp                 = regexp.MustCompile(RegistryPattern)
	azureIdentityResourceIDRegexp  = regexp.MustCompile(AzureIdentityResourceIDPattern)
	dns1123SubdomainRegexp         = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	// A subject name: a DNS-1123 label (namespace) or subdomain (ServiceAccount) in which '*' may
	// stand for any run of characters, at most once.
	atMostOneGlobRegexp     = regexp.MustCompile(`^[^*]*[*]?[^*]*$`)
	namespaceGlobRegexp     = regexp.MustCompile(`^[a-z0-9*]([-a-z0-9*]*[a-z0-9*])?$`)
	serviceAccountGlobRegex = regexp.MustCompile(`^[a-z0-9*]([-a-z0-9*]*[a-z0-9*])?(\.[a-z0-9*]([-a-z0-9*]*[a-z0-9*])?)*$`)
)

// Validate checks an IdentityAssociation as the CRD schema does (same rules, same messages), for
// tools that see objects before the API server does.
func (ia *IdentityAssociation) Validate() field.ErrorList {
	var errs field.ErrorList
	spec := &ia.Spec
	p := field.NewPath("spec")

	switch {
	case spec.Namespace != "" && spec.NamespaceSelector != nil:
		errs = append(errs, field.Invalid(p.Child("namespaceSelector"), "", "namespace and namespaceSelector are mutually exclusive: set one of them"))
	case spec.Namespace == "" && spec.NamespaceSelector == nil:
		errs = append(errs, field.Required(p.Child("namespace"), "one of namespace or namespaceSelector must be set"))
	}
	if spec.Namespace != "" {
		errs = append(errs, validateGlob(p.Child("namespace"), spec.Namespace, 63, namespaceGlobRegexp,
			"namespace may contain at most one '*'",
			"namespace must be a DNS-1123 label (lower-case letters, digits and '-'), optionally with one '*' glob")...)
	}
	if sel := spec.NamespaceSelector; sel != nil {
		if _, err := LabelSelectorAsSelector(sel); err != nil {
			errs = append(errs, field.Invalid(p.Child("namespaceSelector"), "", err.Error()))
		}
	}
	errs = append(errs, validateGlob(p.Child("serviceAccountName"), spec.ServiceAccountName, 253, serviceAccountGlobRegex,
		"serviceAccountName may contain at most one '*'",
		"serviceAccountName must be a DNS-1123 subdomain (lower-case letters, digits, '-' and '.'), optionally with one '*' glob")...)

	if spec.TokenExpirationSeconds != nil {
		v := *spec.TokenExpirationSeconds
		fp := p.Child("tokenExpirationSeconds")
		switch {
		case v < MinTokenExpirationSeconds || v > MaxTokenExpirationSeconds:
			errs = append(errs, field.Invalid(fp, v, fmt.Sprintf("must be between %d and %d", MinTokenExpirationSeconds, MaxTokenExpirationSeconds)))
		case spec.Azure != nil && v < MinAzureTokenExpirationSeconds:
			errs = append(errs, field.Invalid(fp, v, "tokenExpirationSeconds must be at least 3600 when azure is set (the Azure token exchange minimum)"))
		}
	}
	if spec.AWS == nil && spec.Azure == nil && spec.GCP == nil {
		errs = append(errs, field.Required(p, "at least one of aws, azure or gcp must be set"))
	}
	if a := spec.AWS; a != nil {
		ap := p.Child("aws")
		errs = append(errs, validatePattern(ap.Child("roleARN"), a.RoleARN, 2048, roleARNRegexp,
			"roleARN must be an IAM role ARN: arn:<partition>:iam::<12-digit account>:role/<name>")...)
		switch a.Mode {
		case "", AWSModePodIdentity, AWSModeIRSA:
		default:
			errs = append(errs, field.NotSupported(ap.Child("mode"), a.Mode, []string{string(AWSModePodIdentity), string(AWSModeIRSA)}))
		}
		if a.Region != "" {
			errs = append(errs, validatePattern(ap.Child("region"), a.Region, 32, awsRegionRegexp,
				"region must be an AWS region name such as us-west-2")...)
		}
		if a.STSRegionalEndpoints != nil && a.Mode != AWSModeIRSA {
			errs = append(errs, field.Invalid(ap.Child("stsRegionalEndpoints"), *a.STSRegionalEndpoints, "stsRegionalEndpoints applies only to mode IRSA"))
		}
		if len(a.Audience) > 256 {
			errs = append(errs, field.TooLong(ap.Child("audience"), "", 256))
		}
	}
	if az := spec.Azure; az != nil {
		zp := p.Child("azure")
		errs = append(errs, validatePattern(zp.Child("clientID"), az.ClientID, 36, guidRegexp,
			"clientID must be a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")...)
		if az.TenantID != "" {
			errs = append(errs, validatePattern(zp.Child("tenantID"), az.TenantID, 36, guidRegexp,
				"tenantID must be a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")...)
		}
		if az.IdentityResourceID != "" {
			errs = append(errs, validatePattern(zp.Child("identityResourceID"), az.IdentityResourceID, 512, azureIdentityResourceIDRegexp,
				"identityResourceID must be the resource ID of a user-assigned managed identity: /subscriptions/<subscription GUID>/resourceGroups/<group>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>")...)
		}
		switch az.Cloud {
		case "", AzurePublicCloud, AzureChinaCloud, AzureUSGovernmentCloud:
		default:
			errs = append(errs, field.NotSupported(zp.Child("cloud"), az.Cloud,
				[]string{string(AzurePublicCloud), string(AzureChinaCloud), string(AzureUSGovernmentCloud)}))
		}
	}
	if g := spec.GCP; g != nil {
		gp := p.Child("gcp")
		errs = append(errs, validatePattern(gp.Child("workloadIdentityProvider"), g.WorkloadIdentityProvider, 256, workloadIdentityProviderRegexp,
			"workloadIdentityProvider must be projects/<project number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>")...)
		if g.ServiceAccountEmail != "" {
			errs = append(errs, validatePattern(gp.Child("serviceAccountEmail"), g.ServiceAccountEmail, 254, gcpServiceAccountEmailRegexp,
				"serviceAccountEmail must be a Google service account e-mail (name@project.iam.gserviceaccount.com)")...)
		}
	}
	return errs
}

// Validate checks a RegistryAttachment as the CRD schema does (same rules, same messages).
func (ra *RegistryAttachment) Validate() field.ErrorList {
	var errs field.ErrorList
	spec := &ra.Spec
	p := field.NewPath("spec")
	errs = append(errs, validatePattern(p.Child("registry"), spec.Registry, 253, registryRegexp,
		"registry must be host[:port] with an optional leading '*.' label glob, without scheme, path, tag or digest")...)
	if len(spec.ServiceAccountNames) > 256 {
		errs = append(errs, field.TooMany(p.Child("serviceAccountNames"), len(spec.ServiceAccountNames), 256))
	}
	seen := make(map[string]bool, len(spec.ServiceAccountNames))
	for i, name := range spec.ServiceAccountNames {
		fp := p.Child("serviceAccountNames").Index(i)
		if len(name) > 253 {
			errs = append(errs, field.TooLong(fp, "", 253))
		}
		if seen[name] {
			errs = append(errs, field.Duplicate(fp, name))
		}
		seen[name] = true
	}
	if sel := spec.NamespaceSelector; sel != nil {
		if _, err := LabelSelectorAsSelector(sel); err != nil {
			errs = append(errs, field.Invalid(p.Child("namespaceSelector"), "", err.Error()))
		}
	}
	pp := p.Child("pull")
	n := 0
	if spec.Pull.ImagePullSecret != nil {
		n++
		errs = append(errs, validatePattern(pp.Child("imagePullSecret", "name"), spec.Pull.ImagePullSecret.Name, 253, dns1123SubdomainRegexp,
			"name must be a DNS-1123 subdomain (lower-case letters, digits, '-' and '.')")...)
	}
	if spec.Pull.NodeIdentity != nil {
		n++
	}
	if spec.Pull.ServiceAccountToken != nil {
		n++
	}
	if n != 1 {
		errs = append(errs, field.Invalid(pp, "", "exactly one of imagePullSecret, nodeIdentity or serviceAccountToken must be set"))
	}
	return errs
}

// validateGlob checks a subject name that may hold one '*': the count first, then the shape.
func validateGlob(fp *field.Path, value string, maxLen int, re *regexp.Regexp, countMsg, msg string) field.ErrorList {
	if value != "" && len(value) <= maxLen && !atMostOneGlobRegexp.MatchString(value) {
		return field.ErrorList{field.Invalid(fp, value, countMsg)}
	}
	return validatePattern(fp, value, maxLen, re, msg)
}

func validatePattern(fp *field.Path, value string, maxLen int, re *regexp.Regexp, msg string) field.ErrorList {
	switch {
	case value == "":
		return field.ErrorList{field.Required(fp, "")}
	case len(value) > maxLen:
		return field.ErrorList{field.TooLong(fp, "", maxLen)}
	case !re.MatchString(value):
		return field.ErrorList{field.Invalid(fp, value, msg)}
	}
	return nil
}

// MatchesRoleARN reports whether s is an IAM role ARN as spec.aws.roleARN accepts it.
func MatchesRoleARN(s string) bool { return len(s) <= 2048 && roleARNRegexp.MatchString(s) }

// MatchesGUID reports whether s is a GUID as spec.azure.clientID accepts it.
func MatchesGUID(s string) bool { return len(s) == 36 && guidRegexp.MatchString(s) }

// MatchesAWSRegion reports whether s is a region name as spec.aws.region accepts it.
func MatchesAWSRegion(s string) bool { return len(s) <= 32 && awsRegionRegexp.MatchString(s) }
