// Package cluster reads lanyard's policy from a Kubernetes cluster. Reader serves the webhook's hot
// path from informer caches kept deliberately small (ServiceAccounts and Namespaces as metadata,
// trimmed to what resolution reads) with O(1) indexed lookups, and falls back to one rate-limited,
// de-duplicated live read when a ServiceAccount or Namespace is not cached yet: the "association
// created seconds before the pod" race must not yield an un-injected pod. Snapshot reads the same
// objects once, for lanyard inject/check --from-cluster.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lanyard-dev/lanyard/policy"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// Field names of the IdentityAssociation CRD's selectableFields, for live lookups.
const (
	fieldNamespace          = "spec.namespace"
	fieldServiceAccountName = "spec.serviceAccountName"
)

// Options tune the live fallback.
type Options struct {
	// LiveQPS and LiveBurst bound live reads on cache misses across all requests.
	LiveQPS   float64
	LiveBurst int
	// LiveTimeout bounds how long a request waits for a live read (including rate limiting); it
	// must stay well below the webhook timeout so failurePolicy, not the API server's timeout,
	// decides.
	LiveTimeout time.Duration
	// RecentWindow: a cached ServiceAccount younger than this with no cached association is
	// checked live too. The ServiceAccount and IdentityAssociation informers deliver events
	// independently, so right after both are created the first can be cached before the second.
	RecentWindow time.Duration
	// OnMiss, when set, is called for every cache miss with the resource name.
	OnMiss func(resource string)
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
	// EKSAnnotationPrefix: the EKS webhook's ServiceAccount annotations are kept under this
	// prefix (its --annotation-prefix); empty means eks.amazonaws.com.
	EKSAnnotationPrefix string
}

// DefaultOptions are sensible for a webhook with timeoutSeconds: 5.
func DefaultOptions() Options {
	return Options{LiveQPS: 20, LiveBurst: 50, LiveTimeout: 2 * time.Second, RecentWindow: time.Minute}
}

// Reader is a policy.Reader over informer caches with a live fallback.
type Reader struct {
	// waitForSync is the cache's WaitForCacheSync; nil for plain indexers (always synced).
	waitForSync  func(context.Context) bool
	live         client.Reader
	opts         Options
	limiter      *rate.Limiter
	group        singleflight.Group
	associations *associationIndex
	attachments  toolscache.Indexer
	accounts     accountLookup
	// accountStore is accounts when the Reader runs its own ServiceAccount reflector (NewReader).
	accountStore *accountStore
	namespaces   toolscache.Indexer
	// attachmentList is a snapshot of the attachments, rebuilt on change, so the hot path does not
	// allocate a list per request.
	attachmentList atomic.Pointer[[]*v1alpha1.RegistryAttachment]
	synced         atomic.Bool
	// trimAccount trims live-read ServiceAccounts as the cache's transform does.
	trimAccount func(any) (any, error)
}

var _ policy.Reader = (*Reader)(nil)

// Scheme returns a scheme with the types Reader caches.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// CacheOptions configures the manager's cache so that it holds only what resolution reads.
// ServiceAccounts are not in it: NewReader keeps them in a compact store of its own.
func CacheOptions(Options) cache.Options {
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&v1alpha1.IdentityAssociation{}: {Transform: TrimPolicyObject},
			&v1alpha1.RegistryAttachment{}:  {Transform: TrimPolicyObject},
			namespaceMeta():                 {Transform: trimNamespace},
		},
	}
}

func serviceAccountMeta() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ServiceAccount"))
	return m
}

// NamespaceObject is the object the cache holds Namespaces as (metadata only), for watches on the
// same informer.
func NamespaceObject() *metav1.PartialObjectMetadata { return namespaceMeta() }

func namespaceMeta() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	return m
}

// NewReader creates the informers (so the first admission finds them started and synced, never a
// lazy cold start), the indexes, and starts the ServiceAccount reflector (cfg and httpClient: the
// cache's connection), which runs until ctx ends.
func NewReader(ctx context.Context, c cache.Cache, cfg *rest.Config, httpClient *http.Client, live client.Reader, opts Options) (*Reader, error) {
	idx := Indexers{}
	var err error
	if idx.Associations, err = informerIndexer(ctx, c, &v1alpha1.IdentityAssociation{}, nil); err != nil {
		return nil, err
	}
	if idx.Attachments, err = informerIndexer(ctx, c, &v1alpha1.RegistryAttachment{}, nil); err != nil {
		return nil, err
	}
	// Only consulted by NewReaderFromIndexers' checks: the Reader reads accountStore.
	idx.ServiceAccounts = toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, nil)
	if idx.Namespaces, err = informerIndexer(ctx, c, namespaceMeta(), nil); err != nil {
		return nil, err
	}
	r, err := NewReaderFromIndexers(idx, live, opts)
	if err != nil {
		return nil, err
	}
	// The informer delivers every association to the index; readiness also waits until the
	// handler has seen the initial list, not just until the informer's store has it.
	r.associations = newAssociationIndex()
	iaInformer, err := c.GetInformer(ctx, &v1alpha1.IdentityAssociation{}, cache.BlockUntilSynced(false))
	if err != nil {
		return nil, err
	}
	iaReg, err := iaInformer.AddEventHandler(r.associations.handler())
	if err != nil {
		return nil, err
	}
	raInformer, err := c.GetInformer(ctx, &v1alpha1.RegistryAttachment{}, cache.BlockUntilSynced(false))
	if err != nil {
		return nil, err
	}
	rebuild := func(any) { r.RebuildAttachments() }
	if _, err := raInformer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: rebuild, UpdateFunc: func(_, o any) { rebuild(o) }, DeleteFunc: rebuild,
	}); err != nil {
		return nil, err
	}
	store := newAccountStore(opts.EKSAnnotationPrefix)
	if err := runAccountReflector(ctx, cfg, httpClient, store); err != nil {
		return nil, err
	}
	r.accounts, r.accountStore = store, store
	r.waitForSync = func(ctx context.Context) bool {
		return c.WaitForCacheSync(ctx) && toolscache.WaitForCacheSync(ctx.Done(), iaReg.HasSynced, store.synced.Load)
	}
	return r, nil
}

// Indexers are the stores Reader reads: IdentityAssociations, RegistryAttachments, and
// ServiceAccounts and Namespaces as *metav1.PartialObjectMetadata.
type Indexers struct {
	Associations, Attachments, ServiceAccounts, Namespaces toolscache.Indexer
}

// NewReaderFromIndexers builds a Reader over existing stores (plain indexers in tests; NewReader
// for informers). The associations present now are indexed; call RebuildAttachments after the
// attachments store changes.
func NewReaderFromIndexers(idx Indexers, live client.Reader, opts Options) (*Reader, error) {
	if opts.LiveQPS <= 0 || opts.LiveBurst <= 0 || opts.LiveTimeout <= 0 {
		return nil, errors.New("cluster reader: LiveQPS, LiveBurst and LiveTimeout must be positive")
	}
	if idx.Associations == nil || idx.Attachments == nil || idx.ServiceAccounts == nil || idx.Namespaces == nil {
		return nil, errors.New("cluster reader: every indexer is required")
	}
	r := &Reader{live: live, opts: opts, limiter: rate.NewLimiter(rate.Limit(opts.LiveQPS), opts.LiveBurst),
		trimAccount:  serviceAccountTrimmer(opts.EKSAnnotationPrefix),
		associations: newAssociationIndex(), attachments: idx.Attachments, accounts: indexerAccounts{idx.ServiceAccounts}, namespaces: idx.Namespaces}
	for _, obj := range idx.Associations.List() {
		if ia, ok := obj.(*v1alpha1.IdentityAssociation); ok {
			r.associations.upsert(nil, ia)
		}
	}
	r.RebuildAttachments()
	return r, nil
}

func informerIndexer(ctx context.Context, c cache.Cache, obj client.Object, indexers toolscache.Indexers) (toolscache.Indexer, error) {
	inf, err := c.GetInformer(ctx, obj, cache.BlockUntilSynced(false))
	if err != nil {
		return nil, fmt.Errorf("creating informer for %T: %w", obj, err)
	}
	if len(indexers) > 0 {
		if err := inf.AddIndexers(indexers); err != nil {
			return nil, err
		}
	}
	sii, ok := inf.(toolscache.SharedIndexInformer)
	if !ok {
		return nil, fmt.Errorf("informer for %T is a %T, not a SharedIndexInformer", obj, inf)
	}
	return sii.GetIndexer(), nil
}

// WaitForSync blocks until every cache has synced (or ctx ends) and reports success. Synced then
// stays true: readiness waits for it.
func (r *Reader) WaitForSync(ctx context.Context) bool {
	if r.waitForSync == nil || r.waitForSync(ctx) {
		r.RebuildAttachments()
		r.synced.Store(true)
	}
	return r.synced.Load()
}

// Synced reports whether the caches have synced.
func (r *Reader) Synced() bool { return r.synced.Load() }

// RebuildAttachments refreshes the attachment snapshot from the store.
func (r *Reader) RebuildAttachments() {
	items := r.attachments.List()
	list := make([]*v1alpha1.RegistryAttachment, 0, len(items))
	for _, it := range items {
		if ra, ok := it.(*v1alpha1.RegistryAttachment); ok {
			list = append(list, ra)
		}
	}
	// Sorted once here, so resolution does not sort per request.
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	r.attachmentList.Store(&list)
}

// ServiceAccount implements policy.Reader. When the ServiceAccount is not cached yet, the cache
// cannot be trusted for its associations either: both are read live, in one go.
//
// A ServiceAccount younger than RecentWindow with no cached association is confirmed live too:
// its association may be in flight. When that confirmation cannot complete (API server stalled,
// live reads saturated), the answer is an error, not "no identity": the webhook's failurePolicy
// decides, and a pod is never admitted without the identity it may have, silently. The cache
// still answers whenever it is enough: a cached association, or a ServiceAccount that arrived in
// the cache while the live read was failing.
func (r *Reader) ServiceAccount(ctx context.Context, namespace, name string) (*metav1.ObjectMeta, []*v1alpha1.IdentityAssociation, error) {
	if sa, ok := r.accounts.lookup(namespace, name); ok {
		cached, err := r.cachedAssociations(namespace, name)
		if err != nil || len(cached) > 0 || !r.recent(sa) {
			return sa, cached, err
		}
		res, err := r.liveServiceAccount(ctx, namespace, name, r.opts.LiveTimeout)
		if err != nil {
			if cached := r.associations.get(namespace, name); len(cached) > 0 { // arrived meanwhile
				return sa, cached, nil
			}
			return nil, nil, fmt.Errorf("ServiceAccount %s/%s is new (created %s) and whether an IdentityAssociation names it could not be confirmed: %w",
				namespace, name, sa.CreationTimestamp.UTC().Format(time.RFC3339), err)
		}
		return sa, res.associations, nil
	}
	res, err := r.liveServiceAccount(ctx, namespace, name, r.opts.LiveTimeout)
	if err != nil {
		// The cache may have caught up while the live read failed; a ServiceAccount that is
		// there now, and not new, is answered from it.
		if sa, ok := r.accounts.lookup(namespace, name); ok && !r.recent(sa) {
			cached, _ := r.cachedAssociations(namespace, name)
			return sa, cached, nil
		}
		return nil, nil, err
	}
	return res.account, res.associations, nil
}

// Namespace implements policy.Reader.
func (r *Reader) Namespace(ctx context.Context, name string) (*metav1.ObjectMeta, error) {
	if m, ok := cachedMeta(r.namespaces, name); ok {
		return m, nil
	}
	v, err := r.liveRead(ctx, "namespaces", "ns/"+name, r.opts.LiveTimeout, func(ctx context.Context) (any, error) {
		m := namespaceMeta()
		if err := r.live.Get(ctx, client.ObjectKey{Name: name}, m); err != nil {
			if apierrors.IsNotFound(err) {
				return (*metav1.ObjectMeta)(nil), nil
			}
			return nil, err
		}
		if trimmed, err := trimNamespace(m); err == nil {
			m = trimmed.(*metav1.PartialObjectMetadata)
		}
		return &m.ObjectMeta, nil
	})
	if err != nil {
		if m, ok := cachedMeta(r.namespaces, name); ok { // the cache caught up meanwhile
			return m, nil
		}
		return nil, fmt.Errorf("namespace %s: %w", name, err)
	}
	return v.(*metav1.ObjectMeta), nil
}

// BroadAssociations implements policy.Reader from the cache only, never live. The live read of a
// missing or young ServiceAccount confirms the associations naming it exactly: the race it
// guards against is a ServiceAccount and its own association applied together. A broad
// association is not tied to a ServiceAccount's creation, the selectable fields cannot ask the
// API server for "subjects with a '*' or a selector" (a live read would list every association of
// the cluster per miss), and the informer delivers a new one within milliseconds; a pod created in
// that instant may miss it, as with a RegistryAttachment (docs/architecture.md, Known limitations).
func (r *Reader) BroadAssociations(_ context.Context, namespace string) ([]*v1alpha1.IdentityAssociation, error) {
	return r.CachedBroadAssociations(namespace), nil
}

// RegistryAttachments implements policy.Reader.
func (r *Reader) RegistryAttachments(context.Context) ([]*v1alpha1.RegistryAttachment, error) {
	return *r.attachmentList.Load(), nil
}

func (r *Reader) recent(m *metav1.ObjectMeta) bool {
	if r.opts.RecentWindow <= 0 || m.CreationTimestamp.IsZero() {
		return false
	}
	return r.now().Sub(m.CreationTimestamp.Time) < r.opts.RecentWindow
}

func cachedMeta(idx toolscache.Indexer, key string) (*metav1.ObjectMeta, bool) {
	obj, exists, err := idx.GetByKey(key)
	if err != nil || !exists {
		return nil, false
	}
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return nil, false
	}
	return &m.ObjectMeta, true
}

func (r *Reader) cachedAssociations(namespace, serviceAccount string) ([]*v1alpha1.IdentityAssociation, error) {
	return r.associations.get(namespace, serviceAccount), nil
}

type liveAccount struct {
	account      *metav1.ObjectMeta
	associations []*v1alpha1.IdentityAssociation
}

// liveServiceAccount reads a ServiceAccount's metadata and its associations from the API server.
func (r *Reader) liveServiceAccount(ctx context.Context, namespace, name string, budget time.Duration) (*liveAccount, error) {
	v, err := r.liveRead(ctx, "serviceaccounts", "sa/"+namespace+"/"+name, budget, func(ctx context.Context) (any, error) {
		res := &liveAccount{}
		m := serviceAccountMeta()
		switch err := r.live.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, m); {
		case err == nil:
			if trimmed, err := r.trimAccount(m); err == nil {
				m = trimmed.(*metav1.PartialObjectMetadata)
			}
			res.account = &m.ObjectMeta
		case apierrors.IsNotFound(err):
		default:
			return nil, err
		}
		list := &v1alpha1.IdentityAssociationList{}
		if err := r.live.List(ctx, list, client.MatchingFields{fieldNamespace: namespace, fieldServiceAccountName: name}); err != nil {
			return nil, fmt.Errorf("listing IdentityAssociations: %w", err)
		}
		for i := range list.Items {
			if list.Items[i].Spec.Exact() { // the field selectors match exact subjects only; be sure
				res.associations = append(res.associations, &list.Items[i])
			}
		}
		return res, nil
	})
	if err != nil {
		return nil, fmt.Errorf("serviceaccount %s/%s not cached and live read failed: %w", namespace, name, err)
	}
	return v.(*liveAccount), nil
}

func (r *Reader) now() time.Time {
	if r.opts.Now != nil {
		return r.opts.Now()
	}
	return time.Now()
}

// liveRead runs fn once for concurrent callers of the same key, within the rate limit and the
// budget. The shared call is not bound to any one caller's context, but its budget is no longer
// than the first caller's remaining time: the rate limiter then refuses at once a wait that could
// not finish in time, instead of holding a token for an answer nobody waits for.
func (r *Reader) liveRead(ctx context.Context, resource, key string, budget time.Duration, fn func(context.Context) (any, error)) (any, error) {
	if r.opts.OnMiss != nil {
		r.opts.OnMiss(resource)
	}
	if deadline, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(deadline))
	}
	if budget <= 0 {
		return nil, context.DeadlineExceeded
	}
	ch := r.group.DoChan(key, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		defer cancel()
		if err := r.limiter.Wait(ctx); err != nil {
			return nil, fmt.Errorf("rate limit of live reads: %w", err)
		}
		return fn(ctx)
	})
	select {
	case res := <-ch:
		return res.Val, res.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// CachedAssociations returns the cached associations of a ServiceAccount, without live reads (for
// the status reconciler, which is driven by the same caches' events).
func (r *Reader) CachedAssociations(namespace, serviceAccount string) []*v1alpha1.IdentityAssociation {
	out, _ := r.cachedAssociations(namespace, serviceAccount)
	return out
}

// CachedBroadAssociations returns the cached associations with a broad subject that may match
// ServiceAccounts of the namespace (for the status reconciler).
func (r *Reader) CachedBroadAssociations(namespace string) []*v1alpha1.IdentityAssociation {
	if !r.associations.hasBroad() {
		return nil
	}
	m, known := cachedMeta(r.namespaces, namespace)
	var nsLabels map[string]string
	if known {
		nsLabels = m.Labels
	}
	return r.associations.broad(namespace, nsLabels, known)
}

// CachedNamespacePatternAssociations returns the cached associations whose namespace is a glob or
// a selector: a namespace appearing, going or relabelled may change what they match.
func (r *Reader) CachedNamespacePatternAssociations() []*v1alpha1.IdentityAssociation {
	return r.associations.namespacePatterns()
}

// CachedNamespaceLabels returns a cached namespace's labels (nil when not cached).
func (r *Reader) CachedNamespaceLabels(name string) map[string]string {
	if m, ok := cachedMeta(r.namespaces, name); ok {
		return m.Labels
	}
	return nil
}

// CountMatchingServiceAccounts counts the cached ServiceAccounts the subject of spec matches (for
// status.matchedServiceAccounts): one map lookup for an exact subject, a pass over the cached
// ServiceAccounts for a broad one.
func (r *Reader) CountMatchingServiceAccounts(spec *v1alpha1.IdentityAssociationSpec) int {
	if spec.Exact() {
		if r.CachedServiceAccountExists(spec.Namespace, spec.ServiceAccountName) {
			return 1
		}
		return 0
	}
	n := 0
	labelsOf := map[string]map[string]string{}
	r.accounts.each(func(namespace, name string) {
		if !v1alpha1.GlobMatch(spec.ServiceAccountName, name) {
			return
		}
		var nsLabels map[string]string
		if spec.NamespaceSelector != nil {
			l, ok := labelsOf[namespace]
			if !ok {
				l = r.CachedNamespaceLabels(namespace)
				labelsOf[namespace] = l
			}
			nsLabels = l
		}
		if spec.Match(namespace, nsLabels, name) != v1alpha1.NoMatch {
			n++
		}
	})
	return n
}

// CachedServiceAccountExists reports whether the ServiceAccount is in the cache.
func (r *Reader) CachedServiceAccountExists(namespace, name string) bool {
	_, ok := r.accounts.lookup(namespace, name)
	return ok
}

// OnServiceAccountChange calls fn whenever a ServiceAccount appears in or goes from the cache (for
// the status reconciler's ServiceAccountFound condition), until the returned function is called.
// Readers built from indexers report nothing.
func (r *Reader) OnServiceAccountChange(fn func(namespace, name string)) (stop func()) {
	if r.accountStore == nil {
		return func() {}
	}
	return r.accountStore.onChange(fn)
}
