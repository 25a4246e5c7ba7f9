package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lanyard-dev/lanyard/internal/offline"
	"github.com/lanyard-dev/lanyard/policy"
)

type checkFlags struct {
	offlineFlags
	output string
}

func newCheckCommand() *cobra.Command {
	f := &checkFlags{}
	cmd := &cobra.Command{
		Use:   "check -f FILE|DIR|- [--policy FILE|DIR] [-o text|json]",
		Short: "Validate manifests and policy: what each workload would receive, and what is wrong",
		Long: `check runs the same resolution and mutation as inject and reports, per workload, what it
would receive and any findings.

Errors: conflicting IdentityAssociations, invalid annotations (the webhook would deny the pod),
images on cloud registries that no RegistryAttachment covers (the pod would fail to pull; declare
a nodeIdentity or serviceAccountToken attachment where the kubelet pulls), Azure identities without
a tenant, IdentityAssociations whose subjects match a ServiceAccount equally specifically.
Per workload: what it receives, and for every image the path that pulls it (imagePullSecret, node
identity, ServiceAccount token, or none). Per IdentityAssociation: its subject and the
ServiceAccounts of the input it covers (the most specific association wins).
Warnings: containers that set cloud credentials by hand without an association, associations for
ServiceAccounts absent from the input, namespaceSelectors on labels users can set, ServiceAccounts
lacking the annotations a serviceAccountToken pull's credential provider reads, namespaces assumed opted in, things the mutation left alone,
identities whose cloud side cannot be right (CloudSideMismatch: a role ARN and region in different
AWS partitions, a PodIdentity audience other than pods.eks.amazonaws.com, a GCP subject longer
than google.subject allows).

Exit status: 0 clean (warnings allowed), 1 any error finding, 2 bad flags or input.`,
		Example: `  lanyard check -f examples/manifests --policy examples/policy
  lanyard check -f deploy/ --policy policy/ -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.output != "text" && f.output != "json" {
				return usageError(fmt.Errorf("--output %q: must be text or json", f.output))
			}
			pol, _, workloads, err := f.run(cmd.Context(), cmd)
			if err != nil {
				return err
			}
			findings := offline.Check(pol, workloads)
			if f.cluster != nil {
				more, err := offline.CheckPullSecrets(cmd.Context(), f.cluster, workloads)
				if err != nil {
					return usageError(fmt.Errorf("--from-cluster: %w", err))
				}
				findings = append(findings, more...)
			}
			coverages := offline.Coverages(pol, workloads)
			if f.output == "json" {
				err = writeCheckJSON(cmd.OutOrStdout(), workloads, coverages, findings)
			} else {
				err = writeCheckText(cmd.OutOrStdout(), workloads, coverages, findings)
			}
			if err != nil {
				return usageError(err)
			}
			if n := countSeverity(findings, policy.SeverityError); n > 0 {
				return findingsError(nil)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	return cmd
}

func writeCheckText(w io.Writer, workloads []*offline.Workload, coverages []offline.Coverage, findings []offline.Finding) error {
	byObject := map[string][]offline.Finding{}
	var others []string
	for _, f := range findings {
		if byObject[f.Object] == nil {
			others = append(others, f.Object)
		}
		byObject[f.Object] = append(byObject[f.Object], f)
	}
	printed := map[string]bool{}
	// printFindings prints an object's findings under it, once.
	printFindings := func(ref string) {
		if printed[ref] {
			return
		}
		printed[ref] = true
		for _, f := range byObject[ref] {
			fmt.Fprintf(w, "  %s %s: %s\n", f.Severity, f.Code, f.Message)
		}
	}
	for _, wl := range workloads {
		ref := wl.Ref()
		fmt.Fprintf(w, "%s (%s)\n", ref, wl.Doc.Location())
		switch {
		case wl.Skipped != "":
			fmt.Fprintf(w, "  skipped: %s\n", wl.Skipped)
		case wl.Denied != nil:
		default:
			r := receives(wl)
			if len(r) == 0 {
				fmt.Fprintln(w, "  receives: nothing")
			}
			for _, item := range r {
				fmt.Fprintf(w, "  receives: %s\n", item)
			}
			for _, p := range offline.PullPaths(wl) {
				fmt.Fprintf(w, "  image %s: %s\n", p.Image, p.Describe())
			}
		}
		printFindings(ref)
	}
	for _, c := range coverages {
		ref := "IdentityAssociation " + c.Association
		if c.Location != "" {
			fmt.Fprintf(w, "%s (%s)\n", ref, c.Location)
		} else {
			fmt.Fprintln(w, ref)
		}
		fmt.Fprintf(w, "  subject: %s\n", c.Subject)
		if len(c.Covers) == 0 {
			fmt.Fprintln(w, "  covers: no ServiceAccount of the input")
		} else {
			fmt.Fprintf(w, "  covers: %s\n", strings.Join(c.Covers, ", "))
		}
		for _, o := range c.Overridden {
			fmt.Fprintf(w, "  not for: %s\n", o)
		}
		printFindings(ref)
	}
	for _, obj := range others {
		if printed[obj] {
			continue
		}
		printed[obj] = true
		fs := byObject[obj]
		if fs[0].Source != "" {
			fmt.Fprintf(w, "%s (%s)\n", obj, fs[0].Source)
		} else {
			fmt.Fprintln(w, obj)
		}
		for _, f := range fs {
			fmt.Fprintf(w, "  %s %s: %s\n", f.Severity, f.Code, f.Message)
		}
	}
	errs, warns := countSeverity(findings, policy.SeverityError), countSeverity(findings, policy.SeverityWarning)
	_, err := fmt.Fprintf(w, "\n%s, %s, %s\n", plural(len(workloads), "workload"), plural(errs, "error"), plural(warns, "warning"))
	return err
}

type checkWorkloadJSON struct {
	Object   string             `json:"object"`
	Source   string             `json:"source"`
	Skipped  string             `json:"skipped,omitempty"`
	Denied   string             `json:"denied,omitempty"`
	Receives []string           `json:"receives"`
	Images   []offline.PullPath `json:"images,omitempty"`
	Injected []string           `json:"injected"`
}

type checkJSON struct {
	Workloads    []checkWorkloadJSON `json:"workloads"`
	Associations []offline.Coverage  `json:"associations"`
	Findings     []offline.Finding   `json:"findings"`
	Errors       int                 `json:"errors"`
	Warnings     int                 `json:"warnings"`
}

func writeCheckJSON(w io.Writer, workloads []*offline.Workload, coverages []offline.Coverage, findings []offline.Finding) error {
	out := checkJSON{Workloads: []checkWorkloadJSON{}, Associations: coverages, Findings: findings,
		Errors: countSeverity(findings, policy.SeverityError), Warnings: countSeverity(findings, policy.SeverityWarning)}
	if out.Associations == nil {
		out.Associations = []offline.Coverage{}
	}
	if out.Findings == nil {
		out.Findings = []offline.Finding{}
	}
	for _, wl := range workloads {
		cw := checkWorkloadJSON{Object: wl.Ref(), Source: wl.Doc.Ref(), Skipped: wl.Skipped, Receives: receives(wl), Injected: []string{}}
		if wl.Skipped == "" && wl.Denied == nil {
			cw.Images = offline.PullPaths(wl)
		}
		if cw.Receives == nil {
			cw.Receives = []string{}
		}
		if wl.Denied != nil {
			cw.Denied = wl.Denied.Error()
		}
		if wl.Changes != nil && wl.Changes.Injected != nil {
			cw.Injected = wl.Changes.Injected
		}
		out.Workloads = append(out.Workloads, cw)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
