package cluster

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
)

// accountLookup is how Reader finds a cached ServiceAccount.
type accountLookup interface {
	// lookup returns the ServiceAccount's metadata as far as resolution reads it (name, namespace,
	// creation time, compat annotations), or false when it is not cached.
	lookup(namespace, name string) (*metav1.ObjectMeta, bool)
	// each calls fn for every cached ServiceAccount, under the store's read lock: fn must not
	// call back into the store.
	each(fn func(namespace, name string))
}

// accountKey names a ServiceAccount without building a "namespace/name" string per lookup.
type accountKey struct{ namespace, name string }

// account is what lanyard keeps of a ServiceAccount: when it was created (a young one gets a live
// association check) and its compat annotations, which most do not carry.
type account struct {
	created     int64 // Unix seconds; 0 when unknown
	annotations map[string]string
}

// accountStore holds every ServiceAccount of the cluster as an account: about 90 bytes each,
// where an informer keeps a trimmed PartialObjectMetadata, its key string and a per-namespace
// index entry (about 400 bytes). It is filled by a reflector of its own (metadata-only list and
// watch, see runAccountReflector) and is the ReflectorStore that reflector writes to.
type accountStore struct {
	keep []string // the annotations kept (serviceAccountAnnotations)

	mu     sync.RWMutex
	byKey  map[accountKey]account
	synced atomic.Bool

	listenersMu sync.Mutex
	listeners   map[int]func(namespace, name string)
	nextID      int
}

var _ toolscache.ReflectorStore = (*accountStore)(nil)

func newAccountStore(eksPrefix string) *accountStore {
	return &accountStore{
		keep: serviceAccountAnnotations(eksPrefix), byKey: map[accountKey]account{},
		listeners: map[int]func(string, string){},
	}
}

func (s *accountStore) lookup(namespace, name string) (*metav1.ObjectMeta, bool) {
	s.mu.RLock()
	a, ok := s.byKey[accountKey{namespace, name}]
	s.mu.RUnlock()
	if !ok {
		return nil, false
	}
	m := &metav1.ObjectMeta{Name: name, Namespace: namespace, Annotations: a.annotations}
	if a.created != 0 {
		m.CreationTimestamp = metav1.Unix(a.created, 0)
	}
	return m, true
}

func (s *accountStore) each(fn func(namespace, name string)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for k := range s.byKey {
		fn(k.namespace, k.name)
	}
}

func (s *accountStore) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byKey)
}

// onChange calls fn (outside the store's lock) whenever a ServiceAccount appears or goes; the
// returned function stops that.
func (s *accountStore) onChange(fn func(namespace, name string)) (stop func()) {
	s.listenersMu.Lock()
	defer s.listenersMu.Unlock()
	id := s.nextID
	s.nextID++
	s.listeners[id] = fn
	return func() {
		s.listenersMu.Lock()
		defer s.listenersMu.Unlock()
		delete(s.listeners, id)
	}
}

func (s *accountStore) notify(keys []accountKey) {
	if len(keys) == 0 {
		return
	}
	s.listenersMu.Lock()
	fns := make([]func(string, string), 0, len(s.listeners))
	for _, fn := range s.listeners {
		fns = append(fns, fn)
	}
	s.listenersMu.Unlock()
	for _, fn := range fns {
		for _, k := range keys {
			fn(k.namespace, k.name)
		}
	}
}

// compact turns a listed or watched object into its key and account.
func (s *accountStore) compact(obj any) (accountKey, account, bool) {
	if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return accountKey{}, account{}, false
	}
	ann := keptAnnotations(m.Annotations, s.keep)
	a := account{annotations: ann}
	if !m.CreationTimestamp.IsZero() {
		a.created = m.CreationTimestamp.Unix()
	}
	return accountKey{intern(m.Namespace), m.Name}, a, true
}

// Add implements toolscache.ReflectorStore.
func (s *accountStore) Add(obj any) error { return s.Update(obj) }

// Update implements toolscache.ReflectorStore.
func (s *accountStore) Update(obj any) error {
	key, a, ok := s.compact(obj)
	if !ok {
		return fmt.Errorf("ServiceAccount store: unexpected %T", obj)
	}
	s.mu.Lock()
	_, existed := s.byKey[key]
	s.byKey[key] = a
	s.mu.Unlock()
	if !existed {
		s.notify([]accountKey{key})
	}
	return nil
}

// Delete implements toolscache.ReflectorStore.
func (s *accountStore) Delete(obj any) error {
	key, _, ok := s.compact(obj)
	if !ok {
		return fmt.Errorf("ServiceAccount store: unexpected %T", obj)
	}
	s.mu.Lock()
	_, existed := s.byKey[key]
	delete(s.byKey, key)
	s.mu.Unlock()
	if existed {
		s.notify([]accountKey{key})
	}
	return nil
}

// Replace implements toolscache.ReflectorStore: the reflector's full list, on start and after a
// watch could not be resumed. Listeners hear of every ServiceAccount that appeared or went.
func (s *accountStore) Replace(list []any, _ string) error {
	next := make(map[accountKey]account, len(list))
	for _, obj := range list {
		if key, a, ok := s.compact(obj); ok {
			next[key] = a
		}
	}
	s.mu.Lock()
	prev := s.byKey
	s.byKey = next
	s.mu.Unlock()
	s.synced.Store(true)
	var changed []accountKey
	for k := range next {
		if _, ok := prev[k]; !ok {
			changed = append(changed, k)
		}
	}
	for k := range prev {
		if _, ok := next[k]; !ok {
			changed = append(changed, k)
		}
	}
	if len(prev) > 0 { // on the first list, every association is reconciled anyway
		s.notify(changed)
	}
	return nil
}

// Resync implements toolscache.ReflectorStore; there is nothing to resync.
func (s *accountStore) Resync() error { return nil }

// runAccountReflector lists and watches ServiceAccounts as metadata (protobuf where the API server
// offers it) into s until ctx ends.
func runAccountReflector(ctx context.Context, cfg *rest.Config, httpClient *http.Client, s *accountStore) error {
	mc, err := metadata.NewForConfigAndClient(metadata.ConfigFor(cfg), httpClient)
	if err != nil {
		return fmt.Errorf("ServiceAccount metadata client: %w", err)
	}
	res := mc.Resource(corev1.SchemeGroupVersion.WithResource("serviceaccounts"))
	lw := &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return res.List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return res.Watch(ctx, opts)
		},
	}
	r := toolscache.NewReflectorWithOptions(lw, &metav1.PartialObjectMetadata{}, s, toolscache.ReflectorOptions{
		Name: "lanyard-serviceaccounts", TypeDescription: "ServiceAccount metadata", ResyncPeriod: 0,
		MinWatchTimeout: 5 * time.Minute,
	})
	go r.RunWithContext(ctx)
	return nil
}

// indexerAccounts reads ServiceAccounts from a plain indexer of *metav1.PartialObjectMetadata
// (NewReaderFromIndexers: tests and callers with stores of their own).
type indexerAccounts struct{ idx toolscache.Indexer }

func (a indexerAccounts) lookup(namespace, name string) (*metav1.ObjectMeta, bool) {
	return cachedMeta(a.idx, namespace+"/"+name)
}

func (a indexerAccounts) each(fn func(namespace, name string)) {
	for _, obj := range a.idx.List() {
		if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
			fn(m.Namespace, m.Name)
		}
	}
}
