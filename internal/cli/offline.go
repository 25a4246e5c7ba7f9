package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lanyard-dev/lanyard/internal/manifest"
	"github.com/lanyard-dev/lanyard/internal/offline"
	"github.com/lanyard-dev/lanyard/policy/cluster"
)

// offlineFlags are the flags inject and check share.
type offlineFlags struct {
	files       []string
	policies    []string
	namespace   string
	identity    identityFlags
	fromCluster bool
	kubeconfig  string
	kubeContext string

	// cluster is the live reader when --from-cluster is set.
	cluster client.Reader
}

func (f *offlineFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringSliceVarP(&f.files, "filename", "f", nil, "manifests to process: files, directories (recursive) or - for stdin; repeatable")
	fs.StringSliceVar(&f.policies, "policy", nil, "policy files or directories (IdentityAssociations, RegistryAttachments, Namespaces, ServiceAccounts); repeatable")
	fs.StringVarP(&f.namespace, "namespace", "n", "default", "namespace of objects that name none")
	f.identity.register(fs)
	fs.BoolVar(&f.fromCluster, "from-cluster", false, "also read policy, Namespaces and ServiceAccounts from the cluster (kubeconfig credentials)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig for --from-cluster (default $KUBECONFIG, ~/.kube/config)")
	fs.StringVar(&f.kubeContext, "context", "", "kubeconfig context for --from-cluster")
}

// run loads inputs and processes them. Input problems are usage errors (exit 2).
func (f *offlineFlags) run(ctx context.Context, cmd *cobra.Command) (*manifest.Policy, []offline.Output, []*offline.Workload, error) {
	if len(f.files) == 0 {
		return nil, nil, nil, usageError(errors.New("no input: pass -f FILE|DIR|-"))
	}
	if msgs := validation.IsDNS1123Label(f.namespace); len(msgs) > 0 {
		return nil, nil, nil, usageError(fmt.Errorf("--namespace %q: %v", f.namespace, msgs))
	}
	policyOptions, mutateOptions, err := f.identity.options()
	if err != nil {
		return nil, nil, nil, usageError(err)
	}
	pol := manifest.NewPolicy()
	if f.fromCluster {
		c, err := f.clusterReader()
		if err != nil {
			return nil, nil, nil, usageError(err)
		}
		snapshot, err := cluster.Snapshot(ctx, c, f.identity.eksAnnotationPrefix)
		if err != nil {
			return nil, nil, nil, usageError(fmt.Errorf("--from-cluster: %w", err))
		}
		f.cluster = c
		pol = manifest.NewPolicyFrom(snapshot)
	}
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
		PolicyOptions:    policyOptions,
		MutateOptions:    mutateOptions,
		DefaultNamespace: f.namespace,
	}
	outputs, workloads, err := engine.Process(ctx, docs)
	if err != nil {
		return nil, nil, nil, usageError(err)
	}
	return pol, outputs, workloads, nil
}

// clusterReader connects with the user's kubeconfig: --from-cluster reads with their permissions.
func (f *offlineFlags) clusterReader() (client.Reader, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	restConfig, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: f.kubeContext}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("--from-cluster: loading kubeconfig: %w", err)
	}
	restConfig.UserAgent = "lanyard/" + version()
	scheme, err := cluster.Scheme()
	if err != nil {
		return nil, err
	}
	c, err := client.New(restConfig, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("--from-cluster: %w", err)
	}
	return c, nil
}
