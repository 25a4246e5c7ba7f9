package cluster

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

const memoryObjects = 20000

// fillStores fills the stores as the informers would after a full sync of a large cluster: n
// ServiceAccounts (two annotations each plus a kubectl last-applied configuration, trimmed on the
// way in) and n IdentityAssociations (trimmed). Only the trimmed copies stay referenced.
func fillStores(b testing.TB, n int) *stores {
	b.Helper()
	s := newStores()
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
		trimmed, err := trimServiceAccount(m)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.accounts.Add(trimmed); err != nil {
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
		ia.Status = v1alpha1.IdentityAssociationStatus{ObservedGeneration: 1, Providers: "aws(IRSA)"}
		kept, err := trimPolicyObject(ia)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.associations.Add(kept); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// BenchmarkCacheMemory reports the heap held by the caches of 20,000 ServiceAccounts and 20,000
// IdentityAssociations (the SPEC §9 memory scenario): "MiB" is the stores' own heap in use (after
// GC, minus the heap before filling), "heap-MiB" the process's whole heap in use.
func BenchmarkCacheMemory(b *testing.B) {
	var stores, total float64
	for b.Loop() {
		before := heapInUse()
		s := fillStores(b, memoryObjects)
		r, err := NewReaderFromIndexers(s.indexers(), nil, testOptions()) // builds the association index
		if err != nil {
			b.Fatal(err)
		}
		after := heapInUse()
		if got := len(s.accounts.ListKeys()) + len(s.associations.ListKeys()); got != 2*memoryObjects {
			b.Fatalf("stores hold %d objects", got)
		}
		runtime.KeepAlive(s)
		runtime.KeepAlive(r)
		stores = float64(after-before) / (1 << 20)
		total = float64(after) / (1 << 20)
	}
	b.ReportMetric(stores, "MiB")
	b.ReportMetric(total, "heap-MiB")
}
