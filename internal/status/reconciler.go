// Package status keeps IdentityAssociation status true: Ready, Conflict and ServiceAccountFound
// conditions with observedGeneration, a providers summary and the number of ServiceAccounts the
// subject matches, for kubectl get. It runs on the
// leader only and reads the webhook's caches. Losing the lease stops the reconciler, never the
// process: the webhook on every replica keeps admitting through an API server outage.
package status

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-logr/logr"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/lanyard-dev/lanyard/policy/cluster"
	"github.com/lanyard-dev/lanyard/policy/v1alpha1"
)

// Reconciler writes IdentityAssociation status. It reads from the shared cache and writes only
// when the status differs, so a restart costs no API calls.
type Reconciler struct {
	Client client.Client
	Reader *cluster.Reader
	// Pacer spaces the writes; nil writes as fast as the client allows.
	Pacer *Pacer
	// Live reads an association from the API server before its status is replaced (the cache
	// keeps only a digest of statuses); nil means Client.
	Live client.Reader
}

func (r *Reconciler) live() client.Reader {
	if r.Live != nil {
		return r.Live
	}
	return r.Client
}

// newController builds the controller over the shared cache: associations, and ServiceAccounts
// (metadata only, the same informer the webhook uses) mapped to the associations naming them. It
// is unmanaged: the elector starts a fresh one for each leadership term.
func (r *Reconciler) newController(c cache.Cache, log logr.Logger) (controller.Controller, error) {
	ctl, err := controller.NewUnmanaged("identityassociation-status", controller.Options{
		Reconciler:              r,
		MaxConcurrentReconciles: 1,
		RecoverPanic:            ptr.To(true),
		CacheSyncTimeout:        2 * time.Minute,
		SkipNameValidation:      ptr.To(true), // one per leadership term
		// The classic queue: the priority queue costs ~450 bytes per queued association, and on
		// start every association is queued once.
		UsePriorityQueue: ptr.To(false),
		Logger:           log,
	})
	if err != nil {
		return nil, err
	}
	for _, src := range []source.Source{
		source.Kind(c, &v1alpha1.IdentityAssociation{}, associationEvents{r}),
		source.Func(r.serviceAccountChanges),
		// A namespace appearing, going or relabelled changes what namespaceSelectors match (a
		// namespace's ServiceAccounts come and go with their own events).
		source.Kind(c, cluster.NamespaceObject(), handler.TypedEnqueueRequestsFromMapFunc(r.namespaceChanged),
			predicate.TypedLabelChangedPredicate[*metav1.PartialObjectMetadata]{}),
	} {
		if err := ctl.Watch(src); err != nil {
			return nil, err
		}
	}
	return ctl, nil
}

// associationEvents queues the associations an association event may change: the association and
// its claimants (a change to one can start or end a conflict for the others). A creation — which
// includes every association the informer lists when a leadership term starts — queues only those
// whose status is not already what it should be: a restart then queues nothing, and the work
// queue's sets, which keep their largest size for the life of the term, stay small instead of
// holding room for every association.
type associationEvents struct{ r *Reconciler }

type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]

func (h associationEvents) Create(_ context.Context, e event.TypedCreateEvent[*v1alpha1.IdentityAssociation], q queue) {
	ias := h.r.claimants(e.Object)
	if !slices.ContainsFunc(ias, func(c *v1alpha1.IdentityAssociation) bool { return c.Name == e.Object.Name }) {
		ias = append(ias, e.Object) // not indexed yet: the index and this handler see events independently
	}
	for _, ia := range ias {
		if h.r.needsWrite(ia) {
			q.Add(request(ia))
		}
	}
}

func (h associationEvents) Update(_ context.Context, e event.TypedUpdateEvent[*v1alpha1.IdentityAssociation], q queue) {
	h.all(q, e.ObjectOld)
	h.all(q, e.ObjectNew)
}

func (h associationEvents) Delete(_ context.Context, e event.TypedDeleteEvent[*v1alpha1.IdentityAssociation], q queue) {
	h.all(q, e.Object)
}

func (h associationEvents) Generic(_ context.Context, e event.TypedGenericEvent[*v1alpha1.IdentityAssociation], q queue) {
	h.all(q, e.Object)
}

// all queues ia and its claimants (the queue drops duplicates).
func (h associationEvents) all(q queue, ia *v1alpha1.IdentityAssociation) {
	q.Add(request(ia))
	for _, c := range h.r.claimants(ia) {
		q.Add(request(c))
	}
}

// needsWrite reports whether the association's status differs from what Reconcile would write.
func (r *Reconciler) needsWrite(ia *v1alpha1.IdentityAssociation) bool {
	return !equalStatus(ia.Status, r.desired(ia))
}

// desired is the status ia should have, from the caches.
func (r *Reconciler) desired(ia *v1alpha1.IdentityAssociation) v1alpha1.IdentityAssociationStatus {
	return ComputeMatched(ia, r.claimants(ia), r.Reader.CountMatchingServiceAccounts(&ia.Spec))
}

func request(ia *v1alpha1.IdentityAssociation) reconcile.Request {
	return reconcile.Request{NamespacedName: client.ObjectKey{Name: ia.Name}}
}

// claimants are the cached associations with the same subject as ia, ia included once cached.
func (r *Reconciler) claimants(ia *v1alpha1.IdentityAssociation) []*v1alpha1.IdentityAssociation {
	if ia.Spec.Exact() {
		return r.Reader.CachedAssociations(ia.Spec.Namespace, ia.Spec.ServiceAccountName)
	}
	key := ia.Spec.SubjectKey()
	var out []*v1alpha1.IdentityAssociation
	for _, other := range r.Reader.CachedBroadAssociations(ia.Spec.Namespace) {
		if other.Spec.SubjectKey() == key {
			out = append(out, other)
		}
	}
	return out
}

// serviceAccountChanges queues the associations matching a ServiceAccount that appeared or went
// (their ServiceAccountFound condition and matchedServiceAccounts), for as long as the controller
// runs.
func (r *Reconciler) serviceAccountChanges(ctx context.Context, q queue) error {
	stop := r.Reader.OnServiceAccountChange(func(namespace, name string) {
		for _, req := range requests(r.Reader.CachedAssociations(namespace, name)) {
			q.Add(req)
		}
		var nsLabels map[string]string
		for _, ia := range r.Reader.CachedBroadAssociations(namespace) {
			if ia.Spec.NamespaceSelector != nil && nsLabels == nil {
				nsLabels = r.Reader.CachedNamespaceLabels(namespace)
			}
			if ia.Spec.Match(namespace, nsLabels, name) != v1alpha1.NoMatch {
				q.Add(request(ia))
			}
		}
	})
	context.AfterFunc(ctx, stop)
	return nil
}

// namespaceChanged queues the associations that select namespaces by label.
func (r *Reconciler) namespaceChanged(context.Context, *metav1.PartialObjectMetadata) []reconcile.Request {
	var out []reconcile.Request
	for _, ia := range r.Reader.CachedNamespacePatternAssociations() {
		if ia.Spec.NamespaceSelector != nil {
			out = append(out, request(ia))
		}
	}
	return out
}

func requests(ias []*v1alpha1.IdentityAssociation) []reconcile.Request {
	out := make([]reconcile.Request, 0, len(ias))
	for _, ia := range ias {
		out = append(out, request(ia))
	}
	return out
}

// Reconcile computes the conditions of one association and patches its status when they changed.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	ia := &v1alpha1.IdentityAssociation{}
	if err := r.Client.Get(ctx, req.NamespacedName, ia); err != nil {
		if apierrors.IsNotFound(err) || ctx.Err() != nil {
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, err
	}
	desired := r.desired(ia)
	if equalStatus(ia.Status, desired) {
		return reconcile.Result{}, nil
	}
	if r.Pacer != nil {
		if err := r.Pacer.Wait(ctx); err != nil {
			return reconcile.Result{}, nil // the term is ending: the next leader computes it again
		}
	}
	if cluster.IsCachedDigest(ia.Status) {
		// The cache keeps a digest of the status: its conditions' transition times, kept when a
		// condition does not change, and other controllers' conditions are read live.
		live := &v1alpha1.IdentityAssociation{}
		if err := r.live().Get(ctx, req.NamespacedName, live); err != nil {
			if apierrors.IsNotFound(err) || ctx.Err() != nil {
				return reconcile.Result{}, nil
			}
			return reconcile.Result{}, fmt.Errorf("reading IdentityAssociation %s: %w", req.Name, err)
		}
		ia = live
		// Computed again from the live conditions (their transition times are kept).
		if desired = r.desired(ia); equalStatus(ia.Status, desired) {
			return reconcile.Result{}, nil // the cache was behind
		}
	}
	patch := client.MergeFrom(ia.DeepCopy())
	ia.Status = desired
	if err := r.Client.Status().Patch(ctx, ia, patch); err != nil {
		// Gone, or the term is ending (shutdown, lost lease): nothing to retry here, and a shutdown
		// with statuses still queued is not an error — the next leader computes them again.
		if apierrors.IsNotFound(err) || ctx.Err() != nil {
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("patching status of IdentityAssociation %s: %w", ia.Name, err)
	}
	return reconcile.Result{}, nil
}

// Compute returns the status an association with an exact subject should have, given every
// association of its ServiceAccount (itself included) and whether the ServiceAccount exists.
// Condition transition times are kept from the current status when a condition's status does not
// change.
func Compute(ia *v1alpha1.IdentityAssociation, claimants []*v1alpha1.IdentityAssociation, accountExists bool) v1alpha1.IdentityAssociationStatus {
	matched := 0
	if accountExists {
		matched = 1
	}
	return ComputeMatched(ia, claimants, matched)
}

// ComputeMatched returns the status an association should have, given every association with the
// same subject (itself included) and how many existing ServiceAccounts its subject matches.
func ComputeMatched(ia *v1alpha1.IdentityAssociation, claimants []*v1alpha1.IdentityAssociation, matched int) v1alpha1.IdentityAssociationStatus {
	st := v1alpha1.IdentityAssociationStatus{
		ObservedGeneration:     ia.Generation,
		Providers:              Providers(ia),
		MatchedServiceAccounts: int32(min(matched, math.MaxInt32)), //nolint:gosec // bounded just above
		Conditions:             append([]metav1.Condition(nil), ia.Status.Conditions...),
	}
	if !ia.Spec.Exact() {
		return computeBroad(ia, claimants, matched, st)
	}
	accountExists := matched > 0
	others := otherClaimants(ia, claimants)
	sa := ia.Spec.Namespace + "/" + ia.Spec.ServiceAccountName
	set := conditionSetter(&st, ia.Generation)
	if len(others) > 0 {
		set(v1alpha1.ConditionConflict, true, "ServiceAccountClaimedTwice",
			fmt.Sprintf("ServiceAccount %s is also claimed by %s: its pods get no identity until one association remains", sa, strings.Join(others, ", ")))
	} else {
		set(v1alpha1.ConditionConflict, false, "Unique", "no other IdentityAssociation claims ServiceAccount "+sa)
	}
	if accountExists {
		set(v1alpha1.ConditionServiceAccountFound, true, "Found", "ServiceAccount "+sa+" exists")
	} else {
		set(v1alpha1.ConditionServiceAccountFound, false, "NotFound", "ServiceAccount "+sa+" does not exist")
	}
	switch {
	case len(others) > 0:
		set(v1alpha1.ConditionReady, false, "Conflict", "another IdentityAssociation claims the same ServiceAccount")
	case !accountExists:
		set(v1alpha1.ConditionReady, false, "ServiceAccountNotFound", "ServiceAccount "+sa+" does not exist")
	default:
		set(v1alpha1.ConditionReady, true, "Ready", "pods of ServiceAccount "+sa+" get "+st.Providers)
	}
	return st
}

// otherClaimants are the names of the claimants other than ia, sorted.
func otherClaimants(ia *v1alpha1.IdentityAssociation, claimants []*v1alpha1.IdentityAssociation) []string {
	var others []string
	for _, c := range claimants {
		if c.Name != ia.Name {
			others = append(others, c.Name)
		}
	}
	sort.Strings(others)
	return others
}

// conditionSetter sets one condition of st for the association's generation.
func conditionSetter(st *v1alpha1.IdentityAssociationStatus, generation int64) func(t string, ok bool, reason, msg string) {
	return func(t string, ok bool, reason, msg string) {
		status := metav1.ConditionFalse
		if ok {
			status = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: t, Status: status, Reason: reason, Message: msg, ObservedGeneration: generation})
	}
}

// computeBroad fills the conditions of an association with a broad subject.
func computeBroad(ia *v1alpha1.IdentityAssociation, claimants []*v1alpha1.IdentityAssociation, matched int, st v1alpha1.IdentityAssociationStatus) v1alpha1.IdentityAssociationStatus {
	others := otherClaimants(ia, claimants)
	subject := ia.Spec.Subject()
	set := conditionSetter(&st, ia.Generation)
	if len(others) > 0 {
		set(v1alpha1.ConditionConflict, true, "SubjectClaimedTwice",
			fmt.Sprintf("subject %s is also claimed by %s: the ServiceAccounts it would decide get no identity from it until one association remains", subject, strings.Join(others, ", ")))
	} else {
		set(v1alpha1.ConditionConflict, false, "Unique", "no other IdentityAssociation has subject "+subject)
	}
	if matched > 0 {
		set(v1alpha1.ConditionServiceAccountFound, true, "Found", fmt.Sprintf("%d ServiceAccounts match %s", matched, subject))
	} else {
		set(v1alpha1.ConditionServiceAccountFound, false, "NotFound", "no ServiceAccount matches "+subject)
	}
	switch {
	case len(others) > 0:
		set(v1alpha1.ConditionReady, false, "Conflict", "another IdentityAssociation has the same subject")
	case matched == 0:
		set(v1alpha1.ConditionReady, false, "ServiceAccountNotFound", "no ServiceAccount matches "+subject)
	default:
		set(v1alpha1.ConditionReady, true, "Ready", fmt.Sprintf("pods of the ServiceAccounts matching %s get %s unless a more specific IdentityAssociation names them", subject, st.Providers))
	}
	return st
}

// Providers summarises the providers of an association: "aws(IRSA),azure,gcp".
func Providers(ia *v1alpha1.IdentityAssociation) string {
	var p []string
	if a := ia.Spec.AWS; a != nil {
		mode := a.Mode
		if mode == "" {
			mode = v1alpha1.AWSModePodIdentity
		}
		p = append(p, "aws("+string(mode)+")")
	}
	if ia.Spec.Azure != nil {
		p = append(p, "azure")
	}
	if ia.Spec.GCP != nil {
		p = append(p, "gcp")
	}
	return strings.Join(p, ",")
}

// equalStatus reports whether the current status (as the cache keeps it, or read live) already
// says what the desired one says: the same StatusDigest.
func equalStatus(current, desired v1alpha1.IdentityAssociationStatus) bool {
	have := current.Providers
	if !cluster.IsCachedDigest(current) {
		have = cluster.StatusDigest(current)
	}
	return have == cluster.StatusDigest(desired)
}
