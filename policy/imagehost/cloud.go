package imagehost

import "strings"

// Cloud identifies hosts of the managed cloud registries whose pulls need
// credentials.
type Cloud string

// Managed cloud registries; CloudNone is every other host.
const (
	CloudNone  Cloud = ""
	CloudAzure Cloud = "azure"
	CloudAWS   Cloud = "aws"
	CloudGCP   Cloud = "gcp"
)

// azureRegistrySuffixes are the ACR domains of Azure public, China and US
// government clouds; the registry name is the single label before them.
var azureRegistrySuffixes = [...]string{"azurecr.io", "azurecr.cn", "azurecr.us"}

// gcrHosts are Container Registry's global and multi-regional hosts. Other
// *.gcr.io names (k8s.gcr.io, marketplace.gcr.io) are public mirrors.
var gcrHosts = [...]string{"gcr.io", "us.gcr.io", "eu.gcr.io", "asia.gcr.io"}

// ecrDomains are the AWS partitions whose ECR hosts we recognise.
var ecrDomains = [...]string{"amazonaws.com", "amazonaws.com.cn"}

// CloudRegistry classifies a host (as returned by Host; a port is ignored for
// classification): Azure: *.azurecr.io, *.azurecr.cn, *.azurecr.us; AWS ECR:
// <account>.dkr.ecr.<region>.amazonaws.com, <account>.dkr.ecr.<region>.amazonaws.com.cn,
// and the FIPS form <account>.dkr.ecr-fips.<region>.amazonaws.com; GCP:
// *-docker.pkg.dev (Artifact Registry, e.g. us-west1-docker.pkg.dev), gcr.io
// and its regional hosts us.gcr.io, eu.gcr.io, asia.gcr.io. Anything else
// (docker.io, quay.io, public.ecr.aws, mcr.microsoft.com) is CloudNone.
func CloudRegistry(host string) Cloud {
	name, _ := splitHostPort(host)
	switch {
	case isAzureRegistry(name):
		return CloudAzure
	case isECRRegistry(name):
		return CloudAWS
	case isGCPRegistry(name):
		return CloudGCP
	}
	return CloudNone
}

func isAzureRegistry(name string) bool {
	for _, suffix := range azureRegistrySuffixes {
		if label, ok := cutLabelSuffix(name, suffix); ok {
			return isDNSLabel(label)
		}
	}
	return false
}

// isECRRegistry matches <12-digit account>.dkr.ecr[-fips].<region>.<domain>,
// the same shape the kubelet's ECR credential provider accepts.
func isECRRegistry(name string) bool {
	for _, domain := range ecrDomains {
		rest, ok := cutLabelSuffix(name, domain)
		if !ok {
			continue
		}
		account, rest, _ := strings.Cut(rest, ".")
		dkr, rest, _ := strings.Cut(rest, ".")
		service, region, _ := strings.Cut(rest, ".")
		return isAWSAccount(account) &&
			equalFoldASCII(dkr, "dkr") &&
			(equalFoldASCII(service, "ecr") || equalFoldASCII(service, "ecr-fips")) &&
			isDNSLabel(region)
	}
	return false
}

func isAWSAccount(account string) bool {
	if len(account) != 12 {
		return false
	}
	for i := 0; i < len(account); i++ {
		if account[i] < '0' || account[i] > '9' {
			return false
		}
	}
	return true
}

func isGCPRegistry(name string) bool {
	for _, host := range gcrHosts {
		if equalFoldASCII(name, host) {
			return true
		}
	}
	// Artifact Registry: "<location>-docker.pkg.dev", one label before pkg.dev.
	label, ok := cutLabelSuffix(name, "pkg.dev")
	if !ok || !isDNSLabel(label) {
		return false
	}
	location, ok := cutSuffixFoldASCII(label, "-docker")
	return ok && location != ""
}

func cutSuffixFoldASCII(s, suffix string) (string, bool) {
	if len(s) < len(suffix) || !equalFoldASCII(s[len(s)-len(suffix):], suffix) {
		return s, false
	}
	return s[:len(s)-len(suffix)], true
}
