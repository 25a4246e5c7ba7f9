package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lanyard-dev/lanyard/bench/budget"
	"github.com/lanyard-dev/lanyard/bench/loadgen"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// TestBenchSmoke runs `make bench`'s plan (bench/budget) in small: 50 ServiceAccounts +
// associations, one second per figure, against a lanyard serve of its own (a second replica
// beside the suite's, so not the status leader) and the floor server as bench/suite runs it
// (bench/floorserver). It
// asserts that every review was answered 200 with a patch and that the table has every row — no
// timing: the figures depend on the machine.
func TestBenchSmoke(t *testing.T) {
	work := t.TempDir()
	floorBin := filepath.Join(work, "floorserver")
	build := exec.Command("go", "build", "-o", floorBin, "../bench/floorserver")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	require.NoError(t, build.Run(), "building bench/floorserver")
	floor, err := loadgen.StartFloor(floorBin)
	require.NoError(t, err)
	t.Cleanup(floor.Stop)

	ns := namespace(t, true)
	t.Cleanup(func() {
		_ = k8s.DeleteAllOf(ctx(t), &v1alpha1.IdentityAssociation{}, client.MatchingLabels{loadgen.FixtureLabel: loadgen.FixtureLabelValue})
	})
	plan := budget.Plan{Sizes: []int{50}, LargeAt: []int{50}, Namespace: ns, Workers: 4, LargeWorkers: 2, Rate: 200,
		Duration: time.Second, Warmup: 200 * time.Millisecond, Rounds: 1, Timeout: 10 * time.Second, SeedWorkers: 8}
	lanyardServe := &budget.Lanyard{Binary: lanyard.binary, Kubeconfig: lanyard.kubeconfig,
		CertDir: testEnv.WebhookInstallOptions.LocalServingCertDir, Namespace: lanyardNamespace, LogDir: work}
	var progress bytes.Buffer
	runCtx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	rep, err := budget.Run(runCtx, plan, budget.Env{Client: k8s, Lanyard: lanyardServe, Floor: floor.Server(), Progress: &progress})
	require.NoError(t, err, progress.String())
	require.Empty(t, rep.Problems(), progress.String())

	var table bytes.Buffer
	rep.WriteMarkdown(&table, budget.Facts{Command: "go test ./e2e -run TestBenchSmoke", Date: time.Now(), CPUs: 1})
	t.Log("\n" + table.String())
	rows := rep.Rows()
	require.Len(t, rows, 8, "a heading and seven figures")
	for _, row := range rows[1:] {
		require.NotContains(t, row.Floor+row.Lanyard, "n/a", "row %q", row.Figure)
		require.NotEqual(t, "—", row.Ratio, "row %q", row.Figure)
		require.True(t, strings.Contains(table.String(), "| "+row.Figure+" |"), "row %q not in the table", row.Figure)
	}
	s := rep.Sizes[0]
	require.Equal(t, 50, s.Seeded.ServiceAccounts)
	require.Equal(t, 50, s.Seeded.Associations)
	require.NotNil(t, s.Large)
	require.Positive(t, s.LanyardMemory.Idle)
}
