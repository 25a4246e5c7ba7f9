package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/lanyard-dev/lanyard/internal/cloudside"
	"github.com/lanyard-dev/lanyard/internal/manifest"
	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/cluster"
)

// policyInputFlags are the inputs of export: the policy of -f, --policy and --from-cluster, as
// inject and check read it, without the mutation settings (they do not change the cloud side).
type policyInputFlags struct {
	offlineFlags
}

func (f *policyInputFlags) register(fs *pflag.FlagSet) {
	fs.StringSliceVarP(&f.files, "filename", "f", nil, "manifests or policy to read: files, directories (recursive) or - for stdin; repeatable")
	fs.StringSliceVar(&f.policies, "policy", nil, "policy files or directories (IdentityAssociations, Namespaces, ServiceAccounts); repeatable")
	fs.StringVarP(&f.namespace, "namespace", "n", "default", "namespace of ServiceAccounts that name none")
	fs.BoolVar(&f.fromCluster, "from-cluster", false, "also read the IdentityAssociations of the cluster (kubeconfig credentials)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig for --from-cluster (default $KUBECONFIG, ~/.kube/config)")
	fs.StringVar(&f.kubeContext, "context", "", "kubeconfig context for --from-cluster")
}

// load reads the policy (usage errors name the file, document and field).
func (f *policyInputFlags) load(ctx context.Context, stdin io.Reader) (*manifest.Policy, error) {
	if len(f.files) == 0 && len(f.policies) == 0 && !f.fromCluster {
		return nil, usageError(errors.New("no input: pass -f FILE|DIR|-, --policy FILE|DIR or --from-cluster"))
	}
	if msgs := validation.IsDNS1123Label(f.namespace); len(msgs) > 0 {
		return nil, usageError(fmt.Errorf("--namespace %q: %v", f.namespace, msgs))
	}
	pol := manifest.NewPolicy()
	if f.fromCluster {
		c, err := f.clusterReader()
		if err != nil {
			return nil, usageError(err)
		}
		snapshot, err := cluster.Snapshot(ctx, c, policy.DefaultEKSAnnotationPrefix)
		if err != nil {
			return nil, usageError(fmt.Errorf("--from-cluster: %w", err))
		}
		f.cluster = c
		pol = manifest.NewPolicyFrom(snapshot)
	}
	for _, paths := range [][]string{f.policies, f.files} {
		if len(paths) == 0 {
			continue
		}
		docs, err := manifest.ReadPaths(paths, stdin)
		if err != nil {
			return nil, usageError(err)
		}
		if err := pol.Add(docs, f.namespace); err != nil {
			return nil, usageError(err)
		}
	}
	return pol, nil
}

type exportFlags struct {
	policyInputFlags
	format  string
	issuer  string
	cluster string
	region  string
}

func newExportCommand() *cobra.Command {
	f := &exportFlags{}
	cmd := &cobra.Command{
		Use:   "export --format eksctl|aws-iam|azure|gcp -f FILE|DIR|- [--policy FILE|DIR] [--from-cluster]",
		Short: "Print the cloud side of the IdentityAssociations: what the cloud must trust",
		Long: `export derives, from the IdentityAssociations in the input, what each cloud must be told so
that the identities lanyard injects work, with exactly the subject, audience and issuer strings of
lanyard's tokens:

  eksctl   an eksctl ClusterConfig whose iam.podIdentityAssociations hold the PodIdentity-mode
           associations, for eksctl create podidentityassociation -f (needs --cluster, --region)
  aws-iam  the trust policy of every role (JSON): IRSA statements for the cluster's OIDC provider
           with exact <issuer>:sub and <issuer>:aud conditions (needs --oidc-issuer), PodIdentity
           statements for pods.eks.amazonaws.com (sts:AssumeRole, sts:TagSession)
  azure    az identity federated-credential create commands (needs --oidc-issuer); the identity
           comes from spec.azure.identityResourceID, else the command has placeholders
  gcp      each ServiceAccount's workload identity principal, and the gcloud binding of
           roles/iam.workloadIdentityUser for associations that impersonate a service account

Associations name exact ServiceAccounts, and export writes exactly those. The document goes to
stdout only once it is complete; notes go to stderr. Associations that claim the same ServiceAccount
are left out (lanyard injects nothing for them) and make the exit status 1.

Exit status: 0 done, 1 some associations could not be exported, 2 bad flags or input.`,
		Example: `  lanyard export --format eksctl -f examples/policy --cluster prod --region us-west-2 > pod-identity.yaml
  lanyard export --format aws-iam --policy policy/ --oidc-issuer https://oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE
  lanyard export --format azure --from-cluster --oidc-issuer "$(az aks show -g rg -n aks --query oidcIssuerProfile.issuerUrl -o tsv)"
  lanyard export --format gcp -f examples/policy`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			format, err := cloudside.ParseFormat(f.format)
			if err != nil {
				return usageError(err)
			}
			var issuer *cloudside.Issuer
			if f.issuer != "" {
				if issuer, err = cloudside.ParseIssuer(f.issuer); err != nil {
					return usageError(err)
				}
			}
			if f.cluster != "" {
				if !eksClusterName(f.cluster) {
					return usageError(fmt.Errorf("--cluster %q: must be an EKS cluster name (letters, digits, '-' and '_', starting with a letter or digit, at most 100 characters)", f.cluster))
				}
			}
			pol, err := f.load(cmd.Context(), cmd.InOrStdin())
			if err != nil {
				return err
			}
			associations := pol.AllIdentityAssociations()
			var res *cloudside.Result
			switch format {
			case cloudside.FormatEksctl:
				res, err = cloudside.ExportEksctl(associations, f.cluster, f.region)
			case cloudside.FormatAWSIAM:
				res, err = cloudside.ExportAWSIAM(associations, issuer, f.cluster)
			case cloudside.FormatAzure:
				res, err = cloudside.ExportAzure(associations, issuer)
			case cloudside.FormatGCP:
				res, err = cloudside.ExportGCP(associations)
			}
			if err != nil {
				return usageError(err)
			}
			return writeResult(cmd, res, "associations could not be exported")
		},
	}
	f.register(cmd.Flags())
	fs := cmd.Flags()
	fs.StringVar(&f.format, "format", "", "what to print: eksctl, aws-iam, azure or gcp (required)")
	fs.StringVar(&f.issuer, "oidc-issuer", "", "the cluster's service account issuer URL (aws-iam with IRSA associations, azure)")
	fs.StringVar(&f.cluster, "cluster", "", "EKS cluster name: metadata.name for eksctl; with aws-iam, PodIdentity trust is limited to this cluster")
	fs.StringVar(&f.region, "region", "", "AWS region of the EKS cluster: metadata.region for eksctl")
	return cmd
}

// eksClusterName reports whether s is a valid EKS cluster name: 1-100 characters, letters, digits,
// hyphens and underscores, starting with a letter or digit.
func eksClusterName(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for i, r := range s {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || r != '-' && r != '_') {
			return false
		}
	}
	return true
}

// writeResult prints the notes to stderr and the whole document to stdout at once; error notes
// make the exit status 1.
func writeResult(cmd *cobra.Command, res *cloudside.Result, what string) error {
	stderr := cmd.ErrOrStderr()
	errs := 0
	for _, n := range res.Notes {
		fmt.Fprintln(stderr, n.String())
		if n.Severity == cloudside.SeverityError {
			errs++
		}
	}
	if len(res.Content) > 0 {
		if _, err := cmd.OutOrStdout().Write(res.Content); err != nil {
			return usageError(err)
		}
	}
	if errs > 0 {
		return findingsError(fmt.Errorf("%d %s (see above)", errs, what))
	}
	return nil
}
