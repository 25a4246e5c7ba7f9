package cluster

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

const memoryObjects = 20000

// fillStores fills the stores as a full sync of a large cluster would: n ServiceAccounts (two
// annotations each plus a kubectl last-applied configuration) into the compact ServiceAccount
// store, and n IdentityAssociations (trimmed) into the informer's store. Only what the stores keep
// stays referenced.
func fillStores(b testing.TB, n int) (*stores, *accountStore) {
	b.Helper()
	s := newStores()
	accounts := newAccountStore("")
	bulky := `{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"annotations":{"eks.amazonaws.com/role-arn":"` +
		roleARN + `","team":"payments"},"labels":{"app.kubernetes.io/part-of":"payments"},"name":"%s","namespace":"%s"},` +
		`"secrets":[{"name":"%s-token"}],"imagePullSecrets":[{"name":"registry"}],"automountServiceAccountToken":false,"padding":"` +
		strings.Repeat("x", 512) + `"}`
	for i := range n {
		namespace := fmt.Sprintf("ns-%d", i/20)
		name := fmt.Sprintf("app-%d", i)
		m := serviceAccountMeta()
		m.Namespace, m.Name = namespace, name
		m.UID = types.UID(fmt.Sprintf("00000000-0000-0000-0000-%012d", i))
		m.ResourceVersion = fmt.Sprint(1000000 + i)
		m.CreationTimestamp = created
		m.Annotations = map[string]string{
			policy.EKSRoleARN: fmt.Sprintf("arn:aws:iam::111122223333:role/%s", name),
			"team":            "payments",
			lastApplied:       fmt.Sprintf(bulky, name, namespace, name),
		}
		m.ManagedFields = managedFields()
		if err := accounts.Add(m); err != nil {
			b.Fatal(err)
		}

		ia := &v1alpha1.IdentityAssociation{}
		ia.Name = name + "-" + namespace
		ia.UID = types.UID(fmt.Sprintf("10000000-0000-0000-0000-%012d", i))
		ia.ResourceVersion = fmt.Sprint(2000000 + i)
		ia.Generation = 1
		ia.Annotations = map[string]string{lastApplied: fmt.Sprintf(bulky, name, namespace, name)}
		ia.ManagedFields = managedFields()
		ia.Spec = v1alpha1.IdentityAssociationSpec{Namespace: namespace, ServiceAccountName: name,
			AWS: &v1alpha1.AWSIdentity{RoleARN: fmt.Sprintf("arn:aws:iam::111122223333:role/%s", name), Mode: v1alpha1.AWSModeIRSA, Region: "us-west-2"}}
		sa := namespace + "/" + name
		ia.Status = v1alpha1.IdentityAssociationStatus{ObservedGeneration: 1, Providers: "aws(IRSA)", Conditions: []metav1.Condition{
			{Type: v1alpha1.ConditionConflict, Status: metav1.ConditionFalse, Reason: "Unique", Message: "no other IdentityAssociation claims ServiceAccount " + sa, ObservedGeneration: 1, LastTransitionTime: created},
			{Type: v1alpha1.ConditionServiceAccountFound, Status: metav1.ConditionTrue, Reason: "Found", Message: "ServiceAccount " + sa + " exists", ObservedGeneration: 1, LastTransitionTime: created},
			{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready", Message: "pods of ServiceAccount " + sa + " get aws(IRSA)", ObservedGeneration: 1, LastTransitionTime: created},
		}}
		kept, err := TrimPolicyObject(ia)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.associations.Add(kept); err != nil {
			b.Fatal(err)
		}
	}
	return s, accounts
}

// liveHeap is the heap's live bytes after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkCacheMemory reports the heap held by the caches of 20,000 ServiceAccounts and 20,000
// IdentityAssociations with the statuses the reconciler writes (the SPEC §9 memory scenario):
// "MiB" is the stores' own live heap (after GC, minus the live heap before filling), "heap-MiB"
// the process's whole live heap.
func BenchmarkCacheMemory(b *testing.B) {
	var stores, total float64
	for b.Loop() {
		before := liveHeap()
		s, accounts := fillStores(b, memoryObjects)
		r, err := NewReaderFromIndexers(s.indexers(), nil, testOptions()) // builds the association index
		if err != nil {
			b.Fatal(err)
		}
		after := liveHeap()
		if got := accounts.len() + len(s.associations.ListKeys()); got != 2*memoryObjects {
			b.Fatalf("stores hold %d objects", got)
		}
		runtime.KeepAlive(s)
		runtime.KeepAlive(accounts)
		runtime.KeepAlive(r)
		stores = float64(after-before) / (1 << 20)
		total = float64(after) / (1 << 20)
	}
	b.ReportMetric(stores, "MiB")
	b.ReportMetric(total, "heap-MiB")
}
