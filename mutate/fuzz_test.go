package mutate_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/lanyard-dev/lanyard/mutate"
	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// fuzzApplied builds a policy from flag bits so the fuzzer explores providers and modes too.
func fuzzApplied(flags uint8) *policy.Applied {
	a := &policy.Applied{Namespace: "default", ServiceAccountName: "app"}
	if flags&1 != 0 {
		mode := v1alpha1.AWSModePodIdentity
		if flags&2 != 0 {
			mode = v1alpha1.AWSModeIRSA
		}
		a.Identity.AWS = &policy.AWS{Mode: mode, RoleARN: "arn:aws:iam::111122223333:role/r", Region: "us-west-2", STSRegionalEndpoints: true}
	}
	if flags&4 != 0 {
		a.Identity.Azure = &policy.Azure{ClientID: "8b9f7a3c-1d2e-4f50-9a6b-7c8d9e0f1a2b", TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47", Cloud: v1alpha1.AzurePublicCloud}
	}
	if flags&8 != 0 {
		a.Identity.GCP = &policy.GCP{WorkloadIdentityProvider: "projects/1/locations/global/workloadIdentityPools/pool/providers/prov", ServiceAccountEmail: "a@b.iam.gserviceaccount.com"}
	}
	if flags&16 != 0 {
		a.Registries = append(a.Registries, policy.RegistryGrant{Attachment: "acr", Registry: "myacr.azurecr.io", PullSecret: "acr-pull"})
	}
	if flags&32 != 0 {
		a.Registries = append(a.Registries, policy.RegistryGrant{Attachment: "ecr", Registry: "*.dkr.ecr.us-west-2.amazonaws.com"})
	}
	return a
}

// FuzzMutate feeds arbitrary pods and policies to Compute. Properties: no panic; a denial is always
// an *InvalidError; the patch only adds and applies to the pod's JSON; patch and Apply agree; the
// result is a fixed point.
func FuzzMutate(f *testing.F) {
	for _, c := range loadGoldenCases(f) {
		f.Add(c.raw, uint8(0xff))
		f.Add(c.raw, uint8(0x13))
	}
	f.Add([]byte(`{"metadata":{"annotations":{"lanyard.dev/skip-containers":"a;b"}},"spec":{"containers":[{"name":"a"}]}}`), uint8(0x0f))
	f.Add([]byte(`{"spec":{"containers":[{"name":"a","volumeMounts":[{"name":"x","mountPath":"/var/run/secrets/azure/tokens/"}]}],"volumes":[{"name":"azure-identity-token","emptyDir":{}}]}}`), uint8(0x04))
	f.Fuzz(func(t *testing.T, input []byte, flags uint8) {
		pod, err := mutate.DecodePod(input)
		if err != nil {
			return
		}
		// The API server sends the pod as it encodes it: well-formed members, no duplicates.
		raw, err := json.Marshal(pod)
		require.NoError(t, err)
		pod, err = mutate.DecodePod(raw)
		require.NoError(t, err)
		applied := fuzzApplied(flags)
		opts := mutate.Options{AWSPodIdentityIPv6: flags&64 != 0}

		ch, err := mutate.Compute(pod, applied, opts)
		if err != nil {
			var invalid *policy.InvalidError
			require.ErrorAs(t, err, &invalid)
			return
		}
		patched := applyPatch(t, raw, ch.Patch())
		checkFastPaths(t, raw, ch, applied, opts)
		fromPatch, err := mutate.DecodePod(patched)
		require.NoError(t, err)

		typed := pod.DeepCopy()
		ch.Apply(typed)
		require.Equal(t, typed, fromPatch, "Apply and Patch disagree")

		again, err := mutate.Compute(fromPatch, applied, opts)
		require.NoError(t, err)
		require.True(t, again.Empty(), "not idempotent: %v", again.Patch())
	})
}
