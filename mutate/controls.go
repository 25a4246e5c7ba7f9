package mutate

import (
	"encoding/csv"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// controls are the pod's own say over injection. They can only narrow what the ServiceAccount's
// policy grants (skip containers, shorten or lengthen the token within bounds), never widen it.
type controls struct {
	allow      map[string]bool // nil: every container
	skip       map[string]bool
	skipAWS    map[string]bool // eks.amazonaws.com/skip-containers
	skipAzure  map[string]bool // azure.workload.identity/skip-containers
	expiration int64           // lanyard.dev/token-expiration; 0 when unset
	// Per-provider overrides from the compatibility annotations; lanyard's own annotation wins.
	awsExpiration   int64
	azureExpiration int64
	// warnings say which lenient reading of an anchor's annotation was made (admission warnings).
	warnings []string
}

// parseControls reads the pod's annotations. lanyard's own (lanyard.dev/*) are strict: a malformed
// value denies the pod. The anchors' are read as the anchors read them, never stricter, so that a
// pod that ran with them yesterday runs today: eks.amazonaws.com/* as the EKS webhook (a lifetime
// below 600 is raised, an unparseable one ignored, list entries trimmed and empty ones dropped),
// azure.workload.identity/skip-containers as the Azure webhook (";"-separated, empty entries
// ignored). eks.amazonaws.com/skip-containers is one CSV record, untrimmed ("a, b" skips "a" and
// " b"), and a list that does not parse skips nothing. The Azure webhook refuses pods whose token
// lifetime is unparseable or out of [3600, 86400], and so does lanyard. With ignoreCompat they
// mean nothing at all.
func parseControls(pod *corev1.Pod, ignoreCompat bool, eks policy.EKSKeys) (controls, error) {
	var c controls
	ann := pod.Annotations
	if len(ann) == 0 {
		return c, nil
	}
	var err error
	if v, ok := ann[policy.AnnotationContainers]; ok {
		if c.allow, err = parseContainerList(policy.AnnotationContainers, v, ","); err != nil {
			return c, err
		}
	}
	if v, ok := ann[policy.AnnotationSkipContainers]; ok {
		if c.skip, err = parseContainerList(policy.AnnotationSkipContainers, v, ","); err != nil {
			return c, err
		}
	}
	if v, ok := ann[eks.SkipContainers]; ok && !ignoreCompat {
		var warning string
		c.skipAWS, warning = eksContainerList(eks.SkipContainers, v)
		if warning != "" {
			c.warnings = append(c.warnings, warning)
		}
	}
	if v, ok := ann[policy.AzureSkipContainers]; ok && !ignoreCompat {
		c.skipAzure = azureContainerList(v)
	}
	if v, ok := ann[policy.AnnotationTokenExpiration]; ok {
		if c.expiration, err = parsePodExpiration(policy.AnnotationTokenExpiration, v,
			v1alpha1.MinTokenExpirationSeconds, v1alpha1.MaxTokenExpirationSeconds); err != nil {
			return c, err
		}
	}
	if v, ok := ann[eks.TokenExpiration]; ok && !ignoreCompat {
		var warning string
		c.awsExpiration, warning = policy.LenientEKSExpiration("pod annotation "+eks.TokenExpiration, v)
		if warning != "" {
			c.warnings = append(c.warnings, warning)
		}
	}
	if v, ok := ann[policy.AzureTokenExpiration]; ok && !ignoreCompat && v != "" { // empty: absent, as for the Azure webhook
		if c.azureExpiration, err = parsePodExpiration(policy.AzureTokenExpiration, v,
			v1alpha1.MinAzureTokenExpirationSeconds, v1alpha1.MaxTokenExpirationSeconds); err != nil {
			return c, err
		}
	}
	return c, nil
}

func parsePodExpiration(key, value string, minSeconds, maxSeconds int64) (int64, error) {
	secs, err := policy.ParseExpiration(value, minSeconds, maxSeconds)
	if err != nil {
		return 0, podAnnotationError(key, value, err.Error())
	}
	return secs, nil
}

// parseContainerList parses "a, b" into a set. Names are trimmed; an empty element or a name that
// cannot be a container name is an error (a typo would otherwise silently inject a container the
// user meant to skip). Names of containers not in the pod are fine: another webhook may add them.
func parseContainerList(key, value, sep string) (map[string]bool, error) {
	set := map[string]bool{}
	if strings.TrimSpace(value) == "" {
		return nil, podAnnotationError(key, value, fmt.Sprintf("must be a %q-separated list of container names", sep))
	}
	for i, part := range strings.Split(value, sep) {
		name := strings.TrimSpace(part)
		if name == "" {
			return nil, podAnnotationError(key, value, fmt.Sprintf("element %d is empty; must be a %q-separated list of container names", i+1, sep))
		}
		if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
			return nil, podAnnotationError(key, value, fmt.Sprintf("element %d %q is not a container name: %s", i+1, name, strings.Join(msgs, "; ")))
		}
		set[name] = true
	}
	return set, nil
}

// eksContainerList reads eks.amazonaws.com/skip-containers as the EKS webhook does: the first CSV
// record, nothing trimmed; a value that does not parse skips nothing (with a warning here).
func eksContainerList(key, value string) (map[string]bool, string) {
	record, err := csv.NewReader(strings.NewReader(value)).Read()
	if err != nil {
		return nil, fmt.Sprintf("pod annotation %s %q is not a comma-separated list (%v): no container is skipped (as the EKS webhook does)",
			key, value, err)
	}
	set := make(map[string]bool, len(record))
	for _, name := range record {
		set[name] = true
	}
	return set, ""
}

// azureContainerList reads azure.workload.identity/skip-containers as the Azure webhook does:
// split on ";", trimmed, empty entries ignored; names are not validated (one that is no
// container's name matches nothing).
func azureContainerList(value string) map[string]bool {
	set := map[string]bool{}
	for _, part := range strings.Split(value, ";") {
		if name := strings.TrimSpace(part); name != "" {
			set[name] = true
		}
	}
	return set
}

func podAnnotationError(key, value, reason string) error {
	return &policy.InvalidError{Field: "pod annotation " + key, Value: value, Reason: reason}
}

// wants reports whether the container named name receives the provider.
func (c *controls) wants(p provider, name string) bool {
	if c.allow != nil && !c.allow[name] {
		return false
	}
	if c.skip[name] {
		return false
	}
	switch p {
	case providerAWS:
		return !c.skipAWS[name]
	case providerAzure:
		return !c.skipAzure[name]
	}
	return true
}
