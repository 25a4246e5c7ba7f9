package cluster

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

func broadAssociation(name, namespace, sa string, sel *metav1.LabelSelector) *v1alpha1.IdentityAssociation {
	ia := association(name, sa)
	ia.Spec.Namespace, ia.Spec.NamespaceSelector = namespace, sel
	return ia
}

// Broad subjects are kept apart from the exact index: an exact lookup never sees them, and a
// subject that changes kind moves between the two.
func TestAssociationIndexKeepsBroadSubjectsApart(t *testing.T) {
	x := newAssociationIndex()
	h := x.handler()
	exact := association("exact", "web")
	nameGlob := broadAssociation("name-glob", ns, "w*", nil)
	nsGlob := broadAssociation("ns-glob", "team-*", "web", nil)
	suffixGlob := broadAssociation("suffix-glob", "*-a", "web", nil)
	selector := broadAssociation("selector", "", "*", &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}})
	for _, ia := range []*v1alpha1.IdentityAssociation{exact, nameGlob, nsGlob, suffixGlob, selector} {
		h.OnAdd(ia, true)
	}
	assert.Equal(t, []string{"exact"}, names(x.get(ns, "web")))
	teamA := map[string]string{"team": "a"}
	assert.Equal(t, []string{"name-glob", "ns-glob", "suffix-glob", "selector"}, names(x.broad(ns, teamA, true)))
	assert.Equal(t, []string{"name-glob", "ns-glob", "suffix-glob"}, names(x.broad(ns, map[string]string{"team": "b"}, true)), "the selector's label is missing")
	assert.Equal(t, []string{"name-glob", "ns-glob", "suffix-glob", "selector"}, names(x.broad(ns, nil, false)), "labels unknown: every selector")
	assert.Equal(t, []string{"selector"}, names(x.broad("other", teamA, true)), "a name glob belongs to its namespace, team-* and *-a do not match")
	assert.Equal(t, []string{"suffix-glob"}, names(x.broad("b-a", nil, true)))
	assert.Equal(t, []string{"ns-glob", "suffix-glob", "selector"}, names(x.namespacePatterns()))

	// The exact one becomes a glob, the glob becomes exact.
	h.OnUpdate(exact, broadAssociation("exact", ns, "*", nil))
	h.OnUpdate(nameGlob, association("name-glob", "web"))
	assert.Equal(t, []string{"name-glob"}, names(x.get(ns, "web")))
	assert.Equal(t, []string{"exact", "ns-glob", "suffix-glob", "selector"}, names(x.broad(ns, teamA, true)))

	h.OnDelete(nsGlob)
	h.OnDelete(suffixGlob)
	h.OnDelete(toolscache.DeletedFinalStateUnknown{Key: "selector", Obj: selector})
	h.OnDelete(broadAssociation("exact", ns, "*", nil))
	assert.Empty(t, x.broad(ns, teamA, true))
	assert.Empty(t, x.byNamespace, "no empty keys left behind")
	assert.Empty(t, x.byPrefix)
	assert.Empty(t, x.bySuffix)
	assert.Empty(t, x.byLabel)
}

// The cluster reader resolves precedence as policy.Static does (the CLI's reader), and a
// namespace's labels decide selectors.
func TestReaderResolvesBroadSubjects(t *testing.T) {
	s := newStores()
	s.addAccount(t, "web", nil)
	s.addAccount(t, "api", nil)
	s.addNamespace(t, ns, map[string]string{"team": "a"})
	s.addAssociation(t, broadAssociation("everyone", "*", "*", nil))
	s.addAssociation(t, broadAssociation("team-a-api", "", "api", &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}))
	s.addAssociation(t, broadAssociation("ns-web", ns, "w*", nil))
	r := newTestReader(t, s, nil, testOptions())
	res := policy.NewResolver(r, policy.Options{})
	for sa, want := range map[string]string{"web": "ns-web", "api": "team-a-api"} {
		applied, err := res.Resolve(context.Background(), policy.Subject{Namespace: ns, ServiceAccountName: sa})
		require.NoError(t, err)
		assert.Equal(t, "IdentityAssociation "+want, applied.Identity.Source, sa)
	}
	assert.Equal(t, 2, r.CountMatchingServiceAccounts(&broadAssociation("x", "*", "*", nil).Spec))
	assert.Equal(t, 1, r.CountMatchingServiceAccounts(&broadAssociation("x", "", "api", &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}).Spec))
	assert.Equal(t, 0, r.CountMatchingServiceAccounts(&broadAssociation("x", "", "*", &metav1.LabelSelector{MatchLabels: map[string]string{"team": "b"}}).Spec))
	assert.Equal(t, 1, r.CountMatchingServiceAccounts(&association("x", "web").Spec))
}

// benchReader is a reader over 20,000 exact associations (the SPEC §9 scenario) plus broad ones
// made by broad(i) for i < nBroad.
func benchReader(b *testing.B, nBroad int, broad func(i int) *v1alpha1.IdentityAssociation) *Reader {
	b.Helper()
	s, accounts := fillStores(b, memoryObjects)
	for i := range nBroad {
		kept, err := TrimPolicyObject(broad(i))
		if err != nil {
			b.Fatal(err)
		}
		if err := s.associations.Add(kept); err != nil {
			b.Fatal(err)
		}
	}
	for i := range memoryObjects / 20 {
		m := namespaceMeta()
		m.Name, m.Labels = fmt.Sprintf("ns-%d", i), map[string]string{"team": fmt.Sprintf("t-%d", i)}
		if err := s.namespaces.Add(m); err != nil {
			b.Fatal(err)
		}
		// A ServiceAccount no exact association names, in every namespace.
		sa := serviceAccountMeta()
		sa.Namespace, sa.Name = m.Name, "runner-1"
		if err := accounts.Add(sa); err != nil {
			b.Fatal(err)
		}
	}
	r, err := NewReaderFromIndexers(s.indexers(), nil, testOptions())
	if err != nil {
		b.Fatal(err)
	}
	r.accounts, r.accountStore = accounts, accounts
	return r
}

// BenchmarkResolveBroad: resolution of a ServiceAccount named by an exact association, and of
// one only 1,000 glob (or selector) associations can match, among 20,000 exact associations.
// The broad case matches the last broad association, so every one is evaluated.
func BenchmarkResolveBroad(b *testing.B) {
	aws := &v1alpha1.AWSIdentity{RoleARN: roleARN, Mode: v1alpha1.AWSModeIRSA}
	nsGlob := func(i int) *v1alpha1.IdentityAssociation {
		return &v1alpha1.IdentityAssociation{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("glob-%d", i)},
			Spec: v1alpha1.IdentityAssociationSpec{Namespace: fmt.Sprintf("ns-%d*", 999-i), ServiceAccountName: "runner-*", AWS: aws}}
	}
	selector := func(i int) *v1alpha1.IdentityAssociation {
		return &v1alpha1.IdentityAssociation{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("selector-%d", i)},
			Spec: v1alpha1.IdentityAssociationSpec{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": fmt.Sprintf("t-%d", 999-i)}},
				ServiceAccountName: "runner-*", AWS: aws}}
	}
	leadingStar := func(i int) *v1alpha1.IdentityAssociation { // indexed by suffix
		return &v1alpha1.IdentityAssociation{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("star-%d", i)},
			Spec: v1alpha1.IdentityAssociationSpec{Namespace: fmt.Sprintf("*s-%d", 999-i), ServiceAccountName: "runner-*", AWS: aws}}
	}
	everyNamespace := func(i int) *v1alpha1.IdentityAssociation { // "*": one bucket, every one is evaluated
		return &v1alpha1.IdentityAssociation{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("every-%d", i)},
			Spec: v1alpha1.IdentityAssociationSpec{Namespace: "*", ServiceAccountName: fmt.Sprintf("runner-%d", i), AWS: aws}}
	}
	cases := []struct {
		name    string
		nBroad  int
		broad   func(int) *v1alpha1.IdentityAssociation
		subject policy.Subject
		want    string
	}{
		{"exact/no-broad", 0, nil, policy.Subject{Namespace: "ns-0", ServiceAccountName: "app-0"}, "app-0-ns-0"},
		{"exact/1000-globs", 1000, nsGlob, policy.Subject{Namespace: "ns-0", ServiceAccountName: "app-0"}, "app-0-ns-0"},
		{"glob/1000-globs", 1000, nsGlob, policy.Subject{Namespace: "ns-0", ServiceAccountName: "runner-1"}, "glob-999"},
		{"glob/1000-leading-star-globs", 1000, leadingStar, policy.Subject{Namespace: "ns-0", ServiceAccountName: "runner-1"}, "star-999"},
		{"glob/1000-star-namespace-globs", 1000, everyNamespace, policy.Subject{Namespace: "ns-0", ServiceAccountName: "runner-1"}, "every-1"},
		{"selector/1000-selectors", 1000, selector, policy.Subject{Namespace: "ns-0", ServiceAccountName: "runner-1"}, "selector-999"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			r := benchReader(b, c.nBroad, c.broad)
			res := policy.NewResolver(r, policy.Options{})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				applied, err := res.Resolve(ctx, c.subject)
				if err != nil || applied.Identity.Source != "IdentityAssociation "+c.want {
					b.Fatalf("%v %+v", err, applied)
				}
			}
		})
	}
}

// BenchmarkBroadAssociationMemory reports the live heap held per glob association (informer store
// and index, trimmed as the cache keeps them), for 1,000 of them.
func BenchmarkBroadAssociationMemory(b *testing.B) {
	var perObject float64
	for b.Loop() {
		before := liveHeap()
		s := newStores()
		for i := range 1000 {
			ia := &v1alpha1.IdentityAssociation{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ci-runners-%d", i), Generation: 1},
				Spec: v1alpha1.IdentityAssociationSpec{Namespace: fmt.Sprintf("ci-%d-*", i), ServiceAccountName: "runner-*",
					AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN, Mode: v1alpha1.AWSModeIRSA, Region: "us-west-2"}}}
			kept, _ := TrimPolicyObject(ia)
			if err := s.associations.Add(kept); err != nil {
				b.Fatal(err)
			}
		}
		r, err := NewReaderFromIndexers(s.indexers(), nil, testOptions())
		if err != nil {
			b.Fatal(err)
		}
		after := liveHeap()
		runtime.KeepAlive(r)
		runtime.KeepAlive(s)
		perObject = float64(after-before) / 1000
	}
	b.ReportMetric(perObject, "B/association")
}
