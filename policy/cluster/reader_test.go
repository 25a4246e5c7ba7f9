package cluster

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

const (
	ns      = "team-a"
	roleARN = "arn:aws:iam::111122223333:role/web"
)

// live is the API server behind the caches: a fake client with the CRD's selectable fields as
// field indexes, wrapped to count Get and List calls and to inject errors and delays.
type live struct {
	client.Client
	gets, lists atomic.Int32

	getErr, listErr error
	// getDelay delays every Get (respecting the call's context).
	getDelay time.Duration
	// beforeGet, when set, runs at the start of every Get.
	beforeGet func()
}

func newLive(t testing.TB, objs ...client.Object) *live {
	t.Helper()
	scheme, err := Scheme()
	require.NoError(t, err)
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
		WithIndex(&v1alpha1.IdentityAssociation{}, fieldNamespace, func(o client.Object) []string {
			return []string{o.(*v1alpha1.IdentityAssociation).Spec.Namespace}
		}).
		WithIndex(&v1alpha1.IdentityAssociation{}, fieldServiceAccountName, func(o client.Object) []string {
			return []string{o.(*v1alpha1.IdentityAssociation).Spec.ServiceAccountName}
		}).
		Build()
	l := &live{}
	l.Client = interceptor.NewClient(c, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			l.gets.Add(1)
			if l.beforeGet != nil {
				l.beforeGet()
			}
			if l.getDelay > 0 {
				select {
				case <-time.After(l.getDelay):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if l.getErr != nil {
				return l.getErr
			}
			return c.Get(ctx, key, obj, opts...)
		},
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			l.lists.Add(1)
			if l.listErr != nil {
				return l.listErr
			}
			return c.List(ctx, list, opts...)
		},
	})
	return l
}

// stores are the informer stores a Reader reads, as plain indexers.
type stores struct {
	associations, attachments, accounts, namespaces toolscache.Indexer
}

func newStores() *stores {
	return &stores{
		associations: toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{}),
		attachments:  toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{}),
		accounts:     toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{}),
		namespaces:   toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{}),
	}
}

func (s *stores) indexers() Indexers {
	return Indexers{Associations: s.associations, Attachments: s.attachments, ServiceAccounts: s.accounts, Namespaces: s.namespaces}
}

// addAccount stores a ServiceAccount as the informer would: metadata only, trimmed.
func (s *stores) addAccount(t testing.TB, name string, annotations map[string]string) {
	t.Helper()
	m := serviceAccountMeta()
	m.Namespace, m.Name, m.Annotations = ns, name, annotations
	trimmed, err := trimServiceAccount(m)
	require.NoError(t, err)
	require.NoError(t, s.accounts.Add(trimmed))
}

func (s *stores) addNamespace(t testing.TB, name string, labels map[string]string) {
	t.Helper()
	m := namespaceMeta()
	m.Name, m.Labels = name, labels
	trimmed, err := trimNamespace(m)
	require.NoError(t, err)
	require.NoError(t, s.namespaces.Add(trimmed))
}

func (s *stores) addAssociation(t testing.TB, ia *v1alpha1.IdentityAssociation) {
	t.Helper()
	trimmed, err := TrimPolicyObject(ia.DeepCopy())
	require.NoError(t, err)
	require.NoError(t, s.associations.Add(trimmed))
}

func testOptions() Options {
	return Options{LiveQPS: 1000, LiveBurst: 1000, LiveTimeout: time.Second}
}

func newTestReader(t testing.TB, s *stores, l *live, opts Options) *Reader {
	t.Helper()
	r, err := NewReaderFromIndexers(s.indexers(), l, opts)
	require.NoError(t, err)
	return r
}

func association(name, sa string) *v1alpha1.IdentityAssociation {
	return &v1alpha1.IdentityAssociation{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.IdentityAssociationSpec{Namespace: ns, ServiceAccountName: sa,
			AWS: &v1alpha1.AWSIdentity{RoleARN: roleARN, Mode: v1alpha1.AWSModeIRSA}},
	}
}

func serviceAccount(name string, annotations map[string]string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations}}
}

func names(ias []*v1alpha1.IdentityAssociation) []string {
	var out []string
	for _, ia := range ias {
		out = append(out, ia.Name)
	}
	return out
}

func TestReaderServiceAccountLookups(t *testing.T) {
	compat := map[string]string{policy.EKSRoleARN: roleARN}
	tests := map[string]struct {
		cached     bool                   // the ServiceAccount is in the cache
		cachedIA   []string               // associations in the cache
		liveObjs   func() []client.Object // what only the API server has
		wantSA     bool
		wantAnn    map[string]string
		wantIA     []string
		wantGets   int32
		wantLists  int32
		wantMisses []string
	}{
		"cache hit answers from the cache without live calls": {
			cached: true, cachedIA: []string{"web"},
			liveObjs: func() []client.Object { return []client.Object{association("live-only", "web")} },
			wantSA:   true, wantAnn: compat, wantIA: []string{"web"},
		},
		"cache hit without associations does not go live": {
			cached:   true,
			liveObjs: func() []client.Object { return []client.Object{association("live-only", "web")} },
			wantSA:   true, wantAnn: compat,
		},
		"miss reads the ServiceAccount and its association live (created seconds before the pod)": {
			liveObjs: func() []client.Object {
				return []client.Object{serviceAccount("web", map[string]string{
					policy.EKSRoleARN: roleARN, "kubectl.kubernetes.io/last-applied-configuration": "{}",
				}), association("web", "web"), association("other", "api")}
			},
			wantSA: true, wantAnn: compat, wantIA: []string{"web"},
			wantGets: 1, wantLists: 1, wantMisses: []string{"serviceaccounts"},
		},
		"miss of a ServiceAccount that does not exist is not found, not an error": {
			liveObjs: func() []client.Object { return nil },
			wantGets: 1, wantLists: 1, wantMisses: []string{"serviceaccounts"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := newStores()
			if tc.cached {
				s.addAccount(t, "web", map[string]string{policy.EKSRoleARN: roleARN, "team": "payments"})
			}
			for _, n := range tc.cachedIA {
				s.addAssociation(t, association(n, "web"))
			}
			l := newLive(t, tc.liveObjs()...)
			var misses []string
			opts := testOptions()
			opts.OnMiss = func(resource string) { misses = append(misses, resource) }
			r := newTestReader(t, s, l, opts)

			sa, ias, err := r.ServiceAccount(t.Context(), ns, "web")
			require.NoError(t, err)
			if tc.wantSA {
				require.NotNil(t, sa)
				assert.Equal(t, "web", sa.Name)
				assert.Equal(t, ns, sa.Namespace)
				assert.Equal(t, tc.wantAnn, sa.Annotations, "only the compat annotations are kept")
			} else {
				assert.Nil(t, sa)
			}
			assert.Equal(t, tc.wantGets, l.gets.Load(), "live GETs")
			assert.Equal(t, tc.wantLists, l.lists.Load(), "live LISTs")

			assert.Equal(t, tc.wantIA, names(ias))
			assert.Equal(t, len(tc.wantMisses), len(misses), "one live read for the ServiceAccount and its associations: %v", misses)
			for _, m := range misses {
				assert.Contains(t, tc.wantMisses, m)
			}
		})
	}
}

func TestReaderNamespaceLookups(t *testing.T) {
	labels := map[string]string{policy.InjectLabel: policy.InjectEnabled, "kubernetes.io/metadata.name": ns}
	tests := map[string]struct {
		cached     bool
		live       []client.Object
		wantLabels map[string]string
		wantFound  bool
		wantGets   int32
		wantMisses []string
	}{
		"cache hit answers without live calls": {
			cached: true, wantFound: true, wantLabels: labels,
		},
		"miss reads the namespace live": {
			live:      []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels, Annotations: map[string]string{"a": "b"}}}},
			wantFound: true, wantLabels: labels, wantGets: 1, wantMisses: []string{"namespaces"},
		},
		"miss of a namespace that does not exist is not found": {
			wantGets: 1, wantMisses: []string{"namespaces"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := newStores()
			if tc.cached {
				s.addNamespace(t, ns, labels)
			}
			l := newLive(t, tc.live...)
			var misses []string
			opts := testOptions()
			opts.OnMiss = func(resource string) { misses = append(misses, resource) }
			r := newTestReader(t, s, l, opts)

			meta, err := r.Namespace(t.Context(), ns)
			require.NoError(t, err)
			if tc.wantFound {
				require.NotNil(t, meta)
				assert.Equal(t, ns, meta.Name)
				assert.Equal(t, tc.wantLabels, meta.Labels)
				assert.Empty(t, meta.Annotations, "namespaces are trimmed to labels")
			} else {
				assert.Nil(t, meta)
			}
			assert.Equal(t, tc.wantGets, l.gets.Load())
			assert.Zero(t, l.lists.Load())
			assert.Equal(t, tc.wantMisses, misses)
		})
	}
}

func TestReaderLiveFailures(t *testing.T) {
	errAPI := errors.New("the server is currently unable to handle the request")
	tests := map[string]struct {
		opts    func(*Options)
		setup   func(*live)
		lookup  func(context.Context, *Reader) error
		wantIs  error
		wantMsg []string
		within  time.Duration // the error must come within this long
	}{
		"a GET error is an error naming the ServiceAccount": {
			setup:   func(l *live) { l.getErr = errAPI },
			lookup:  lookupSA,
			wantIs:  errAPI,
			wantMsg: []string{"serviceaccount team-a/web not cached and live read failed", errAPI.Error()},
		},
		"a LIST error is an error naming the associations": {
			setup:   func(l *live) { l.listErr = errAPI },
			lookup:  lookupSA,
			wantIs:  errAPI,
			wantMsg: []string{"serviceaccount team-a/web", "listing IdentityAssociations", errAPI.Error()},
		},
		"a namespace GET error is an error naming the namespace": {
			setup:   func(l *live) { l.getErr = errAPI },
			lookup:  lookupNS,
			wantIs:  errAPI,
			wantMsg: []string{"namespace team-a", errAPI.Error()},
		},
		"a live read slower than LiveTimeout times out": {
			opts:    func(o *Options) { o.LiveTimeout = 50 * time.Millisecond },
			setup:   func(l *live) { l.getDelay = 10 * time.Second },
			lookup:  lookupSA,
			wantIs:  context.DeadlineExceeded,
			wantMsg: []string{"serviceaccount team-a/web not cached and live read failed"},
			within:  time.Second,
		},
		"the caller's own deadline ends the wait": {
			setup: func(l *live) { l.getDelay = 10 * time.Second },
			lookup: func(ctx context.Context, r *Reader) error {
				ctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
				defer cancel()
				return lookupSA(ctx, r)
			},
			wantIs: context.DeadlineExceeded,
			within: 500 * time.Millisecond,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			l := newLive(t, serviceAccount("web", nil), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
			tc.setup(l)
			opts := testOptions()
			if tc.opts != nil {
				tc.opts(&opts)
			}
			r := newTestReader(t, newStores(), l, opts)
			start := time.Now()
			err := tc.lookup(t.Context(), r)
			elapsed := time.Since(start)
			require.Error(t, err, "an unknown answer must not look like not-found")
			assert.ErrorIs(t, err, tc.wantIs)
			for _, msg := range tc.wantMsg {
				assert.Contains(t, err.Error(), msg)
			}
			if tc.within > 0 {
				assert.Less(t, elapsed, tc.within)
			}
		})
	}
}

func lookupSA(ctx context.Context, r *Reader) error {
	sa, _, err := r.ServiceAccount(ctx, ns, "web")
	if err == nil && sa == nil {
		return errors.New("nil, nil")
	}
	return err
}

func lookupNS(ctx context.Context, r *Reader) error {
	_, err := r.Namespace(ctx, ns)
	return err
}

// TestReaderConcurrentMissesShareOneRead: 20 requests missing the same ServiceAccount at once
// cause one live GET, and all get its answer.
func TestReaderConcurrentMissesShareOneRead(t *testing.T) {
	const callers = 20
	l := newLive(t, serviceAccount("web", map[string]string{policy.EKSRoleARN: roleARN}), association("web", "web"))
	var arrived sync.WaitGroup
	arrived.Add(callers)
	opts := testOptions()
	opts.OnMiss = func(string) { arrived.Done() }
	// The one GET waits until every caller has missed, then 50 ms more so all have joined.
	l.beforeGet = func() {
		waitTimeout(&arrived, 5*time.Second)
	}
	l.getDelay = 50 * time.Millisecond
	r := newTestReader(t, newStores(), l, opts)

	var wg sync.WaitGroup
	errs := make([]error, callers)
	results := make([]*metav1.ObjectMeta, callers)
	for i := range callers {
		wg.Go(func() {
			results[i], _, errs[i] = r.ServiceAccount(context.Background(), ns, "web")
		})
	}
	wg.Wait()
	for i := range callers {
		require.NoError(t, errs[i])
		require.NotNil(t, results[i])
		assert.Equal(t, roleARN, results[i].Annotations[policy.EKSRoleARN])
	}
	assert.Equal(t, int32(1), l.gets.Load(), "concurrent misses of one key share one live GET")
	assert.Equal(t, int32(1), l.lists.Load())
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// TestReaderRateLimit: live reads share one limiter; a miss that would wait beyond LiveTimeout
// fails promptly with a rate-limit error instead of queueing.
func TestReaderRateLimit(t *testing.T) {
	l := newLive(t, serviceAccount("web", nil), serviceAccount("api", nil))
	opts := Options{LiveQPS: 0.01, LiveBurst: 1, LiveTimeout: 200 * time.Millisecond}
	r := newTestReader(t, newStores(), l, opts)

	sa, _, err := r.ServiceAccount(t.Context(), ns, "web")
	require.NoError(t, err, "the burst allows the first miss")
	require.NotNil(t, sa)

	start := time.Now()
	_, _, err = r.ServiceAccount(t.Context(), ns, "api")
	elapsed := time.Since(start)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "rate limit of live reads")
	assert.Contains(t, err.Error(), "serviceaccount team-a/api")
	assert.LessOrEqual(t, elapsed, opts.LiveTimeout+100*time.Millisecond, "bounded by LiveTimeout")
	assert.Equal(t, int32(1), l.gets.Load(), "the limited read never reached the API server")
}

func TestReaderRegistryAttachmentsSnapshot(t *testing.T) {
	s := newStores()
	ra := func(name string) *v1alpha1.RegistryAttachment {
		return &v1alpha1.RegistryAttachment{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.RegistryAttachmentSpec{
			Registry: name + ".azurecr.io", Pull: v1alpha1.PullMethod{ImagePullSecret: &v1alpha1.SecretReference{Name: name}},
		}}
	}
	require.NoError(t, s.attachments.Add(ra("first")))
	r := newTestReader(t, s, newLive(t), testOptions())
	attachmentNames := func() []string {
		list, err := r.RegistryAttachments(t.Context())
		require.NoError(t, err)
		var out []string
		for _, a := range list {
			out = append(out, a.Name)
		}
		return out
	}
	tests := map[string]struct {
		change  func()
		rebuild bool
		want    []string
	}{
		"the initial snapshot holds what the store held at construction": {
			change: func() {}, want: []string{"first"},
		},
		"a store change is not visible before RebuildAttachments": {
			change: func() { require.NoError(t, s.attachments.Add(ra("second"))) }, want: []string{"first"},
		},
		"RebuildAttachments publishes the store": {
			change: func() {}, rebuild: true, want: []string{"first", "second"},
		},
		"a deletion is published by RebuildAttachments": {
			change: func() { require.NoError(t, s.attachments.Delete(ra("first"))) }, rebuild: true, want: []string{"second"},
		},
	}
	// Ordered steps over one reader.
	for _, name := range []string{
		"the initial snapshot holds what the store held at construction",
		"a store change is not visible before RebuildAttachments",
		"RebuildAttachments publishes the store",
		"a deletion is published by RebuildAttachments",
	} {
		tc := tests[name]
		t.Run(name, func(t *testing.T) {
			tc.change()
			if tc.rebuild {
				r.RebuildAttachments()
			}
			assert.ElementsMatch(t, tc.want, attachmentNames())
		})
	}
}

func TestReaderSync(t *testing.T) {
	r := newTestReader(t, newStores(), newLive(t), testOptions())
	assert.False(t, r.Synced(), "not ready before WaitForSync")
	assert.True(t, r.WaitForSync(t.Context()), "plain indexers are always synced")
	assert.True(t, r.Synced())
}

func TestNewReaderFromIndexersValidates(t *testing.T) {
	tests := map[string]struct {
		opts    Options
		idx     func(Indexers) Indexers
		wantErr string
	}{
		"zero QPS":           {opts: Options{LiveBurst: 1, LiveTimeout: time.Second}, wantErr: "must be positive"},
		"zero burst":         {opts: Options{LiveQPS: 1, LiveTimeout: time.Second}, wantErr: "must be positive"},
		"zero timeout":       {opts: Options{LiveQPS: 1, LiveBurst: 1}, wantErr: "must be positive"},
		"missing an indexer": {opts: testOptions(), idx: func(i Indexers) Indexers { i.Namespaces = nil; return i }, wantErr: "every indexer is required"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			idx := newStores().indexers()
			if tc.idx != nil {
				idx = tc.idx(idx)
			}
			_, err := NewReaderFromIndexers(idx, newLive(t), tc.opts)
			assert.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestCachedHelpers(t *testing.T) {
	s := newStores()
	s.addAccount(t, "web", nil)
	s.addAssociation(t, association("web", "web"))
	r := newTestReader(t, s, newLive(t), testOptions())
	tests := map[string]struct {
		sa         string
		wantExists bool
		wantIA     []string
	}{
		"cached ServiceAccount with an association": {sa: "web", wantExists: true, wantIA: []string{"web"}},
		"uncached ServiceAccount":                   {sa: "api"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.wantExists, r.CachedServiceAccountExists(ns, tc.sa))
			assert.Equal(t, tc.wantIA, names(r.CachedAssociations(ns, tc.sa)))
		})
	}
}

// TestReaderRecentServiceAccount: a cached ServiceAccount younger than RecentWindow with no cached
// association has its associations checked live (the two informers deliver independently). When
// that check cannot complete the answer is an error (the webhook's failurePolicy decides), never a
// silent "no identity".
func TestReaderRecentServiceAccount(t *testing.T) {
	now := time.Date(2026, time.July, 14, 9, 21, 7, 0, time.UTC)
	errAPI := errors.New("the server is currently unable to handle the request")
	tests := map[string]struct {
		age      time.Duration
		cachedIA bool
		getErr   error
		wantIA   []string
		wantErr  string
		wantGets int32
	}{
		"a recent ServiceAccount without cached association finds it live": {
			age: 5 * time.Second, wantIA: []string{"web"}, wantGets: 1,
		},
		"a recent ServiceAccount with a cached association stays in the cache": {
			age: 5 * time.Second, cachedIA: true, wantIA: []string{"web"},
		},
		"an old ServiceAccount without association is answered from the cache": {
			age: 2 * time.Minute,
		},
		"a failed live check of a recent ServiceAccount is an error, not an answer without identity": {
			age: 5 * time.Second, getErr: errAPI, wantGets: 1,
			wantErr: "ServiceAccount team-a/web is new (created 2026-07-14T09:21:02Z) and whether an IdentityAssociation names it could not be confirmed",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := newStores()
			m := serviceAccountMeta()
			m.Namespace, m.Name, m.CreationTimestamp = ns, "web", metav1.NewTime(now.Add(-tc.age))
			trimmed, err := trimServiceAccount(m)
			require.NoError(t, err)
			require.NoError(t, s.accounts.Add(trimmed))
			if tc.cachedIA {
				s.addAssociation(t, association("web", "web"))
			}
			l := newLive(t, serviceAccount("web", nil), association("web", "web"))
			l.getErr = tc.getErr
			opts := testOptions()
			opts.RecentWindow, opts.Now = time.Minute, func() time.Time { return now }
			r := newTestReader(t, s, l, opts)

			_, ias, err := r.ServiceAccount(t.Context(), ns, "web")
			assert.Equal(t, tc.wantGets, l.gets.Load())
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantIA, names(ias))
		})
	}
}

// One review's lookups share its deadline: a live read never waits past it, and a caller whose
// time is up is refused at once instead of taking a rate-limit token.
func TestReaderLiveReadHonoursTheCallersDeadline(t *testing.T) {
	s := newStores()
	l := newLive(t, serviceAccount("web", nil))
	opts := testOptions()
	opts.LiveQPS, opts.LiveBurst = 0.001, 1 // one read, then nothing for a long time
	r := newTestReader(t, s, l, opts)

	_, _, err := r.ServiceAccount(t.Context(), ns, "web")
	require.NoError(t, err, "the burst allows the first read")

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, _, err = r.ServiceAccount(ctx, ns, "other")
	require.ErrorContains(t, err, "rate limit of live reads")
	expired, cancelExpired := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancelExpired()
	_, err = r.Namespace(expired, "new-namespace")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, int32(1), l.gets.Load(), "no read was made past a deadline")
}

// When a live read fails but the cache has meanwhile caught up with an old ServiceAccount, the
// cache answers: failing would only refuse a pod lanyard can serve.
func TestReaderFallsBackToACacheThatCaughtUp(t *testing.T) {
	s := newStores()
	l := newLive(t)
	l.getErr = errors.New("the server is currently unable to handle the request")
	l.beforeGet = func() {
		m := serviceAccountMeta()
		m.Namespace, m.Name, m.CreationTimestamp = ns, "web", metav1.NewTime(time.Now().Add(-time.Hour))
		require.NoError(t, s.accounts.Add(m))
	}
	r := newTestReader(t, s, l, testOptions())
	sa, ias, err := r.ServiceAccount(t.Context(), ns, "web")
	require.NoError(t, err)
	require.NotNil(t, sa)
	assert.Empty(t, ias)
}

// The association index follows the informer's adds, updates (including a move to another
// ServiceAccount) and deletes, tombstones included, and never changes a slice it handed out.
func TestAssociationIndexFollowsEvents(t *testing.T) {
	x := newAssociationIndex()
	h := x.handler()
	a := association("a", "web")
	b := association("b", "web")
	h.OnAdd(a, true)
	h.OnAdd(b, true)
	handedOut := x.get(ns, "web")
	assert.Equal(t, []string{"a", "b"}, names(handedOut))

	moved := association("b", "api")
	h.OnUpdate(b, moved)
	assert.Equal(t, []string{"a"}, names(x.get(ns, "web")))
	assert.Equal(t, []string{"b"}, names(x.get(ns, "api")))
	assert.Equal(t, []string{"a", "b"}, names(handedOut), "a slice handed out is not modified")

	h.OnUpdate(a, a) // resync: no duplicate
	assert.Equal(t, []string{"a"}, names(x.get(ns, "web")))

	h.OnDelete(toolscache.DeletedFinalStateUnknown{Key: "a", Obj: a})
	assert.Empty(t, x.get(ns, "web"))
	h.OnDelete(moved)
	assert.Empty(t, x.get(ns, "api"))
	assert.Empty(t, x.byKey, "no empty keys left behind")
}
