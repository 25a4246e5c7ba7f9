package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/lanyard-dev/lanyard/internal/manifest"
	"github.com/lanyard-dev/lanyard/internal/offline"
	"github.com/lanyard-dev/lanyard/mutate"
	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// offlineFlags are the flags inject and check share.
type offlineFlags struct {
	files              []string
	policies           []string
	namespace          string
	compatAnnotations  bool
	azureTenantID      string
	awsPodIdentityIPv6 bool
}

func (f *offlineFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringSliceVarP(&f.files, "filename", "f", nil, "manifests to process: files, directories (recursive) or - for stdin; repeatable")
	fs.StringSliceVar(&f.policies, "policy", nil, "policy files or directories (IdentityAssociations, RegistryAttachments, Namespaces, ServiceAccounts); repeatable")
	fs.StringVarP(&f.namespace, "namespace", "n", "default", "namespace of objects that name none")
	fs.BoolVar(&f.compatAnnotations, "compat-annotations", true, "honour the EKS and Azure webhooks' ServiceAccount and pod annotations")
	fs.StringVar(&f.azureTenantID, "azure-tenant-id", "", "tenant of Azure identities that name none")
	fs.BoolVar(&f.awsPodIdentityIPv6, "aws-pod-identity-ipv6", false, "use the EKS Pod Identity agent's IPv6 address")
}

// run loads inputs and processes them. Input problems are usage errors (exit 2).
func (f *offlineFlags) run(ctx context.Context, cmd *cobra.Command) (*manifest.Policy, []offline.Output, []*offline.Workload, error) {
	if len(f.files) == 0 {
		return nil, nil, nil, usageError(errors.New("no input: pass -f FILE|DIR|-"))
	}
	if msgs := validation.IsDNS1123Label(f.namespace); len(msgs) > 0 {
		return nil, nil, nil, usageError(fmt.Errorf("--namespace %q: %v", f.namespace, msgs))
	}
	if f.azureTenantID != "" && !v1alpha1.MatchesGUID(f.azureTenantID) {
		return nil, nil, nil, usageError(fmt.Errorf("--azure-tenant-id %q: must be a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", f.azureTenantID))
	}
	pol := manifest.NewPolicy()
	if len(f.policies) > 0 {
		pdocs, err := manifest.ReadPaths(f.policies, cmd.InOrStdin())
		if err != nil {
			return nil, nil, nil, usageError(err)
		}
		if err := pol.Add(pdocs, f.namespace); err != nil {
			return nil, nil, nil, usageError(err)
		}
	}
	docs, err := manifest.ReadPaths(f.files, cmd.InOrStdin())
	if err != nil {
		return nil, nil, nil, usageError(err)
	}
	if err := pol.Add(docs, f.namespace); err != nil {
		return nil, nil, nil, usageError(err)
	}
	engine := &offline.Engine{
		Policy:           pol,
		Reader:           pol,
		PolicyOptions:    policy.Options{CompatAnnotations: f.compatAnnotations, DefaultAzureTenantID: f.azureTenantID},
		MutateOptions:    mutate.Options{AWSPodIdentityIPv6: f.awsPodIdentityIPv6},
		DefaultNamespace: f.namespace,
	}
	outputs, workloads, err := engine.Process(ctx, docs)
	if err != nil {
		return nil, nil, nil, usageError(err)
	}
	return pol, outputs, workloads, nil
}
