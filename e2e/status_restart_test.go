package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

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
	require.NoError(t, lanyard.Start())
	time.Sleep(3 * time.Second) // the new leader has reconciled every association by now
	for _, ia := range ias {
		var got v1alpha1.IdentityAssociation
		require.NoError(t, k8s.Get(ctx(t), client.ObjectKeyFromObject(ia), &got))
		assert.Equal(t, versions[got.Name], got.ResourceVersion, "%s was written again after the restart", got.Name)
	}
}
