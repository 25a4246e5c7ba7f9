// Package cli is the lanyard command line: serve (the webhook), inject and check (the same
// mutation offline), export and import (the cloud side of the same declarations), version. It
// owns flags, input loading and reports; the work is done by internal/offline,
// internal/cloudside, policy and mutate.
package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Exit codes of lanyard inject and lanyard check.
const (
	ExitOK       = 0
	ExitFindings = 1 // a workload would be denied, or check found an error
	ExitUsage    = 2 // bad flags or unreadable/invalid input
)

// exitError carries an exit code; its message (if any) has already been reported or is printed
// by Run.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func usageError(err error) error    { return &exitError{code: ExitUsage, err: err} }
func findingsError(err error) error { return &exitError{code: ExitFindings, err: err} }

// Run executes the command line args and returns the process exit code.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCommand(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "error: %v\n", ee.err)
		}
		return ee.code
	}
	// Cobra's own errors: unknown flags, wrong arguments.
	fmt.Fprintf(stderr, "error: %v\n", err)
	return ExitUsage
}

func newRootCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "lanyard",
		Short: "Cloud identity and registry access for Kubernetes pods, from their ServiceAccount",
		Long: `lanyard gives every pod the cloud identity (AWS EKS Pod Identity or IRSA, Azure Workload
Identity, GCP Workload Identity Federation) and registry access its ServiceAccount is associated
with. It runs as a mutating admission webhook (lanyard serve) and performs the very same mutation
offline on manifests (lanyard inject, lanyard check).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newServeCommand(), newInjectCommand(), newCheckCommand(), newExportCommand(), newImportCommand(), newVersionCommand())
	return root
}
