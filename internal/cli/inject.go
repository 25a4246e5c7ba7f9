package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/lanyard-dev/lanyard/internal/offline"
)

type injectFlags struct {
	offlineFlags
	output string
	diff   bool
}

func newInjectCommand() *cobra.Command {
	f := &injectFlags{}
	cmd := &cobra.Command{
		Use:   "inject -f FILE|DIR|- [--policy FILE|DIR] [--diff] [-o yaml|json]",
		Short: "Print manifests as the webhook would admit them",
		Long: `inject runs the webhook's mutation on manifests offline: Pods and the pod templates of
Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs (also inside kind: List).
Other documents pass through byte for byte. The mutated manifests go to stdout, a report to stderr.

Policy comes from --policy files and from the policy objects, Namespaces and ServiceAccounts in
the -f input itself. A namespace described without the opt-in label is not mutated; a namespace
described nowhere is assumed opted in.

Exit status: 0 done, 1 a workload would be denied by the webhook, 2 bad flags or input.`,
		Example: `  lanyard inject -f examples/manifests --policy examples/policy
  kustomize build overlays/prod | lanyard inject -f - --policy policy/ --diff`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.output != "yaml" && f.output != "json" {
				return usageError(fmt.Errorf("--output %q: must be yaml or json", f.output))
			}
			_, outputs, workloads, err := f.run(cmd.Context(), cmd)
			if err != nil {
				return err
			}
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			if f.diff {
				err = writeDiff(stdout, outputs)
			} else if f.output == "json" {
				err = writeJSON(stdout, outputs)
			} else {
				err = writeYAML(stdout, outputs)
			}
			if err != nil {
				return usageError(err)
			}
			denied := 0
			for _, w := range workloads {
				fmt.Fprintf(stderr, "%s: %s\n", w.Ref(), status(w))
				if w.Changes != nil {
					for _, msg := range w.Changes.Warnings {
						fmt.Fprintf(stderr, "  warning: %s\n", msg)
					}
				}
				if w.Applied != nil {
					for _, is := range w.Applied.Issues {
						fmt.Fprintf(stderr, "  %s: %s\n", is.Severity, is.Message)
					}
				}
				if w.Denied != nil {
					denied++
				}
			}
			if len(workloads) == 0 {
				fmt.Fprintln(stderr, "no workloads found in the input")
			}
			if denied > 0 {
				return findingsError(fmt.Errorf("%s would be denied by the webhook", plural(denied, "workload")))
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVarP(&f.output, "output", "o", "yaml", "output format: yaml or json")
	cmd.Flags().BoolVar(&f.diff, "diff", false, "print a unified diff of each changed document instead of the manifests")
	return cmd
}

// writeYAML prints every document: unchanged ones byte for byte, changed ones as YAML.
func writeYAML(w io.Writer, outputs []offline.Output) error {
	var buf bytes.Buffer
	for i, o := range outputs {
		if i > 0 {
			buf.WriteString("---\n")
		}
		if !o.Changed {
			buf.Write(o.Doc.Raw)
			if len(o.Doc.Raw) > 0 && o.Doc.Raw[len(o.Doc.Raw)-1] != '\n' {
				buf.WriteByte('\n')
			}
			continue
		}
		y, err := yaml.JSONToYAML(o.JSON)
		if err != nil {
			return fmt.Errorf("%s: %w", o.Doc.Ref(), err)
		}
		buf.Write(y)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// writeJSON prints the objects as JSON: one object as itself, several as a v1 List.
func writeJSON(w io.Writer, outputs []offline.Output) error {
	var items []json.RawMessage
	for _, o := range outputs {
		switch {
		case o.Changed:
			items = append(items, o.JSON)
		case o.Doc.JSON != nil:
			items = append(items, o.Doc.JSON)
		}
	}
	var v any
	switch len(items) {
	case 0:
		return nil
	case 1:
		v = items[0]
	default:
		v = map[string]any{"apiVersion": "v1", "kind": "List", "items": items}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeDiff prints a unified diff of each changed document (both sides in canonical YAML).
func writeDiff(w io.Writer, outputs []offline.Output) error {
	for _, o := range outputs {
		if !o.Changed {
			continue
		}
		before, err := yaml.JSONToYAML(o.Doc.JSON)
		if err != nil {
			return err
		}
		after, err := yaml.JSONToYAML(o.JSON)
		if err != nil {
			return err
		}
		text, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
			A:        difflib.SplitLines(string(before)),
			B:        difflib.SplitLines(string(after)),
			FromFile: "a/" + o.Doc.Ref(),
			ToFile:   "b/" + o.Doc.Ref(),
			Context:  3,
		})
		if err != nil {
			return err
		}
		if _, err := io.WriteString(w, text); err != nil {
			return err
		}
	}
	return nil
}
