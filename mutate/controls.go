package mutate

import (
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
}

func parseControls(pod *corev1.Pod) (controls, error) {
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
	if v, ok := ann[policy.EKSSkipContainers]; ok {
		if c.skipAWS, err = parseContainerList(policy.EKSSkipContainers, v, ","); err != nil {
			return c, err
		}
	}
	if v, ok := ann[policy.AzureSkipContainers]; ok {
		if c.skipAzure, err = parseContainerList(policy.AzureSkipContainers, v, ";"); err != nil {
			return c, err
		}
	}
	if v, ok := ann[policy.AnnotationTokenExpiration]; ok {
		if c.expiration, err = parsePodExpiration(policy.AnnotationTokenExpiration, v,
			v1alpha1.MinTokenExpirationSeconds, v1alpha1.MaxTokenExpirationSeconds); err != nil {
			return c, err
		}
	}
	if v, ok := ann[policy.EKSTokenExpiration]; ok {
		if c.awsExpiration, err = parsePodExpiration(policy.EKSTokenExpiration, v,
			v1alpha1.MinTokenExpirationSeconds, v1alpha1.MaxTokenExpirationSeconds); err != nil {
			return c, err
		}
	}
	if v, ok := ann[policy.AzureTokenExpiration]; ok {
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
