package status

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/lanyard-dev/lanyard/policy/cluster"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

func association(name string, spec v1alpha1.IdentityAssociationSpec) *v1alpha1.IdentityAssociation {
	spec.Namespace, spec.ServiceAccountName = "shop", "web"
	return &v1alpha1.IdentityAssociation{ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 3}, Spec: spec}
}

func TestCompute(t *testing.T) {
	aws := v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: "arn:aws:iam::111122223333:role/r"}}
	all := v1alpha1.IdentityAssociationSpec{
		AWS:   &v1alpha1.AWSIdentity{RoleARN: "arn:aws:iam::111122223333:role/r", Mode: v1alpha1.AWSModeIRSA},
		Azure: &v1alpha1.AzureIdentity{ClientID: "8b9f7a3c-1d2e-4f50-9a6b-7c8d9e0f1a2b"},
		GCP:   &v1alpha1.GCPIdentity{WorkloadIdentityProvider: "projects/1/locations/global/workloadIdentityPools/pool/providers/prov"},
	}
	tests := map[string]struct {
		ia            *v1alpha1.IdentityAssociation
		others        []string
		accountExists bool
		wantReady     metav1.ConditionStatus
		wantReason    string
		wantConflict  metav1.ConditionStatus
		wantFound     metav1.ConditionStatus
		wantProviders string
	}{
		"unique with its ServiceAccount is ready": {
			ia: association("a", aws), accountExists: true,
			wantReady: metav1.ConditionTrue, wantReason: "Ready", wantConflict: metav1.ConditionFalse, wantFound: metav1.ConditionTrue,
			wantProviders: "aws(PodIdentity)",
		},
		"a second claimant is a conflict and not ready": {
			ia: association("a", all), others: []string{"b"}, accountExists: true,
			wantReady: metav1.ConditionFalse, wantReason: "Conflict", wantConflict: metav1.ConditionTrue, wantFound: metav1.ConditionTrue,
			wantProviders: "aws(IRSA),azure,gcp",
		},
		"a missing ServiceAccount is not ready": {
			ia: association("a", aws), accountExists: false,
			wantReady: metav1.ConditionFalse, wantReason: "ServiceAccountNotFound", wantConflict: metav1.ConditionFalse, wantFound: metav1.ConditionFalse,
			wantProviders: "aws(PodIdentity)",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			claimants := []*v1alpha1.IdentityAssociation{tc.ia}
			for _, o := range tc.others {
				claimants = append(claimants, association(o, aws))
			}
			st := Compute(tc.ia, claimants, tc.accountExists)
			assert.Equal(t, int64(3), st.ObservedGeneration)
			assert.Equal(t, tc.wantProviders, st.Providers)
			ready := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
			if assert.NotNil(t, ready) {
				assert.Equal(t, tc.wantReady, ready.Status)
				assert.Equal(t, tc.wantReason, ready.Reason)
				assert.Equal(t, int64(3), ready.ObservedGeneration)
			}
			assert.Equal(t, tc.wantConflict, meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionConflict).Status)
			assert.Equal(t, tc.wantFound, meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionServiceAccountFound).Status)
			if len(tc.others) > 0 {
				assert.Contains(t, meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionConflict).Message, "also claimed by b")
			}
		})
	}
}

// An unchanged status is recognised as such (no write), and transition times are kept.
func TestComputeIsStable(t *testing.T) {
	ia := association("a", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: "arn:aws:iam::111122223333:role/r"}})
	first := Compute(ia, []*v1alpha1.IdentityAssociation{ia}, true)
	ia.Status = first
	second := Compute(ia, []*v1alpha1.IdentityAssociation{ia}, true)
	assert.True(t, equalStatus(first, second))
	for _, c := range first.Conditions {
		assert.Equal(t, c.LastTransitionTime, meta.FindStatusCondition(second.Conditions, c.Type).LastTransitionTime)
	}
	ia.Status = second
	third := Compute(ia, []*v1alpha1.IdentityAssociation{ia}, false)
	assert.False(t, equalStatus(second, third), "a lost ServiceAccount changes the status")
}

// The cache keeps a digest of each status: a cached status that says what the computed one says is
// equal to it (a restart writes nothing), and a change is still seen.
func TestCachedStatusComparesByDigest(t *testing.T) {
	ia := association("a", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: "arn:aws:iam::111122223333:role/r"}})
	ia.Status = Compute(ia, []*v1alpha1.IdentityAssociation{ia}, true)
	cached := cacheCopy(t, ia)
	assert.True(t, equalStatus(cached.Status, Compute(cached, []*v1alpha1.IdentityAssociation{cached}, true)))

	other := association("b", v1alpha1.IdentityAssociationSpec{GCP: &v1alpha1.GCPIdentity{}})
	changed := Compute(cached, []*v1alpha1.IdentityAssociation{cached, other}, true)
	assert.False(t, equalStatus(cached.Status, changed), "a conflict changes the status")
	for _, c := range changed.Conditions {
		assert.Greater(t, len(c.Message), 8, "the status written carries whole messages, never digests: %q", c.Message)
	}
}

// cacheCopy is ia as the webhook's cache holds it.
func cacheCopy(t *testing.T, ia *v1alpha1.IdentityAssociation) *v1alpha1.IdentityAssociation {
	t.Helper()
	obj, err := cluster.TrimPolicyObject(ia.DeepCopy())
	require.NoError(t, err)
	return obj.(*v1alpha1.IdentityAssociation)
}

func TestComputeBroadSubject(t *testing.T) {
	aws := v1alpha1.IdentityAssociationSpec{Namespace: "ci-*", ServiceAccountName: "runner-*", AWS: &v1alpha1.AWSIdentity{RoleARN: "arn:aws:iam::111122223333:role/r"}}
	broad := &v1alpha1.IdentityAssociation{ObjectMeta: metav1.ObjectMeta{Name: "ci", Generation: 1}, Spec: aws}
	twin := &v1alpha1.IdentityAssociation{ObjectMeta: metav1.ObjectMeta{Name: "ci-2", Generation: 1}, Spec: aws}
	tests := map[string]struct {
		claimants   []*v1alpha1.IdentityAssociation
		matched     int
		wantReady   metav1.ConditionStatus
		wantReason  string
		wantMessage string
	}{
		"matching ServiceAccounts make it ready": {claimants: []*v1alpha1.IdentityAssociation{broad}, matched: 3,
			wantReady: metav1.ConditionTrue, wantReason: "Ready", wantMessage: "pods of the ServiceAccounts matching ci-*/runner-* get aws(PodIdentity) unless a more specific IdentityAssociation names them"},
		"no matching ServiceAccount is not ready": {claimants: []*v1alpha1.IdentityAssociation{broad},
			wantReady: metav1.ConditionFalse, wantReason: "ServiceAccountNotFound", wantMessage: "no ServiceAccount matches ci-*/runner-*"},
		"the same subject twice is a conflict": {claimants: []*v1alpha1.IdentityAssociation{broad, twin}, matched: 3,
			wantReady: metav1.ConditionFalse, wantReason: "Conflict"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			st := ComputeMatched(broad, tc.claimants, tc.matched)
			assert.Equal(t, int32(tc.matched), st.MatchedServiceAccounts)
			ready := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
			require.NotNil(t, ready)
			assert.Equal(t, tc.wantReady, ready.Status)
			assert.Equal(t, tc.wantReason, ready.Reason)
			if tc.wantMessage != "" {
				assert.Equal(t, tc.wantMessage, ready.Message)
			}
		})
	}
	t.Run("a changed count is a changed status", func(t *testing.T) {
		broad.Status = ComputeMatched(broad, []*v1alpha1.IdentityAssociation{broad}, 3)
		assert.True(t, equalStatus(broad.Status, ComputeMatched(broad, []*v1alpha1.IdentityAssociation{broad}, 3)))
		assert.False(t, equalStatus(broad.Status, ComputeMatched(broad, []*v1alpha1.IdentityAssociation{broad}, 4)))
	})
}

func TestComputeExactCountsItsServiceAccount(t *testing.T) {
	ia := association("a", v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: "arn:aws:iam::111122223333:role/r"}})
	assert.Equal(t, int32(1), Compute(ia, []*v1alpha1.IdentityAssociation{ia}, true).MatchedServiceAccounts)
	assert.Equal(t, int32(0), Compute(ia, []*v1alpha1.IdentityAssociation{ia}, false).MatchedServiceAccounts)
}

// A term's start replays every association as created: only those whose status is not what
// Reconcile would write are queued, so a restart queues (and writes) nothing.
func TestCreatedAssociationsAreQueuedOnlyWhenTheirStatusIsStale(t *testing.T) {
	aws := v1alpha1.IdentityAssociationSpec{AWS: &v1alpha1.AWSIdentity{RoleARN: "arn:aws:iam::111122223333:role/r"}}
	upToDate := association("up-to-date", aws)
	upToDate.Spec.ServiceAccountName = "api"
	upToDate.Status = Compute(upToDate, []*v1alpha1.IdentityAssociation{upToDate}, true)
	fresh := association("fresh", aws)
	fresh.Spec.ServiceAccountName = "worker"
	// Two associations claim web; the cached statuses say each is unique.
	first, second := association("first", aws), association("second", aws)
	first.Status = Compute(first, []*v1alpha1.IdentityAssociation{first}, true)
	second.Status = Compute(second, []*v1alpha1.IdentityAssociation{second}, true)

	associations := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, nil)
	accounts := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, nil)
	for _, ia := range []*v1alpha1.IdentityAssociation{upToDate, fresh, first, second} {
		require.NoError(t, associations.Add(cacheCopy(t, ia)))
	}
	for _, name := range []string{"api", "worker", "web"} {
		sa := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name}}
		require.NoError(t, accounts.Add(sa))
	}
	reader, err := cluster.NewReaderFromIndexers(cluster.Indexers{Associations: associations, ServiceAccounts: accounts,
		Attachments: toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, nil), Namespaces: toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, nil)},
		nil, cluster.Options{LiveQPS: 1, LiveBurst: 1, LiveTimeout: time.Second})
	require.NoError(t, err)

	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	h := associationEvents{&Reconciler{Reader: reader}}
	for _, obj := range associations.List() {
		h.Create(context.Background(), event.TypedCreateEvent[*v1alpha1.IdentityAssociation]{Object: obj.(*v1alpha1.IdentityAssociation)}, q)
	}
	var queued []string
	for q.Len() > 0 {
		req, _ := q.Get()
		queued = append(queued, req.Name)
		q.Done(req)
	}
	assert.ElementsMatch(t, []string{"fresh", "first", "second"}, queued,
		"the association without a status and both sides of the conflict the cache did not know of; not the one already right")
}
