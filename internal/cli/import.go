package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/lanyard-dev/lanyard/internal/cloudside"
	"github.com/lanyard-dev/lanyard/internal/manifest"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

type importFlags struct {
	offlineFlags
	from string
}

// Import sources.
const (
	importFromEksctl      = "eksctl"
	importFromAnnotations = "annotations"
)

func newImportCommand() *cobra.Command {
	f := &importFlags{}
	cmd := &cobra.Command{
		Use:   "import --from eksctl|annotations -f FILE|DIR|- [--from-cluster]",
		Short: "Print existing identity setups as IdentityAssociations",
		Long: `import turns existing setups into IdentityAssociation YAML on stdout, for review and commit:

  --from eksctl -f cluster.yaml
      each iam.podIdentityAssociations entry with a roleARN becomes a PodIdentity-mode association
      (region from metadata.region). Entries that only name policies, so that eksctl creates the
      role, cannot be imported until the role exists: the report says how to get its ARN.
  --from annotations -f manifests/ (or --from-cluster)
      every ServiceAccount with the EKS pod identity webhook's role-arn annotation or the Azure
      workload identity webhook's client-id annotation becomes the association that gives its pods
      the same identity. The webhooks' cluster-wide settings are lanyard's flags below (as on serve):
      pass the ones your webhooks run with, and the associations say explicitly what they meant.
      ServiceAccounts an IdentityAssociation already claims are left alone.

The output goes to stdout only once it is complete; notes go to stderr.

Exit status: 0 done, 1 some entries could not be imported (the others are printed), 2 bad flags or
input.`,
		Example: `  lanyard import --from eksctl -f cluster.yaml > policy/pod-identity.yaml
  lanyard import --from annotations -f manifests/ > policy/from-annotations.yaml
  lanyard import --from annotations --from-cluster --aws-default-region us-west-2 --azure-tenant-id "$AZURE_TENANT_ID"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var res *cloudside.Result
			var err error
			switch f.from {
			case importFromEksctl:
				res, err = f.importEksctl(cmd.InOrStdin())
			case importFromAnnotations:
				res, err = f.importAnnotations(cmd.Context(), cmd.InOrStdin())
			case "":
				return usageError(errors.New("--from: required: eksctl or annotations"))
			default:
				return usageError(fmt.Errorf("--from %q: must be eksctl or annotations", f.from))
			}
			if err != nil {
				return err
			}
			return writeResult(cmd, res, "entries could not be imported")
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.from, "from", "", "what to import: eksctl (a ClusterConfig) or annotations (ServiceAccounts of the EKS and Azure webhooks)")
	fs.StringSliceVarP(&f.files, "filename", "f", nil, "input: an eksctl ClusterConfig file, or manifests (files, directories, - for stdin) with ServiceAccounts; repeatable for annotations")
	fs.StringVarP(&f.namespace, "namespace", "n", "default", "namespace of ServiceAccounts that name none")
	fs.BoolVar(&f.fromCluster, "from-cluster", false, "with --from annotations: read the ServiceAccounts and IdentityAssociations of the cluster (kubeconfig credentials)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig for --from-cluster (default $KUBECONFIG, ~/.kube/config)")
	fs.StringVar(&f.kubeContext, "context", "", "kubeconfig context for --from-cluster")
	// The webhooks' cluster-wide settings, as serve, inject and check take them; the ones that only
	// change the mutation or switch the annotations off mean nothing here.
	identity := pflag.NewFlagSet("identity", pflag.ContinueOnError)
	f.identity.register(identity)
	identity.VisitAll(func(fl *pflag.Flag) {
		if fl.Name != "compat-annotations" && fl.Name != "aws-pod-identity-ipv6" {
			fs.AddFlag(fl)
		}
	})
	f.identity.compatAnnotations = true
	return cmd
}

func (f *importFlags) importEksctl(stdin io.Reader) (*cloudside.Result, error) {
	if f.fromCluster {
		return nil, usageError(errors.New("--from-cluster: not with --from eksctl (the input is the eksctl ClusterConfig file)"))
	}
	if len(f.files) != 1 {
		return nil, usageError(errors.New("--from eksctl takes one -f: the eksctl ClusterConfig file (or - for stdin)"))
	}
	path := f.files[0]
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(stdin)
		path = manifest.Stdin
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, usageError(err)
	}
	docs, err := manifest.Split(path, data)
	if err != nil {
		return nil, usageError(err)
	}
	var doc *manifest.Document
	for _, d := range docs {
		if d.JSON == nil {
			continue
		}
		if doc != nil {
			return nil, usageError(fmt.Errorf("%s: more than one document; an eksctl ClusterConfig file holds one", path))
		}
		doc = d
	}
	if doc == nil {
		return nil, usageError(fmt.Errorf("%s: empty: expected an eksctl ClusterConfig", path))
	}
	cfg, err := cloudside.ParseEksctlConfig(doc.Raw)
	if err != nil {
		return nil, usageError(fmt.Errorf("%s: eksctl ClusterConfig: %w", doc.Location(), err))
	}
	res, err := cloudside.ImportEksctl(cfg, path)
	if err != nil {
		return nil, usageError(fmt.Errorf("%s: %w", path, err))
	}
	return res, nil
}

func (f *importFlags) importAnnotations(ctx context.Context, stdin io.Reader) (*cloudside.Result, error) {
	if len(f.files) == 0 && !f.fromCluster {
		return nil, usageError(errors.New("no input: pass -f FILE|DIR|- or --from-cluster"))
	}
	if msgs := validation.IsDNS1123Label(f.namespace); len(msgs) > 0 {
		return nil, usageError(fmt.Errorf("--namespace %q: %v", f.namespace, msgs))
	}
	opts, _, err := f.identity.options()
	if err != nil {
		return nil, usageError(err)
	}
	accounts := map[string]*metav1.ObjectMeta{}
	var existing []*v1alpha1.IdentityAssociation
	if f.fromCluster {
		c, err := f.clusterReader()
		if err != nil {
			return nil, usageError(err)
		}
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ServiceAccountList"))
		if err := c.List(ctx, list); err != nil {
			return nil, usageError(fmt.Errorf("--from-cluster: listing ServiceAccounts: %w", err))
		}
		for i := range list.Items {
			m := list.Items[i].ObjectMeta
			accounts[m.Namespace+"/"+m.Name] = &m
		}
		ias := &v1alpha1.IdentityAssociationList{}
		if err := c.List(ctx, ias); err != nil {
			return nil, usageError(fmt.Errorf("--from-cluster: listing IdentityAssociations: %w", err))
		}
		for i := range ias.Items {
			existing = append(existing, &ias.Items[i])
		}
	}
	if len(f.files) > 0 {
		docs, err := manifest.ReadPaths(f.files, stdin)
		if err != nil {
			return nil, usageError(err)
		}
		pol := manifest.NewPolicy()
		if err := pol.Add(docs, f.namespace); err != nil {
			return nil, usageError(err)
		}
		keys := make([]string, 0, len(pol.Origin))
		for k := range pol.Origin {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			rest, ok := strings.CutPrefix(k, "ServiceAccount/")
			if !ok {
				continue
			}
			ns, name, _ := strings.Cut(rest, "/")
			meta, _, err := pol.ServiceAccount(ctx, ns, name)
			if err != nil || meta == nil {
				continue
			}
			accounts[rest] = meta
		}
		existing = append(existing, pol.AllIdentityAssociations()...)
	}
	list := make([]*metav1.ObjectMeta, 0, len(accounts))
	for _, m := range accounts {
		list = append(list, m)
	}
	res, err := cloudside.ImportAnnotations(list, existing, opts)
	if err != nil {
		return nil, usageError(err)
	}
	return res, nil
}
