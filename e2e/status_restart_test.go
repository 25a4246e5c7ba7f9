package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lanyard-dev/lanyard/internal/status"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// restartWithMetrics (re)starts the suite's lanyard serving metrics, for the rest of the test, and
// returns their address.
func restartWithMetrics(t *testing.T, args ...string) string {
	t.Helper()
	metricsAddr, err := freeAddr()
	require.NoError(t, err)
	lanyard.Stop()
	lanyard.args = append([]string{"--metrics-bind-address", metricsAddr}, args...)
	require.NoError(t, lanyard.Start())
	t.Cleanup(func() { // the suite's lanyard again, as it was
		lanyard.Stop()
		lanyard.args = nil
		require.NoError(t, lanyard.Start())
	})
	return metricsAddr
}

// patchesSent is the PATCH requests a lanyard has sent to the API server (client-go's metric).
func patchesSent(t *testing.T, metricsAddr string) int {
	t.Helper()
	n, _ := metricSum(t, metricsAddr, "rest_client_requests_total", `method="PATCH"`)
	return int(n)
}

// A restart writes no status that is already true: the reconciler compares against its cache
// (which keeps condition messages as digests), so a fleet of associations costs the API server
// nothing when lanyard restarts.
func TestRestartWritesNoStatus(t *testing.T) {
	ns := namespace(t, true)
	serviceAccount(t, ns, "app", nil)
	ias := []*v1alpha1.IdentityAssociation{
		association(t, ns, "app", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}}),
		association(t, ns, "missing", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN}}),
	}
	versions := map[string]string{}
	require.Eventually(t, func() bool {
		for _, ia := range ias {
			var got v1alpha1.IdentityAssociation
			if k8s.Get(ctx(t), client.ObjectKeyFromObject(ia), &got) != nil ||
				meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady) == nil {
				return false
			}
			versions[got.Name] = got.ResourceVersion
		}
		return true
	}, 30*time.Second, 100*time.Millisecond, "statuses written")
	time.Sleep(time.Second) // anything still queued is written now, not after the restart
	for _, ia := range ias {
		var got v1alpha1.IdentityAssociation
		require.NoError(t, k8s.Get(ctx(t), client.ObjectKeyFromObject(ia), &got))
		versions[got.Name] = got.ResourceVersion
	}

	lanyard.Stop()
	// A status written while lanyard was away, from scratch by status.Compute as the reconciler
	// would write it (new transition times).
	offline := &v1alpha1.IdentityAssociation{}
	require.NoError(t, k8s.Get(ctx(t), client.ObjectKeyFromObject(ias[0]), offline))
	offline.Status = v1alpha1.IdentityAssociationStatus{}
	offline.Status = status.Compute(offline, []*v1alpha1.IdentityAssociation{offline}, true)
	require.NoError(t, k8s.Status().Update(ctx(t), offline))
	versions[offline.Name] = offline.ResourceVersion
	metricsAddr := restartWithMetrics(t)
	time.Sleep(3 * time.Second) // the new leader has reconciled every association by now
	// Not even a patch that changes nothing (the API server would keep the resourceVersion).
	assert.Zero(t, patchesSent(t, metricsAddr), "status patches sent after the restart")
	for _, ia := range ias {
		var got v1alpha1.IdentityAssociation
		require.NoError(t, k8s.Get(ctx(t), client.ObjectKeyFromObject(ia), &got))
		assert.Equal(t, versions[got.Name], got.ResourceVersion, "%s was written again after the restart", got.Name)
	}
}
